/**
 * What the SDK benchmark's load generator (bench/sdk.ts) and its server child (bench/sdk-server.ts)
 * agree on: the servers, the messages on the IPC channel, and the few bytes every handler answers.
 */
import type { PeerCertificate } from 'node:tls';

export const PROTOCOLS = ['http1', 'http2', 'grpc'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

/**
 * The same tiny server three ways: no TLS; node:https / node:http2 / grpc-js with mTLS written by
 * hand (requestCert, the same chain, key, bundle, versions and suites); the tlsmesh SDK.
 */
export const VARIANTS = ['plaintext', 'node-tls', 'tlsmesh'] as const;
export type Variant = (typeof VARIANTS)[number];

export type ServerKey = `${Protocol}/${Variant}`;
export const serverKey = (protocol: Protocol, variant: Variant): ServerKey => `${protocol}/${variant}`;

/** Every handler answers these bytes (HTTP 200, gRPC OK). */
export const RESPONSE_BODY = 'ok';
/** A unary method with raw bytes in and out: no protobuf code on either side. */
export const GRPC_METHOD = '/tlsmesh.bench.Bench/Echo';
/** Longer than any pause between the rounds, so kept-alive connections survive the whole phase. */
export const KEEP_ALIVE_MS = 300_000;

/** PEM material of one workload, from the bench CA. */
export interface BenchIdentity {
  spiffeId: string;
  /** Leaf, then intermediate. */
  certPem: string;
  keyPem: string;
  bundlePem: string;
}

/** What one server saw (counted in its handler; connections by distinct socket, session or gRPC peer). */
export interface ServerCounters {
  requests: number;
  connections: number;
  /** Connections whose first request's handler saw the expected client SPIFFE ID. */
  authenticated: number;
  /** Caller IDs that were not the expected one (should stay empty). */
  strangers: string[];
  /** TLS handshakes completed ('secureConnection'; node:https and node:http2 servers only). */
  handshakes: number;
  /** Connections the tlsmesh server refused (its onRefusal). */
  refusals: number;
  /** Distinct "protocol cipher" pairs negotiated (HTTP servers; recorded once per connection). */
  tls: string[];
}

export interface ServerStats {
  servers: Record<ServerKey, ServerCounters>;
  /** The child's CPU time so far (user + system), µs. */
  cpuUs: number;
}

export type ToServer =
  | {
      id: number;
      type: 'start';
      server: BenchIdentity;
      clientSpiffeId: string;
      /** mTLS handlers read the caller's SPIFFE ID on every request, not only on a connection's first. */
      callerOnEveryRequest: boolean;
    }
  | { id: number; type: 'stats' };

export type FromServer =
  | { id: number; type: 'ready'; ports: Record<ServerKey, number> }
  | { id: number; type: 'stats'; stats: ServerStats }
  | { id: number; type: 'error'; message: string };

/**
 * The URI SAN of a certificate, the way hand-written code reads it (`URI:spiffe://…` in Node's
 * `subjectaltname`); undefined unless there is exactly one.
 */
export function uriSanOf(certificate: Pick<PeerCertificate, 'subjectaltname'> | undefined): string | undefined {
  const uris = (certificate?.subjectaltname ?? '')
    .split(', ')
    .filter((entry) => entry.startsWith('URI:'))
    .map((entry) => entry.slice('URI:'.length));
  return uris.length === 1 ? uris[0] : undefined;
}
