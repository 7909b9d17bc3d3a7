/**
 * An HTTP/2 client session to an mTLS service: the source's current identity, the server's
 * SPIFFE ID checked, TLS sessions resumed from a cache shared by every `http2Connect` of the same
 * source (keyed by destination and server matcher, never reused across identities).
 */
import { connect, type ClientHttp2Session, type ClientSessionOptions } from 'node:http2';
import type { IdentitySource } from './identity-source.js';
import { ClientSessionCache, connectMtls } from './client-connect.js';
import { spiffeMatcher, type SpiffeMatchers } from './spiffe-matcher.js';
import type { StaleCrlPolicy } from './tls-options.js';

const cachesBySource = new WeakMap<IdentitySource, ClientSessionCache>();

function cacheFor(source: IdentitySource): ClientSessionCache {
  let cache = cachesBySource.get(source);
  if (!cache) cachesBySource.set(source, (cache = new ClientSessionCache()));
  return cache;
}

/** http2 session settings; the connection itself is made by the SDK. */
export type MtlsHttp2Options = Omit<ClientSessionOptions, 'createConnection' | 'protocol'> & {
  /** When the CRL is past its nextUpdate (default `keep-last-good`; see StaleCrlPolicy). */
  staleCrl?: StaleCrlPolicy;
};

/**
 * @example
 * const session = http2Connect(source, 'https://api.internal:8443', 'spiffe://example.org/api');
 * const stream = session.request({ ':path': '/status' });
 */
export function http2Connect(source: IdentitySource, authority: string | URL, server: SpiffeMatchers, options: MtlsHttp2Options = {}): ClientHttp2Session {
  const url = new URL(authority);
  if (url.protocol !== 'https:') throw new TypeError(`http2Connect: only https:// URLs (got ${url.protocol})`);
  const matcher = spiffeMatcher(server);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = Number(url.port || 443);
  const { staleCrl, ...sessionOptions } = options;
  return connect(url, {
    ...sessionOptions,
    createConnection: () => connectMtls(source, matcher, cacheFor(source), { host, port, ALPNProtocols: ['h2'] }, {}, { staleCrl }),
  });
}
