/**
 * The one place TLS settings are decided, for every transport. Servers get their whole option
 * set from `serverTlsOptions` and pass all of it to `setSecureContext` on every update (it resets
 * whatever it is not given: a CRL left out that way once let a revoked client in). Clients get a
 * SecureContext built once per identity and shared by every connection.
 */
import { randomBytes } from 'node:crypto';
import { createSecureContext, type ConnectionOptions, type SecureContext, type SecureContextOptions, type TlsOptions } from 'node:tls';
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

/** What both ends share: versions, suites, the trust anchors, the CRL and our own chain and key. */
function contextOptions(identity: Identity): SecureContextOptions {
  return {
    key: identity.keyPem,
    cert: identity.certPem,
    ca: identity.bundlePem,
    ...(identity.crlPem !== undefined ? { crl: identity.crlPem } : {}),
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
export function serverTlsOptions(identity: Identity, ticketKeys: Buffer): ServerTlsOptions {
  if (!Buffer.isBuffer(ticketKeys) || ticketKeys.length !== 48) throw new TypeError('ticketKeys must be a 48-byte Buffer');
  return {
    ...contextOptions(identity),
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
 * trust bundle or CRL changes, because a resumed session is not checked again: a client revoked
 * after getting a ticket could otherwise keep resuming.
 */
export class TicketKeys {
  #trust: string | undefined;
  #keys = randomBytes(48);

  /** The keys to use with this identity (new ones if its trust material differs from the last). */
  for(identity: Identity): Buffer {
    const trust = `${identity.bundlePem}\0${identity.crlPem ?? ''}`;
    if (this.#trust !== undefined && this.#trust !== trust) this.#keys = randomBytes(48);
    this.#trust = trust;
    return this.#keys;
  }
}

// One context per identity, built on first use: never per connection (that costs ~2x client CPU
// and defeats session reuse).
const clientContexts = new WeakMap<Identity, SecureContext>();

/** The client-side SecureContext for an identity, built once. */
export function clientSecureContext(identity: Identity): SecureContext {
  let context = clientContexts.get(identity);
  if (!context) {
    context = createSecureContext(contextOptions(identity));
    clientContexts.set(identity, context);
  }
  return context;
}

/**
 * Options for `tls.connect` (and what wraps it): the identity's context and the server check.
 *
 * @example tls.connect({ host, port, ...clientTlsOptions(source.current(), spiffeMatcher('spiffe://example.org/api')) });
 */
export function clientTlsOptions(identity: Identity, matcher: CompiledMatcher): ConnectionOptions & { secureContext: SecureContext } {
  return {
    secureContext: clientSecureContext(identity),
    checkServerIdentity: checkServerSpiffeId(matcher),
    rejectUnauthorized: true,
    minVersion: MIN_TLS_VERSION,
    maxVersion: MAX_TLS_VERSION,
  };
}
