/**
 * The load side of the SDK benchmark: one client per protocol and variant on reused connections
 * (an undici Agent for HTTP/1.1, one HTTP/2 session, one gRPC channel), and a loop that keeps a
 * fixed number of requests in flight. Each variant's client is written the way its server is:
 * plaintext; node:tls options by hand (the client's chain, key and bundle, and a check of the
 * server's SPIFFE ID, since Node's default check fails on URI-only certificates); the tlsmesh SDK.
 * Every answer must be 200 (gRPC OK) with the body `ok`, or the phase fails.
 */
import { connect as http2Connect, type ClientHttp2Session } from 'node:http2';
import type { PeerCertificate } from 'node:tls';
import { Client as GrpcClient, credentials as grpcCredentials } from '@grpc/grpc-js';
import { Agent, type Dispatcher } from 'undici';
import { createMtlsDispatcher, http2Connect as mtlsHttp2Connect, MAX_TLS_VERSION, MIN_TLS_VERSION, type StaticIdentitySource } from 'tlsmesh/sdk';
import { grpcChannelCredentials, grpcChannelOptions } from 'tlsmesh/sdk/grpc';
import { type BenchIdentity, GRPC_METHOD, KEEP_ALIVE_MS, type Protocol, RESPONSE_BODY, uriSanOf, type Variant } from './sdk-shared.js';

export interface Requester {
  /** One request; rejects unless answered 200 / OK with the expected body. */
  send(): Promise<void>;
  close(): Promise<void>;
}

export interface ClientSetup {
  /** The client workload's identity, for the hand-written clients. */
  client: BenchIdentity;
  /** The same identity as an SDK source, for the tlsmesh clients. */
  source: StaticIdentitySource;
  serverSpiffeId: string;
  /** Requests in flight at once: also the HTTP/1.1 connection count (no pipelining). */
  concurrency: number;
}

/** Hand-written server check: exactly the expected SPIFFE ID in the URI SAN. */
const handCheckServerIdentity =
  (expected: string) =>
  (_host: string, certificate: PeerCertificate): Error | undefined =>
    uriSanOf(certificate) === expected ? undefined : new Error(`server identity: expected ${expected}, got ${uriSanOf(certificate) ?? 'no single URI SAN'}`);

function handTls(setup: ClientSetup) {
  return {
    ca: setup.client.bundlePem,
    cert: setup.client.certPem,
    key: setup.client.keyPem,
    minVersion: MIN_TLS_VERSION,
    maxVersion: MAX_TLS_VERSION,
    checkServerIdentity: handCheckServerIdentity(setup.serverSpiffeId),
  } as const;
}

const unexpected = (what: string, status: unknown, body: string): Error => new Error(`${what}: answered ${String(status)} ${JSON.stringify(body.slice(0, 80))}, expected 200 "${RESPONSE_BODY}"`);

function http1Requester(variant: Variant, port: number, setup: ClientSetup): Requester {
  const pool = { connections: setup.concurrency, pipelining: 1, keepAliveTimeout: KEEP_ALIVE_MS, keepAliveMaxTimeout: KEEP_ALIVE_MS };
  let dispatcher: Dispatcher;
  if (variant === 'plaintext') dispatcher = new Agent(pool);
  else if (variant === 'node-tls') dispatcher = new Agent({ ...pool, connect: handTls(setup) });
  else dispatcher = createMtlsDispatcher(setup.source, setup.serverSpiffeId, pool);
  const origin = `${variant === 'plaintext' ? 'http' : 'https'}://127.0.0.1:${port}`;
  return {
    async send() {
      const { statusCode, body } = await dispatcher.request({ origin, path: '/', method: 'GET' });
      const text = await body.text();
      if (statusCode !== 200 || text !== RESPONSE_BODY) throw unexpected(`http1/${variant}`, statusCode, text);
    },
    close: () => dispatcher.close(),
  };
}

function http2Requester(variant: Variant, port: number, setup: ClientSetup): Requester {
  let session: ClientHttp2Session;
  if (variant === 'plaintext') session = http2Connect(`http://127.0.0.1:${port}`);
  else if (variant === 'node-tls') session = http2Connect(`https://127.0.0.1:${port}`, handTls(setup));
  else session = mtlsHttp2Connect(setup.source, `https://127.0.0.1:${port}`, setup.serverSpiffeId);
  const failures: Error[] = [];
  session.on('error', (error: Error) => failures.push(error));
  return {
    send: () =>
      new Promise<void>((resolve, reject) => {
        if (failures.length > 0) {
          reject(failures[0]!);
          return;
        }
        const stream = session.request({ ':method': 'GET', ':path': '/' }, { endStream: true });
        let status: unknown;
        let body = '';
        stream.setEncoding('utf8');
        stream.on('response', (headers) => (status = headers[':status']));
        stream.on('data', (chunk: string) => (body += chunk));
        stream.on('end', () => (status === 200 && body === RESPONSE_BODY ? resolve() : reject(unexpected(`http2/${variant}`, status, body))));
        stream.on('error', reject);
      }),
    close: () =>
      new Promise<void>((resolve) => {
        if (session.closed) resolve();
        else session.close(() => resolve());
      }),
  };
}

const passThrough = (value: Buffer): Buffer => value;
const GRPC_REQUEST = Buffer.from('hi');

function grpcRequester(variant: Variant, port: number, setup: ClientSetup): Requester {
  // The plaintext variant is the baseline the goals are measured against (issue 3's benchmark),
  // on loopback only; it is not a path the product offers.
  const credentials =
    variant === 'plaintext'
      ? grpcCredentials.createInsecure() // tlsmesh-audit-ignore grpc-js/insecure-channel-credentials: plaintext baseline of the SDK benchmark, loopback only
      : variant === 'node-tls'
        ? grpcCredentials.createSsl(Buffer.from(setup.client.bundlePem), Buffer.from(setup.client.keyPem), Buffer.from(setup.client.certPem), {
            checkServerIdentity: handCheckServerIdentity(setup.serverSpiffeId),
          })
        : grpcChannelCredentials(setup.source, { expect: setup.serverSpiffeId });
  // A channel of its own (no subchannel shared with another client): one connection per variant.
  // With TLS, a host name for SNI (an IP address there is against RFC 6066 and makes Node warn);
  // the server is checked by its SPIFFE ID, not by this name.
  const tlsName = variant === 'plaintext' ? {} : { 'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': 'localhost' };
  const client = new GrpcClient(`127.0.0.1:${port}`, credentials, { ...grpcChannelOptions(), ...tlsName });
  return {
    send: () =>
      new Promise<void>((resolve, reject) => {
        client.makeUnaryRequest(GRPC_METHOD, passThrough, passThrough, GRPC_REQUEST, (error, value) => {
          const body = value?.toString('utf8') ?? '';
          if (error) reject(error);
          else if (body !== RESPONSE_BODY) reject(unexpected(`grpc/${variant}`, 'OK', body));
          else resolve();
        });
      }),
    close: () => {
      client.close();
      return Promise.resolve();
    },
  };
}

export function createRequester(protocol: Protocol, variant: Variant, port: number, setup: ClientSetup): Requester {
  switch (protocol) {
    case 'http1':
      return http1Requester(variant, port, setup);
    case 'http2':
      return http2Requester(variant, port, setup);
    case 'grpc':
      return grpcRequester(variant, port, setup);
  }
}

export interface Measured {
  completed: number;
  elapsedMs: number;
  latenciesMs: number[];
  /** CLOCK_MONOTONIC µs (process.hrtime), to cut the server's CPU profile to this block. */
  window: { startUs: number; endUs: number };
}

export const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);

/**
 * Runs `count` operations with `concurrency` in flight (fewer if `maxMs` runs out first); each
 * operation's latency is recorded. Rejects with the first failure, after the workers stop.
 */
export async function drive(operation: () => Promise<void>, count: number, concurrency: number, maxMs: number): Promise<Measured> {
  const latenciesMs: number[] = [];
  const state: { failure: Error | null; started: number } = { failure: null, started: 0 };
  const startUs = monotonicUs();
  const start = performance.now();
  const deadline = start + maxMs;
  let lastEnd = start;
  const worker = async (): Promise<void> => {
    while (state.failure === null && state.started < count && performance.now() < deadline) {
      state.started++;
      const sent = performance.now();
      try {
        await operation();
      } catch (error) {
        state.failure ??= error instanceof Error ? error : new Error(String(error));
        return;
      }
      lastEnd = performance.now();
      latenciesMs.push(lastEnd - sent);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  if (state.failure !== null) throw state.failure;
  return { completed: latenciesMs.length, elapsedMs: lastEnd - start, latenciesMs, window: { startUs, endUs: monotonicUs() } };
}
