/**
 * The one place TLS settings are decided, for every transport. Servers get their whole option
 * set from `serverTlsOptions` and pass all of it to `setSecureContext` on every update (it resets
 * whatever it is not given: a CRL left out that way once let a revoked client in). Clients get a
 * SecureContext built once per identity and shared by every connection.
 */
import { randomBytes } from 'node:crypto';
import { createSecureContext, type ConnectionOptions, type PeerCertificate, type SecureContext, type SecureContextOptions, type TlsOptions } from 'node:tls';
import { TlsmeshError } from '../errors.js';
import type { Identity } from './identity.js';
import { checkServerSpiffeId, type CompiledMatcher } from './spiffe-matcher.js';

export const MIN_TLS_VERSION = 'TLSv1.2';
export const MAX_TLS_VERSION = 'TLSv1.3';

/**
 * TLS 1.3 suites, then TLS 1.2 with ECDHE and AEAD only (forward secrecy, no CBC): what Go's
 * crypto/tls, curl and OpenSSL all offer, and nothing a scanner would flag.
 */
export const TLS_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/** Seconds a TLS session (ticket) may be resumed. */
export const SESSION_TIMEOUT_SECONDS = 300;

/**
 * What to do once the CRL is past its nextUpdate and no newer one has arrived. OpenSSL refuses
 * every handshake with an expired CRL, which turns a CA outage into a fleet outage.
 *
 * - `keep-last-good` (default): OpenSSL stops checking the stale CRL, the transports keep
 *   refusing every serial it lists, and an error is logged (`crl.stale`) until a new one arrives.
 *   Certificates revoked after the CA became unreachable are not known to be revoked: the price
 *   of staying up. Short leaf lifetimes bound it.
 * - `fail-closed`: every peer is refused (`crl-unusable`) until a fresh CRL arrives.
 */
export type StaleCrlPolicy = 'keep-last-good' | 'fail-closed';

export interface RevocationOptions {
  staleCrl?: StaleCrlPolicy | undefined;
  /** Current time in ms (default Date.now): when the CRL counts as stale. */
  clock?: (() => number) | undefined;
}

/** Does OpenSSL get the CRL? Always while it is fresh; once stale, only when failing closed. */
export function crlForOpenSsl(identity: Identity, now: number, policy: StaleCrlPolicy = 'keep-last-good'): boolean {
  return identity.crlPem !== undefined && (!identity.crlStale(now) || policy === 'fail-closed');
}

/** What both ends share: versions, suites, the trust anchors, the CRL and our own chain and key. */
function contextOptions(identity: Identity, withCrl: boolean): SecureContextOptions {
  return {
    key: identity.keyPem,
    cert: identity.certPem,
    ca: identity.bundlePem,
    // A list, one CRL per entry: Node reads only the first CRL of a single text (identity.ts).
    ...(withCrl && identity.crlList.length > 0 ? { crl: [...identity.crlList] } : {}),
    minVersion: MIN_TLS_VERSION,
    maxVersion: MAX_TLS_VERSION,
    ciphers: TLS_CIPHERS,
  };
}

export type ServerTlsOptions = TlsOptions & { requestCert: true; rejectUnauthorized: boolean; ticketKeys: Buffer };

/**
 * The full server option set: for `tls/https/http2.createServer` and, unchanged, for every
 * `setSecureContext`. The client certificate is requested and required (`rejectUnauthorized`);
 * the tlsmesh servers set it to false only to verify in JavaScript and log why they refuse.
 *
 * @example
 * const keys = new TicketKeys();
 * const server = tls.createServer(serverTlsOptions(source.current(), keys.for(source.current())));
 * source.subscribe((identity) => server.setSecureContext(serverTlsOptions(identity, keys.for(identity))));
 */
export function serverTlsOptions(identity: Identity, ticketKeys: Buffer, revocation: RevocationOptions = {}): ServerTlsOptions {
  if (!Buffer.isBuffer(ticketKeys) || ticketKeys.length !== 48) throw new TypeError('ticketKeys must be a 48-byte Buffer');
  return {
    ...contextOptions(identity, crlForOpenSsl(identity, (revocation.clock ?? Date.now)(), revocation.staleCrl)),
    honorCipherOrder: true,
    ticketKeys,
    sessionTimeout: SESSION_TIMEOUT_SECONDS,
    requestCert: true,
    rejectUnauthorized: true,
  };
}

/**
 * Session ticket keys for one server. They survive a new leaf (fixed keys: otherwise every
 * `setSecureContext` would void all tickets and force full handshakes), and change whenever the
 * trust bundle changes, because OpenSSL does not verify a resumed session again: a client whose
 * CA was dropped could otherwise keep resuming.
 *
 * The same holds for a client revoked after it got a ticket. By default the keys change with the
 * CRL too. The tlsmesh servers check every connection's serial against the CRL themselves,
 * resumed or not, and pass `{ revocationCheckedPerConnection: true }` so that a revocation does
 * not cost every other client its session.
 */
export class TicketKeys {
  #trust: string | undefined;
  #keys = randomBytes(48);
  readonly #includeCrl: boolean;

  constructor(options: { revocationCheckedPerConnection?: boolean } = {}) {
    this.#includeCrl = options.revocationCheckedPerConnection !== true;
  }

  /** The keys to use with this identity (new ones if its trust material differs from the last). */
  for(identity: Identity): Buffer {
    const trust = this.#includeCrl ? `${identity.bundlePem}\0${identity.crlPem ?? ''}` : identity.bundlePem;
    if (this.#trust !== undefined && this.#trust !== trust) this.#keys = randomBytes(48);
    this.#trust = trust;
    return this.#keys;
  }
}

// One context per identity (two once its CRL goes stale: with and without it), built on first
// use: never per connection (that costs ~2x client CPU and defeats session reuse).
const clientContexts = new WeakMap<Identity, { withCrl?: SecureContext; withoutCrl?: SecureContext }>();

/** The client-side SecureContext for an identity, built once. */
export function clientSecureContext(identity: Identity, revocation: RevocationOptions = {}): SecureContext {
  const withCrl = crlForOpenSsl(identity, (revocation.clock ?? Date.now)(), revocation.staleCrl);
  let contexts = clientContexts.get(identity);
  if (!contexts) clientContexts.set(identity, (contexts = {}));
  const key = withCrl ? 'withCrl' : 'withoutCrl';
  return (contexts[key] ??= createSecureContext(contextOptions(identity, withCrl)));
}

/**
 * The server check every tlsmesh client runs: the SPIFFE ID matches, and the certificate is not
 * in the identity's CRL (OpenSSL checks the CRL too while it is fresh; this also covers a stale
 * one kept under `keep-last-good`, and refuses everything under `fail-closed`).
 */
export function checkServer(identity: Identity, matcher: CompiledMatcher, revocation: RevocationOptions = {}): (host: string, certificate: PeerCertificate) => Error | undefined {
  const checkId = checkServerSpiffeId(matcher);
  return (host, certificate) => {
    const wrongId = checkId(host, certificate);
    if (wrongId) return wrongId;
    if (identity.isRevoked(certificate.serialNumber)) {
      return new TlsmeshError('ERR_CERT_REVOKED', `the server certificate (serial ${certificate.serialNumber.toLowerCase()}) is revoked`);
    }
    if (revocation.staleCrl === 'fail-closed' && identity.crlStale((revocation.clock ?? Date.now)())) {
      return new TlsmeshError('ERR_CRL_STALE', `the CRL expired at ${identity.crlNextUpdate!.toISOString()} and no newer one has arrived (staleCrl: fail-closed)`);
    }
    return undefined;
  };
}

/**
 * Options for `tls.connect` (and what wraps it): the identity's context and the server check.
 *
 * @example tls.connect({ host, port, ...clientTlsOptions(source.current(), spiffeMatcher('spiffe://example.org/api')) });
 */
export function clientTlsOptions(identity: Identity, matcher: CompiledMatcher, revocation: RevocationOptions = {}): ConnectionOptions & { secureContext: SecureContext } {
  return {
    secureContext: clientSecureContext(identity, revocation),
    checkServerIdentity: checkServer(identity, matcher, revocation),
    rejectUnauthorized: true,
    minVersion: MIN_TLS_VERSION,
    maxVersion: MAX_TLS_VERSION,
  };
}
