/**
 * The CA's HTTP API (see DESIGN.md "Protocol"). Handlers only translate: they parse the body,
 * identify the caller, call the Authority, and shape the answer. Every refusal answers
 * `{ "error": { "code", "message" } }` with the code's status, and is in the audit log.
 */
import { fastify, LogController, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import type { ServerOptions as HttpsServerOptions } from 'node:https';
import { ERROR_REGISTRY, TlsmeshError, isTlsmeshError } from '../../errors.js';
import type { Logger } from '../../observe/logger.js';
import type { CaMetrics } from '../../observe/metrics.js';
import { reasonForVerifyError, type RefusalReason } from '../../observe/tls-refusal.js';
import type { TLSSocket } from 'node:tls';
import type { CertificateRecord } from '../../store/index.js';
import { wasAudited, type Authority, type Caller, type IssuedCertificate } from '../authority.js';
import { certsQuery, enrollBody, parseBody, renewBody, revokeBody, tokenBody } from './schemas.js';
import { peerAddress, requirePeerCertificate } from './peer.js';
import type { CrlPublisher } from '../crl-publisher.js';
import type { OcspService } from '../ocsp-service.js';
import type { LiveKeyring } from '../live-keyring.js';
import { EventStreams, type WatchSource } from './event-stream.js';
import { registerRevocationRoutes } from './revocation-routes.js';
import { registerDashboard } from '../../dashboard/index.js';

export const DEFAULT_BODY_LIMIT = 64 * 1024;

export interface CaAppOptions {
  authority: Authority;
  crls: CrlPublisher;
  ocsp: OcspService;
  /** Tells bundle watchers when a rotation step changes the roots. */
  keys: LiveKeyring;
  logger: Logger;
  https: HttpsServerOptions;
  bodyLimit?: number;
  /** SPIFFE IDs allowed on admin routes; defaults to the CA's admin ID. */
  adminIds?: readonly string[];
  /** Served at GET /metrics to the callers in `metricsIds`. */
  metrics?: CaMetrics;
  /** SPIFFE IDs that may scrape /metrics; defaults to the admin IDs. */
  metricsIds?: readonly string[];
  /** The web dashboard at /ui (docs/dashboard.md); not served when absent. */
  dashboard?: { readOnlyToken: string | null; sessionSeconds: number } | undefined;
}

/** Audit action of each route, for refusals that happen before the Authority is reached. */
const ROUTE_ACTIONS: Readonly<Record<string, string>> = {
  '/v1/enroll': 'enroll',
  '/v1/renew': 'renew',
  '/v1/tokens': 'token.create',
  '/v1/certs': 'certs.list',
  '/v1/revoke': 'revoke',
  '/v1/status': 'status',
  '/metrics': 'metrics',
};

const issuedJson = (issued: IssuedCertificate): Record<string, unknown> => ({
  serial: issued.serial,
  spiffeId: issued.spiffeId,
  dnsNames: issued.dnsNames,
  ipAddresses: issued.ipAddresses,
  notBefore: issued.notBefore.toISOString(),
  notAfter: issued.notAfter.toISOString(),
  certificatePem: issued.certificatePem,
  bundlePem: issued.bundlePem,
});

const certificateJson = (record: CertificateRecord): Record<string, unknown> => ({
  serial: record.serial,
  spiffeId: record.spiffeId,
  dnsNames: record.dnsNames,
  ipAddresses: record.ipAddresses,
  kind: record.kind,
  status: record.status,
  notBefore: record.notBefore.toISOString(),
  notAfter: record.notAfter.toISOString(),
  revokedAt: record.revokedAt?.toISOString() ?? null,
  revocationReason: record.revocationReason,
  issuerKeyId: record.issuerKeyId,
  origin: record.origin,
});

/** Maps framework errors (body too large, bad JSON, wrong media type) onto the closed code set. */
function toTlsmeshError(error: unknown): TlsmeshError {
  if (isTlsmeshError(error)) return error;
  const status = (error as { statusCode?: number }).statusCode;
  const message = error instanceof Error ? error.message : String(error);
  if (status === 413) return new TlsmeshError('ERR_BODY_TOO_LARGE', 'request body is larger than the limit', { cause: error });
  if (status !== undefined && status >= 400 && status < 500) {
    return new TlsmeshError('ERR_BAD_REQUEST', `invalid request: ${message}`, { cause: error });
  }
  return new TlsmeshError('ERR_INTERNAL', 'internal error while handling the request', { cause: error });
}

/**
 * The CA finishes every handshake (enrolment needs no certificate) and refuses callers of the
 * routes that need one here: these refusals are its refused handshakes, by the same reasons the
 * SDK's servers use.
 */
function peerRefusalReason(error: TlsmeshError, request: FastifyRequest, now: Date): RefusalReason | null {
  switch (error.code) {
    case 'ERR_CLIENT_CERT_REQUIRED':
      return 'no-certificate';
    case 'ERR_CLIENT_CERT_REJECTED': {
      const socket = request.raw.socket as TLSSocket;
      if (socket.authorizationError) return reasonForVerifyError(String(socket.authorizationError));
      // TLS verified it, but by the CA's clock it is outside its validity (authority.authenticate).
      const validFrom = socket.getPeerX509Certificate()?.validFrom;
      return validFrom !== undefined && new Date(validFrom).getTime() > now.getTime() ? 'not-yet-valid' : 'expired';
    }
    case 'ERR_CERT_REVOKED':
      return 'revoked';
    case 'ERR_CERT_UNKNOWN':
      return 'unknown-ca';
    case 'ERR_FORBIDDEN':
      return 'identity-not-allowed';
    default:
      return null;
  }
}

export function buildCaApp(options: CaAppOptions): FastifyInstance {
  const { authority, logger } = options;
  const adminIds = new Set(options.adminIds ?? [authority.adminId]);
  const serverOptions: FastifyServerOptions & { https: HttpsServerOptions } = {
    https: options.https,
    bodyLimit: options.bodyLimit ?? DEFAULT_BODY_LIMIT,
    loggerInstance: logger,
    // Enrolment bodies are small; a slow client should not hold a connection for long.
    requestTimeout: 30_000,
    keepAliveTimeout: 65_000,
    return503OnClosing: true,
    // The audit log records every request that matters; per-request access lines are debug
    // output (two info lines per request cost ~10% of issuance throughput).
    logController: new LogController({ disableRequestLogging: true }),
    // Errors fastify raises before routing (a URL that is not valid percent-encoding, ...) get
    // the same coded answer as every other refusal.
    frameworkErrors: (error, _request, reply: FastifyReply) => {
      const coded = toTlsmeshError(error);
      void reply.status(coded.status).send({ error: { code: coded.code, message: coded.message } });
    },
  };
  const app = fastify(serverOptions) as unknown as FastifyInstance;

  const anonymous = (request: FastifyRequest): Caller => ({ spiffeId: null, peer: peerAddress(request) });

  /** A caller with a verified, known, unrevoked certificate; its record. */
  async function authenticated(request: FastifyRequest, action: string): Promise<{ record: CertificateRecord; caller: Caller }> {
    const der = requirePeerCertificate(request);
    const record = await authority.authenticate(der, action, peerAddress(request));
    return { record, caller: { spiffeId: record.spiffeId, peer: peerAddress(request) } };
  }

  async function admin(request: FastifyRequest, action: string): Promise<Caller> {
    const { record, caller } = await authenticated(request, action);
    if (!adminIds.has(record.spiffeId)) {
      throw await authority.auditRefusal(action, caller, new TlsmeshError('ERR_FORBIDDEN', `${record.spiffeId} is not an admin of this CA`));
    }
    return caller;
  }

  app.addHook('onResponse', (request, reply, done) => {
    if (logger.isLevelEnabled('debug')) {
      request.log.debug({ method: request.method, url: request.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime), peer: peerAddress(request) }, 'request');
    }
    done();
  });

  app.setErrorHandler(async (error, request, reply) => {
    const coded = toTlsmeshError(error);
    const refusal = peerRefusalReason(coded, request, authority.clock());
    if (refusal !== null) options.metrics?.refused('https', refusal);
    if (coded.status >= 500) request.log.error({ err: error, code: coded.code }, 'request failed');
    else request.log.info({ code: coded.code, reason: coded.message, peer: peerAddress(request) }, 'request refused');
    const action = ROUTE_ACTIONS[request.routeOptions.url ?? ''] ?? null;
    if (action !== null && !wasAudited(coded)) {
      await authority.auditRefusal(action, anonymous(request), coded).catch((auditError: unknown) => {
        request.log.error({ err: auditError }, 'could not write the audit entry for a refusal');
      });
    }
    return reply.status(coded.status).send({ error: { code: coded.code, message: coded.message } });
  });

  app.setNotFoundHandler(async (request, reply) => {
    const error = new TlsmeshError('ERR_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0] ?? ''}`);
    return reply.status(error.status).send({ error: { code: error.code, message: error.message } });
  });

  app.post('/v1/enroll', async (request) => {
    const body = parseBody(enrollBody, request.body);
    return issuedJson(await authority.enroll(body, anonymous(request)));
  });

  app.post('/v1/renew', async (request) => {
    const { record, caller } = await authenticated(request, 'renew');
    const body = parseBody(renewBody, request.body);
    return issuedJson(await authority.renew(body, record, caller));
  });

  // ?watch=1: server-sent events `bundle` with { etag, pem }, now and after each rotation step
  // that adds or retires a root (what agents follow to rewrite bundle.pem).
  app.get('/v1/bundle', async (request, reply) => {
    if ((request.query as Record<string, unknown>)['watch'] !== undefined) return streams.serve(request, reply, bundleSource);
    const { bundlePem, bundleEtag } = authority.keyring;
    void reply.header('etag', bundleEtag).header('cache-control', 'no-cache');
    if (request.headers['if-none-match'] === bundleEtag) return reply.status(304).send();
    return reply.type('application/x-pem-file').send(bundlePem);
  });

  const streams = new EventStreams(app);
  registerRevocationRoutes(app, options.crls, options.ocsp, streams);
  const bundleSource: WatchSource = {
    event: 'bundle',
    current: () => ({ etag: authority.keyring.bundleEtag, pem: authority.keyring.bundlePem }),
    subscribe: (listener) => options.keys.onChange(listener),
  };

  app.post('/v1/tokens', async (request) => {
    const caller = await admin(request, 'token.create');
    const body = parseBody(tokenBody, request.body);
    const created = await authority.createToken(body, caller);
    return { token: created.token, jti: created.jti, spiffeId: created.spiffeId, expiresAt: created.expiresAt.toISOString() };
  });

  app.get('/v1/certs', async (request) => {
    const caller = await admin(request, 'certs.list');
    const query = parseBody(certsQuery, request.query);
    const records = await authority.listCertificates(query, caller);
    return { certificates: records.map(certificateJson) };
  });

  app.post('/v1/revoke', async (request) => {
    const caller = await admin(request, 'revoke');
    const body = parseBody(revokeBody, request.body);
    const revoked = await authority.revoke(body, caller);
    return { revoked: revoked.map(certificateJson) };
  });

  app.get('/v1/status', async (request) => {
    await admin(request, 'status');
    const keys = await authority.store.listCaKeys();
    return {
      trustDomain: authority.trustDomain,
      caId: authority.caId,
      adminId: authority.adminId,
      store: authority.store.backend,
      activeIntermediate: authority.keyring.issuer.record.id,
      keys: keys.map((key) => ({
        id: key.id,
        kind: key.kind,
        state: key.state,
        notBefore: key.notBefore.toISOString(),
        notAfter: key.notAfter.toISOString(),
        offline: key.encryptedKey === null,
      })),
      lifetimes: authority.lifetimes,
    };
  });

  // Prometheus scrapes over mTLS with a certificate whose SPIFFE ID is allowed: the metrics name
  // every identity and its expiry. Refusals are audited; successful scrapes are not (every 15 s).
  const metrics = options.metrics;
  if (metrics !== undefined) {
    const scrapers = new Set(options.metricsIds ?? adminIds);
    app.get('/metrics', async (request, reply) => {
      const { record, caller } = await authenticated(request, 'metrics');
      if (!scrapers.has(record.spiffeId)) {
        throw await authority.auditRefusal('metrics', caller, new TlsmeshError('ERR_FORBIDDEN', `${record.spiffeId} may not read the metrics (metrics.allowIds in ca.yaml)`));
      }
      return reply.type(metrics.contentType).send(await metrics.exposition());
    });
  }
  if (options.dashboard) registerDashboard(app, { authority, adminIds, ...options.dashboard });

  app.get('/healthz', () => Promise.resolve({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    try {
      await authority.store.getMeta('trust_domain');
      return { status: 'ready' };
    } catch (error) {
      app.log.warn({ err: error }, 'readiness check: store unreachable');
      return reply.status(503).send({ error: { code: 'ERR_STORE', message: ERROR_REGISTRY.ERR_STORE.summary } });
    }
  });

  return app;
}
