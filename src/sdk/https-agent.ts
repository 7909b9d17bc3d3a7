/**
 * An https.Agent for calling mTLS services: every new connection uses the source's current
 * identity and accepts only a server whose SPIFFE ID the matcher allows. TLS sessions are resumed
 * from the agent's own cache (never across identities), and a keep-alive socket opened with an
 * identity that has since been replaced is closed after its current request instead of being
 * reused, so the server sees the new certificate on the next connection.
 */
import type { AgentOptions as HttpAgentOptions, ClientRequestArgs } from 'node:http';
import { Agent } from 'node:https';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { IdentitySource } from './identity-source.js';
import { ClientSessionCache, connectMtls, connectionStillGood } from './client-connect.js';
import { spiffeMatcher, type CompiledMatcher, type SpiffeMatchers } from './spiffe-matcher.js';
import type { RevocationOptions, StaleCrlPolicy } from './tls-options.js';

/** Pool settings (keep-alive is on by default); TLS settings come from the identity source. */
export type MtlsAgentOptions = Pick<HttpAgentOptions, 'keepAlive' | 'keepAliveMsecs' | 'maxSockets' | 'maxTotalSockets' | 'maxFreeSockets' | 'scheduling' | 'timeout'> & {
  /** TLS sessions kept for resumption (default 100). */
  maxCachedSessions?: number;
  /** When the CRL is past its nextUpdate (default `keep-last-good`; see StaleCrlPolicy). */
  staleCrl?: StaleCrlPolicy;
};

/**
 * @example
 * const agent = new MtlsHttpsAgent(source, 'spiffe://example.org/api');
 * https.get('https://api.internal:8443/status', { agent }, onResponse);
 */
export class MtlsHttpsAgent extends Agent {
  readonly #source: IdentitySource;
  readonly #matcher: CompiledMatcher;
  readonly #sessions: ClientSessionCache;
  readonly #revocation: RevocationOptions;

  constructor(source: IdentitySource, server: SpiffeMatchers, options: MtlsAgentOptions = {}) {
    const { maxCachedSessions, staleCrl, ...pool } = options;
    // rejectUnauthorized here wins over any per-request option (the agent's options are merged last).
    super({ keepAlive: true, ...pool, rejectUnauthorized: true });
    this.#source = source;
    this.#matcher = spiffeMatcher(server);
    this.#sessions = new ClientSessionCache(maxCachedSessions ?? 100);
    this.#revocation = { staleCrl };
    // Runs before the agent's own 'free' handler, which hands a freed socket straight to a queued
    // request (never asking keepSocketAlive): a socket opened with a replaced identity is closed
    // here instead, and the agent opens a new one for the queued request when it closes.
    this.prependListener('free', (socket: Duplex) => {
      if (!connectionStillGood(socket as TLSSocket, this.#source.current())) socket.destroy();
    });
  }

  override createConnection(options: ClientRequestArgs): Duplex {
    const { host, hostname, port, servername, localAddress, family, lookup, timeout } = options as ClientRequestArgs & { servername?: string };
    return connectMtls(
      this.#source,
      this.#matcher,
      this.#sessions,
      { host: hostname ?? host ?? 'localhost', port: Number(port ?? 443), servername, ALPNProtocols: ['http/1.1'] },
      {
        ...(localAddress !== undefined ? { localAddress } : {}),
        ...(family !== undefined ? { family } : {}),
        ...(lookup !== undefined ? { lookup } : {}),
        ...(timeout !== undefined ? { timeout } : {}),
      },
      this.#revocation,
    );
  }
}
