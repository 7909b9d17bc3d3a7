/**
 * An undici Agent for `fetch(url, { dispatcher })` to mTLS services. One connector serves every
 * connection of the dispatcher, so TLS sessions are shared and resumed; each new connection uses
 * the source's current identity and checks the server's SPIFFE ID.
 *
 * undici is an optional peer dependency: it is loaded when a dispatcher is first created, so
 * importing tlsmesh/sdk works without it.
 */
import { createRequire } from 'node:module';
import type * as Undici from 'undici';
import type { Agent } from 'undici';
import type { IdentitySource } from './identity-source.js';
import { ClientSessionCache, connectMtls } from './client-connect.js';
import { spiffeMatcher, type SpiffeMatchers } from './spiffe-matcher.js';
import type { StaleCrlPolicy } from './tls-options.js';

type UndiciAgentOptions = ConstructorParameters<typeof Agent>[0];

/** undici pool settings; `connect` is the SDK's. */
export type MtlsDispatcherOptions = Omit<NonNullable<UndiciAgentOptions>, 'connect' | 'allowH2'> & {
  /** Give up a TLS connection attempt after this long (default 10 s). */
  connectTimeoutMs?: number;
  /** TLS sessions kept for resumption (default 100). */
  maxCachedSessions?: number;
  /** When the CRL is past its nextUpdate (default `keep-last-good`; see StaleCrlPolicy). */
  staleCrl?: StaleCrlPolicy;
};

const requireOptional = createRequire(import.meta.url);

/**
 * @example
 * import { fetch } from 'undici';
 * const dispatcher = createMtlsDispatcher(source, { pathPrefix: 'spiffe://example.org/payments' });
 * const response = await fetch('https://payments.internal:8443/charge', { method: 'POST', dispatcher });
 */
export function createMtlsDispatcher(source: IdentitySource, server: SpiffeMatchers, options: MtlsDispatcherOptions = {}): Agent {
  const matcher = spiffeMatcher(server);
  const { connectTimeoutMs = 10_000, maxCachedSessions = 100, staleCrl, ...pool } = options;
  const sessions = new ClientSessionCache(maxCachedSessions);
  const { Agent: UndiciAgent } = requireOptional('undici') as typeof Undici;

  return new UndiciAgent({
    ...pool,
    connect(target, callback) {
      if (target.protocol !== 'https:') {
        callback(new TypeError(`tlsmesh dispatcher: only https:// URLs (got ${target.protocol}//${target.hostname})`), null);
        return;
      }
      // Bracketed IPv6 literals arrive as "[::1]" in hostname.
      const host = target.hostname.replace(/^\[(.*)\]$/, '$1');
      const socket = connectMtls(source, matcher, sessions, { host, port: Number(target.port || 443), servername: target.servername, ALPNProtocols: ['http/1.1'] }, {}, { staleCrl });
      let settled = false;
      const settle = (error: Error | null): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (error) callback(error, null);
        else callback(null, socket);
      };
      const timer = setTimeout(() => {
        settle(new Error(`TLS connection to ${target.hostname}:${target.port} not established within ${connectTimeoutMs} ms`));
        socket.destroy();
      }, connectTimeoutMs);
      socket.setNoDelay(true);
      socket.once('secureConnect', () => settle(null));
      socket.once('error', settle);
    },
  });
}
