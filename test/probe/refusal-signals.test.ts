/**
 * What one connection shows, against small in-process servers that each do one thing: refuse with
 * an alert after a TLS 1.3 handshake, close, reset, answer, stay silent (after sending session
 * tickets), or speak plaintext; and how those observations are judged.
 */
import { once } from 'node:events';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createHttp2Server } from 'node:http2';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { attemptTls, type Attempt, type Conversation } from '../../src/probe/attempt.js';
import { httpConversation } from '../../src/probe/conversations/http.js';
import { plainConversation } from '../../src/probe/conversations/plain.js';
import { sendPlaintext } from '../../src/probe/plaintext.js';
import { parseTarget } from '../../src/probe/target.js';
import { judgeAccepted, judgeNotNegotiated, judgePlaintext, judgeRefused } from '../../src/probe/verdicts.js';
import { miniPki } from '../sdk/mini-pki.js';

const TIMEOUT_MS = 2000;
const SETTLE_MS = 300;
const ACCEPTED = { accepted: true, name: 'the control' };

let pki: { rootPem: string; server: { certPem: string; keyPem: string }; client: { certPem: string; keyPem: string } };
const servers: NetServer[] = [];
/** Every connection the test servers accepted: closed after each test so servers close at once. */
const connections = new Set<Socket>();

beforeAll(async () => {
  const mini = await miniPki('signals.test');
  pki = { rootPem: mini.rootPem, server: await mini.issue('spiffe://signals.test/server'), client: await mini.issue('spiffe://signals.test/client') };
});
afterEach(() => {
  for (const socket of connections) socket.destroy();
  connections.clear();
  for (const server of servers.splice(0)) server.close();
});

async function listen<T extends NetServer>(server: T): Promise<number> {
  servers.push(server);
  server.on('connection', (socket: Socket) => connections.add(socket));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** A TLS 1.3 server that asks for a client certificate; `onSecure` decides what happens next. */
function tlsServer(options: { rejectUnauthorized: boolean; onSecure?: (socket: TLSSocket) => void }): Promise<number> {
  const server = createTlsServer({ cert: pki.server.certPem, key: pki.server.keyPem, ca: pki.rootPem, requestCert: true, rejectUnauthorized: options.rejectUnauthorized, minVersion: 'TLSv1.3' });
  server.on('secureConnection', (socket) => options.onSecure?.(socket));
  server.on('tlsClientError', () => undefined);
  return listen(server);
}

const attempt = (port: number, conversation: Conversation, credential = true): Promise<Attempt> =>
  attemptTls(
    { target: parseTarget(`127.0.0.1:${port}`), bundlePem: pki.rootPem, timeoutMs: TIMEOUT_MS, settleMs: SETTLE_MS },
    credential ? { credential: pki.client } : {},
    conversation,
  );

describe('after a TLS 1.3 handshake', () => {
  it('an alert after the handshake (no client certificate) is a refusal: PASS', async () => {
    const port = await tlsServer({ rejectUnauthorized: true });
    const result = await attempt(port, plainConversation, false);
    expect(result).toMatchObject({ stage: 'established', handshake: { protocol: 'TLSv1.3' }, after: { kind: 'refused', failure: { kind: 'alert', alert: 'certificate required' } } });
    expect(judgeRefused(result, plainConversation, ACCEPTED)).toEqual({ result: 'pass', evidence: 'TLSv1.3 handshake completed, then alert "certificate required" before any data' });
  });

  it('a close without an alert is a refusal too', async () => {
    const port = await tlsServer({ rejectUnauthorized: false, onSecure: (socket) => socket.end() });
    const result = await attempt(port, plainConversation);
    expect(result).toMatchObject({ stage: 'established', after: { kind: 'refused', failure: { kind: 'closed' } } });
    expect(judgeRefused(result, plainConversation, ACCEPTED).result).toBe('pass');
    expect(judgeAccepted(result, plainConversation).result).toBe('fail');
  });

  it('data from the server is access: FAIL for a refusal check, quoting the bytes', async () => {
    const port = await tlsServer({ rejectUnauthorized: false, onSecure: (socket) => socket.write('welcome\x1b[31m\n') });
    const result = await attempt(port, plainConversation);
    const verdict = judgeRefused(result, plainConversation, ACCEPTED);
    expect(verdict.result).toBe('fail');
    // Control characters from the server are escaped, never printed raw.
    expect(verdict.evidence).toBe('accepted: TLSv1.3 handshake completed, then answered 13 bytes: "welcome\\x1b[31m\\n"');
  });

  it('session tickets are not data: a server that sends only tickets stays "silent", which plain TLS counts as accepted', async () => {
    const port = await tlsServer({ rejectUnauthorized: true });
    // Premise: this server does send TLS 1.3 session tickets after the handshake.
    const tickets = await new Promise<number>((resolve) => {
      let count = 0;
      const socket = tlsConnect({ host: '127.0.0.1', port, cert: pki.client.certPem, key: pki.client.keyPem, ca: pki.rootPem, checkServerIdentity: () => undefined });
      socket.on('session', () => count++);
      socket.on('error', () => resolve(-2));
      socket.on('data', () => resolve(-1));
      setTimeout(() => {
        socket.destroy();
        resolve(count);
      }, 200);
    });
    expect(tickets).toBeGreaterThan(0);

    const result = await attempt(port, plainConversation);
    expect(result).toMatchObject({ stage: 'established', after: { kind: 'silent', waitedMs: SETTLE_MS } });
    expect(judgeAccepted(result, plainConversation).result).toBe('pass');
    // For a refusal check, silence in plain TLS is not a refusal.
    expect(judgeRefused(result, plainConversation, ACCEPTED)).toMatchObject({ result: 'fail', evidence: expect.stringMatching(/^not refused at the TLS layer/) as unknown });
  });

  it('a refusal proves nothing when the control is refused too: SKIP', async () => {
    const port = await tlsServer({ rejectUnauthorized: true });
    const result = await attempt(port, plainConversation, false);
    expect(judgeRefused(result, plainConversation, { accepted: false, name: 'the valid client certificate (--cert)' })).toMatchObject({
      result: 'skip',
      evidence: expect.stringMatching(/^inconclusive: the server also refuses the valid client certificate/) as unknown,
    });
  });
});

describe('HTTP conversation', () => {
  const httpsServer = (status: number, body: string): Promise<number> =>
    listen(createHttpsServer({ cert: pki.server.certPem, key: pki.server.keyPem, ca: pki.rootPem, requestCert: true, rejectUnauthorized: false }, (_request, response) => response.writeHead(status, { 'content-type': 'text/html' }).end(body)));
  const http = httpConversation('/', 'test');

  it.each([
    [200, 'ok', 'fail', /^accepted: .*answered "HTTP\/1\.1 200 OK"/],
    [404, 'nope', 'fail', /^accepted: .*"HTTP\/1\.1 404 Not Found"/],
    [403, '<html><title>no certificate</title></html>', 'pass', /refused by the application: "HTTP\/1\.1 403 Forbidden" \("no certificate"\)/],
    [400, '<title>400 No required SSL certificate was sent</title>', 'pass', /refused by the application: "HTTP\/1\.1 400 Bad Request"/],
  ] as const)('status %i → %s for a refusal check', async (status, body, expected, evidence) => {
    const port = await httpsServer(status, body);
    const verdict = judgeRefused(await attempt(port, http, false), http, ACCEPTED);
    expect(verdict.result).toBe(expected);
    expect(verdict.evidence).toMatch(evidence);
  });

  it('a server that never answers the request: not a refusal (inconclusive FAIL), not acceptance either', async () => {
    const port = await tlsServer({ rejectUnauthorized: false, onSecure: (socket) => socket.resume() });
    const result = await attempt(port, http);
    expect(result).toMatchObject({ stage: 'established', after: { kind: 'silent', waitedMs: TIMEOUT_MS } });
    expect(judgeRefused(result, http, ACCEPTED).evidence).toMatch(/^inconclusive, neither refused nor served/);
    expect(judgeAccepted(result, http).result).toBe('fail');
  });
});

describe('before the handshake completes', () => {
  it('a TCP reset in answer to the ClientHello is a refusal in the handshake', async () => {
    const server = createNetServer((socket) => socket.once('data', () => socket.resetAndDestroy()));
    const port = await listen(server);
    const result = await attempt(port, plainConversation);
    expect(result).toMatchObject({ stage: 'handshake-failed', failure: { kind: 'reset' } });
    expect(judgeRefused(result, plainConversation, ACCEPTED).result).toBe('pass');
  });

  it('a port nobody listens on is unreachable: inconclusive, a FAIL', async () => {
    const port = await listen(createNetServer());
    servers.pop()!.close();
    await new Promise((resolve) => setTimeout(resolve, 20));
    const result = await attempt(port, plainConversation);
    expect(result).toEqual({ stage: 'unreachable', code: 'ECONNREFUSED' });
    expect(judgeRefused(result, plainConversation, ACCEPTED)).toEqual({ result: 'fail', evidence: 'inconclusive, could not connect (ECONNREFUSED)' });
  });

  it('a server that accepts TCP and never answers the ClientHello times out: inconclusive, a FAIL', async () => {
    const port = await listen(createNetServer((socket) => socket.resume()));
    const result = await attempt(port, plainConversation);
    expect(result).toEqual({ stage: 'timeout', during: 'handshake' });
    expect(judgeRefused(result, plainConversation, ACCEPTED).result).toBe('fail');
  });

  it('an offer this machine cannot make is SKIP, never PASS', async () => {
    const port = await tlsServer({ rejectUnauthorized: true });
    const result = await attemptTls(
      { target: parseTarget(`127.0.0.1:${port}`), bundlePem: pki.rootPem, timeoutMs: TIMEOUT_MS, settleMs: SETTLE_MS },
      { credential: pki.client, maxVersion: 'TLSv1.2', minVersion: 'TLSv1.2', ciphers: 'NO-SUCH-SUITE' },
      plainConversation,
    );
    expect(result).toMatchObject({ stage: 'unsupported', code: 'ERR_SSL_NO_CIPHER_MATCH' });
    expect(judgeNotNegotiated(result, ACCEPTED).result).toBe('skip');
  });

  it('a TLS 1.3-only server refuses TLS 1.2 with "protocol version": PASS without needing the control', async () => {
    const port = await tlsServer({ rejectUnauthorized: true });
    const result = await attemptTls(
      { target: parseTarget(`127.0.0.1:${port}`), bundlePem: pki.rootPem, timeoutMs: TIMEOUT_MS, settleMs: SETTLE_MS },
      { credential: pki.client, maxVersion: 'TLSv1.2' },
      plainConversation,
    );
    expect(result).toMatchObject({ stage: 'handshake-failed', failure: { kind: 'alert', alert: 'protocol version' } });
    expect(judgeNotNegotiated(result, { accepted: false, name: 'x' }).result).toBe('pass');
  });
});

describe('plaintext', () => {
  const target = (port: number) => parseTarget(`127.0.0.1:${port}`);

  it('a plaintext HTTP service: FAIL with its status line', async () => {
    const port = await listen(createHttpServer((_request, response) => response.end('hello')));
    const reply = await sendPlaintext(target(port), 'http1', TIMEOUT_MS, SETTLE_MS);
    expect(judgePlaintext(reply, true)).toEqual({ result: 'fail', evidence: 'served plaintext HTTP: "HTTP/1.1 200 OK" ("hello")' });
  });

  it('a TLS port that answers plaintext with 400 (as Go and nginx do): PASS only once the port is known to speak TLS', async () => {
    // First byte 0x16 (a TLS handshake record) goes to the TLS server; anything else gets a 400.
    const tls = createTlsServer({ cert: pki.server.certPem, key: pki.server.keyPem });
    tls.on('secureConnection', (socket) => socket.end());
    const port = await listen(
      createNetServer((socket) =>
        socket.once('data', (chunk: Buffer) => {
          socket.pause();
          socket.unshift(chunk);
          if (chunk[0] === 0x16) tls.emit('connection', socket);
          else socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n');
        }),
      ),
    );
    expect(await attempt(port, plainConversation)).toMatchObject({ stage: 'established' });
    const reply = await sendPlaintext(target(port), 'http1', TIMEOUT_MS, SETTLE_MS);
    expect(judgePlaintext(reply, true)).toEqual({
      result: 'pass',
      evidence: 'answered "HTTP/1.1 400 Bad Request" ("Client sent an HTTP request to an HTTPS server."): a TLS server\'s reply to plaintext (this port completed TLS handshakes), not a plaintext service',
    });
    expect(judgePlaintext(reply, false).result).toBe('fail');
  });

  it("Node's own HTTPS server (Node 20) closes a plaintext connection without answering: PASS", async () => {
    const port = await listen(createHttpsServer({ cert: pki.server.certPem, key: pki.server.keyPem }, (_request, response) => response.end('secret')));
    expect(judgePlaintext(await sendPlaintext(target(port), 'http1', TIMEOUT_MS, SETTLE_MS), false)).toEqual({ result: 'pass', evidence: 'closed the connection without answering' });
  });

  it('a plaintext service that answers 400 on a port with no TLS: FAIL', async () => {
    const port = await listen(createHttpServer((_request, response) => response.writeHead(400).end()));
    const reply = await sendPlaintext(target(port), 'http1', TIMEOUT_MS, SETTLE_MS);
    expect(judgePlaintext(reply, false)).toMatchObject({ result: 'fail', evidence: expect.stringMatching(/no TLS handshake succeeded on this port/) as unknown });
  });

  it('an h2c (plaintext HTTP/2) server answers the preface with SETTINGS: FAIL', async () => {
    const port = await listen(createHttp2Server() as unknown as NetServer);
    const reply = await sendPlaintext(target(port), 'h2', TIMEOUT_MS, SETTLE_MS);
    expect(judgePlaintext(reply, true)).toEqual({ result: 'fail', evidence: 'answered HTTP/2 in plaintext (h2c SETTINGS frame): a plaintext HTTP/2 (gRPC) service' });
  });

  it('a TLS alert record, a close, or silence: PASS', async () => {
    const alert = await listen(createNetServer((socket) => socket.once('data', () => socket.end(Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46])))));
    expect(judgePlaintext(await sendPlaintext(target(alert), 'http1', TIMEOUT_MS, SETTLE_MS), false)).toEqual({ result: 'pass', evidence: 'answered with a TLS alert ("protocol version"): only TLS is spoken' });
    const closing = await listen(createTlsServer({ cert: pki.server.certPem, key: pki.server.keyPem }));
    expect(judgePlaintext(await sendPlaintext(target(closing), 'http1', TIMEOUT_MS, SETTLE_MS), false)).toEqual({ result: 'pass', evidence: 'closed the connection without answering' });
    const silent = await listen(createNetServer((socket) => socket.resume()));
    expect(judgePlaintext(await sendPlaintext(target(silent), 'http1', TIMEOUT_MS, SETTLE_MS), false).result).toBe('pass');
  });
});
