/**
 * Every way in that must fail, against real servers: the server refuses and logs the reason (at
 * warn, with the peer address) — plaintext, no certificate, another CA, expired, an identity not
 * allowed, TLS 1.1 — and the client refuses a server with the wrong SPIFFE ID.
 */
import { request as httpRequest } from 'node:http';
import type { Http2SecureServer } from 'node:http2';
import type { Server } from 'node:https';
import { connect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { fetch as undiciFetch } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { IdentityMaterial } from '../../src/sdk/identity.js';
import { http2Connect } from '../../src/sdk/http2-client.js';
import { createMtlsHttp2Server } from '../../src/sdk/http2-server.js';
import { MtlsHttpsAgent } from '../../src/sdk/https-agent.js';
import { createMtlsHttpsServer } from '../../src/sdk/https-server.js';
import type { Refusal, RefusalReason } from '../../src/sdk/refusal.js';
import type { MtlsServerOptions } from '../../src/sdk/server-guard.js';
import { staticIdentity, type StaticIdentitySource } from '../../src/sdk/sources/static.js';
import { createMtlsDispatcher } from '../../src/sdk/undici-dispatcher.js';
import { startTestCa, type TestCa } from '../helpers/ca.js';
import { opensslSelfSigned, runAsync } from '../helpers/openssl.js';
import { h2Get } from './h2.js';
import { capturedLogger, closeServer, DAY_MS, expiredMaterialFor, getVia, listen, materialFor, pemFiles, withDeadline, type LogLine } from './support.js';

const SERVER_ID = 'spiffe://example.org/api';
const CLIENT_ID = 'spiffe://example.org/web';

let ca: TestCa;
let serverSource: StaticIdentitySource;
let client: IdentityMaterial;
let clientSource: StaticIdentitySource;
const opened: (Server | Http2SecureServer)[] = [];

beforeAll(async () => {
  ca = await startTestCa();
  serverSource = staticIdentity(await materialFor(ca, SERVER_ID, { ipAddresses: ['127.0.0.1'] }));
  client = await materialFor(ca, CLIENT_ID);
  clientSource = staticIdentity(client);
});
afterEach(async () => {
  for (const server of opened.splice(0)) await closeServer(server);
});
afterAll(async () => {
  await ca.close();
});

interface Watched {
  url: string;
  port: number;
  /** The next refusal, and the warn line logged for it. */
  refused(): Promise<{ refusal: Refusal; line: LogLine }>;
}

async function watchedServer(kind: 'https' | 'http2', options: MtlsServerOptions = {}): Promise<Watched> {
  const log = capturedLogger();
  const refusals: Refusal[] = [];
  let wake: (() => void) | undefined;
  const settings: MtlsServerOptions = { ...options, logger: log.logger, onRefusal: (r) => (refusals.push(r), wake?.()) };
  const handler = (_request: unknown, response: { end(body: string): void }) => response.end('should not be reached');
  const server = kind === 'https' ? createMtlsHttpsServer(serverSource, settings, handler) : createMtlsHttp2Server(serverSource, settings, handler);
  opened.push(server);
  const url = await listen(server);
  return {
    url,
    port: Number(new URL(url).port),
    async refused() {
      const refusal = await withDeadline(new Promise<Refusal>((resolve) => {
        const check = () => (refusals.length > 0 ? resolve(refusals.shift()!) : (wake = check));
        check();
      }), 10_000, 'refusal');
      const line = await log.next((l) => l.event === 'mtls.refused' && l.peer === refusal.peer);
      return { refusal, line };
    },
  };
}

/** A raw TLS client with the given material (or none), reporting how the connection ended. */
function rawTls(port: number, material: { certPem?: string; keyPem?: string }, options: ConnectionOptions = {}): Promise<{ localPort: number; outcome: string }> {
  return new Promise((resolve) => {
    const socket: TLSSocket = connect({
      host: '127.0.0.1',
      port,
      ca: ca.bundlePem,
      ...(material.certPem ? { cert: material.certPem, key: material.keyPem } : {}),
      checkServerIdentity: () => undefined, // this test is about the server's refusal, not the client's check
      ...options,
    });
    let localPort = 0;
    socket.once('secureConnect', () => {
      localPort = socket.localPort ?? 0;
      socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    });
    let data = '';
    socket.on('data', (chunk: Buffer) => (data += chunk.toString('utf8')));
    socket.once('error', (error: Error & { code?: string }) => resolve({ localPort, outcome: `error ${error.code ?? error.message}` }));
    socket.once('close', () => resolve({ localPort, outcome: data === '' ? 'closed without an answer' : `answered ${data.slice(0, 20)}` }));
  });
}

const expectRefusal = (seen: { refusal: Refusal; line: LogLine }, reason: RefusalReason): void => {
  expect(seen.refusal.reason).toBe(reason);
  expect(seen.refusal.peer).toMatch(/^127\.0\.0\.1:\d+$/);
  expect(seen.line).toMatchObject({ level: 40, event: 'mtls.refused', reason, peer: seen.refusal.peer });
};

describe('the server refuses, and says why', () => {
  it('plaintext HTTP to the TLS port → plaintext', async () => {
    const server = await watchedServer('https');
    const answered = await new Promise<string>((resolve) => {
      const req = httpRequest({ host: '127.0.0.1', port: server.port, path: '/' }, (res) => resolve(`HTTP ${res.statusCode}`));
      req.on('error', (error: Error & { code?: string }) => resolve(`error ${error.code}`));
      req.end();
    });
    expect(answered).toMatch(/^error/);
    expectRefusal(await server.refused(), 'plaintext');
  });

  it('no client certificate → no-certificate', async () => {
    const server = await watchedServer('https');
    const { outcome } = await rawTls(server.port, {});
    expect(outcome).not.toMatch(/^answered/);
    expectRefusal(await server.refused(), 'no-certificate');
  });

  it('a certificate from another CA → unknown-ca', async () => {
    const server = await watchedServer('https');
    const { outcome } = await rawTls(server.port, opensslSelfSigned(CLIENT_ID));
    expect(outcome).not.toMatch(/^answered/);
    const seen = await server.refused();
    expectRefusal(seen, 'unknown-ca');
    expect(seen.refusal.detail).toMatch(/SELF_SIGNED/);
  });

  it('an expired certificate → expired', async () => {
    const server = await watchedServer('https');
    const { outcome } = await rawTls(server.port, await expiredMaterialFor(ca, CLIENT_ID));
    expect(outcome).not.toMatch(/^answered/);
    const seen = await server.refused();
    expectRefusal(seen, 'expired');
    expect(seen.refusal.detail).toBe('CERT_HAS_EXPIRED');
  });

  it('a client certificate that expired after its TLS session was made → expired on resumption too', async () => {
    let now = Date.now();
    const server = await watchedServer('https', { clock: () => now });
    const agent = new MtlsHttpsAgent(clientSource, SERVER_ID, { keepAlive: false });
    try {
      await expect(getVia(agent, server.url)).resolves.toMatchObject({ status: 200, reused: false });
      now = clientSource.current().notAfter.getTime() + DAY_MS; // the server's clock passes the client's notAfter
      await expect(getVia(agent, server.url)).rejects.toThrow();
      const seen = await server.refused();
      expectRefusal(seen, 'expired');
      expect(seen.refusal.detail).toMatch(/expired at/); // found by the server's own check: OpenSSL does not re-verify a resumed session
    } finally {
      agent.destroy();
    }
  });

  it('a verified client not on the allow-list → identity-not-allowed, naming it', async () => {
    const server = await watchedServer('https', { allow: { pathPrefix: 'spiffe://example.org/admin' } });
    const agent = new MtlsHttpsAgent(clientSource, SERVER_ID);
    try {
      await expect(getVia(agent, server.url)).rejects.toThrow();
      const seen = await server.refused();
      expectRefusal(seen, 'identity-not-allowed');
      expect(seen.refusal.spiffeId).toBe(CLIENT_ID);
    } finally {
      agent.destroy();
    }
  });

  it('a verified client outside the allowed trust domain → identity-not-allowed', async () => {
    const server = await watchedServer('https', { allow: { trustDomain: 'other.org' } });
    const agent = new MtlsHttpsAgent(clientSource, SERVER_ID);
    try {
      await expect(getVia(agent, server.url)).rejects.toThrow();
      expectRefusal(await server.refused(), 'identity-not-allowed');
    } finally {
      agent.destroy();
    }
  });

  it('TLS 1.1 (openssl s_client -tls1_1) → protocol-version; TLS 1.2 is accepted', async () => {
    const server = await watchedServer('https');
    const files = pemFiles({ 'cert.pem': client.certPem, 'key.pem': client.keyPem, 'bundle.pem': client.bundlePem });
    try {
      const common = ['-connect', `127.0.0.1:${server.port}`, '-cert', files.path('cert.pem'), '-cert_chain', files.path('cert.pem'), '-key', files.path('key.pem'), '-CAfile', files.path('bundle.pem')];
      // SECLEVEL=0 lets this OpenSSL offer TLS 1.1 at all; the server must still say no.
      const old = await runAsync('openssl', ['s_client', ...common, '-tls1_1', '-cipher', 'DEFAULT@SECLEVEL=0'], { input: '' });
      expect(old.status).not.toBe(0);
      expectRefusal(await server.refused(), 'protocol-version');
      const tls12 = await runAsync('openssl', ['s_client', ...common, '-tls1_2', '-quiet', '-verify_return_error'], { input: 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' });
      expect(tls12.stdout).toContain('HTTP/1.1 200');
    } finally {
      files.cleanup();
    }
  });

  it('http2 server: no certificate (curl --http2) → no-certificate; another CA (http2Connect) → unknown-ca', async () => {
    const server = await watchedServer('http2');
    const files = pemFiles({ 'bundle.pem': client.bundlePem });
    try {
      const curl = await runAsync('curl', ['-sS', '--http2', '--cacert', files.path('bundle.pem'), `${server.url}/`]);
      expect(curl.status).not.toBe(0);
      expectRefusal(await server.refused(), 'no-certificate');
    } finally {
      files.cleanup();
    }
    const stranger = staticIdentity({ ...opensslSelfSigned(CLIENT_ID), bundlePem: ca.bundlePem });
    const session = http2Connect(stranger, server.url, SERVER_ID);
    session.on('error', () => undefined);
    await expect(h2Get(session, '/')).rejects.toThrow();
    session.destroy();
    expectRefusal(await server.refused(), 'unknown-ca');
  });
});

describe('the client refuses a server with the wrong SPIFFE ID', () => {
  let url: string;
  beforeAll(async () => {
    const server = createMtlsHttpsServer(serverSource, { logger: capturedLogger().logger }, (_req, res) => res.end('secret'));
    url = await listen(server);
    afterAll(() => closeServer(server));
  });

  it('MtlsHttpsAgent → ERR_SERVER_IDENTITY_MISMATCH naming what the server has', async () => {
    const agent = new MtlsHttpsAgent(clientSource, 'spiffe://example.org/payments');
    try {
      await expect(getVia(agent, url)).rejects.toMatchObject({ code: 'ERR_SERVER_IDENTITY_MISMATCH', message: expect.stringContaining(SERVER_ID) as unknown });
    } finally {
      agent.destroy();
    }
  });

  it('undici fetch → fails with the mismatch as the cause', async () => {
    const dispatcher = createMtlsDispatcher(clientSource, { pathPrefix: 'spiffe://example.org/payments' });
    try {
      const error = await undiciFetch(url, { dispatcher }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TypeError);
      expect((error as Error).cause).toMatchObject({ code: 'ERR_SERVER_IDENTITY_MISMATCH' });
    } finally {
      await dispatcher.close();
    }
  });

  it('http2Connect → the session fails with the mismatch', async () => {
    const h2 = createMtlsHttp2Server(serverSource, { logger: capturedLogger().logger });
    opened.push(h2);
    const h2Url = await listen(h2);
    const session = http2Connect(clientSource, h2Url, { trustDomain: 'other.org' });
    const error = await withDeadline(new Promise((resolve) => session.once('error', resolve)), 10_000, 'session error');
    expect(error).toMatchObject({ code: 'ERR_SERVER_IDENTITY_MISMATCH' });
  });

  it('http2Connect: a TLS session made while expecting one ID is not resumed by a client expecting another', async () => {
    // Node skips checkServerIdentity on a resumed session: were the cache keyed only by host and
    // port, the second connect below would resume and be let through.
    const h2 = createMtlsHttp2Server(serverSource, { logger: capturedLogger().logger }, (_req, res) => res.end('ok'));
    opened.push(h2);
    const h2Url = await listen(h2);
    const source = staticIdentity(client);
    for (let i = 0; i < 2; i += 1) {
      const right = http2Connect(source, h2Url, SERVER_ID);
      await h2Get(right, '/');
      expect((right.socket as TLSSocket).isSessionReused()).toBe(i === 1); // the cache works…
      right.close();
    }
    const wrong = http2Connect(source, h2Url, 'spiffe://example.org/payments');
    const error = await withDeadline(new Promise((resolve) => wrong.once('error', resolve)), 10_000, 'session error');
    expect(error).toMatchObject({ code: 'ERR_SERVER_IDENTITY_MISMATCH' }); // …and is not shared across matchers
  });
});
