/**
 * Every server × client pair over real sockets on 127.0.0.1 with certificates from the real test
 * CA: the https server with MtlsHttpsAgent, undici fetch (undici's and Node's global fetch),
 * curl --cert and openssl s_client; the http2 server with http2Connect and curl --http2. Each
 * handler sees the caller's SPIFFE ID; TLS sessions are resumed.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse, Http2SecureServer } from 'node:http2';
import type { Server } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMtlsHttp2Server } from '../../src/sdk/http2-server.js';
import { http2Connect } from '../../src/sdk/http2-client.js';
import { createMtlsHttpsServer } from '../../src/sdk/https-server.js';
import { MtlsHttpsAgent } from '../../src/sdk/https-agent.js';
import { peerIdentity } from '../../src/sdk/peer.js';
import { staticIdentity, type StaticIdentitySource } from '../../src/sdk/sources/static.js';
import { createMtlsDispatcher } from '../../src/sdk/undici-dispatcher.js';
import { startTestCa, type TestCa } from '../helpers/ca.js';
import { runAsync } from '../helpers/openssl.js';
import { capturedLogger, closeServer, getVia, listen, materialFor, pemFiles } from './support.js';
import { h2Get } from './h2.js';

const SERVER_ID = 'spiffe://example.org/api';
const CLIENT_ID = 'spiffe://example.org/web';

let ca: TestCa;
let serverSource: StaticIdentitySource;
let clientSource: StaticIdentitySource;
let httpsServer: Server;
let httpsUrl: string;
let h2Server: Http2SecureServer;
let h2Url: string;
let files: ReturnType<typeof pemFiles>;

const whoAmI = (request: IncomingMessage | Http2ServerRequest, response: ServerResponse | Http2ServerResponse): void => {
  const peer = peerIdentity(request);
  response.setHeader('content-type', 'application/json');
  response.end(JSON.stringify({ caller: peer?.spiffeId ?? null, serial: peer?.serial ?? null, protocol: request.httpVersion }));
};

beforeAll(async () => {
  ca = await startTestCa();
  // The server also names 127.0.0.1, for curl and openssl, which check the address.
  serverSource = staticIdentity(await materialFor(ca, SERVER_ID, { ipAddresses: ['127.0.0.1'], dnsNames: ['localhost'] }));
  clientSource = staticIdentity(await materialFor(ca, CLIENT_ID));
  const log = capturedLogger();
  httpsServer = createMtlsHttpsServer(serverSource, { logger: log.logger }, whoAmI);
  httpsUrl = await listen(httpsServer);
  h2Server = createMtlsHttp2Server(serverSource, { logger: log.logger }, whoAmI);
  h2Url = await listen(h2Server);
  const client = clientSource.current();
  files = pemFiles({ 'cert.pem': client.certPem, 'key.pem': client.keyPem, 'bundle.pem': client.bundlePem });
});

afterAll(async () => {
  files.cleanup();
  await closeServer(httpsServer);
  await closeServer(h2Server);
  await ca.close();
});

describe('https server', () => {
  it('× MtlsHttpsAgent: the handler sees the caller; the second connection resumes the TLS session', async () => {
    const agent = new MtlsHttpsAgent(clientSource, SERVER_ID, { keepAlive: false });
    try {
      const first = await getVia(agent, `${httpsUrl}/who`);
      expect(first.status).toBe(200);
      expect(JSON.parse(first.body)).toMatchObject({ caller: CLIENT_ID, serial: clientSource.current().serial, protocol: '1.1' });
      expect(first.protocol).toBe('TLSv1.3');
      expect(first.serverSerial).toBe(serverSource.current().serial);
      expect(first.reused).toBe(false);
      const second = await getVia(agent, `${httpsUrl}/who`);
      expect(second.reused).toBe(true);
      // The server still knows who the caller is on a resumed session.
      expect(JSON.parse(second.body)).toMatchObject({ caller: CLIENT_ID });
    } finally {
      agent.destroy();
    }
  });

  it('× MtlsHttpsAgent: after the client identity rotates, no session made with the old certificate is resumed', async () => {
    const source = staticIdentity(await materialFor(ca, CLIENT_ID));
    const agent = new MtlsHttpsAgent(source, SERVER_ID, { keepAlive: false });
    try {
      await getVia(agent, `${httpsUrl}/who`);
      expect((await getVia(agent, `${httpsUrl}/who`)).reused).toBe(true);
      const next = source.update(await materialFor(ca, CLIENT_ID));
      const after = await getVia(agent, `${httpsUrl}/who`);
      expect(after.reused).toBe(false);
      expect(JSON.parse(after.body)).toMatchObject({ serial: next.serial });
      expect((await getVia(agent, `${httpsUrl}/who`)).reused).toBe(true); // and the new session is reused
    } finally {
      agent.destroy();
    }
  });

  it('× MtlsHttpsAgent with keep-alive: requests share one connection', async () => {
    const agent = new MtlsHttpsAgent(clientSource, { trustDomain: 'example.org' }, { maxSockets: 1 });
    try {
      const results = await Promise.all([1, 2, 3].map(() => getVia(agent, `${httpsUrl}/who`)));
      expect(results.map((r) => r.status)).toEqual([200, 200, 200]);
      expect(Object.values(agent.sockets).flat().length + Object.values(agent.freeSockets).flat().length).toBe(1);
    } finally {
      agent.destroy();
    }
  });

  it("× undici fetch with the dispatcher (undici's fetch and Node's global fetch)", async () => {
    const dispatcher = createMtlsDispatcher(clientSource, SERVER_ID);
    try {
      const viaUndici = await undiciFetch(`${httpsUrl}/who`, { dispatcher });
      expect(viaUndici.status).toBe(200);
      expect(await viaUndici.json()).toMatchObject({ caller: CLIENT_ID });
      // Node 20 bundles undici 6: its RequestInit type does not name undici 7 agents, though they work.
      const viaGlobal = await fetch(`${httpsUrl}/who`, { dispatcher } as unknown as RequestInit);
      expect(await viaGlobal.json()).toMatchObject({ caller: CLIENT_ID });
    } finally {
      await dispatcher.close();
    }
  });

  it('× undici: connections after the first resume the TLS session (one connector, one cache)', async () => {
    const resumed: boolean[] = [];
    const dispatcher = createMtlsDispatcher(clientSource, SERVER_ID, { pipelining: 0, keepAliveTimeout: 1 });
    const server = createMtlsHttpsServer(serverSource, { logger: capturedLogger().logger }, (request, response) => {
      resumed.push((request.socket as TLSSocket).isSessionReused());
      response.setHeader('connection', 'close'); // every request on a new connection
      response.end('ok');
    });
    const url = await listen(server);
    try {
      for (let i = 0; i < 3; i += 1) expect(await (await undiciFetch(url, { dispatcher })).text()).toBe('ok');
      expect(resumed).toEqual([false, true, true]);
    } finally {
      await dispatcher.close();
      await closeServer(server);
    }
  });

  it('× curl --cert', async () => {
    const result = await runAsync('curl', ['-sS', '--fail', '--cacert', files.path('bundle.pem'), '--cert', files.path('cert.pem'), '--key', files.path('key.pem'), `${httpsUrl}/who`]);
    expect(result.stderr).toBe('');
    expect(JSON.parse(result.stdout)).toMatchObject({ caller: CLIENT_ID });
  });

  // s_client sends only the leaf of -cert: -cert_chain adds the intermediate, as curl does by itself.
  it('× openssl s_client (verifying the server chain strictly)', async () => {
    const port = new URL(httpsUrl).port;
    const result = await runAsync(
      'openssl',
      ['s_client', '-connect', `127.0.0.1:${port}`, '-cert', files.path('cert.pem'), '-cert_chain', files.path('cert.pem'), '-key', files.path('key.pem'), '-CAfile', files.path('bundle.pem'), '-verify_return_error', '-x509_strict', '-quiet'],
      { input: 'GET /who HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' },
    );
    expect(result.stdout).toContain('HTTP/1.1 200 OK');
    expect(result.stdout).toContain(CLIENT_ID);
  });
});

describe('http2 server', () => {
  it('× http2Connect: the handler sees the caller; a second session resumes', async () => {
    const first = http2Connect(clientSource, h2Url, SERVER_ID);
    try {
      const answer = await h2Get(first, '/who');
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body)).toMatchObject({ caller: CLIENT_ID, protocol: '2.0' });
      expect((first.socket as TLSSocket).getProtocol()).toBe('TLSv1.3');
    } finally {
      first.close();
    }
    const second = http2Connect(clientSource, h2Url, SERVER_ID);
    try {
      await h2Get(second, '/who');
      expect((second.socket as TLSSocket).isSessionReused()).toBe(true);
    } finally {
      second.close();
    }
  });

  it('× curl --http2 --cert', async () => {
    const result = await runAsync('curl', ['-sS', '--fail', '--http2', '-w', '\n%{http_version}', '--cacert', files.path('bundle.pem'), '--cert', files.path('cert.pem'), '--key', files.path('key.pem'), `${h2Url}/who`]);
    expect(result.stderr).toBe('');
    const [body, version] = result.stdout.split('\n');
    expect(version).toBe('2');
    expect(JSON.parse(body!)).toMatchObject({ caller: CLIENT_ID });
  });

  it('refuses an HTTP/1.1-only client (no h2 in ALPN)', async () => {
    const result = await runAsync('curl', ['-sS', '--http1.1', '--cacert', files.path('bundle.pem'), '--cert', files.path('cert.pem'), '--key', files.path('key.pem'), `${h2Url}/who`]);
    expect(result.stdout).not.toContain(CLIENT_ID);
  });
});
