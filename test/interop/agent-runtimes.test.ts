/**
 * Proof on other runtimes: a grpc-go server and client (tls.RequireAndVerifyClientCert, reading the
 * agent's files on each handshake / each run) and nginx (`ssl_verify_client on`, CRLs on, reloaded
 * by the agent's signal hook) talk to tlsmesh SDK clients and servers through renewals and a full
 * CA rotation (new root and intermediate: prepare → activate → renew → retire). Every call in every
 * phase must succeed. Go and nginx are Debian packages installed by .ci/run; without them the test
 * says so and skips, except under CI=true, where it fails.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgent, tokenFromValue, type Agent } from '../../src/agent/index.js';
import { updateDataDirTrust } from '../../src/ca/data-dir.js';
import { activateRotation, prepareRotation, retireRotation } from '../../src/ca/rotation.js';
import { pemBlocks } from '../../src/pki/index.js';
import { grpcChannelCredentials, grpcChannelOptions, grpcServerCredentials } from '../../src/sdk/grpc/index.js';
import { MtlsHttpsAgent } from '../../src/sdk/index.js';
import type { CaIdentitySource } from '../../src/sdk/sources/ca.js';
import { caWorkload, PASSPHRASE, startTestCa, TRUST_DOMAIN, type TestCa } from '../helpers/ca.js';
import { buildGoInterop, goInteropStatus, runGoClient, startGoServer, type GoServer } from '../helpers/go.js';
import { startGrpcServer, type TestServer } from '../sdk/grpc-fixtures.js';
import { TestClient } from '../sdk/grpc-health.js';

const NGINX = '/usr/sbin/nginx';
const go = goInteropStatus();
const nginxMissing = spawnSync(NGINX, ['-v']).status === 0 ? null : `nginx is not installed at ${NGINX} (apt: nginx-light)`;
const missing = !go.ok ? go.reason : nginxMissing;
if (missing !== null && process.env['CI'] === 'true') throw new Error(`agent runtime proof cannot run under CI: ${missing}`);

const id = (path: string): string => `spiffe://${TRUST_DOMAIN}/${path}`;
const rootsIn = (pem: string): number => pemBlocks(pem, 'CERTIFICATE').length;

async function until(condition: () => boolean | Promise<boolean>, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe.skipIf(missing !== null)(`agent files on grpc-go and nginx, through renewals and a CA rotation${missing ? ` (skipped: ${missing})` : ''}`, () => {
  let ca: TestCa;
  let work: string;
  let binaries: { server: string; client: string };
  const agents: Record<'goServer' | 'goClient' | 'nginx', { agent: Agent; dir: string }> = {} as never;
  let sdkServer: CaIdentitySource;
  let sdkClient: CaIdentitySource;
  let grpcServer: TestServer;
  let goServer: GoServer;
  let nginx: { port: number; pidFile: string; stop: () => void };

  beforeAll(async () => {
    binaries = buildGoInterop();
    ca = await startTestCa();
    work = mkdtempSync(join(tmpdir(), 'tlsmesh-agent-runtimes-'));
    const nginxPrefix = join(work, 'nginx');
    const pidFile = join(nginxPrefix, 'nginx.pid');
    for (const [name, path, hooks] of [
      ['goServer', 'go/server', []],
      ['goClient', 'go/client', []],
      ['nginx', 'nginx', [{ kind: 'signal', signal: 'SIGHUP', pidFile }]],
    ] as const) {
      const { token } = await ca.admin.createToken({ spiffeId: id(path) });
      const dir = join(work, name);
      const agent = startAgent({ caUrl: ca.url, bundlePem: ca.bundlePem, outDir: dir, token: tokenFromValue(token), reload: hooks });
      await agent.ready();
      agents[name] = { agent, dir };
    }
    sdkServer = await caWorkload(ca, 'sdk/server');
    sdkClient = await caWorkload(ca, 'sdk/client');
    grpcServer = await startGrpcServer(grpcServerCredentials(sdkServer));
    goServer = await startGoServer(binaries.server, agents.goServer.dir);
    nginx = await startNginx(nginxPrefix, agents.nginx.dir);
  }, 120_000);

  afterAll(async () => {
    nginx?.stop();
    await goServer?.close();
    grpcServer?.close();
    for (const { agent } of Object.values(agents)) await agent.stop();
    sdkServer?.close();
    sdkClient?.close();
    await ca?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  /** One round of calls in every direction; returns what failed. */
  async function round(label: string): Promise<string[]> {
    const failures: string[] = [];
    const sdkToGo = new TestClient(goServer.address, grpcChannelCredentials(sdkClient, { expect: id('go/server') }), grpcChannelOptions());
    const check = await sdkToGo.check();
    sdkToGo.close();
    if (!check.ok) failures.push(`${label}: SDK → grpc-go: ${check.error.message}`);
    const goToSdk = await runGoClient(binaries.client, { address: grpcServer.address, dir: agents.goClient.dir, expect: id('sdk/server'), count: 2 });
    if (goToSdk.status !== 0) failures.push(`${label}: grpc-go → SDK: ${goToSdk.stdout}${goToSdk.stderr}`);
    const agent = new MtlsHttpsAgent(sdkClient, id('nginx'), { keepAlive: false });
    const status = await new Promise<string>((resolve) => {
      const req = httpsRequest(`https://127.0.0.1:${nginx.port}/`, { agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(String(res.statusCode)));
      });
      req.on('error', (error: Error & { code?: string }) => resolve(error.code ?? error.message));
      req.end();
    });
    agent.destroy();
    if (status !== '200') failures.push(`${label}: SDK → nginx: ${status}`);
    return failures;
  }

  /** The serial nginx serves now (it reloads asynchronously after the agent's SIGHUP). */
  const nginxSerial = (): Promise<string> =>
    new Promise((resolve) => {
      const socket = tlsConnect({ host: '127.0.0.1', port: nginx.port, rejectUnauthorized: false, cert: sdkClient.current().certPem, key: sdkClient.current().keyPem }, () => {
        resolve(socket.getPeerCertificate().serialNumber.toLowerCase());
        socket.destroy();
      });
      socket.on('error', () => resolve(''));
    });

  async function settled(what: string, agentsReady: (agent: Agent, dir: string) => boolean, sdkReady: (source: CaIdentitySource) => boolean): Promise<void> {
    for (const { agent, dir } of Object.values(agents)) await until(() => agentsReady(agent, dir), `${what}: agent ${dir}`);
    for (const source of [sdkServer, sdkClient]) await until(() => sdkReady(source), `${what}: SDK workload`);
    await until(async () => (await nginxSerial()) === agents.nginx.agent.status().serial, `${what}: nginx serves the agent's current certificate`);
  }

  it('every call succeeds in every phase', async () => {
    const failures: string[] = [];
    failures.push(...(await round('initial')));

    // Renewals: every workload gets a new certificate and key.
    const serials = new Map(Object.values(agents).map(({ agent }) => [agent, agent.status().serial]));
    const sdkSerials = new Map([sdkServer, sdkClient].map((source) => [source, source.current().serial]));
    for (const { agent } of Object.values(agents)) agent.renewNow();
    for (const source of [sdkServer, sdkClient]) source.renewNow();
    await settled('renewal', (agent) => agent.status().serial !== serials.get(agent), (source) => source.current().serial !== sdkSerials.get(source));
    failures.push(...(await round('after renewal')));

    // 1. prepare: a new root and intermediate; bundles and CRLs reach every workload.
    const store = ca.running.authority.store;
    const prepared = await prepareRotation({ store, passphrase: PASSPHRASE, newRoot: true });
    await updateDataDirTrust(ca.dataDir, store, { add: [prepared.root!.fingerprint] });
    await ca.running.keys.reload();
    await ca.running.crls.refresh();
    const bundleOf = (dir: string): string => readFileSync(join(dir, 'bundle.pem'), 'utf8');
    const crlsOf = (dir: string): number => pemBlocks(readFileSync(join(dir, 'crl.pem'), 'utf8'), 'X509 CRL').length;
    await settled('prepare', (_agent, dir) => rootsIn(bundleOf(dir)) === 2 && crlsOf(dir) === 4, (source) => rootsIn(source.current().bundlePem) === 2 && source.current().crlList.length === 4);
    failures.push(...(await round('after prepare')));

    // 2. activate, and everyone renews onto the new intermediate.
    await activateRotation({ store });
    await ca.running.keys.reload();
    const newIssuer = prepared.intermediateId;
    for (const { agent } of Object.values(agents)) agent.renewNow();
    for (const source of [sdkServer, sdkClient]) source.renewNow();
    const issuedByNew = async (serial: string | null): Promise<boolean> => serial !== null && (await store.getCertificate(serial))?.issuerKeyId === newIssuer;
    for (const { agent, dir } of Object.values(agents)) await until(() => issuedByNew(agent.status().serial), `activate: agent ${dir} renewed onto the new intermediate`);
    for (const source of [sdkServer, sdkClient]) await until(() => issuedByNew(source.current().serial), 'activate: SDK workload renewed onto the new intermediate');
    await settled('activate', () => true, () => true);
    failures.push(...(await round('after activate')));

    // 3. retire: the old root leaves every bundle (forced: the old certificates are still valid).
    const retired = await retireRotation({ store, force: true });
    await updateDataDirTrust(ca.dataDir, store, { remove: retired.retiredRootFingerprints });
    await ca.running.keys.reload();
    await ca.running.crls.refresh();
    await settled('retire', (_agent, dir) => rootsIn(bundleOf(dir)) === 1, (source) => rootsIn(source.current().bundlePem) === 1);
    failures.push(...(await round('after retire')));

    expect(failures).toEqual([]);
    expect(goServer.peers().length).toBeGreaterThanOrEqual(5);
  }, 180_000);
});

/** nginx (Debian) with the agent's files; master process on so SIGHUP reloads it. */
async function startNginx(prefix: string, dir: string): Promise<{ port: number; pidFile: string; stop: () => void }> {
  const { createServer } = await import('node:net');
  const port = await new Promise<number>((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const address = probe.address() as { port: number };
      probe.close(() => resolve(address.port));
    });
  });
  const { mkdirSync } = await import('node:fs');
  mkdirSync(prefix, { recursive: true });
  const pidFile = join(prefix, 'nginx.pid');
  const config = [
    'daemon on;',
    // Workers must read the agent's 0600 key.pem: as root, keep them root (tests only).
    ...(process.getuid?.() === 0 ? ['user root;'] : []),
    'worker_processes 1;',
    `pid ${pidFile};`,
    `error_log ${prefix}/error.log info;`,
    'events { worker_connections 64; }',
    'http {',
    '  access_log off;',
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((kind) => `  ${kind}_temp_path ${prefix}/${kind}_temp;`),
    '  server {',
    `    listen 127.0.0.1:${port} ssl;`,
    `    ssl_certificate ${dir}/cert.pem;`,
    `    ssl_certificate_key ${dir}/key.pem;`,
    `    ssl_client_certificate ${dir}/bundle.pem;`,
    `    ssl_crl ${dir}/crl.pem;`,
    '    ssl_verify_client on;',
    '    ssl_verify_depth 2;',
    '    ssl_protocols TLSv1.2 TLSv1.3;',
    '    location / { return 200 "ok"; }',
    '  }',
    '}',
  ].join('\n');
  writeFileSync(join(prefix, 'nginx.conf'), config);
  const started = spawnSync(NGINX, ['-p', prefix, '-c', join(prefix, 'nginx.conf'), '-e', join(prefix, 'error.log')], { encoding: 'utf8' });
  if (started.status !== 0) throw new Error(`nginx did not start: ${started.stderr}`);
  await until(() => {
    try {
      return readFileSync(pidFile, 'utf8').trim() !== '';
    } catch {
      return false;
    }
  }, 'nginx writes its pid file');
  return {
    port,
    pidFile,
    stop: () => {
      spawnSync(NGINX, ['-p', prefix, '-c', join(prefix, 'nginx.conf'), '-e', join(prefix, 'error.log'), '-s', 'stop']);
    },
  };
}
