/**
 * Who called: the SPIFFE ID (and certificate facts) of the verified client on a connection,
 * recorded when the server accepts the handshake and found again from whatever a framework hands
 * a handler (a request, a stream, a socket, Fastify's request).
 */
import { TLSSocket } from 'node:tls';
import { parseSpiffeId } from '../pki/index.js';
import { peerSpiffeId } from './spiffe-matcher.js';

export interface PeerIdentity {
  spiffeId: string;
  trustDomain: string;
  /** '' or starting with '/'. */
  path: string;
  /** Lowercase hex. */
  serial: string;
  notAfter: Date;
}

// Keyed by TLS socket, and by http2 session (whose `.socket` is a proxy, a different object).
const verifiedPeers = new WeakMap<object, PeerIdentity>();

/** Records what the server verified for this connection (called by the tlsmesh servers). */
export function recordPeer(connection: TLSSocket | object, peer: PeerIdentity): void {
  verifiedPeers.set(connection, peer);
}

/** The peer facts of a socket whose chain TLS verified, or null. */
export function verifiedPeerOf(socket: TLSSocket): PeerIdentity | null {
  if (!socket.authorized) return null;
  const certificate = socket.getPeerCertificate();
  const found = peerSpiffeId(certificate);
  if (!('id' in found)) return null;
  try {
    const id = parseSpiffeId(found.id);
    return { spiffeId: id.uri, trustDomain: id.trustDomain, path: id.path, serial: certificate.serialNumber.toLowerCase(), notAfter: new Date(certificate.valid_to) };
  } catch {
    return null;
  }
}

/** Anything a handler may hold that leads to the TLS socket. */
export type PeerCarrier =
  | TLSSocket
  | { socket?: unknown; raw?: unknown; session?: unknown; stream?: unknown }
  | null
  | undefined;

function find(value: unknown, depth: number): PeerIdentity | null | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const recorded = verifiedPeers.get(value);
  if (recorded) return recorded;
  if (value instanceof TLSSocket) return verifiedPeerOf(value);
  if (depth > 4) return undefined;
  const carrier = value as { socket?: unknown; raw?: unknown; session?: unknown; stream?: unknown };
  // node:http request → .socket; Fastify request → .raw; http2 stream → .session;
  // http2 compat request → .stream.
  for (const next of [carrier.raw, carrier.stream, carrier.session, carrier.socket]) {
    const found = find(next, depth + 1);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * The caller's verified identity, from a request (node:http/https, http2 compat, Express,
 * Fastify), an http2 stream or session, or a TLS socket; null when the connection has no verified
 * client certificate with one SPIFFE ID.
 *
 * @example
 * createMtlsHttpsServer(source, {}, (req, res) => res.end(`hello ${peerIdentity(req)?.spiffeId}`));
 */
export function peerIdentity(carrier: PeerCarrier): PeerIdentity | null {
  return find(carrier, 0) ?? null;
}
