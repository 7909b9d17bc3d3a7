/**
 * Authorization by the caller's SPIFFE ID, per server (the `allow` option of the servers, checked
 * at the handshake) and per route (here). A caller without a verified certificate gets 401
 * ERR_CLIENT_CERT_REQUIRED; a verified caller not on the list gets 403 ERR_FORBIDDEN; both with
 * the JSON error shape of the CA API. The reason names the caller, never the allow-list.
 */
import type { FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import { ERROR_REGISTRY } from '../errors.js';
import { peerIdentity, type PeerCarrier, type PeerIdentity } from './peer.js';
import { spiffeMatcher, type CompiledMatcher, type SpiffeMatchers } from './spiffe-matcher.js';
import { sdkMetrics, type SdkMetrics } from '../observe/metrics.js';

export type AuthzDecision =
  | { allowed: true; peer: PeerIdentity }
  | { allowed: false; status: 401 | 403; code: 'ERR_CLIENT_CERT_REQUIRED' | 'ERR_FORBIDDEN'; reason: string };

/**
 * Decides whether the caller on this request/stream/socket may proceed.
 *
 * @example
 * const decision = authorizePeer(req, { trustDomain: 'example.org' });
 * if (!decision.allowed) return res.writeHead(decision.status).end(denialBody(decision));
 */
export function authorizePeer(carrier: PeerCarrier, allow: SpiffeMatchers | CompiledMatcher): AuthzDecision {
  const matcher = typeof allow === 'function' ? allow : spiffeMatcher(allow);
  const peer = peerIdentity(carrier);
  if (!peer) {
    return { allowed: false, status: ERROR_REGISTRY.ERR_CLIENT_CERT_REQUIRED.status, code: 'ERR_CLIENT_CERT_REQUIRED', reason: 'no verified client certificate with a SPIFFE ID on this connection' };
  }
  if (!matcher(peer.spiffeId)) {
    return { allowed: false, status: ERROR_REGISTRY.ERR_FORBIDDEN.status, code: 'ERR_FORBIDDEN', reason: `${peer.spiffeId} is not allowed to call this route` };
  }
  return { allowed: true, peer };
}

/** The JSON body of a refusal. */
export const denialBody = (decision: Extract<AuthzDecision, { allowed: false }>): string =>
  JSON.stringify({ error: { code: decision.code, message: decision.reason } });

export interface AuthzOptions {
  /** Where denials are counted (`tlsmesh_authz_denied_total`; default: `sdkMetrics()`). */
  metrics?: SdkMetrics;
}

/** What the Express/Connect middleware needs of a response (node:http and http2 compat both fit). */
interface ResponseLike {
  statusCode: number;
  setHeader(name: string, value: string): unknown;
  end(body: string): unknown;
}

/**
 * Express (or Connect, or plain node:http) middleware allowing only the given callers.
 *
 * @example
 * app.get('/invoices', requirePeer({ pathPrefix: 'spiffe://example.org/billing' }), listInvoices);
 */
export function requirePeer(allow: SpiffeMatchers, options: AuthzOptions = {}): (request: PeerCarrier, response: ResponseLike, next: (error?: unknown) => void) => void {
  const matcher = spiffeMatcher(allow);
  const metrics = options.metrics ?? sdkMetrics();
  return (request, response, next) => {
    const decision = authorizePeer(request, matcher);
    if (decision.allowed) {
      next();
      return;
    }
    metrics.deniedCalls.inc({ transport: 'https' });
    response.statusCode = decision.status;
    response.setHeader('content-type', 'application/json');
    response.end(denialBody(decision));
  };
}

/**
 * A Fastify `onRequest` hook allowing only the given callers; put it on a route
 * (`{ onRequest: fastifyRequirePeer(…) }`) or on the whole app (`app.addHook('onRequest', …)`).
 *
 * @example
 * app.post('/refunds', { onRequest: fastifyRequirePeer('spiffe://example.org/billing/api') }, refund);
 */
export function fastifyRequirePeer(allow: SpiffeMatchers, options: AuthzOptions = {}): (request: FastifyRequest, reply: FastifyReply) => Promise<void> {
  const matcher = spiffeMatcher(allow);
  const metrics = options.metrics ?? sdkMetrics();
  return async (request, reply) => {
    const decision = authorizePeer(request, matcher);
    if (decision.allowed) return;
    metrics.deniedCalls.inc({ transport: 'https' });
    await reply.code(decision.status).type('application/json').send(denialBody(decision));
  };
}

export interface TlsmeshFastifyOptions {
  /** Callers allowed on every route of the app (narrow further per route with `fastifyRequirePeer`). */
  allow: SpiffeMatchers;
}

/**
 * A Fastify plugin that applies `allow` to every route of the app it is registered on (it is not
 * encapsulated, like a fastify-plugin plugin).
 *
 * @example
 * await app.register(tlsmeshFastify, { allow: { trustDomain: 'example.org' } });
 */
export const tlsmeshFastify: FastifyPluginCallback<TlsmeshFastifyOptions> = Object.assign(
  (app: Parameters<FastifyPluginCallback<TlsmeshFastifyOptions>>[0], options: TlsmeshFastifyOptions, done: (error?: Error) => void) => {
    app.addHook('onRequest', fastifyRequirePeer(options.allow));
    done();
  },
  // What fastify-plugin sets: the hook applies to the parent scope, not only inside the plugin.
  { [Symbol.for('skip-override')]: true, [Symbol.for('fastify.display-name')]: 'tlsmesh' },
);
