/**
 * The dashboard's routes under /ui, in their own fastify scope: a form-body parser, HTML error
 * pages and the security headers apply here only; the API's JSON behaviour is untouched.
 * Handlers read the store through the Authority and write one audit entry per view or refusal.
 */
import type { TLSSocket } from 'node:tls';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { wasAudited, type Authority, type Caller } from '../ca/authority.js';
import { peerAddress, requirePeerCertificate } from '../ca/http/peer.js';
import { rotationStatus } from '../ca/rotation.js';
import { TlsmeshError, isTlsmeshError } from '../errors.js';
import { REVOCATION_REASONS } from '../pki/crl.js';
import { actorOf, checkSameOrigin, clearedSessionCookie, cookieValue, CsrfTokens, sameSecret, SESSION_COOKIE, sessionCookie, Sessions, sessionTag, type Viewer } from './access.js';
import type { Html } from './html.js';
import { page } from './layout.js';
import { auditBody, AUDIT_PAGE_SIZE, OUTCOMES, revocationsBody } from './pages/audit.js';
import { certDetailBody, certListBody, PAGE_SIZE, revokeConfirmBody } from './pages/certs.js';
import { healthBody } from './pages/health.js';
import { keysBody } from './pages/keys.js';
import { overviewBody } from './pages/overview.js';
import { loginBody, refusalBody } from './pages/refusal.js';
import { timelineBody } from './pages/timeline.js';
import { expiryTimeline, renewalHealth, STATUS_FILTERS, statusCounts, statusFilter, type Horizon } from './queries.js';
import { DASHBOARD_CSS } from './style.js';

export interface DashboardRouteOptions {
  authority: Authority;
  adminIds: ReadonlySet<string>;
  readOnlyToken: string | null;
  sessionSeconds: number;
}

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  // same-origin rather than no-referrer: no referrer ever leaves the CA, and Chromium keeps the
  // Origin header on same-origin form posts (under no-referrer it sends "Origin: null"), which
  // the CSRF check needs (access.ts checkSameOrigin).
  'referrer-policy': 'same-origin',
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-store',
};

const FORM_LIMIT = 16 * 1024;
const serialParam = z.strictObject({ serial: z.string().regex(/^[0-9a-f]{1,64}$/, 'a serial in lowercase hex') });
const emptyToUndefined = (value: unknown): unknown => (value === '' ? undefined : value);
const listQuery = z.strictObject({
  q: z.string().max(256).optional(),
  status: z.preprocess(emptyToUndefined, z.enum(STATUS_FILTERS as [string, ...string[]]).optional()),
  page: z.coerce.number().int().min(1).max(100_000).optional(),
  revoked: z.string().regex(/^[0-9a-f]{1,64}$/).optional(),
});
const auditQuery = z.strictObject({
  action: z.string().max(64).optional(),
  outcome: z.preprocess(emptyToUndefined, z.enum(OUTCOMES as [string, ...string[]]).optional()),
  before: z.coerce.number().int().min(1).optional(),
});
const noQuery = z.strictObject({});

function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const where = issue && issue.path.length > 0 ? issue.path.join('.') : 'query';
  throw new TlsmeshError('ERR_BAD_REQUEST', `invalid request: ${where}: ${issue?.message ?? 'invalid'}`);
}

const formField = (body: unknown, name: string): string | null => (body instanceof URLSearchParams ? body.get(name) : null);
const pathOf = (request: FastifyRequest): string => request.url.split('?')[0] ?? request.url;

export function dashboardRoutes(options: DashboardRouteOptions) {
  const { authority, adminIds, readOnlyToken } = options;
  const store = authority.store;
  const sessions = new Sessions(options.sessionSeconds * 1000, () => authority.clock());
  const csrf = new CsrfTokens();
  const horizon = (): Horizon => ({ now: authority.clock(), leafMs: authority.lifetimes.leafSeconds * 1000 });
  const anonymous = (request: FastifyRequest): Caller => ({ spiffeId: null, peer: peerAddress(request) });
  /** Who each request turned out to be, so a refusal raised later (a bad parameter) names them. */
  const viewers = new WeakMap<FastifyRequest, Viewer>();

  /**
   * Who is asking. A presented client certificate decides alone (verified, known, unrevoked,
   * admin: the admin API's checks); without one, a live read-only session; otherwise refused.
   * Every refusal is audited under `action`.
   */
  async function viewerOf(request: FastifyRequest, action: string): Promise<Viewer> {
    const viewer = await identify(request, action);
    viewers.set(request, viewer);
    return viewer;
  }

  async function identify(request: FastifyRequest, action: string): Promise<Viewer> {
    const peer = peerAddress(request);
    const subject = pathOf(request);
    const socket = request.raw.socket as Partial<TLSSocket>;
    const presented = typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate(false) : undefined;
    if (presented?.raw !== undefined) {
      let der: Buffer;
      try {
        der = requirePeerCertificate(request);
      } catch (error) {
        throw await authority.auditRefusal(action, anonymous(request), error, subject);
      }
      const record = await authority.authenticate(der, action, peer);
      if (!adminIds.has(record.spiffeId)) {
        throw await authority.auditRefusal(action, { spiffeId: record.spiffeId, peer }, new TlsmeshError('ERR_FORBIDDEN', `${record.spiffeId} is not an admin of this CA; the dashboard needs the admin client certificate`), subject);
      }
      return { kind: 'admin', spiffeId: record.spiffeId, serial: record.serial, peer };
    }
    const session = sessions.check(cookieValue(request, SESSION_COOKIE));
    if (session !== null) return { kind: 'read-only', sessionId: session, peer };
    throw await authority.auditRefusal(action, anonymous(request), new TlsmeshError('ERR_UI_LOGIN_REQUIRED', 'this page needs the admin client certificate or a read-only session'), subject);
  }

  const callerOf = (viewer: Viewer): Caller => ({ spiffeId: actorOf(viewer), peer: viewer.peer });

  async function audited(viewer: Viewer, action: string, subject: string, detail: Record<string, unknown> = {}): Promise<void> {
    await store.appendAudit({
      at: authority.clock(),
      actor: actorOf(viewer),
      action,
      subject,
      outcome: 'ok',
      code: null,
      detail: { access: viewer.kind, ...detail },
      peer: viewer.peer,
    });
  }

  const frame = (viewer: Viewer | null, title: string, current?: string) => ({
    title,
    viewer,
    trustDomain: authority.trustDomain,
    ...(current === undefined ? {} : { current }),
    ...(viewer === null ? {} : { csrf: csrf.tokenFor(viewer) }),
  });

  const send = (reply: FastifyReply, body: Html, status = 200): FastifyReply => reply.status(status).type('text/html; charset=utf-8').send(body.toString());

  /** A page anyone with access may view: resolve the viewer, audit the view, render. */
  function view(path: string, title: string, render: (request: FastifyRequest, viewer: Viewer) => Promise<Html>) {
    return async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
      const viewer = await viewerOf(request, 'ui.view');
      const body = await render(request, viewer);
      await audited(viewer, 'ui.view', pathOf(request));
      return send(reply, page(frame(viewer, title, path), body));
    };
  }

  return function plugin(scope: FastifyInstance, _options: unknown, done: (error?: Error) => void): void {
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: FORM_LIMIT }, (_request, body, done) => {
      done(null, new URLSearchParams(body as string));
    });

    scope.addHook('onSend', async (_request, reply, payload) => {
      for (const [name, value] of Object.entries(SECURITY_HEADERS)) void reply.header(name, value);
      return payload;
    });

    scope.setErrorHandler(async (error, request, reply) => {
      const coded = isTlsmeshError(error) ? error : frameworkError(error);
      if (coded.status >= 500) request.log.error({ err: error, code: coded.code }, 'dashboard request failed');
      if (!wasAudited(coded)) {
        const viewer = viewers.get(request);
        await authority.auditRefusal('ui.request', viewer === undefined ? anonymous(request) : callerOf(viewer), coded, pathOf(request)).catch((auditError: unknown) => {
          request.log.error({ err: auditError }, 'could not write the audit entry for a dashboard refusal');
        });
      }
      // The code in a header too, for scripts and tests (the page shows it with the message).
      void reply.header('x-tlsmesh-error', coded.code);
      if (coded.code === 'ERR_UI_LOGIN_REQUIRED') {
        return send(reply, page(frame(null, 'Sign in'), loginBody(readOnlyToken !== null, null)), coded.status);
      }
      return send(reply, page(frame(null, refusalTitle(coded.status)), refusalBody(coded)), coded.status);
    });

    scope.setNotFoundHandler(async (request, reply) => {
      const error = new TlsmeshError('ERR_NOT_FOUND', `no dashboard page ${pathOf(request)}`);
      void reply.header('x-tlsmesh-error', error.code);
      return send(reply, page(frame(null, 'Not found'), refusalBody(error)), error.status);
    });

    scope.get('/static/dashboard.css', async (_request, reply) => reply.type('text/css; charset=utf-8').send(DASHBOARD_CSS));

    scope.get('/login', async (request, reply) => {
      parse(noQuery, request.query);
      return send(reply, page(frame(null, 'Sign in'), loginBody(readOnlyToken !== null, null)));
    });

    scope.post('/login', async (request, reply) => {
      const caller = anonymous(request);
      try {
        checkSameOrigin(request);
        if (readOnlyToken === null) throw new TlsmeshError('ERR_NOT_FOUND', 'no read-only token is configured on this CA; use the admin client certificate');
        const given = formField(request.body, 'token');
        if (given === null || !sameSecret(given, readOnlyToken)) throw new TlsmeshError('ERR_UI_TOKEN_INVALID', 'the read-only token does not match');
      } catch (error) {
        const coded = await authority.auditRefusal('ui.login', caller, error);
        void reply.header('x-tlsmesh-error', coded.code);
        return send(reply, page(frame(null, 'Sign in'), loginBody(readOnlyToken !== null, coded)), coded.status);
      }
      const id = sessions.create();
      await audited({ kind: 'read-only', sessionId: id, peer: caller.peer }, 'ui.login', sessionTag(id), { lifetimeSeconds: sessions.lifetimeSeconds });
      return reply.status(303).header('set-cookie', sessionCookie(id, sessions.lifetimeSeconds)).header('location', '/ui/').send();
    });

    scope.post('/logout', async (request, reply) => {
      const viewer = await viewerOf(request, 'ui.logout');
      try {
        csrf.check(request, viewer, formField(request.body, 'csrf'));
      } catch (error) {
        throw await authority.auditRefusal('ui.logout', callerOf(viewer), error);
      }
      if (viewer.kind === 'read-only') sessions.end(viewer.sessionId);
      await audited(viewer, 'ui.logout', viewer.kind === 'read-only' ? sessionTag(viewer.sessionId) : viewer.spiffeId);
      return reply.status(303).header('set-cookie', clearedSessionCookie()).header('location', '/ui/login').send();
    });

    scope.get(
      '/',
      view('/ui/', 'Overview', async (request) => {
        parse(noQuery, request.query);
        const h = horizon();
        const [counts, health, keys] = await Promise.all([statusCounts(store, h), renewalHealth(store, h.now), store.listCaKeys()]);
        return overviewBody({
          counts,
          overdue: health.overdue.length,
          expiredIdentities: health.expired.length,
          recentRefusals: health.refusals.length,
          keys,
          activeIntermediate: authority.keyring.issuer.record.id,
          store: store.backend,
        });
      }),
    );

    scope.get(
      '/certs',
      view('/ui/certs', 'Certificates', async (request) => {
        const query = parse(listQuery, request.query);
        const h = horizon();
        const q = query.q?.trim() ?? '';
        const status = query.status as (typeof STATUS_FILTERS)[number] | undefined;
        const filter = { ...statusFilter(status, h), ...(q === '' ? {} : { spiffeIdContains: q }) };
        const pageNo = query.page ?? 1;
        const [records, total] = await Promise.all([store.listCertificates({ ...filter, limit: PAGE_SIZE, offset: (pageNo - 1) * PAGE_SIZE }), store.countCertificates(filter)]);
        return certListBody({ records, total, page: pageNo, q, status, horizon: h, revoked: query.revoked });
      }),
    );

    const certOf = async (request: FastifyRequest) => {
      const { serial } = parse(serialParam, request.params);
      const record = await store.getCertificate(serial);
      if (record === null) throw new TlsmeshError('ERR_NOT_FOUND', `no certificate with serial ${serial}`);
      return record;
    };

    scope.get(
      '/certs/:serial',
      view('/ui/certs', 'Certificate', async (request, viewer) => {
        parse(noQuery, request.query);
        const record = await certOf(request);
        return certDetailBody(record, horizon(), viewer.kind === 'admin');
      }),
    );

    /** The revoke confirmation and the revoke itself: the admin certificate only. */
    async function adminFor(request: FastifyRequest): Promise<Extract<Viewer, { kind: 'admin' }>> {
      const viewer = await viewerOf(request, 'ui.revoke');
      if (viewer.kind !== 'admin') {
        throw await authority.auditRefusal('ui.revoke', callerOf(viewer), new TlsmeshError('ERR_FORBIDDEN', 'a read-only session cannot revoke; present the admin client certificate'), pathOf(request));
      }
      return viewer;
    }

    scope.get('/certs/:serial/revoke', async (request, reply) => {
      const viewer = await adminFor(request);
      parse(noQuery, request.query);
      const record = await certOf(request);
      await audited(viewer, 'ui.view', pathOf(request));
      return send(reply, page(frame(viewer, 'Revoke certificate', '/ui/certs'), revokeConfirmBody(record, csrf.tokenFor(viewer))));
    });

    scope.post('/certs/:serial/revoke', async (request, reply) => {
      const viewer = await adminFor(request);
      const caller: Caller = { spiffeId: viewer.spiffeId, peer: viewer.peer };
      let reason: (typeof REVOCATION_REASONS)[number];
      let serial: string;
      try {
        csrf.check(request, viewer, formField(request.body, 'csrf'));
        serial = parse(serialParam, request.params).serial;
        const given = formField(request.body, 'reason') ?? '';
        if (!(REVOCATION_REASONS as readonly string[]).includes(given)) throw new TlsmeshError('ERR_BAD_REQUEST', `invalid request: reason: not a revocation reason (${given.slice(0, 40)})`);
        reason = given as (typeof REVOCATION_REASONS)[number];
      } catch (error) {
        throw await authority.auditRefusal('ui.revoke', caller, error, pathOf(request));
      }
      // The API's own path: stored, audited (action revoke), CRL republished before it returns.
      const [revoked] = await authority.revoke({ serial, reason }, caller);
      const target = new URLSearchParams({ q: revoked?.spiffeId ?? '', revoked: serial });
      return reply.status(303).header('location', `/ui/certs?${target.toString()}`).send();
    });

    scope.get(
      '/timeline',
      view('/ui/timeline', 'Expiry timeline', async (request) => {
        parse(noQuery, request.query);
        const { buckets, unit } = await expiryTimeline(store, horizon());
        return timelineBody(buckets, unit, authority.lifetimes.leafSeconds);
      }),
    );

    scope.get(
      '/health',
      view('/ui/health', 'Renewal health', async (request) => {
        parse(noQuery, request.query);
        return healthBody(await renewalHealth(store, authority.clock()));
      }),
    );

    scope.get(
      '/revocations',
      view('/ui/revocations', 'Recent revocations', async (request) => {
        parse(noQuery, request.query);
        return revocationsBody(await store.listAudit({ action: 'revoke', outcome: 'ok', newestFirst: true, limit: 100 }));
      }),
    );

    scope.get(
      '/audit',
      view('/ui/audit', 'Audit trail', async (request) => {
        const query = parse(auditQuery, request.query);
        const action = query.action?.trim() ?? '';
        const outcome = query.outcome as (typeof OUTCOMES)[number] | undefined;
        const rows = await store.listAudit({
          newestFirst: true,
          limit: AUDIT_PAGE_SIZE + 1,
          ...(action === '' ? {} : { action }),
          ...(outcome === undefined ? {} : { outcome }),
          ...(query.before === undefined ? {} : { beforeId: query.before }),
        });
        return auditBody({ entries: rows.slice(0, AUDIT_PAGE_SIZE), action, outcome, before: query.before, hasOlder: rows.length > AUDIT_PAGE_SIZE });
      }),
    );

    scope.get(
      '/keys',
      view('/ui/keys', 'CA keys', async (request) => {
        parse(noQuery, request.query);
        const [keys, rotation] = await Promise.all([store.listCaKeys(), rotationStatus({ store, now: authority.clock() })]);
        return keysBody(keys, rotation, authority.keyring.issuer.record.id);
      }),
    );
    done();
  };
}

function refusalTitle(status: number): string {
  if (status === 401) return 'Sign in needed';
  if (status === 403) return 'Not allowed';
  if (status === 404) return 'Not found';
  if (status >= 500) return 'Something went wrong';
  return 'Bad request';
}

/** Fastify's own errors (body too large, unsupported media type) as coded errors. */
function frameworkError(error: unknown): TlsmeshError {
  const status = (error as { statusCode?: number }).statusCode;
  if (status === 413) return new TlsmeshError('ERR_BODY_TOO_LARGE', 'the form is larger than the limit', { cause: error });
  if (status !== undefined && status >= 400 && status < 500) return new TlsmeshError('ERR_BAD_REQUEST', `invalid request: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  return new TlsmeshError('ERR_INTERNAL', 'internal error while rendering the page', { cause: error });
}
