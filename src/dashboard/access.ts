/**
 * Who may see the dashboard, and proof that a form post came from it.
 *
 * - The admin client certificate (mTLS, the admin API's check) gives full access.
 * - The optional read-only token buys a session: a random id in an HttpOnly, Secure,
 *   SameSite=Strict `__Host-` cookie, kept in this process's memory for a bounded time. The
 *   cookie never holds the token, so a leaked cookie dies with its session.
 * - Form posts carry a CSRF token, an HMAC over what the caller is bound to (the client
 *   certificate's serial, or the session id), and must come from this origin (Origin header,
 *   and Sec-Fetch-Site when the browser sends it).
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import type { FastifyRequest } from 'fastify';
import { TlsmeshError } from '../errors.js';

export const SESSION_COOKIE = '__Host-tlsmesh-ui';
/** A bound on memory: a flood of logins evicts the oldest sessions, it cannot grow the map. */
const MAX_SESSIONS = 1000;
/** A token shorter than this could be guessed through the login form. */
export const MIN_TOKEN_LENGTH = 32;

/** Who is looking: the admin (by client certificate) or a read-only session. */
export type Viewer =
  | { kind: 'admin'; spiffeId: string; serial: string; peer: string | null }
  | { kind: 'read-only'; sessionId: string; peer: string | null };

/** The audit actor for a viewer; sessions appear by a short hash of their id, never the id. */
export function actorOf(viewer: Viewer): string {
  return viewer.kind === 'admin' ? viewer.spiffeId : `ui-session:${sessionTag(viewer.sessionId)}`;
}

export function sessionTag(sessionId: string): string {
  return createHash('sha256').update(sessionId).digest('hex').slice(0, 12);
}

/** Compares secrets in constant time whatever their lengths (both are hashed to 32 bytes first). */
export function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}

export class Sessions {
  readonly #sessions = new Map<string, number>();
  readonly #lifetimeMs: number;
  readonly #clock: () => Date;

  constructor(lifetimeMs: number, clock: () => Date) {
    this.#lifetimeMs = lifetimeMs;
    this.#clock = clock;
  }

  get lifetimeSeconds(): number {
    return Math.floor(this.#lifetimeMs / 1000);
  }

  create(): string {
    const now = this.#clock().getTime();
    for (const [id, expires] of this.#sessions) if (expires <= now) this.#sessions.delete(id);
    while (this.#sessions.size >= MAX_SESSIONS) this.#sessions.delete(this.#sessions.keys().next().value!);
    const id = randomBytes(32).toString('base64url');
    this.#sessions.set(id, now + this.#lifetimeMs);
    return id;
  }

  /** The session id when it is known and unexpired (an expired one is dropped). */
  check(id: string | undefined): string | null {
    if (id === undefined) return null;
    const expires = this.#sessions.get(id);
    if (expires === undefined) return null;
    if (expires <= this.#clock().getTime()) {
      this.#sessions.delete(id);
      return null;
    }
    return id;
  }

  end(id: string): void {
    this.#sessions.delete(id);
  }
}

export function sessionCookie(id: string, maxAgeSeconds: number): string {
  return `${SESSION_COOKIE}=${id}; Path=/; Max-Age=${maxAgeSeconds}; HttpOnly; Secure; SameSite=Strict`;
}

export function clearedSessionCookie(): string {
  return `${SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict`;
}

export function cookieValue(request: FastifyRequest, name: string): string | undefined {
  const header = request.headers.cookie;
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** CSRF tokens: an HMAC under a per-process key over what the viewer is bound to. */
export class CsrfTokens {
  readonly #key = randomBytes(32);

  tokenFor(viewer: Viewer): string {
    const binding = viewer.kind === 'admin' ? `cert:${viewer.serial}` : `session:${viewer.sessionId}`;
    return createHmac('sha256', this.#key).update(binding).digest('base64url');
  }

  /** Throws ERR_CSRF unless the form's token is this viewer's and the post came from this origin. */
  check(request: FastifyRequest, viewer: Viewer, given: string | null): void {
    checkSameOrigin(request);
    if (given === null || !sameSecret(given, this.tokenFor(viewer))) {
      throw new TlsmeshError('ERR_CSRF', 'the form has no valid CSRF token for this session; reload the page and submit again');
    }
  }
}

/**
 * A form post must come from a page of this origin: the Origin header equals https://<Host>, and
 * Sec-Fetch-Site (sent by current browsers) says same-origin. Pages use Referrer-Policy
 * same-origin, not no-referrer: under no-referrer, Chromium sends `Origin: null` even for a
 * same-origin form post, which would make this check impossible.
 */
export function checkSameOrigin(request: FastifyRequest): void {
  const origin = request.headers.origin;
  const host = request.headers.host;
  if (origin === undefined || host === undefined || origin !== `https://${host}`) {
    throw new TlsmeshError('ERR_CSRF', `the form was posted from origin ${origin ?? '(none)'}, not from this dashboard`);
  }
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin') {
    throw new TlsmeshError('ERR_CSRF', `the form was posted from a ${String(site)} page, not from this dashboard`);
  }
}

/**
 * Reads the read-only token file (a path from ca.yaml, never argv): one line, at least
 * MIN_TOKEN_LENGTH characters, readable by its owner only (like the CA's key passphrase file).
 */
export async function readReadOnlyToken(path: string): Promise<string> {
  let text: string;
  try {
    const info = await stat(path);
    if ((info.mode & 0o077) !== 0) {
      throw new TlsmeshError('ERR_CONFIG', `dashboard.readOnlyTokenFile ${path} is readable by others (mode ${(info.mode & 0o777).toString(8)}); chmod 600 it`);
    }
    text = await readFile(path, 'utf8');
  } catch (cause) {
    if (cause instanceof TlsmeshError) throw cause;
    throw new TlsmeshError('ERR_CONFIG', `dashboard.readOnlyTokenFile: cannot read ${path}`, { cause });
  }
  const token = text.replace(/\r?\n$/, '');
  if (token.length < MIN_TOKEN_LENGTH || /\s/.test(token)) {
    throw new TlsmeshError('ERR_CONFIG', `dashboard.readOnlyTokenFile ${path} must hold one token of at least ${MIN_TOKEN_LENGTH} characters without spaces (e.g. openssl rand -base64 32)`);
  }
  return token;
}
