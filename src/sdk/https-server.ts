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
  guardRequests(server, guard);
  if (handler) server.on('request', handler);
  return server;
}

/**
 * Before any listener runs — also those the application adds after this function returns
 * (`server.on('request', app)`), which is why this sits on `emit` rather than being one more
 * listener:
 *
 * - every request on a connection whose client was revoked after it connected is answered 403
 *   (ERR_CERT_REVOKED) and the connection closed. The same holds for every other way node:http
 *   hands a request over: 'checkContinue' and 'checkExpectation' (answered 403 too), and 'upgrade'
 *   and 'connect' (the socket is closed: there is no response object to answer with);
 * - a request on a connection made under an older identity, or past its maximum age, is answered
 *   with `Connection: close`.
 *
 * Every request passes here, so it stays cheap: no rest parameters or spread on the request path,
 * and no second 'request' listener (node:events copies the listener array on every emit when
 * there are several).
 */
function guardRequests(server: Server, guard: ServerGuard): void {
  const emit = server.emit.bind(server) as (event: string | symbol, ...args: unknown[]) => boolean;
  server.emit = function guardedEmit(event: string | symbol, first?: unknown, second?: unknown): boolean {
    if (event === 'request' || event === 'checkContinue' || event === 'checkExpectation') {
      const [request, response] = [first as IncomingMessage, second as ServerResponse];
      const socket = request.socket as TLSSocket;
      const refusal = guard.checkRequest(socket);
      if (refusal) {
        const body = requestRefusalBody(refusal);
        response.writeHead(403, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close' });
        response.end(body);
        return true;
      }
      if (guard.shouldRecycle(socket)) response.setHeader('connection', 'close');
      return emit(event, request, response);
    }
    if (event === 'upgrade' || event === 'connect') {
      const [request, socket] = [first as IncomingMessage, second as Duplex];
      if (guard.checkRequest(request.socket as TLSSocket)) {
        socket.destroy();
        return true;
      }
    }
    // Other events keep every argument they came with.
    // eslint-disable-next-line prefer-rest-params
    return Reflect.apply(emit, server, arguments) as boolean;
  } as typeof server.emit;
}
