/**
 * A secure HTTP/2 server that takes only mutual TLS (no HTTP/1 fallback, no cleartext h2c).
 * Certificates, bundle and CRL swap live; on every update, sessions opened under the previous
 * identity are closed gracefully (GOAWAY: streams in flight finish, new ones go to a new
 * connection), and so are sessions older than the maximum age.
 */
import {
  createSecureServer,
  type Http2SecureServer,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type Http2Session,
  type SecureServerOptions,
  type ServerHttp2Stream,
} from 'node:http2';
import type { TLSSocket } from 'node:tls';
import type { IdentitySource } from './identity-source.js';
import { recordPeer, peerIdentity } from './peer.js';
import { requestRefusalBody } from './refusal.js';
import { createServerGuard, type MtlsServerOptions } from './server-guard.js';

/** node:http2 settings that are not about TLS. */
export type Http2ServerSettings = Pick<SecureServerOptions, 'maxSessionMemory' | 'maxHeaderListPairs' | 'peerMaxConcurrentStreams' | 'settings' | 'paddingStrategy' | 'maxOutstandingPings'>;

export interface MtlsHttp2ServerOptions extends MtlsServerOptions {
  http2?: Http2ServerSettings;
}

/**
 * @example
 * createMtlsHttp2Server(source, {}, (req, res) => res.end(`hello ${peerIdentity(req)?.spiffeId}`)).listen(8443);
 */
export function createMtlsHttp2Server(
  source: IdentitySource,
  options: MtlsHttp2ServerOptions = {},
  onRequest?: (request: Http2ServerRequest, response: Http2ServerResponse) => void,
): Http2SecureServer {
  const guard = createServerGuard(source, options, 'http2');
  const server = createSecureServer({ ...options.http2, ...guard.initialOptions, allowHTTP1: false });
  guard.attach(server);

  const sessions = new Map<Http2Session, TLSSocket>();
  const recycle = (session: Http2Session): void => {
    if (!session.closed && !session.destroyed) session.close();
  };
  server.on('session', (session: Http2Session) => {
    const socket = guard.acceptingSocket();
    if (!socket) {
      session.destroy(); // not a connection the guard accepted: cannot happen, refuse if it does
      return;
    }
    // session.socket is a proxy, not this socket: record the peer on the session for handlers.
    const peer = peerIdentity(socket);
    if (peer) recordPeer(session, peer);
    sessions.set(session, socket);
    session.once('close', () => sessions.delete(session));
    // Past its maximum age the session is told to go away once its current streams are done.
    session.on('stream', () => {
      if (guard.shouldRecycle(socket)) recycle(session);
    });
    // A client revoked since it connected: each new stream is answered 403 (ERR_CERT_REVOKED)
    // before the application sees it, and the session is closed.
    const emit = session.emit.bind(session) as (event: string | symbol, ...args: unknown[]) => boolean;
    session.emit = ((event: string | symbol, ...args: unknown[]): boolean => {
      if (event === 'stream') {
        const refusal = guard.checkRequest(socket);
        if (refusal) {
          const stream = args[0] as ServerHttp2Stream;
          if (!stream.destroyed) {
            stream.respond({ ':status': 403, 'content-type': 'application/json' });
            stream.end(requestRefusalBody(refusal));
          }
          recycle(session);
          return true;
        }
      }
      return emit(event, ...args);
    }) as typeof session.emit;
  });
  guard.onUpdate(() => {
    for (const [session, socket] of sessions) if (guard.shouldRecycle(socket)) recycle(session);
  });
  if (onRequest) server.on('request', onRequest);
  return server;
}
