/**
 * Who is on the other end of a CA request. The CA's TLS listener requests a client certificate but
 * lets the handshake finish without one (enrolment and the bundle are for callers that have none
 * yet); every route that needs a caller certificate goes through `requirePeerCertificate`, which
 * refuses unless OpenSSL verified the chain against the bundle (`socket.authorized`).
 */
import type { TLSSocket } from 'node:tls';
import type { FastifyRequest } from 'fastify';
import { TlsmeshError } from '../../errors.js';

export function peerAddress(request: FastifyRequest): string | null {
  return request.raw.socket.remoteAddress ?? null;
}

/** The DER of a client certificate that TLS verified; throws ERR_CLIENT_CERT_REQUIRED / _REJECTED. */
export function requirePeerCertificate(request: FastifyRequest): Buffer {
  const socket = request.raw.socket as TLSSocket;
  const certificate = typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate(false) : undefined;
  if (!certificate || !certificate.raw) {
    throw new TlsmeshError('ERR_CLIENT_CERT_REQUIRED', 'this route needs a client certificate issued by this CA (mutual TLS)');
  }
  if (!socket.authorized) {
    const reason = socket.authorizationError instanceof Error ? socket.authorizationError.message : String(socket.authorizationError);
    throw new TlsmeshError('ERR_CLIENT_CERT_REJECTED', `the client certificate did not verify: ${reason}`);
  }
  return certificate.raw;
}
