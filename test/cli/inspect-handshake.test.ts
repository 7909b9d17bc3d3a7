/**
 * `tlsmesh cert inspect HOST:PORT` explains why a connection would fail: the server's identity
 * against --expect-id, and what the server did with our client certificate after the handshake
 * (in TLS 1.3 a refusal only shows up then).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createTlsServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observe/logger.js';
import { createMtlsHttpsServer, staticIdentity } from '../../src/sdk/index.js';
import { enrollWorkload, startTestCa, TRUST_DOMAIN, type TestCa } from '../helpers/ca.js';
import { runCli } from '../helpers/cli.js';
import { opensslSelfSigned } from '../helpers/openssl.js';

describe('cert inspect HOST:PORT', () => {
  let ca: TestCa;
  let dir: string;
  let mtls: Server;
  let plainTls: Server;
  const serverId = `spiffe://${TRUST_DOMAIN}/inspected`;
  const address = (server: Server): string => `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const file = (name: string): string => join(dir, name);

  beforeAll(async () => {
    ca = await startTestCa();
    dir = mkdtempSync(join(tmpdir(), 'tlsmesh-inspect-'));
    const server = await enrollWorkload(ca, serverId, { ipAddresses: ['127.0.0.1'] });
    const client = await enrollWorkload(ca, `spiffe://${TRUST_DOMAIN}/inspector`);
    server.client.close();
    client.client.close();
    writeFileSync(file('bundle.pem'), ca.bundlePem);
    writeFileSync(file('client.pem'), client.certPem);
    writeFileSync(file('client.key'), client.keyPem);
    const stranger = opensslSelfSigned(`spiffe://${TRUST_DOMAIN}/inspector`);
    writeFileSync(file('stranger.pem'), stranger.certPem);
    writeFileSync(file('stranger.key'), stranger.keyPem);

    const source = staticIdentity({ certPem: server.certPem, keyPem: server.keyPem, bundlePem: ca.bundlePem });
    mtls = createMtlsHttpsServer(source, { logger: createLogger({ component: 'test', level: 'silent' }) }, (_req, res) => res.end('ok'));
    plainTls = createTlsServer({ key: server.keyPem, cert: server.certPem }, (_req, res) => res.end('ok'));
    await Promise.all([mtls, plainTls].map((s) => new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))));
  });
  afterAll(async () => {
    await Promise.all([mtls, plainTls].map((s) => new Promise<void>((resolve) => (s ? s.close(() => resolve()) : resolve()))));
    rmSync(dir, { recursive: true, force: true });
    await ca?.close();
  });

  it('ok/an accepted client and the expected identity: exit 0', async () => {
    const result = await runCli(['cert', 'inspect', address(mtls), '--bundle', file('bundle.pem'), '--cert', file('client.pem'), '--key', file('client.key'), '--expect-id', serverId]);
    expect(result.stdout).toMatch(/accepted this client certificate/);
    expect(result.stdout).toMatch(/identity {4}spiffe:\/\/example\.org\/inspected: OK/);
    expect(result.status).toBe(0);
  });

  it('fail/another expected identity: exit 1 with both names', async () => {
    const result = await runCli(['cert', 'inspect', address(mtls), '--bundle', file('bundle.pem'), '--expect-id', `spiffe://${TRUST_DOMAIN}/someone-else`]);
    expect(result.stdout).toContain(`identity MISMATCH: expected spiffe://${TRUST_DOMAIN}/someone-else, the certificate has ${serverId}`);
    expect(result.status).toBe(1);
  });

  it('fail/a client certificate from another CA: the refusal is explained, exit 1', async () => {
    const result = await runCli(['cert', 'inspect', address(mtls), '--bundle', file('bundle.pem'), '--cert', file('stranger.pem'), '--key', file('stranger.key')]);
    expect(result.stdout).toMatch(/client {7}REFUSED/);
    expect(result.status).toBe(1);
  });

  it('ok/without a client certificate an mTLS server says it wants one', async () => {
    const result = await runCli(['cert', 'inspect', address(mtls), '--bundle', file('bundle.pem')]);
    expect(result.stdout).toMatch(/REFUSED.*wants a client certificate/);
  });

  it('fail/a TLS server that does not ask for a client certificate is called out', async () => {
    const result = await runCli(['cert', 'inspect', address(plainTls), '--bundle', file('bundle.pem')]);
    expect(result.stdout).toMatch(/does NOT require mutual TLS/);
  });
});
