/**
 * The servers of the SDK benchmark, in their own process so the load generator does not share
 * their event loop. Started by bench/sdk-process.ts as `node --import tsx bench/sdk-server.ts
 * <logFile>` with an IPC channel; drives the compiled package (`npm run bench` builds first).
 *
 * On `{type: 'start'}` (the server identity comes over IPC, never argv or disk) it starts nine
 * servers on 127.0.0.1 — HTTP/1.1, HTTP/2 and gRPC, each in plaintext, with hand-written node:tls
 * mTLS and with tlsmesh — and answers `{type: 'ready', ports}`; `{type: 'stats'}` returns what each
 * handler counted. Every handler answers `ok`. On the first request of each connection, an mTLS
 * handler reads the caller's SPIFFE ID the way its style does — tlsmesh with `peerIdentity(req)` /
 * `callerSpiffeId(call)`, hand-written code from `getPeerCertificate()` /
 * `call.getAuthContext()` — and counts it, so the bench can check that every connection was
 * authenticated as the client, while the handler stays a few bytes' worth of work. With
 * `callerOnEveryRequest` (BENCH_SDK_CALLER=every) they read it on every request instead. Stops on
 * SIGTERM or when the parent goes away (IPC disconnect), with process.exit so `--cpu-prof` writes.
 */
import { once } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import {
  createSecureServer as createHttp2SecureServer,
  createServer as createHttp2Server,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type Http2Session,
} from 'node:http2';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Server as NetServer } from 'node:net';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import { type sendUnaryData, Server as GrpcServer, ServerCredentials, type ServerUnaryCall } from '@grpc/grpc-js';
import { pino } from 'pino';
// The compiled package (dist/, built by `npm run bench`): the code an application imports.
import { createLogger, type Logger } from 'tlsmesh';
import { createMtlsHttp2Server, createMtlsHttpsServer, MAX_TLS_VERSION, MIN_TLS_VERSION, peerIdentity, staticIdentity, TLS_CIPHERS } from 'tlsmesh/sdk';
import { callerSpiffeId, grpcServerCredentials, grpcServerOptions } from 'tlsmesh/sdk/grpc';
import {
  type BenchIdentity,
  type FromServer,
  GRPC_METHOD,
  KEEP_ALIVE_MS,
  PROTOCOLS,
  RESPONSE_BODY,
  type ServerCounters,
  type ServerKey,
  serverKey,
  type ToServer,
  uriSanOf,
  VARIANTS,
} from './sdk-shared.js';

const BODY = Buffer.from(RESPONSE_BODY);
const HEADERS = { 'content-type': 'text/plain', 'content-length': String(BODY.length) };
const STRANGERS_KEPT = 5;

const counters = Object.fromEntries(
  PROTOCOLS.flatMap((protocol) =>
    VARIANTS.map((variant) => [serverKey(protocol, variant), { requests: 0, authenticated: 0, connections: 0, strangers: [], handshakes: 0, refusals: 0, tls: [] }]),
  ),
) as unknown as Record<ServerKey, ServerCounters>;

let expectedClient = '';
let callerOnEveryRequest = false;

/**
 * Counts a request, and a connection when it is the first on it. `caller`: what the handler read
 * (null: plaintext, nobody to authenticate; absent: not read on this request).
 */
function tally(key: ServerKey, first: boolean, caller?: string | null): void {
  const counter: ServerCounters = counters[key];
  counter.requests++;
  if (first) counter.connections++;
  if (caller === null || (caller === undefined && !first)) return;
  if (caller !== expectedClient) {
    if (counter.strangers.length < STRANGERS_KEPT) counter.strangers.push(String(caller));
  } else if (first) counter.authenticated++;
}

function noteTls(key: ServerKey, socket: TLSSocket): void {
  const seen = `${socket.getProtocol() ?? '?'} ${socket.getCipher()?.name ?? '?'}`;
  if (!counters[key].tls.includes(seen)) counters[key].tls.push(seen);
}

/** Counts completed TLS handshakes (a listener added after the server's own: tlsmesh's guard has installed its by then). */
function countHandshakes<T extends TlsServer>(key: ServerKey, server: T): T {
  server.on('secureConnection', () => counters[key].handshakes++);
  return server;
}

// ---- HTTP/1.1 and HTTP/2 handlers -----------------------------------------------------------------

type AnyRequest = IncomingMessage | Http2ServerRequest;
type AnyResponse = ServerResponse | Http2ServerResponse;

/** The object a request's connection is known by: the socket (HTTP/1.1) or the session (HTTP/2). */
const connectionOf = (request: AnyRequest): object => ('stream' in request ? request.stream.session! : request.socket);
/** The TLS socket under a request (for HTTP/2, `session.socket` is a proxy that forwards getters). */
const tlsSocketOf = (request: AnyRequest): TLSSocket => ('stream' in request ? (request.stream.session as Http2Session).socket : request.socket) as TLSSocket;

function httpHandler(key: ServerKey, variant: (typeof VARIANTS)[number]): (request: AnyRequest, response: AnyResponse) => void {
  const seen = new WeakSet<object>();
  return (request, response) => {
    const connection = connectionOf(request);
    const first = !seen.has(connection);
    if (first) seen.add(connection);
    if (variant === 'plaintext') tally(key, first, null);
    else if (first || callerOnEveryRequest) {
      const socket = tlsSocketOf(request);
      if (first) noteTls(key, socket);
      tally(key, first, variant === 'tlsmesh' ? (peerIdentity(request)?.spiffeId ?? '(none)') : (uriSanOf(socket.getPeerCertificate()) ?? '(none)'));
    } else tally(key, false);
    response.writeHead(200, HEADERS);
    response.end(BODY);
  };
}

// ---- gRPC ------------------------------------------------------------------------------------------

const passThrough = (value: Buffer): Buffer => value;
const grpcService = {
  Echo: {
    path: GRPC_METHOD,
    requestStream: false,
    responseStream: false,
    requestSerialize: passThrough,
    requestDeserialize: passThrough,
    responseSerialize: passThrough,
    responseDeserialize: passThrough,
  },
};

function grpcHandler(key: ServerKey, variant: (typeof VARIANTS)[number]) {
  const peers = new Set<string>();
  return (call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>): void => {
    // A connection is known by its peer address while it is open (these stay open throughout).
    const peer = call.getPeer();
    const first = !peers.has(peer);
    if (first) peers.add(peer);
    if (variant === 'plaintext') tally(key, first, null);
    else if (first || callerOnEveryRequest) {
      tally(key, first, variant === 'tlsmesh' ? (callerSpiffeId(call) ?? '(none)') : (uriSanOf(call.getAuthContext().sslPeerCertificate) ?? '(none)'));
    } else tally(key, false);
    callback(null, BODY);
  };
}

async function startGrpc(key: ServerKey, variant: (typeof VARIANTS)[number], credentials: ServerCredentials, options: object = {}): Promise<number> {
  const server = new GrpcServer(options);
  server.addService(grpcService, { Echo: grpcHandler(key, variant) });
  return new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', credentials, (error, port) => (error ? reject(error) : resolve(port))));
}

// ---- Start -----------------------------------------------------------------------------------------

async function listen(server: NetServer): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

async function startAll(identity: BenchIdentity, logger: Logger): Promise<Record<ServerKey, number>> {
  const source = staticIdentity({ certPem: identity.certPem, keyPem: identity.keyPem, bundlePem: identity.bundlePem }, { logger });
  // Hand-written mutual TLS with the settings tlsmesh uses: same chain, key, trust anchors,
  // versions and suites; the client certificate requested and required.
  const handTls = {
    key: identity.keyPem,
    cert: identity.certPem,
    ca: identity.bundlePem,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: MIN_TLS_VERSION,
    maxVersion: MAX_TLS_VERSION,
    ciphers: TLS_CIPHERS,
    honorCipherOrder: true,
  } as const;
  const http = { keepAliveTimeout: KEEP_ALIVE_MS };
  const on = (protocol: (typeof PROTOCOLS)[number], variant: (typeof VARIANTS)[number]) => httpHandler(serverKey(protocol, variant), variant);

  const refused = (key: ServerKey) => () => counters[key].refusals++;

  return {
    // tlsmesh-audit-ignore node/plaintext-server: plaintext baseline of the SDK benchmark, 127.0.0.1 only
    'http1/plaintext': await listen(createHttpServer(http, on('http1', 'plaintext'))),
    'http1/node-tls': await listen(countHandshakes('http1/node-tls', createHttpsServer({ ...handTls, ...http }, on('http1', 'node-tls')))),
    'http1/tlsmesh': await listen(countHandshakes('http1/tlsmesh', createMtlsHttpsServer(source, { logger, http, onRefusal: refused('http1/tlsmesh') }, on('http1', 'tlsmesh')))),
    // tlsmesh-audit-ignore node/plaintext-server: plaintext baseline of the SDK benchmark, 127.0.0.1 only
    'http2/plaintext': await listen(createHttp2Server({}, on('http2', 'plaintext'))),
    'http2/node-tls': await listen(countHandshakes('http2/node-tls', createHttp2SecureServer({ ...handTls, allowHTTP1: false }, on('http2', 'node-tls')))),
    'http2/tlsmesh': await listen(countHandshakes('http2/tlsmesh', createMtlsHttp2Server(source, { logger, onRefusal: refused('http2/tlsmesh') }, on('http2', 'tlsmesh')))),
    // Baseline for the ratio goals, on loopback only; not a path the product offers.
    // tlsmesh-audit-ignore grpc-js/insecure-server-credentials: plaintext baseline of the SDK benchmark, 127.0.0.1 only
    'grpc/plaintext': await startGrpc('grpc/plaintext', 'plaintext', ServerCredentials.createInsecure()),
    'grpc/node-tls': await startGrpc(
      'grpc/node-tls',
      'node-tls',
      ServerCredentials.createSsl(Buffer.from(identity.bundlePem), [{ cert_chain: Buffer.from(identity.certPem), private_key: Buffer.from(identity.keyPem) }], true),
    ),
    'grpc/tlsmesh': await startGrpc('grpc/tlsmesh', 'tlsmesh', grpcServerCredentials(source), grpcServerOptions(source)),
  };
}

function main(): void {
  const [logFile] = process.argv.slice(2);
  if (logFile === undefined || process.send === undefined) throw new TypeError('usage: sdk-server.ts LOG_FILE (with an IPC channel)');
  const destination = pino.destination({ dest: logFile, sync: false });
  const logger = createLogger({ component: 'sdk-bench', destination });
  const send = (message: FromServer): void => {
    process.send?.(message);
  };

  process.on('message', (message: ToServer) => {
    if (message.type === 'stats') {
      const { user, system } = process.cpuUsage();
      send({ id: message.id, type: 'stats', stats: { servers: counters, cpuUs: user + system } });
      return;
    }
    expectedClient = message.clientSpiffeId;
    callerOnEveryRequest = message.callerOnEveryRequest;
    startAll(message.server, logger).then(
      (ports) => send({ id: message.id, type: 'ready', ports }),
      (error: unknown) => send({ id: message.id, type: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
    );
  });

  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    try {
      destination.flushSync();
    } catch {
      // Only log lines are at stake; the exit (and the CPU profile) matter more.
    }
    // process.exit (not a signal death) so that `--cpu-prof` writes its profile; the OS closes the sockets.
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('disconnect', stop);
}

main();
