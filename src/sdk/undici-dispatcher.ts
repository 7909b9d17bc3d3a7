/**
 * An undici Agent for `fetch(url, { dispatcher })` to mTLS services. One connector serves every
 * connection of the dispatcher, so TLS sessions are shared and resumed; each new connection uses
 * the source's current identity and checks the server's SPIFFE ID. After a new certificate, key
 * or bundle, requests move to new connections and the old ones close once their requests are done.
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

  const connect: NonNullable<UndiciAgentOptions>['connect'] = (target, callback) => {
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
  };
  return rotatingAgent(source, () => new UndiciAgent({ ...pool, connect }));
}

const FORWARDED_EVENTS = ['connect', 'disconnect', 'connectionError', 'drain'] as const;

/**
 * The Agent the caller holds hands every request to an inner Agent per client certificate. When
 * the source's certificate, key or bundle changes, later requests go to a new inner Agent (new
 * connections, the new certificate) and the previous one is closed gracefully: requests already
 * given to it finish on its connections, which are then closed. Without this an open keep-alive
 * connection would show the server the old certificate until the server's maximum connection age
 * (1 h by default). A new CRL alone changes nothing here: connectMtls closes connections to a
 * server it revokes.
 *
 * The held Agent never opens a connection itself: its `dispatch`, `close` and `destroy` act on
 * the inner Agents only (its own methods would call back into these through `this`), and their
 * connection events ('connect', 'disconnect', 'connectionError', 'drain') are emitted by it. Its
 * `stats` stay empty. After `close()`, a request fails as undici fails one on a closed Agent.
 */
function rotatingAgent(source: IdentitySource, create: () => Agent): Agent {
  const front = create();
  let current = create();
  let identity = source.current();
  const retiring = new Set<Agent>();

  const adopt = (agent: Agent): Agent => {
    // Typed per event by undici; forwarded as they come.
    const from = agent as unknown as NodeJS.EventEmitter;
    const to = front as unknown as NodeJS.EventEmitter;
    for (const event of FORWARDED_EVENTS) from.on(event, (...args: unknown[]) => to.emit(event, ...args));
    return agent;
  };
  adopt(current);

  const unsubscribe = source.subscribe((next) => {
    if (next.sameCredentialsAs(identity)) return;
    identity = next;
    const previous = current;
    current = adopt(create());
    retiring.add(previous);
    previous.close().then(
      () => retiring.delete(previous),
      () => retiring.delete(previous),
    );
  });

  const everyInner = (): Agent[] => [current, ...retiring];
  const settle = (done: Promise<unknown>, callback: unknown): Promise<void> | undefined => {
    const finished = done.then(() => undefined);
    if (typeof callback !== 'function') return finished;
    finished.then(
      () => (callback as () => void)(),
      () => (callback as () => void)(),
    );
    return undefined;
  };

  front.dispatch = (dispatchOptions, handler) => current.dispatch(dispatchOptions, handler);
  front.close = ((callback?: () => void) => {
    unsubscribe();
    return settle(Promise.all(everyInner().map((agent) => agent.close())), callback);
  }) as Agent['close'];
  front.destroy = ((...args: unknown[]) => {
    unsubscribe();
    const error = args[0] instanceof Error ? args[0] : null;
    return settle(Promise.all(everyInner().map((agent) => agent.destroy(error))), args.at(-1));
  }) as Agent['destroy'];
  return front;
}
