/**
 * grpc-js server and channel credentials that speak only mutual TLS, verify the peer against the
 * trust bundle of an identity source, and follow that source's rotations live.
 *
 * @example
 * const server = new Server({ ...grpcServerOptions(source), interceptors: [grpcAuthzInterceptor(policy)] });
 * server.bindAsync('0.0.0.0:8443', grpcServerCredentials(source), callback);
 * const client = new HealthClient('api.internal:8443', grpcChannelCredentials(source, { expect: 'spiffe://example.org/api' }), grpcChannelOptions());
 */
import { X509Certificate } from 'node:crypto';
import { type ChannelCredentials, type ChannelOptions, experimental, type ServerCredentials } from '@grpc/grpc-js';
import { TLSSocket, type PeerCertificate, type SecureContextOptions } from 'node:tls';
import { TlsmeshError } from '../../errors.js';
import { MAX_TLS_VERSION, MIN_TLS_VERSION, TLS_CIPHERS } from '../tls-options.js';
import { type GrpcIdentitySource, IdentityCertificateProvider } from './provider.js';
import { grpcRevocationInterceptor, type GrpcRevocationOptions } from './revocation.js';
import { checkServerSpiffeId, spiffeMatcher, type SpiffeMatchers } from '../spiffe-matcher.js';

export interface GrpcCredentialsOptions extends GrpcRevocationOptions {
  /** Hears about an identity source that failed to give an identity; the previous one stays in use. */
  onError?: (error: unknown) => void;
}

/**
 * Server credentials that require a client certificate chaining to the source's bundle (no
 * plaintext, no anonymous TLS) and present the source's current leaf; a rotation applies to the
 * next handshake, open connections keep going (recycle them with `grpcServerOptions`).
 *
 * Revocation: grpc-js's certificate-provider path hands only CA, leaf and key to
 * `setSecureContext` (which resets every other option), so OpenSSL never sees the CRL here.
 * Instead every call is checked: these credentials carry an interceptor that ends any call from a
 * client whose serial is in the source's current CRL with PERMISSION_DENIED, on new and
 * long-open connections alike, before any other interceptor or handler runs.
 */
export function grpcServerCredentials(source: GrpcIdentitySource, options: GrpcCredentialsOptions = {}): ServerCredentials {
  const provider = new IdentityCertificateProvider(source, options);
  // grpc-js 1.14 declares (caProvider, identityProvider, requireClientCertificate) but its
  // implementation passes the first argument on as the *identity* provider and the second as the
  // CA provider (test/sdk/grpc-provider-order.test.ts pins this). One provider serving both roles
  // is right whichever order a future release settles on. `true` makes the server reject a
  // client without a certificate that verifies against the bundle (rejectUnauthorized).
  const credentials = experimental.createCertificateProviderServerCredentials(provider, provider, true);
  return withSdkTlsSettings(experimental.createServerCredentialsWithInterceptors(credentials, [grpcRevocationInterceptor(source, options)]));
}

/** grpc-js's watcher of secure-context updates (not exported by name). */
type SecureContextWatcher = Parameters<ServerCredentials['_addWatcher']>[0];

/** What the SDK's other servers get from tls-options.ts: TLS 1.2–1.3, ECDHE + AEAD suites only, our order. */
const SDK_TLS_SETTINGS = { minVersion: MIN_TLS_VERSION, maxVersion: MAX_TLS_VERSION, ciphers: TLS_CIPHERS, honorCipherOrder: true } as const;

/**
 * grpc-js builds the server's TLS context from CA, leaf and key alone, so Node's default suites
 * (with CBC-SHA ones) and versions would apply, and its every `setSecureContext` resets whatever
 * else was set. The context options grpc-js reads, first and on each update, are given the SDK's
 * settings here (through `_getSecureContextOptions` / `_addWatcher`, grpc-js's typed seam between
 * a server and its credentials); test/probe/tlsmesh.test.ts fails if weak suites come back.
 */
function withSdkTlsSettings(credentials: ServerCredentials): ServerCredentials {
  const harden = (options: SecureContextOptions | null): SecureContextOptions | null => (options === null ? null : { ...options, ...SDK_TLS_SETTINGS });
  const getOptions = credentials._getSecureContextOptions.bind(credentials);
  const addWatcher = credentials._addWatcher.bind(credentials);
  const removeWatcher = credentials._removeWatcher.bind(credentials);
  const wrapped = new Map<SecureContextWatcher, SecureContextWatcher>();
  credentials._getSecureContextOptions = () => harden(getOptions());
  credentials._addWatcher = (watcher: SecureContextWatcher) => {
    const hardened: SecureContextWatcher = (options) => watcher(harden(options));
    wrapped.set(watcher, hardened);
    addWatcher(hardened);
  };
  credentials._removeWatcher = (watcher: SecureContextWatcher) => {
    removeWatcher(wrapped.get(watcher) ?? watcher);
    wrapped.delete(watcher);
  };
  return credentials;
}

export interface GrpcChannelCredentialsOptions extends GrpcCredentialsOptions {
  /** The server's SPIFFE ID (a string is exact), or `{ trustDomain }` / `{ pathPrefix }` rules, or a list. */
  expect: SpiffeMatchers;
}

/**
 * Channel credentials presenting the source's current leaf and accepting only a server whose
 * certificate chains to the bundle and carries an expected SPIFFE ID (the host name is not used).
 *
 * Rotation goes through a certificate provider rather than new credentials per update: the
 * channel (and every client built on it) stays the same object, and each new connection takes
 * the latest leaf and bundle. grpc-js builds a SecureContext per connection on this path; for
 * gRPC that is one per long-lived HTTP/2 connection, not per call, so it costs nothing that shows.
 */
export function grpcChannelCredentials(source: GrpcIdentitySource, options: GrpcChannelCredentialsOptions): ChannelCredentials {
  const checkId = checkServerSpiffeId(spiffeMatcher(options.expect));
  // OpenSSL gets no CRL on this path either (see grpcServerCredentials): the serial is checked here.
  const checkServerIdentity = (host: string, certificate: PeerCertificate): Error | undefined =>
    checkId(host, certificate) ??
    (source.current().isRevoked?.(certificate.serialNumber) === true
      ? new TlsmeshError('ERR_CERT_REVOKED', `the server certificate (serial ${certificate.serialNumber.toLowerCase()}) is revoked`)
      : undefined);
  const provider = new IdentityCertificateProvider(source, options.onError === undefined ? {} : { onError: options.onError });
  const credentials = experimental.createCertificateProviderChannelCredentials(provider, provider, {
    checkServerIdentity,
    rejectUnauthorized: true,
  });
  return closingRevokedConnections(credentials, source);
}

/**
 * A connection already open to a server revoked since would carry on (grpc-js offers no per-call
 * view of the server certificate): the secure connector is wrapped so each TLS socket it makes is
 * known, and closed when a new CRL lists its server. The channel reconnects, and the new
 * handshake is refused by the check above. `_createSecureConnector` is grpc-js's (typed) seam
 * between a channel and its credentials; test/sdk/revocation.test.ts fails if it stops being used.
 */
function closingRevokedConnections(credentials: ChannelCredentials, source: GrpcIdentitySource): ChannelCredentials {
  const create = credentials._createSecureConnector.bind(credentials);
  credentials._createSecureConnector = (...args: Parameters<ChannelCredentials['_createSecureConnector']>) => {
    const connector = create(...args);
    const connect = connector.connect.bind(connector);
    connector.connect = async (socket) => {
      const result = await connect(socket);
      if (result.socket instanceof TLSSocket) watchForRevocation(source, result.socket);
      return result;
    };
    return connector;
  };
  return credentials;
}

const openBySource = new WeakMap<GrpcIdentitySource, Set<TLSSocket>>();

function watchForRevocation(source: GrpcIdentitySource, socket: TLSSocket): void {
  let sockets = openBySource.get(source);
  if (!sockets) {
    const set = (sockets = new Set());
    openBySource.set(source, set);
    source.subscribe(() => {
      const identity = source.current();
      for (const open of set) {
        const serial = open.getPeerCertificate().serialNumber;
        if (serial !== undefined && identity.isRevoked?.(serial) === true) open.destroy();
      }
    });
  }
  sockets.add(socket);
  socket.once('close', () => sockets.delete(socket));
}

const DAY_MS = 24 * 3600_000;
/** grpc-js adds up to +10 % jitter, and Node runs a timer longer than 2^31-1 ms after 1 ms. */
const MAX_CONNECTION_AGE_MS = Math.floor((2 ** 31 - 1) / 1.1);

/**
 * Server options that recycle connections well before a leaf used in their handshake can expire:
 * `grpc.max_connection_age_ms` defaults to a tenth of the current leaf's lifetime (2.4 h for 24 h
 * leaves), at most a day. A connection may be opened with a leaf that is due for renewal, which
 * still has about 0.28 of its lifetime left (renewal at 2/3, jitter 1/20); a tenth, plus
 * grpc-js's ±10 % jitter, stays far below that. The grace period is left unlimited (grpc-js's
 * default) so GOAWAY never cuts an in-flight call; clients open their next connection with the
 * newest certificates. Spread these options into `new Server({ ... })`.
 */
export function grpcServerOptions(source: GrpcIdentitySource, options: { maxConnectionAgeMs?: number } = {}): ChannelOptions {
  const maxConnectionAgeMs = options.maxConnectionAgeMs ?? Math.min(Math.floor(leafLifetimeMs(source.current().certPem) / 10), DAY_MS);
  if (!Number.isSafeInteger(maxConnectionAgeMs) || maxConnectionAgeMs <= 0 || maxConnectionAgeMs > MAX_CONNECTION_AGE_MS) {
    throw new TypeError(`maxConnectionAgeMs must be an integer from 1 to ${MAX_CONNECTION_AGE_MS}`);
  }
  return { 'grpc.max_connection_age_ms': maxConnectionAgeMs };
}

/**
 * Channel options: a subchannel pool local to the channel. By default grpc-js shares one
 * connection among all channels to the same target whose credentials compare equal, so clients
 * made with one credentials object ride one connection: a service that opens N clients to spread
 * load (or a test that needs N handshakes) silently gets one connection. Spread these options into
 * the client's options.
 */
export function grpcChannelOptions(): ChannelOptions {
  return { 'grpc.use_local_subchannel_pool': 1 };
}

function leafLifetimeMs(certPem: string): number {
  const leaf = new X509Certificate(certPem);
  return Date.parse(leaf.validTo) - Date.parse(leaf.validFrom);
}
