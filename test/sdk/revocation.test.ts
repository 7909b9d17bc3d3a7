/**
 * Revocation end to end: a real CA, workloads on `caIdentity` (which follows the CA's CRL watch
 * stream), and real servers and clients on every transport. A client (or server) is connected and
 * calling; it is revoked; within 5 s new connections, resumed sessions and the open connection's
 * next request are refused, with the reason `revoked`.
 */
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request as httpsRequest } from 'node:https';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { status } from '@grpc/grpc-js';
import { fetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileAtomic } from '../../src/fsutil/write-private.js';
import type { CaIdentitySource } from '../../src/sdk/sources/ca.js';
import { fileIdentity } from '../../src/sdk/sources/file.js';
import { createMtlsDispatcher, createMtlsHttp2Server, createMtlsHttpsServer, http2Connect, MtlsHttpsAgent, peerIdentity, type Refusal } from '../../src/sdk/index.js';
import { grpcChannelCredentials, grpcChannelOptions, grpcServerCredentials } from '../../src/sdk/grpc/index.js';
import { caWorkload, startTestCa, type TestCa } from '../helpers/ca.js';
import { startGrpcServer } from './grpc-fixtures.js';
import { TestClient } from './grpc-health.js';
import { h2Get } from './h2.js';
import { closeServer, getVia, listen } from './support.js';

const REVOCATION_DEADLINE_MS = 5_000;

let ca: TestCa;
const sources: CaIdentitySource[] = [];

beforeAll(async () => {
  ca = await startTestCa();
});
afterAll(async () => {
  for (const source of sources) source.close();
  await ca?.close();
});

async function workload(path: string): Promise<CaIdentitySource> {
  const source = await caWorkload(ca, path);
  sources.push(source);
  return source;
}

/** Waits (bounded) until `condition` holds; returns how long that took. */
async function within(ms: number, condition: () => boolean, what: string): Promise<number> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > ms) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return Date.now() - start;
}

/** A raw TLS client with fixed material (the way a stolen key would be used). */
function rawClient(port: number, material: { certPem: string; keyPem: string; bundlePem: string }, session?: Buffer): Promise<{ socket: TLSSocket; session: Buffer | undefined; closedWithoutData: Promise<boolean> }> {
  return new Promise((resolve, reject) => {
    let latestSession: Buffer | undefined;
    const socket = tlsConnect({
      host: '127.0.0.1',
      port,
      cert: material.certPem,
      key: material.keyPem,
      ca: material.bundlePem,
      ALPNProtocols: ['http/1.1'],
      checkServerIdentity: () => undefined, // this probe is about the server refusing us
      ...(session ? { session } : {}),
    });
    socket.on('session', (next: Buffer) => (latestSession = next));
    let data = false;
    socket.on('data', () => (data = true));
    const closedWithoutData = new Promise<boolean>((done) => socket.once('close', () => done(!data)));
    socket.once('secureConnect', () => resolve({ socket, get session() { return latestSession; }, closedWithoutData }));
    socket.once('error', (error: Error) => {
      if (socket.connecting) reject(error);
    });
  });
}

describe('a revoked client', () => {
  it('HTTPS: refused within 5 s on a new connection, on a resumed session, and on its open keep-alive connection', async () => {
    const serverSource = await workload('revocation/https-server');
    const clientSource = await workload('revocation/https-client');
    const refusals: Refusal[] = [];
    const server = createMtlsHttpsServer(serverSource, { onRefusal: (refusal) => refusals.push(refusal) }, (req, res) => res.end(peerIdentity(req)?.spiffeId ?? ''));
    let connections = 0;
    server.on('secureConnection', () => (connections += 1));
    const url = await listen(server);
    const port = Number(new URL(url).port);
    const agent = new MtlsHttpsAgent(clientSource, 'spiffe://example.org/revocation/https-server', { maxSockets: 1 });
    try {
      const before = await getVia(agent, url);
      expect(before.status).toBe(200);
      expect(before.body).toBe('spiffe://example.org/revocation/https-client');
      // A session ticket taken before the revocation, to try resuming with it afterwards.
      const stolen = { certPem: clientSource.current().certPem, keyPem: clientSource.current().keyPem, bundlePem: ca.bundlePem };
      const probe = await rawClient(port, stolen);
      probe.socket.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
      await once(probe.socket, 'data');
      const ticket = probe.session;
      expect(ticket).toBeDefined();
      probe.socket.destroy();
      // A second connection, kept open across the revocation (an upgrade is tried on it below).
      const kept = await rawClient(port, stolen);
      kept.socket.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
      await once(kept.socket, 'data');
      const connectionsBefore = connections;

      const serial = clientSource.current().serial;
      await ca.admin.revoke({ serial, reason: 'keyCompromise' });
      const reachedServer = await within(REVOCATION_DEADLINE_MS, () => serverSource.current().isRevoked(serial), 'the CRL reaches the server');
      expect(reachedServer).toBeLessThan(REVOCATION_DEADLINE_MS);

      // The open keep-alive connection: its next request is refused, on the same connection.
      const onOpen = await getVia(agent, url);
      expect(onOpen.status).toBe(403);
      expect(JSON.parse(onOpen.body)).toMatchObject({ error: { code: 'ERR_CERT_REVOKED' } });
      expect(connections).toBe(connectionsBefore);

      // Nor can a connection opened before the revocation be upgraded (WebSocket and the like).
      let upgrades = 0;
      server.on('upgrade', (_request, socket: Duplex) => {
        upgrades += 1;
        socket.end('HTTP/1.1 101 Switching Protocols\r\n\r\n');
      });
      let afterUpgrade = '';
      kept.socket.on('data', (chunk: Buffer) => (afterUpgrade += chunk.toString('latin1')));
      kept.socket.write('GET / HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n');
      await once(kept.socket, 'close');
      expect(afterUpgrade).toBe('');
      expect(upgrades).toBe(0);

      // A resumed session (OpenSSL does not verify it again): refused by the server's own check.
      const resumed = await rawClient(port, stolen, ticket);
      expect(resumed.socket.isSessionReused()).toBe(true);
      resumed.socket.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
      expect(await resumed.closedWithoutData).toBe(true);

      // A new full handshake: OpenSSL refuses the certificate against the CRL.
      const fresh = await rawClient(port, stolen).catch((error: Error) => error);
      if (!(fresh instanceof Error)) {
        fresh.socket.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
        expect(await fresh.closedWithoutData).toBe(true);
      }
      expect(refusals.filter((refusal) => refusal.reason === 'revoked').length).toBeGreaterThanOrEqual(3);
      expect(refusals.every((refusal) => refusal.reason === 'revoked')).toBe(true);
    } finally {
      agent.destroy();
      await closeServer(server);
    }
  });

  it('HTTP/2: the next stream on the open session is answered 403 and the session closed', async () => {
    const serverSource = await workload('revocation/h2-server');
    const clientSource = await workload('revocation/h2-client');
    const server = createMtlsHttp2Server(serverSource, {}, (req, res) => res.end(peerIdentity(req)?.spiffeId ?? ''));
    const url = await listen(server);
    const session = http2Connect(clientSource, url, 'spiffe://example.org/revocation/h2-server');
    try {
      expect((await h2Get(session, '/')).status).toBe(200);
      const serial = clientSource.current().serial;
      await ca.admin.revoke({ serial });
      await within(REVOCATION_DEADLINE_MS, () => serverSource.current().isRevoked(serial), 'the CRL reaches the server');
      const refused = await h2Get(session, '/');
      expect(refused.status).toBe(403);
      expect(JSON.parse(refused.body)).toMatchObject({ error: { code: 'ERR_CERT_REVOKED' } });
      await within(REVOCATION_DEADLINE_MS, () => session.closed || session.destroyed, 'the session is closed');
    } finally {
      session.destroy();
      await closeServer(server);
    }
  });

  it('gRPC: the next call on the open channel is PERMISSION_DENIED, before any handler runs', async () => {
    const serverSource = await workload('revocation/grpc-server');
    const clientSource = await workload('revocation/grpc-client');
    const server = await startGrpcServer(grpcServerCredentials(serverSource));
    const client = new TestClient(server.address, grpcChannelCredentials(clientSource, { expect: 'spiffe://example.org/revocation/grpc-server' }), grpcChannelOptions());
    try {
      const ok = await client.who();
      expect(ok.ok).toBe(true);
      const handled = server.calls.length;
      const serial = clientSource.current().serial;
      await ca.admin.revoke({ serial });
      await within(REVOCATION_DEADLINE_MS, () => serverSource.current().isRevoked(serial), 'the CRL reaches the server');
      const denied = await client.who();
      expect(denied.ok).toBe(false);
      if (!denied.ok) {
        expect(denied.error.code).toBe(status.PERMISSION_DENIED);
        expect(denied.error.details).toContain('revoked');
      }
      expect(server.calls.length).toBe(handled);
      // A new channel (new connection) is refused the same way.
      const another = new TestClient(server.address, grpcChannelCredentials(clientSource, { expect: 'spiffe://example.org/revocation/grpc-server' }), grpcChannelOptions());
      const again = await another.who();
      another.close();
      expect(again.ok).toBe(false);
    } finally {
      client.close();
      server.close();
    }
  });
});

describe('a revoked client, CRL from files (as the agent writes them)', () => {
  it('a server on fileIdentity refuses the client once crl.pem is replaced', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tlsmesh-crl-files-'));
    const serverMaterial = await workload('revocation/file-server');
    const clientSource = await workload('revocation/file-client');
    const writeCrl = async (): Promise<void> => {
      const answer = await ca.anonymous.fetchCrls();
      if (answer === 'not-modified') throw new Error('unexpected 304');
      await writeFileAtomic(join(dir, 'crl.pem'), answer.pem, 0o644);
    };
    const current = serverMaterial.current();
    await writeFileAtomic(join(dir, 'cert.pem'), current.certPem, 0o644);
    await writeFileAtomic(join(dir, 'key.pem'), current.keyPem);
    await writeFileAtomic(join(dir, 'bundle.pem'), current.bundlePem, 0o644);
    await writeCrl();
    const serverSource = await fileIdentity({ dir });
    const server = createMtlsHttpsServer(serverSource, {}, (_req, res) => res.end('ok'));
    const url = await listen(server);
    const agent = new MtlsHttpsAgent(clientSource, 'spiffe://example.org/revocation/file-server', { maxSockets: 1 });
    try {
      expect(serverSource.current().crlPem).toBeDefined();
      expect((await getVia(agent, url)).status).toBe(200);
      const serial = clientSource.current().serial;
      await ca.admin.revoke({ serial });
      await writeCrl();
      await within(REVOCATION_DEADLINE_MS, () => serverSource.current().isRevoked(serial), 'the server reads the new crl.pem');
      expect((await getVia(agent, url)).status).toBe(403);
    } finally {
      agent.destroy();
      serverSource.close();
      await closeServer(server);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a revoked server', () => {
  it('gRPC: an open channel to it is closed, and the next call fails the handshake', async () => {
    const serverSource = await workload('revocation/grpc-revoked-server');
    const clientSource = await workload('revocation/grpc-caller');
    const server = await startGrpcServer(grpcServerCredentials(serverSource));
    const client = new TestClient(server.address, grpcChannelCredentials(clientSource, { expect: 'spiffe://example.org/revocation/grpc-revoked-server' }), grpcChannelOptions());
    try {
      expect((await client.who()).ok).toBe(true);
      const handled = server.calls.length;
      const serial = serverSource.current().serial;
      await ca.admin.revoke({ serial });
      await within(REVOCATION_DEADLINE_MS, () => clientSource.current().isRevoked(serial), 'the CRL reaches the client');
      const after = await client.who();
      expect(after.ok).toBe(false);
      expect(server.calls.length).toBe(handled);
    } finally {
      client.close();
      server.close();
    }
  });

  it('fetch (undici): an open connection to it is closed and new ones are refused as revoked', async () => {
    const serverSource = await workload('revocation/fetch-server');
    const clientSource = await workload('revocation/fetch-client');
    const server = createMtlsHttpsServer(serverSource, {}, (_req, res) => res.end('ok'));
    const url = await listen(server);
    const dispatcher = createMtlsDispatcher(clientSource, 'spiffe://example.org/revocation/fetch-server');
    try {
      expect(await (await fetch(url, { dispatcher })).text()).toBe('ok');
      const serial = serverSource.current().serial;
      await ca.admin.revoke({ serial });
      await within(REVOCATION_DEADLINE_MS, () => clientSource.current().isRevoked(serial), 'the CRL reaches the client');
      const error = await fetch(url, { dispatcher }).then(
        () => null,
        (failure: Error) => failure,
      );
      // Had the kept-alive connection been reused, this fetch would have said 'ok'. OpenSSL refuses
      // the new handshake against the CRL (CERT_REVOKED); the SDK's own check says ERR_CERT_REVOKED
      // where OpenSSL holds no usable CRL (see the stale-CRL tests).
      expect(error).not.toBeNull();
      expect(causes(error!)).toMatch(/CERT_REVOKED/);
    } finally {
      await dispatcher.close();
      await closeServer(server);
    }
  });

  it('https Agent: a kept-alive socket to it is not reused and the next request is refused as revoked', async () => {
    const serverSource = await workload('revocation/agent-server');
    const clientSource = await workload('revocation/agent-client');
    const server = createMtlsHttpsServer(serverSource, {}, (_req, res) => res.end('ok'));
    const url = await listen(server);
    const agent = new MtlsHttpsAgent(clientSource, 'spiffe://example.org/revocation/agent-server');
    try {
      expect((await getVia(agent, url)).status).toBe(200);
      const serial = serverSource.current().serial;
      await ca.admin.revoke({ serial });
      await within(REVOCATION_DEADLINE_MS, () => clientSource.current().isRevoked(serial), 'the CRL reaches the client');
      const error = await new Promise<(Error & { code?: string }) | null>((resolve) => {
        const req = httpsRequest(url, { agent }, (res) => {
          res.resume();
          resolve(null);
        });
        req.on('error', resolve);
        req.end();
      });
      expect(error?.code).toMatch(/CERT_REVOKED/);
    } finally {
      agent.destroy();
      await closeServer(server);
    }
  });
});

/** Every code and message down an error's cause chain (undici wraps the connector's error). */
function causes(error: Error): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current instanceof Error && depth < 5; depth++) {
    parts.push(`${(current as Error & { code?: string }).code ?? ''} ${current.message}`);
    current = current.cause;
  }
  return parts.join(' | ');
}
