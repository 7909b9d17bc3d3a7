/**
 * Permissive mode over real sockets on 127.0.0.1, with certificates from the real test CA: one
 * port serving mTLS and plaintext; plaintext and unauthenticated callers served but counted and
 * logged with their address; verified callers still checked against `allow`; a first byte that
 * is neither TLS nor HTTP, or none at all, closes the connection; the server's identity rotates.
 */
import { once } from 'node:events';
import { Agent as HttpAgent, get as httpGet, type IncomingMessage, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { IdentityMaterial } from '../../src/sdk/identity.js';
import { MtlsHttpsAgent } from '../../src/sdk/https-agent.js';
import { createMtlsHttpsServer } from '../../src/sdk/https-server.js';
import { peerIdentity } from '../../src/sdk/peer.js';
import {
  createPermissiveHttpsServer,
  permissiveCaller,
  type InsecureCaller,
  type PermissiveHttpsServer,
  type PermissiveHttpsServerOptions,
} from '../../src/sdk/permissive-server.js';
import { staticIdentity, type StaticIdentitySource } from '../../src/sdk/sources/static.js';
import { startTestCa, type TestCa } from '../helpers/ca.js';
import { opensslSelfSigned, runAsync } from '../helpers/openssl.js';
import { capturedLogger, closeServer, getVia, listen, materialFor, pemFiles, portOf, withDeadline, type LogLine } from './support.js';

const SERVER_ID = 'spiffe://example.org/api';
const CLIENT_ID = 'spiffe://example.org/web';

let ca: TestCa;
let serverSource: StaticIdentitySource;
let client: IdentityMaterial;
let clientSource: StaticIdentitySource;
const opened: PermissiveHttpsServer[] = [];

beforeAll(async () => {
  ca = await startTestCa();
  serverSource = staticIdentity(await materialFor(ca, SERVER_ID, { ipAddresses: ['127.0.0.1'] }));
  client = await materialFor(ca, CLIENT_ID);
  clientSource = staticIdentity(client);
});
afterEach(async () => {
  for (const server of opened.splice(0)) await shut(server);
});
afterAll(async () => {
  await ca.close();
});

interface Answer {
  caller: string | null;
  mode: string | null;
  reason: string | null;
}

/** Answers who the server thinks called: the verified SPIFFE ID and the permissive mode. */
const whoAmI = (request: IncomingMessage, response: ServerResponse): void => {
  const caller = permissiveCaller(request);
  const answer: Answer = { caller: peerIdentity(request)?.spiffeId ?? null, mode: caller?.mode ?? null, reason: caller?.reason ?? null };
  response.setHeader('content-type', 'application/json');
  response.end(JSON.stringify(answer));
};

interface Served {
  server: PermissiveHttpsServer;
  port: number;
  url: string;
  log: ReturnType<typeof capturedLogger>;
  insecure: InsecureCaller[];
  handled: number;
}

async function serve(options: PermissiveHttpsServerOptions = {}, source: StaticIdentitySource = serverSource): Promise<Served> {
  const log = capturedLogger();
  const served = { insecure: [] as InsecureCaller[], handled: 0 };
  const server = createPermissiveHttpsServer(source, { ...options, logger: log.logger, onInsecureCaller: (caller) => served.insecure.push(caller) }, (request, response) => {
    served.handled += 1;
    whoAmI(request, response);
  });
  opened.push(server);
  const url = await listen(server);
  return { ...served, server, port: portOf(url), url, log, get handled() { return served.handled; } };
}

async function shut(server: PermissiveHttpsServer): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  await withDeadline(closed, 10_000, 'server close');
}

/** A plaintext GET; the client's local port is what the server logs as the peer's. */
function plainGet(port: number, options: { agent?: HttpAgent; localAddress?: string } = {}): Promise<{ status: number; answer: Answer; localPort: number }> {
  return new Promise((resolve, reject) => {
    const req = httpGet({ host: '127.0.0.1', port, path: '/who?token=secret', agent: options.agent ?? false, ...(options.localAddress ? { localAddress: options.localAddress } : {}) }, (res) => {
      const localPort = res.socket.localPort ?? 0;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, answer: JSON.parse(body) as Answer, localPort }));
    });
    req.on('error', reject);
  });
}

/** An HTTPS GET trusting the test CA, with the given client certificate (or none). */
function tlsGet(port: number, material: { certPem?: string; keyPem?: string }): Promise<{ status: number; answer: Answer; localPort: number; serverSerial: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: '127.0.0.1', port, path: '/who', ca: ca.bundlePem, agent: false, ...(material.certPem ? { cert: material.certPem, key: material.keyPem } : {}) },
      (res) => {
        const socket = res.socket as TLSSocket;
        const localPort = socket.localPort ?? 0;
        const serverSerial = String(socket.getPeerCertificate().serialNumber).toLowerCase();
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, answer: JSON.parse(body) as Answer, localPort, serverSerial }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Sends raw bytes (or nothing) over TCP; resolves with what came back when the server closes. */
async function rawTcp(port: number, bytes: Buffer | null): Promise<{ localPort: number; received: string; ending: string }> {
  const socket = netConnect({ host: '127.0.0.1', port });
  await once(socket, 'connect');
  const localPort = socket.localPort ?? 0;
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
  let ending = 'closed';
  socket.on('error', (error: Error & { code?: string }) => (ending = `error ${error.code ?? error.message}`));
  const closed = once(socket, 'close');
  if (bytes) socket.write(bytes);
  await withDeadline(closed, 10_000, 'the server closing the connection');
  return { localPort, received, ending };
}

const warnLine = (log: Served['log'], event: string, peer: string): Promise<LogLine> => log.next((line) => line.event === event && line.peer === peer);

describe('permissive mode: explicit, and loud about it', () => {
  it('creating a permissive server logs one warning naming permissive mode and plaintext; a strict server logs none', async () => {
    const { log } = await serve();
    const warnings = log.lines.filter((line) => line.event === 'mtls.permissive_mode');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ level: 40 });
    expect(warnings[0]?.msg).toMatch(/PERMISSIVE MODE/);
    expect(warnings[0]?.msg).toMatch(/plaintext/);

    const strictLog = capturedLogger();
    const strict = createMtlsHttpsServer(serverSource, { logger: strictLog.logger });
    await listen(strict);
    await closeServer(strict);
    expect(strictLog.lines.filter((line) => line.event === 'mtls.permissive_mode')).toEqual([]);
  });

  it('bad options are a TypeError', () => {
    expect(() => createPermissiveHttpsServer(serverSource, { firstByteTimeoutMs: 0 })).toThrow(TypeError);
    expect(() => createPermissiveHttpsServer(serverSource, { maxTrackedCallers: 1.5 })).toThrow(TypeError);
  });
});

describe('plaintext callers are served, counted and logged with their address', () => {
  it('http.get: served; the handler sees no identity and mode plaintext; one warn line with the peer', async () => {
    const s = await serve();
    const { status, answer, localPort } = await plainGet(s.port);
    expect(status).toBe(200);
    expect(answer).toEqual({ caller: null, mode: 'plaintext', reason: null });
    const peer = `127.0.0.1:${localPort}`;
    expect(await warnLine(s.log, 'mtls.plaintext', peer)).toMatchObject({ level: 40, address: '127.0.0.1', mode: 'plaintext' });
    expect(s.insecure).toEqual([{ mode: 'plaintext', peer, address: '127.0.0.1' }]);
    const stats = s.server.permissiveStats;
    expect(stats).toMatchObject({ plaintext: 1, unauthenticated: 0, mtls: 0, refused: 0, dropped: 0, requests: { plaintext: 1, unauthenticated: 0, mtls: 0 } });
    expect(stats.callers.get('127.0.0.1')).toMatchObject({ plaintext: 1, unauthenticated: 0, mtls: 0 });
    // The per-request line names the path, never the query string.
    const request = await s.log.next((line) => line.event === 'mtls.insecure_request' && line.peer === peer);
    expect(request).toMatchObject({ method: 'GET', path: '/who' });
    expect(JSON.stringify(s.log.lines)).not.toContain('secret');
  });

  it('keep-alive: one connection is counted once, each of its requests counted', async () => {
    const s = await serve();
    const agent = new HttpAgent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await plainGet(s.port, { agent });
      const second = await plainGet(s.port, { agent });
      expect(second.localPort).toBe(first.localPort);
    } finally {
      agent.destroy();
    }
    expect(s.server.permissiveStats).toMatchObject({ plaintext: 1, requests: { plaintext: 2 } });
  });

  it('curl without TLS: served and counted', async () => {
    const s = await serve();
    const result = await runAsync('curl', ['-sS', '--fail', `http://127.0.0.1:${s.port}/who`]);
    expect(result.stderr).toBe('');
    expect(JSON.parse(result.stdout)).toEqual({ caller: null, mode: 'plaintext', reason: null });
    expect(await s.log.next((line) => line.event === 'mtls.plaintext')).toMatchObject({ level: 40, peer: expect.stringMatching(/^127\.0\.0\.1:\d+$/) as unknown });
    expect(s.server.permissiveStats.plaintext).toBe(1);
  });

  it('the table of callers by address is bounded: the least recently seen address is forgotten', async () => {
    const s = await serve({ maxTrackedCallers: 2 });
    for (const localAddress of ['127.0.0.2', '127.0.0.3', '127.0.0.2', '127.0.0.4']) await plainGet(s.port, { localAddress });
    const stats = s.server.permissiveStats;
    expect([...stats.callers.keys()]).toEqual(['127.0.0.2', '127.0.0.4']);
    expect(stats.callers.get('127.0.0.2')?.plaintext).toBe(2);
    expect(stats.callersEvicted).toBe(1);
    expect(stats.plaintext).toBe(4);
  });
});

describe('mutual TLS callers', () => {
  it('MtlsHttpsAgent: the handler sees the SPIFFE ID; counted as mtls, not reported as insecure', async () => {
    const s = await serve();
    const agent = new MtlsHttpsAgent(clientSource, SERVER_ID, { keepAlive: false });
    try {
      const response = await getVia(agent, `${s.url}/who`);
      expect(response.status).toBe(200);
      expect(JSON.parse(response.body)).toEqual({ caller: CLIENT_ID, mode: 'mtls', reason: null });
      expect(response.serverSerial).toBe(serverSource.current().serial);
    } finally {
      agent.destroy();
    }
    expect(s.server.permissiveStats).toMatchObject({ mtls: 1, plaintext: 0, unauthenticated: 0, requests: { mtls: 1 } });
    expect(s.server.permissiveStats.callers.get('127.0.0.1')).toMatchObject({ mtls: 1 });
    expect(s.insecure).toEqual([]);
    expect(s.log.lines.filter((line) => line.event === 'mtls.plaintext' || line.event === 'mtls.unauthenticated')).toEqual([]);
  });

  it('curl --cert: the handler sees the SPIFFE ID', async () => {
    const s = await serve();
    const files = pemFiles({ 'cert.pem': client.certPem, 'key.pem': client.keyPem, 'bundle.pem': client.bundlePem });
    try {
      const result = await runAsync('curl', ['-sS', '--fail', '--cacert', files.path('bundle.pem'), '--cert', files.path('cert.pem'), '--key', files.path('key.pem'), `${s.url}/who`]);
      expect(result.stderr).toBe('');
      expect(JSON.parse(result.stdout)).toEqual({ caller: CLIENT_ID, mode: 'mtls', reason: null });
    } finally {
      files.cleanup();
    }
    expect(s.server.permissiveStats.mtls).toBe(1);
  });

  it('a verified client not on the allow-list is refused as in strict mode, and logged', async () => {
    const s = await serve({ allow: { pathPrefix: 'spiffe://example.org/admin' } });
    const outcome = await new Promise<string>((resolve) => {
      const socket = tlsConnect({ host: '127.0.0.1', port: s.port, ca: ca.bundlePem, cert: client.certPem, key: client.keyPem, checkServerIdentity: () => undefined });
      let data = '';
      socket.once('secureConnect', () => socket.write('GET /who HTTP/1.1\r\nHost: x\r\n\r\n'));
      socket.on('data', (chunk: Buffer) => (data += chunk.toString('utf8')));
      socket.once('error', (error: Error & { code?: string }) => resolve(`error ${error.code ?? error.message}`));
      socket.once('close', () => resolve(data === '' ? 'closed without an answer' : `answered ${data.slice(0, 20)}`));
    });
    expect(outcome).not.toMatch(/^answered/);
    const line = await s.log.next((l) => l.event === 'mtls.refused');
    expect(line).toMatchObject({ level: 40, reason: 'identity-not-allowed', spiffe_id: CLIENT_ID, peer: expect.stringMatching(/^127\.0\.0\.1:\d+$/) as unknown });
    expect(s.server.permissiveStats).toMatchObject({ refused: 1, mtls: 0, unauthenticated: 0 });
    expect(s.handled).toBe(0);
    expect(s.insecure).toEqual([]);
    // The same port still serves plaintext: the point of the mode.
    expect((await plainGet(s.port)).answer.mode).toBe('plaintext');
  });
});

describe('TLS callers without a valid certificate are served as unauthenticated', () => {
  it('no client certificate: served, no identity, counted and logged with the peer', async () => {
    const s = await serve();
    const { status, answer, localPort } = await tlsGet(s.port, {});
    expect(status).toBe(200);
    expect(answer).toEqual({ caller: null, mode: 'unauthenticated', reason: 'no-certificate' });
    const peer = `127.0.0.1:${localPort}`;
    expect(await warnLine(s.log, 'mtls.unauthenticated', peer)).toMatchObject({ level: 40, reason: 'no-certificate', address: '127.0.0.1' });
    expect(s.insecure).toMatchObject([{ mode: 'unauthenticated', peer, reason: 'no-certificate' }]);
    expect(s.server.permissiveStats).toMatchObject({ unauthenticated: 1, mtls: 0, plaintext: 0, requests: { unauthenticated: 1 } });
  });

  it('a certificate from another CA naming an allowed ID: served, but never authenticated as that ID', async () => {
    const s = await serve();
    const { status, answer, localPort } = await tlsGet(s.port, opensslSelfSigned(CLIENT_ID));
    expect(status).toBe(200);
    expect(answer).toEqual({ caller: null, mode: 'unauthenticated', reason: 'unknown-ca' });
    const line = await warnLine(s.log, 'mtls.unauthenticated', `127.0.0.1:${localPort}`);
    expect(line).toMatchObject({ level: 40, reason: 'unknown-ca', unverifiedSpiffeId: CLIENT_ID });
    expect(s.server.permissiveStats).toMatchObject({ unauthenticated: 1, mtls: 0 });
    expect(s.server.permissiveStats.callers.get('127.0.0.1')).toMatchObject({ unauthenticated: 1, mtls: 0 });
  });
});

describe('connections that are neither TLS nor HTTP, or silent, are closed', () => {
  it('a first byte that starts neither a TLS handshake nor an HTTP method closes the connection, logged', async () => {
    const s = await serve();
    for (const bytes of [Buffer.from([0x00, 0x01, 0x02]), Buffer.from('get / HTTP/1.1\r\n\r\n')]) {
      const { localPort, received } = await rawTcp(s.port, bytes);
      expect(received).toBe('');
      expect(await warnLine(s.log, 'mtls.dropped', `127.0.0.1:${localPort}`)).toMatchObject({ level: 40, reason: 'not-tls-or-http' });
    }
    expect(s.server.permissiveStats).toMatchObject({ dropped: 2, plaintext: 0, unauthenticated: 0, mtls: 0 });
    expect(s.handled).toBe(0);
  });

  it('a client that never sends a byte is closed after the first-byte timeout', async () => {
    const s = await serve({ firstByteTimeoutMs: 200 });
    const { localPort, received } = await rawTcp(s.port, null);
    expect(received).toBe('');
    expect(await warnLine(s.log, 'mtls.dropped', `127.0.0.1:${localPort}`)).toMatchObject({ level: 40, reason: 'first-byte-timeout' });
    expect(s.server.permissiveStats.dropped).toBe(1);
  });

  it('close() ends silent and idle keep-alive connections instead of waiting for them', async () => {
    // Both would otherwise stay open far beyond the 10 s this test waits.
    const s = await serve({ firstByteTimeoutMs: 120_000, http: { keepAliveTimeout: 120_000 } });
    opened.splice(opened.indexOf(s.server), 1);
    const silent = netConnect({ host: '127.0.0.1', port: s.port });
    silent.on('error', () => undefined);
    await once(silent, 'connect');
    const agent = new HttpAgent({ keepAlive: true });
    try {
      await plainGet(s.port, { agent }); // leaves an idle keep-alive connection
      const silentClosed = once(silent, 'close');
      await withDeadline(new Promise<void>((resolve) => s.server.close(() => resolve())), 10_000, 'close without closeAllConnections');
      await withDeadline(silentClosed, 10_000, 'the silent connection closing');
    } finally {
      agent.destroy();
      silent.destroy();
    }
  });
});

describe('rotation applies to the TLS side', () => {
  it('after the source is updated, new TLS connections (mTLS and unauthenticated) see the new serial', async () => {
    const source = staticIdentity(await materialFor(ca, SERVER_ID, { ipAddresses: ['127.0.0.1'] }));
    const s = await serve({}, source);
    const viaAgent = async (): Promise<string | null> => {
      const agent = new MtlsHttpsAgent(clientSource, SERVER_ID, { keepAlive: false }); // a new agent: no session to resume
      try {
        const response = await getVia(agent, `${s.url}/who`);
        expect(JSON.parse(response.body)).toMatchObject({ caller: CLIENT_ID, mode: 'mtls' });
        return response.serverSerial;
      } finally {
        agent.destroy();
      }
    };
    const before = source.current().serial;
    expect(await viaAgent()).toBe(before);
    const next = source.update(await materialFor(ca, SERVER_ID, { ipAddresses: ['127.0.0.1'] }));
    expect(next.serial).not.toBe(before);
    await s.log.next((line) => line.event === 'mtls.identity_updated' && line.serial === next.serial);
    expect(await viaAgent()).toBe(next.serial);
    expect((await tlsGet(s.port, {})).serverSerial).toBe(next.serial);
  });
});
