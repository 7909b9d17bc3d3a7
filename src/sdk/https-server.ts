/**
 * An HTTPS server that takes only mutual TLS: a client certificate from the trust bundle, with an
 * allowed SPIFFE ID. Certificates, bundle and CRL swap live; connections made under an older
 * identity (or older than the maximum age) answer their next request with `Connection: close`,
 * so clients move to a fresh handshake without a failed request.
 */
import { createServer, type Server, type ServerOptions } from 'node:https';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { IdentitySource } from './identity-source.js';
import { requestRefusalBody } from './refusal.js';
import { createServerGuard, type MtlsServerOptions, type ServerGuard } from './server-guard.js';

/** node:http server settings that are not about TLS (those come from the identity). */
export type HttpServerSettings = Pick<
  ServerOptions,
  'keepAlive' | 'keepAliveTimeout' | 'requestTimeout' | 'headersTimeout' | 'maxHeaderSize' | 'noDelay' | 'connectionsCheckingInterval' | 'joinDuplicateHeaders'
>;

export interface MtlsHttpsServerOptions extends MtlsServerOptions {
  http?: HttpServerSettings;
}

/**
 * @example
 * const server = createMtlsHttpsServer(source, { allow: { trustDomain: 'example.org' } }, expressApp);
 * server.listen(8443);
 */
export function createMtlsHttpsServer(source: IdentitySource, options: MtlsHttpsServerOptions = {}, handler?: RequestListener): Server {
  const guard = createServerGuard(source, options);
  const server = createServer({ ...options.http, ...guard.initialOptions });
  guard.attach(server);
  refuseRevokedRequests(server, guard);
  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    if (guard.shouldRecycle(request.socket as TLSSocket)) response.setHeader('connection', 'close');
  });
  if (handler) server.on('request', handler);
  return server;
}

/**
 * Every request on a connection whose client was revoked after it connected is answered 403
 * (ERR_CERT_REVOKED) and the connection closed, before any listener runs: also those the
 * application adds after this function returns (`server.on('request', app)`), which is why this
 * sits on `emit` rather than being one more listener. The same holds for every other way node:http
 * hands a request over: 'checkContinue' and 'checkExpectation' (answered 403 too), and 'upgrade'
 * and 'connect' (the socket is closed: there is no response object to answer with).
 */
function refuseRevokedRequests(server: Server, guard: ServerGuard): void {
  const emit = server.emit.bind(server) as (event: string | symbol, ...args: unknown[]) => boolean;
  server.emit = ((event: string | symbol, ...args: unknown[]): boolean => {
    if (event === 'request' || event === 'checkContinue' || event === 'checkExpectation') {
      const [request, response] = args as [IncomingMessage, ServerResponse];
      const refusal = guard.checkRequest(request.socket as TLSSocket);
      if (refusal) {
        const body = requestRefusalBody(refusal);
        response.writeHead(403, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close' });
        response.end(body);
        return true;
      }
    } else if (event === 'upgrade' || event === 'connect') {
      const [request, socket] = args as [IncomingMessage, Duplex];
      if (guard.checkRequest(request.socket as TLSSocket)) {
        socket.destroy();
        return true;
      }
    }
    return emit(event, ...args);
  }) as typeof server.emit;
}
