/**
 * tlsmesh/sdk: mutual TLS for node:https, node:http2 and undici/fetch servers and clients, with
 * identities that rotate themselves and authorization by SPIFFE ID.
 *
 * @example
 * const source = await fileIdentity({ dir: '/var/run/tlsmesh' });
 * createMtlsHttpsServer(source, { allow: { trustDomain: 'example.org' } }, app).listen(8443);
 * const dispatcher = createMtlsDispatcher(source, 'spiffe://example.org/payments');
 * await fetch('https://payments.internal:8443/charge', { dispatcher });
 */

// ---- Identities and where they come from ------------------------------------------------------

/**
 * A validated identity: chain, key, bundle, optional CRL, and the leaf's SPIFFE ID, serial and dates.
 * @example const identity = new Identity({ certPem, keyPem, bundlePem }); identity.spiffeId;
 */
export { Identity } from './identity.js';
/** The PEM texts an identity is made of. @example const material: IdentityMaterial = await enrollWithToken({ url, bundlePem, token }); */
export type { IdentityMaterial } from './identity.js';
/**
 * What every transport reads identities from: `current()`, `subscribe()`, `close()`.
 * @example source.subscribe((identity) => console.log('now serving', identity.serial));
 */
export type { IdentityListener, IdentitySource, SourceErrorHandler } from './identity-source.js';
/** Where sources log what they survive, and who else hears of it. @example staticIdentity(material, { logger, onError: alert }) */
export type { ReportingOptions } from './report.js';
/**
 * An identity from PEM in hand, rotated by `update()`.
 * @example const source = staticIdentity(await enrollWithToken({ url, bundlePem, token })); source.update(next);
 */
export { staticIdentity } from './sources/static.js';
export type { StaticIdentitySource } from './sources/static.js';
/**
 * An identity from cert.pem/key.pem/bundle.pem (and crl.pem) as the agent writes them, watched.
 * @example const source = await fileIdentity({ dir: '/var/run/tlsmesh' }, { onError: (e) => log.warn(e) });
 */
export { fileIdentity } from './sources/file.js';
export type { FileIdentityOptions, FileIdentitySource, IdentityFiles, ReloadResult } from './sources/file.js';
/**
 * An identity enrolled from the CA in process with a one-time token, renewing itself.
 * @example const source = await caIdentity({ url: 'https://ca.internal:8443', bundlePem, token });
 */
export { caIdentity } from './sources/ca.js';
export type { CaIdentityOptions, CaIdentitySource } from './sources/ca.js';
/**
 * When to renew (2/3 of the lifetime ± lifetime/20), and the backoff while the CA is unreachable.
 * @example renewAt(identity.notBefore, identity.notAfter, Math.random() * 2 - 1)
 */
export { DEFAULT_BACKOFF, renewAt, retryDelayMs } from './sources/renew-schedule.js';
export type { BackoffPolicy } from './sources/renew-schedule.js';
/** Injectable timers for `caIdentity` (tests drive renewal with a fake clock). @example caIdentity({ ...options, clock: fake.clock, timers: fake }) */
export type { Timers } from './sources/renewal-loop.js';

// ---- Which peers: SPIFFE ID matching -----------------------------------------------------------

/**
 * Rules for peer SPIFFE IDs (exact, trust domain, path prefix), compiled once.
 * @example spiffeMatcher([{ pathPrefix: 'spiffe://example.org/billing' }, 'spiffe://example.org/admin'])
 */
export { checkServerSpiffeId, spiffeMatcher } from './spiffe-matcher.js';
export type { CompiledMatcher, SpiffeMatcher, SpiffeMatchers } from './spiffe-matcher.js';

// ---- TLS options, for any transport ------------------------------------------------------------

/**
 * The one TLS option builder: full server sets (for every setSecureContext), client contexts
 * built once per identity, ticket keys that survive rotation.
 * @example tls.createServer(serverTlsOptions(source.current(), new TicketKeys().for(source.current())))
 */
export { checkServer, clientSecureContext, clientTlsOptions, crlForOpenSsl, MAX_TLS_VERSION, MIN_TLS_VERSION, serverTlsOptions, TicketKeys, TLS_CIPHERS } from './tls-options.js';
export type { RevocationOptions, ServerTlsOptions, StaleCrlPolicy } from './tls-options.js';

// ---- Servers -----------------------------------------------------------------------------------

/**
 * An HTTPS server that takes only mTLS clients, swaps identities live and logs every refusal.
 * @example createMtlsHttpsServer(source, { allow: { trustDomain: 'example.org' } }, expressApp).listen(8443);
 */
export { createMtlsHttpsServer } from './https-server.js';
export type { HttpServerSettings, MtlsHttpsServerOptions } from './https-server.js';
/**
 * A secure HTTP/2 server that takes only mTLS clients; sessions from before a rotation get GOAWAY.
 * @example createMtlsHttp2Server(source, {}, (req, res) => res.end('ok')).listen(8443);
 */
export { createMtlsHttp2Server } from './http2-server.js';
export type { Http2ServerSettings, MtlsHttp2ServerOptions } from './http2-server.js';
/** Options every tlsmesh server takes, and why a connection was refused. @example { allow, logger, onRefusal: (r) => metrics.inc(r.reason) } */
export { DEFAULT_MAX_CONNECTION_AGE_MS } from './server-guard.js';
export type { MtlsServerOptions } from './server-guard.js';
export type { Refusal, RefusalReason } from './refusal.js';

// ---- Clients -----------------------------------------------------------------------------------

/**
 * An https.Agent presenting the current identity and accepting only the expected server.
 * @example https.get('https://api.internal:8443/', { agent: new MtlsHttpsAgent(source, 'spiffe://example.org/api') });
 */
export { MtlsHttpsAgent } from './https-agent.js';
export type { MtlsAgentOptions } from './https-agent.js';
/**
 * An undici Agent for `fetch(url, { dispatcher })`, one shared connector with session reuse.
 * @example await fetch(url, { dispatcher: createMtlsDispatcher(source, { trustDomain: 'example.org' }) });
 */
export { createMtlsDispatcher } from './undici-dispatcher.js';
export type { MtlsDispatcherOptions } from './undici-dispatcher.js';
/**
 * An HTTP/2 client session presenting the current identity.
 * @example const session = http2Connect(source, 'https://api.internal:8443', 'spiffe://example.org/api');
 */
export { http2Connect } from './http2-client.js';
export type { MtlsHttp2Options } from './http2-client.js';

// ---- Authorization -----------------------------------------------------------------------------

/**
 * The caller's verified SPIFFE ID, from a request, stream or socket.
 * @example const caller = peerIdentity(req)?.spiffeId;
 */
export { peerIdentity } from './peer.js';
export type { PeerCarrier, PeerIdentity } from './peer.js';
/**
 * Per-route allow-lists: Express/Connect middleware, a Fastify hook and plugin, and the decision itself.
 * @example app.post('/refunds', requirePeer({ pathPrefix: 'spiffe://example.org/billing' }), refund);
 */
export { authorizePeer, denialBody, fastifyRequirePeer, requirePeer, tlsmeshFastify } from './authz.js';
export type { AuthzDecision, AuthzOptions, TlsmeshFastifyOptions } from './authz.js';

// ---- Permissive mode (migration only) ----------------------------------------------------------

/**
 * One port for mTLS and plaintext while callers migrate, counting and logging (warn, with the
 * address) every plaintext or unauthenticated caller; verified callers are still checked against
 * `allow`. Strict (`createMtlsHttpsServer`) stays the default: this is an explicit opt-in and
 * logs a warning when created.
 * @example const server = createPermissiveHttpsServer(source, { onInsecureCaller: (c) => seen.add(c.address) }, app).listen(8443); server.permissiveStats.plaintext
 */
export { createPermissiveHttpsServer, DEFAULT_FIRST_BYTE_TIMEOUT_MS, DEFAULT_MAX_TRACKED_CALLERS, permissiveCaller } from './permissive-server.js';
export type { InsecureCaller, PermissiveCaller, PermissiveHttpsServer, PermissiveHttpsServerOptions, PermissiveStats } from './permissive-server.js';
/** What the first byte of a connection says, and connection counts by caller address. @example classifyFirstByte(0x16) === 'tls' */
export { classifyFirstByte } from './permissive-callers.js';
export type { CallerCounts, CallerMode, FirstByteKind } from './permissive-callers.js';

/**
 * Prometheus metrics of the SDK's servers (refused handshakes by reason, rotations, the identity's
 * expiry, CRL age, permissive-mode plaintext callers, authorization denials): one registry per
 * process unless a server is given its own `metrics`. Serve it next to your own metrics.
 *
 * @example
 * app.get('/metrics', async (_req, res) => res.type(sdkMetrics().contentType).send(await sdkMetrics().exposition()));
 */
export { SdkMetrics, sdkMetrics } from '../observe/metrics.js';
