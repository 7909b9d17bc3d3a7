/**
 * Permissive mode, for moving a service to mutual TLS without breaking the callers that are not
 * there yet: one port that takes mTLS *and* plaintext HTTP, decided by the first byte of each
 * connection, and that counts and logs every caller that is not on mTLS, with its address.
 *
 * TLS connections go to the same machinery as the strict server (`createServerGuard`: one option
 * set, live `setSecureContext` on every identity update, refusals logged with their reason);
 * plaintext goes to a node:http server. Both hand their requests to the one handler.
 */
import { createServer as createHttpServer, type IncomingMessage, type RequestListener, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { Server as NetServer, type ServerOpts, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Logger } from '../observe/logger.js';
import type { HttpServerSettings, MtlsHttpsServerOptions } from './https-server.js';
import type { Identity } from './identity.js';
import type { IdentitySource } from './identity-source.js';
import { CallerTable, classifyFirstByte, type CallerCounts, type CallerMode } from './permissive-callers.js';
import { reasonForVerifyError, requestRefusalBody, type RefusalReason } from './refusal.js';
import { sdkLogger } from './report.js';
import { sdkMetrics, type SdkMetrics } from '../observe/metrics.js';
import { createServerGuard, DEFAULT_MAX_CONNECTION_AGE_MS, refinedReason } from './server-guard.js';
import { peerSpiffeId } from './spiffe-matcher.js';

/** How long a new connection may stay silent before its first byte (a slow client cannot hold a socket). */
export const DEFAULT_FIRST_BYTE_TIMEOUT_MS = 10_000;
/** How many caller addresses `permissiveStats.callers` keeps (least recently seen forgotten first). */
export const DEFAULT_MAX_TRACKED_CALLERS = 1_000;

export interface PermissiveHttpsServerOptions extends MtlsHttpsServerOptions {
  /** Connections that send nothing for this long are closed (default 10 s). */
  firstByteTimeoutMs?: number;
  /** Addresses kept in `permissiveStats.callers` (default 1000). */
  maxTrackedCallers?: number;
  /** Called for every plaintext or unauthenticated connection, after it is counted and logged. */
  onInsecureCaller?: (caller: InsecureCaller) => void;
}

/** How one connection reached a permissive server; `permissiveCaller(req)` gives it to handlers. */
export interface PermissiveCaller {
  mode: CallerMode;
  /** `address:port` of the client. */
  peer: string;
  /** The client's address (the key of `permissiveStats.callers`). */
  address: string;
  /** Unauthenticated TLS: why the client certificate did not count (`no-certificate`, `unknown-ca`, `expired`, …). */
  reason?: RefusalReason;
  /** Unauthenticated TLS: the verification code or message behind `reason`. */
  detail?: string;
  /**
   * Unauthenticated TLS: the SPIFFE ID an unverified certificate *claims*. Anyone can write any ID
   * into a certificate of their own: for finding who to migrate, never for deciding anything.
   */
  unverifiedSpiffeId?: string;
}

/** A caller that is not on mutual TLS. */
export type InsecureCaller = PermissiveCaller & { mode: 'plaintext' | 'unauthenticated' };

/** Counters of a permissive server since it was created. */
export interface PermissiveStats {
  /** Connections served in plaintext. */
  plaintext: number;
  /** TLS connections served without a valid client certificate. */
  unauthenticated: number;
  /** TLS connections served with a verified, allowed client certificate. */
  mtls: number;
  /** TLS connections refused (a verified identity not allowed, a failed handshake): as the strict server would. */
  refused: number;
  /** Connections closed before they were served: no first byte in time, or neither TLS nor HTTP. */
  dropped: number;
  /** Requests, by the mode of the connection they came on. */
  requests: Readonly<Record<CallerMode, number>>;
  /** Connections by client address (at most `maxTrackedCallers`; least recently seen first). */
  callers: ReadonlyMap<string, Readonly<CallerCounts>>;
  /** Addresses dropped from `callers` because it was full. */
  callersEvicted: number;
}

type SecureConnectionListener = (this: HttpsServer, socket: TLSSocket) => void;

// How each served connection came in: keyed by the TLS socket, or by the TCP socket for plaintext.
const callerOf = new WeakMap<object, PermissiveCaller>();

/**
 * How the connection behind a request (node:http, Express, Fastify's `request` or `request.raw`)
 * or socket reached a permissive server; null for anything else (a strict server's requests too).
 * The caller's verified identity, when there is one, comes from `peerIdentity(req)`, which is null
 * for plaintext and unauthenticated callers.
 *
 * @example
 * if (permissiveCaller(req)?.mode !== 'mtls') metrics.insecure.inc({ route: req.url });
 */
export function permissiveCaller(carrier: unknown): PermissiveCaller | null {
  let value: unknown = carrier;
  for (let depth = 0; depth < 3 && value !== null && typeof value === 'object'; depth += 1) {
    const found = callerOf.get(value);
    if (found) return found;
    const next = value as { raw?: unknown; socket?: unknown };
    value = next.raw ?? next.socket;
  }
  return null;
}

/**
 * A server in permissive mode: a `net.Server` (listen, address, close as usual) whose TLS side is
 * the strict mTLS server's and whose plaintext side is node:http.
 */
export class PermissiveHttpsServer extends NetServer {
  readonly #tls: HttpsServer;
  readonly #plain: HttpServer;
  readonly #logger: Logger;
  readonly #options: PermissiveHttpsServerOptions;
  readonly #clock: () => number;
  readonly #metrics: SdkMetrics;
  readonly #firstByteTimeoutMs: number;
  readonly #callers: CallerTable;
  readonly #counts = { plaintext: 0, unauthenticated: 0, mtls: 0, refused: 0, dropped: 0 };
  readonly #requests: Record<CallerMode, number> = { plaintext: 0, unauthenticated: 0, mtls: 0 };
  /** Connections still waiting for their first byte. */
  readonly #pending = new Set<Socket>();
  /** Unauthenticated TLS connections: the identity they were accepted under (the guard stamps mTLS ones). */
  readonly #unauthenticatedSince = new WeakMap<TLSSocket, { identity: Identity; acceptedAt: number }>();

  /** @internal Use `createPermissiveHttpsServer`. */
  constructor(source: IdentitySource, options: PermissiveHttpsServerOptions, handler: RequestListener | undefined) {
    super(netOptions(options.http));
    this.#options = options;
    this.#logger = sdkLogger(options.logger);
    this.#clock = options.clock ?? Date.now;
    this.#metrics = options.metrics ?? sdkMetrics();
    this.#firstByteTimeoutMs = options.firstByteTimeoutMs ?? DEFAULT_FIRST_BYTE_TIMEOUT_MS;
    this.#callers = new CallerTable(options.maxTrackedCallers ?? DEFAULT_MAX_TRACKED_CALLERS);

    // ---- TLS: the strict server's guard, with one difference (see the router below) ----------
    const guard = createServerGuard(source, {
      ...options,
      onRefusal: (refusal) => {
        this.#counts.refused += 1;
        options.onRefusal?.(refusal);
      },
    });
    const tls = createHttpsServer({ ...options.http, ...guard.initialOptions });
    const httpListeners = tls.listeners('secureConnection') as SecureConnectionListener[];
    // Ahead of node:https's own listener, so the guard hands it only the connections it accepts.
    tls.prependListener('secureConnection', (socket: TLSSocket) => this.#admitTls(socket, 'mtls'));
    guard.attach(tls);
    const [guarded, ...others] = tls.listeners('secureConnection') as SecureConnectionListener[];
    if (!guarded || others.length > 0) throw new Error('tlsmesh: the server guard did not install exactly one secureConnection listener');
    tls.removeAllListeners('secureConnection');
    // A client with a certificate that verifies goes through the guard exactly as in strict mode
    // (dates, SPIFFE ID, allow-list: refused and logged if not allowed). A client with no
    // certificate, or one that does not verify, is what permissive mode lets through.
    tls.on('secureConnection', (socket: TLSSocket) => {
      const unverified = whyUnverified(socket, source.current());
      if (!unverified) {
        guarded.call(tls, socket);
        return;
      }
      this.#unauthenticatedSince.set(socket, { identity: source.current(), acceptedAt: this.#clock() });
      this.#admitTls(socket, 'unauthenticated', unverified);
      for (const listener of httpListeners) listener.call(tls, socket);
    });
    const maxAgeMs = options.maxConnectionAgeMs ?? DEFAULT_MAX_CONNECTION_AGE_MS;
    tls.on('request', (request: IncomingMessage, response: ServerResponse) => {
      const socket = request.socket as TLSSocket;
      const since = this.#unauthenticatedSince.get(socket);
      const stale = since !== undefined && (since.identity !== source.current() || this.#clock() - since.acceptedAt >= maxAgeMs);
      if (stale || guard.shouldRecycle(socket)) response.setHeader('connection', 'close');
      // An mTLS client revoked since it connected: refused per request, as in strict mode.
      const refusal = since === undefined ? guard.checkRequest(socket) : null;
      if (refusal) {
        const body = requestRefusalBody(refusal);
        response.writeHead(403, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close' });
        response.end(body);
        return;
      }
      this.#request(request, response);
    });
    this.#tls = tls;

    // ---- Plaintext: node:http with the same settings --------------------------------------------
    // tlsmesh-audit-ignore node/plaintext-server: permissive (migration) mode's plaintext side, an explicit opt-in; every such caller is logged
    this.#plain = createHttpServer({ ...options.http }, (request, response) => this.#request(request, response));

    if (handler) this.on('request', handler);
    this.on('connection', (socket: Socket) => this.#accept(socket));
    // The inner servers never listen themselves; this starts their request/headers timeout checks.
    this.on('listening', () => {
      this.#tls.emit('listening');
      this.#plain.emit('listening');
    });

    this.#logger.warn(
      { event: 'mtls.permissive_mode', firstByteTimeoutMs: this.#firstByteTimeoutMs },
      'PERMISSIVE MODE: this server accepts plaintext HTTP and TLS clients without a valid certificate on the same port as mutual TLS, and serves them. ' +
        'Use it only while moving callers to mTLS; every such caller is logged (mtls.plaintext, mtls.unauthenticated). Switch to the strict server when they stop.',
    );
  }

  /** Counters since creation, with connections by client address. A copy: it does not change under you. */
  get permissiveStats(): PermissiveStats {
    return Object.freeze({
      ...this.#counts,
      requests: Object.freeze({ ...this.#requests }),
      callers: this.#callers.snapshot(),
      callersEvicted: this.#callers.evicted,
    });
  }

  /** Stops accepting, closes idle keep-alive connections and connections that have not spoken yet. */
  override close(callback?: (error?: Error) => void): this {
    super.close(callback);
    for (const socket of this.#pending) socket.destroy();
    // Closing the inner servers also ends the TLS side's subscription to identity updates.
    this.#tls.close();
    this.#plain.close();
    return this;
  }

  /** Closes keep-alive connections that have no request in flight (as http.Server does). */
  closeIdleConnections(): void {
    this.#tls.closeIdleConnections();
    this.#plain.closeIdleConnections();
  }

  /** Closes every connection, busy or not (as http.Server does). */
  closeAllConnections(): void {
    for (const socket of this.#pending) socket.destroy();
    this.#tls.closeAllConnections();
    this.#plain.closeAllConnections();
  }

  /** Waits for the first byte (bounded), then hands the connection to the TLS or the plaintext side. */
  #accept(socket: Socket): void {
    const address = socket.remoteAddress ?? 'unknown';
    const peer = addressAndPort(address, socket.remotePort);
    // Stays for the life of the socket: errors after the hand-over are also handled by node:http.
    socket.on('error', (error: Error & { code?: string }) => {
      this.#logger.debug({ event: 'mtls.socket_error', peer, detail: error.code ?? error.message }, 'connection error');
    });
    this.#pending.add(socket);

    const settle = (): void => {
      clearTimeout(timer);
      this.#pending.delete(socket);
      socket.removeListener('readable', onReadable);
      socket.removeListener('end', onEnd);
    };
    const drop = (reason: 'first-byte-timeout' | 'not-tls-or-http', detail: string): void => {
      settle();
      this.#counts.dropped += 1;
      this.#logger.warn({ event: 'mtls.dropped', peer, reason, detail }, `closed ${peer}: ${detail}`);
      socket.destroy();
    };
    const onEnd = (): void => {
      // Connected and left without a byte (TCP health checks do this): nothing to report.
      settle();
      this.#logger.debug({ event: 'mtls.aborted', peer, detail: 'closed before sending anything' }, 'client left before sending anything');
      socket.destroy();
    };
    const onReadable = (): void => {
      const first = socket.read(1) as Buffer | null;
      if (first === null) return; // nothing yet, or the end: 'end' follows
      settle();
      socket.unshift(first);
      const byte = first.readUInt8(0);
      switch (classifyFirstByte(byte)) {
        case 'tls':
          this.#tls.emit('connection', socket);
          return;
        case 'http':
          this.#admit(socket, { mode: 'plaintext', peer, address });
          this.#plain.emit('connection', socket);
          return;
        case 'unknown':
          drop('not-tls-or-http', `the first byte (0x${byte.toString(16).padStart(2, '0')}) starts neither a TLS handshake nor an HTTP request`);
          return;
      }
    };
    const timer = setTimeout(() => drop('first-byte-timeout', `nothing received within ${this.#firstByteTimeoutMs} ms`), this.#firstByteTimeoutMs);
    socket.on('readable', onReadable);
    socket.once('end', onEnd);
  }

  #admitTls(socket: TLSSocket, mode: 'mtls' | 'unauthenticated', unverified?: Unverified): void {
    const address = socket.remoteAddress ?? 'unknown';
    this.#admit(socket, { mode, peer: addressAndPort(address, socket.remotePort), address, ...unverified });
  }

  /** Counts a served connection, remembers it for `permissiveCaller`, and reports the insecure ones. */
  #admit(socket: Socket, caller: PermissiveCaller): void {
    callerOf.set(socket, caller);
    this.#counts[caller.mode] += 1;
    const firstInMode = this.#callers.record(caller.address, caller.mode, this.#clock());
    if (caller.mode === 'mtls') return;
    if (firstInMode) this.#metrics.insecureCallers.inc({ transport: 'https', mode: caller.mode });
    const message =
      caller.mode === 'plaintext'
        ? `plaintext caller ${caller.peer} served (permissive mode)`
        : `unauthenticated TLS caller ${caller.peer} served (permissive mode): ${caller.reason ?? 'unverified'} (${caller.detail ?? ''})`;
    this.#logger.warn({ event: `mtls.${caller.mode}`, ...caller }, message);
    try {
      this.#options.onInsecureCaller?.({ ...caller, mode: caller.mode });
    } catch (error) {
      this.#logger.error({ event: 'mtls.hook_failed', hook: 'onInsecureCaller', err: (error as Error).message }, 'onInsecureCaller threw');
    }
  }

  #request(request: IncomingMessage, response: ServerResponse): void {
    const caller = permissiveCaller(request.socket);
    if (caller) {
      this.#requests[caller.mode] += 1;
      if (caller.mode === 'plaintext') this.#metrics.plaintextRequests.inc({ transport: 'https' });
      if (caller.mode !== 'mtls') {
        // The path without its query string: queries may carry secrets.
        const path = (request.url ?? '').split('?', 1)[0];
        this.#logger.debug({ event: 'mtls.insecure_request', mode: caller.mode, peer: caller.peer, method: request.method, path }, `${caller.mode} request from ${caller.peer}`);
      }
    }
    this.emit('request', request, response);
  }
}

type Unverified = Pick<PermissiveCaller, 'reason' | 'detail' | 'unverifiedSpiffeId'>;

/** Why a TLS client's certificate does not authenticate it, or null when it verified. */
function whyUnverified(socket: TLSSocket, identity: Identity): Unverified | null {
  const certificate = socket.getPeerCertificate();
  if (!certificate || Object.keys(certificate).length === 0) return { reason: 'no-certificate', detail: 'the client sent no certificate' };
  if (socket.authorized) return null;
  const code = String(socket.authorizationError);
  // A revoked certificate is not "a caller without mTLS yet": it is a stolen or retired key, and
  // permissive mode refuses it (the guard does, with reason `revoked`) as strict mode does.
  if (code === 'CERT_REVOKED') return null;
  const claimed = peerSpiffeId(certificate);
  return { reason: refinedReason(reasonForVerifyError(code), socket, identity), detail: code, ...('id' in claimed ? { unverifiedSpiffeId: claimed.id } : {}) };
}

function addressAndPort(address: string, port: number | undefined): string {
  return port === undefined ? address : `${address}:${port}`;
}

/** The TCP-level settings node:http would apply to the connections it accepts itself. */
function netOptions(http: HttpServerSettings | undefined): ServerOpts {
  return {
    pauseOnConnect: true,
    allowHalfOpen: true,
    noDelay: http?.noDelay ?? true,
    ...(http?.keepAlive !== undefined ? { keepAlive: http.keepAlive } : {}),
  };
}

/**
 * **Permissive mode — for migration only.** One port that serves mutual TLS *and* plaintext
 * HTTP, so a team can see who still calls without mTLS before switching to the strict server
 * (`createMtlsHttpsServer`, the default, which refuses all of them). Creating one logs a warning.
 *
 * Each connection is classified by its first byte: a TLS handshake record (0x16) goes to the same
 * TLS machinery as the strict server; the first letter of an HTTP method goes to node:http; any
 * other byte, or nothing within `firstByteTimeoutMs`, closes the connection.
 *
 * What it still does:
 * - a client whose certificate verifies is checked as in strict mode: dates, one SPIFFE ID, the
 *   `allow` list (default: the server's trust domain). Not allowed → refused and logged
 *   (`mtls.refused`), never served;
 * - `peerIdentity(req)` returns an identity only for those verified, allowed clients, so
 *   `requirePeer` / `authorizePeer` on a route still answer 401 to everyone else;
 * - the server's own certificate, bundle and CRL rotate live, as in strict mode.
 *
 * What it does not protect (this is the point of it):
 * - plaintext callers: no confidentiality, no integrity, no identity; anyone on the network path
 *   can read and change their requests and answers;
 * - TLS callers without a certificate, or with one that does not verify (another CA, expired,
 *   revoked): encrypted, but anonymous — served as `unauthenticated`. A SPIFFE ID in such a
 *   certificate is only a claim (`unverifiedSpiffeId`), never an identity;
 * - routes without per-route authorization are open to all of the above.
 *
 * Every plaintext and unauthenticated connection is counted (`server.permissiveStats`, also by
 * address), logged at warn with its peer address (`event: 'mtls.plaintext'` /
 * `'mtls.unauthenticated'`) and passed to `onInsecureCaller`; handlers can ask
 * `permissiveCaller(req)`. Per-request lines (method and path) are logged at debug.
 *
 * @example
 * const server = createPermissiveHttpsServer(source, { onInsecureCaller: (c) => seen.add(c.address) }, app);
 * server.listen(8443);
 * // later: server.permissiveStats → { plaintext: 12, unauthenticated: 1, mtls: 4031, callers: Map { '10.0.3.7' => … }, … }
 */
export function createPermissiveHttpsServer(source: IdentitySource, options: PermissiveHttpsServerOptions = {}, handler?: RequestListener): PermissiveHttpsServer {
  const { firstByteTimeoutMs, maxTrackedCallers, onInsecureCaller } = options;
  if (firstByteTimeoutMs !== undefined && !(Number.isFinite(firstByteTimeoutMs) && firstByteTimeoutMs > 0)) throw new TypeError('firstByteTimeoutMs must be a positive number of milliseconds');
  if (maxTrackedCallers !== undefined && !(Number.isInteger(maxTrackedCallers) && maxTrackedCallers > 0)) throw new TypeError('maxTrackedCallers must be a positive integer');
  if (onInsecureCaller !== undefined && typeof onInsecureCaller !== 'function') throw new TypeError('onInsecureCaller must be a function');
  return new PermissiveHttpsServer(source, options, handler);
}
