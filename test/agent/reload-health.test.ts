/**
 * Reload hooks after a write — a command (with the paths in its environment and never the
 * token), a signal to the process in a pid file, an HTTP call — and what happens when one fails
 * (reported, counted, files kept, run again after the next write) or hangs (killed, with its
 * children). Then the health endpoint: its JSON, its status codes, and its loopback-only default.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readPidFile, runReloadHook, startHealthServer, tokenFromFile, type ReloadContext } from '../../src/agent/index.js';
import { startTestCa, type TestCa } from '../helpers/ca.js';
import { withDeadline } from '../sdk/support.js';
import { eventually, fakeAgent, getHealth, ID, serialOnDisk, tempRoot, tokenFile, tokenFor } from './support.js';

let ca: TestCa;
let temp: ReturnType<typeof tempRoot>;

beforeAll(async () => {
  ca = await startTestCa();
  temp = tempRoot();
});
afterAll(async () => {
  temp.cleanup();
  await ca.close();
});

const tokenOf = async (name: string) => tokenFromFile(tokenFile(temp.dir(`${name}.token`), await tokenFor(ca, ID(name))));
const CONTEXT: ReloadContext = { dir: '/var/run/tlsmesh', spiffeId: ID('x'), serial: 'ab', notAfter: new Date(0), reasons: ['renewed'] };

describe('reload hooks', () => {
  it('ok/exec runs after the write with the paths in its environment, and without TLSMESH_TOKEN', async () => {
    const dir = temp.dir('exec');
    const marker = temp.dir('exec.env');
    const saved = process.env['TLSMESH_TOKEN'];
    process.env['TLSMESH_TOKEN'] = 'a-secret-the-command-must-not-see';
    const { agent, events } = fakeAgent(ca, dir, { token: await tokenOf('exec'), reload: [{ kind: 'exec', command: `env | grep '^TLSMESH_' | sort > '${marker}'` }] });
    try {
      const ready = await agent.ready();
      const reloaded = await events.next('reloaded', { from: 0 });
      expect(reloaded.outcome).toMatchObject({ ok: true, detail: 'exit 0' });
      const env = Object.fromEntries(readFileSync(marker, 'utf8').trim().split('\n').map((line) => line.split(/=(.*)/s).slice(0, 2) as [string, string]));
      expect(env).toEqual({
        TLSMESH_BUNDLE_FILE: `${dir}/bundle.pem`,
        TLSMESH_CERT_DIR: dir,
        TLSMESH_CERT_FILE: `${dir}/cert.pem`,
        TLSMESH_CRL_FILE: `${dir}/crl.pem`,
        TLSMESH_KEY_FILE: `${dir}/key.pem`,
        TLSMESH_NOT_AFTER: ready.notAfter,
        TLSMESH_RELOAD_REASON: 'enrolled',
        TLSMESH_SERIAL: ready.serial,
        TLSMESH_SPIFFE_ID: ID('exec'),
      });
      expect(agent.status().counters).toMatchObject({ reloads: 1, reloadFailures: 0 });
    } finally {
      if (saved === undefined) delete process.env['TLSMESH_TOKEN'];
      else process.env['TLSMESH_TOKEN'] = saved;
      await agent.stop();
    }
  });

  it('ok/signal: SIGHUP reaches the process named by the pid file', async () => {
    const pidFile = temp.dir('app.pid');
    const child = spawn(process.execPath, ['-e', `require('fs').writeFileSync(${JSON.stringify(pidFile)}, String(process.pid)); process.on('SIGHUP', () => console.log('HUP')); console.log('up'); setInterval(() => {}, 1000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    const heard = (text: string) => withDeadline(new Promise<void>((resolve) => {
      const check = () => (output.includes(text) ? resolve() : undefined);
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString('utf8');
        check();
      });
      check();
    }), 10_000, `"${text}" from the child`);
    await heard('up');
    const { agent, events } = fakeAgent(ca, temp.dir('signal'), { token: await tokenOf('signal'), reload: [{ kind: 'signal', signal: 'SIGHUP', pidFile }] });
    try {
      await agent.ready();
      expect((await events.next('reloaded', { from: 0 })).outcome).toMatchObject({ ok: true, detail: `SIGHUP sent to process ${child.pid}` });
      await heard('HUP');
    } finally {
      await agent.stop();
      child.kill('SIGKILL');
    }
  });

  it('ok/http: POST with the new serial; a non-2xx answer is a failure that is reported and retried after the next write', async () => {
    const bodies: unknown[] = [];
    let answer = 500;
    const server = createServer((request: IncomingMessage, response) => {
      let text = '';
      request.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
      request.on('end', () => {
        bodies.push({ method: request.method, body: JSON.parse(text) as unknown });
        response.writeHead(answer).end();
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/-/reload`;
    const dir = temp.dir('http');
    const { agent, events, clock, advanceTo } = fakeAgent(ca, dir, { token: await tokenOf('http'), reload: [{ kind: 'http', url, timeoutMs: 5000 }] });
    try {
      const ready = await agent.ready();
      expect((await events.next('reloaded', { from: 0 })).outcome).toMatchObject({ ok: false, detail: 'answered HTTP 500' });
      expect(bodies[0]).toEqual({ method: 'POST', body: { dir, spiffeId: ID('http'), serial: ready.serial, notAfter: ready.notAfter, reasons: ['enrolled'] } });
      expect(serialOnDisk(dir)).toBe(ready.serial); // the files stay
      expect(agent.status()).toMatchObject({ lastError: { message: expect.stringMatching(/reload hook POST .* failed: answered HTTP 500/) as unknown }, counters: { reloads: 0, reloadFailures: 1 } });

      answer = 204;
      const mark = events.mark();
      agent.renewNow();
      advanceTo(clock.now);
      expect((await events.next('reloaded', { from: mark })).outcome).toMatchObject({ ok: true, detail: 'HTTP 204' });
      expect(agent.status().counters).toMatchObject({ reloads: 1, reloadFailures: 1 });
    } finally {
      await agent.stop();
      server.close();
    }
  });

  it('fail/a command that fails is reported with its exit code and output; the new files stay', async () => {
    const dir = temp.dir('exec-fails');
    const { agent, events } = fakeAgent(ca, dir, { token: await tokenOf('exec-fails'), reload: [{ kind: 'exec', command: 'echo "nginx: [emerg] cannot load certificate" >&2; exit 3' }] });
    try {
      const ready = await agent.ready();
      const reloaded = await events.next('reloaded', { from: 0 });
      expect(reloaded.outcome).toMatchObject({ ok: false, detail: 'exit 3; output: nginx: [emerg] cannot load certificate' });
      expect(serialOnDisk(dir)).toBe(ready.serial);
      expect(agent.status()).toMatchObject({ status: 'ok', counters: { writes: 1, reloadFailures: 1 } });
    } finally {
      await agent.stop();
    }
  });

  it('fail/a command that hangs is killed after its timeout, with what it started', async () => {
    const pidFile = temp.dir('sleeper.pid');
    const outcome = await runReloadHook({ kind: 'exec', command: `sleep 60 & echo $! > '${pidFile}'; wait`, timeoutMs: 300 }, CONTEXT);
    expect(outcome).toMatchObject({ ok: false, detail: expect.stringMatching(/^timed out after 300 ms and was killed/) as unknown });
    const sleeper = Number(readFileSync(pidFile, 'utf8'));
    const gone = (): boolean => {
      try {
        process.kill(sleeper, 0);
        return false;
      } catch {
        return true;
      }
    };
    await withDeadline(new Promise<void>((resolve) => {
      const check = () => (gone() ? resolve() : setTimeout(check, 20));
      check();
    }), 5000, 'the background sleep to be killed');
  });

  it.each([
    ['0', /does not hold|not a process/],
    ['-1', /does not hold a process id/],
    ['1', /holds 1, which is not a process to reload/],
    ['12abc', /does not hold a process id/],
    ['', /does not hold a process id/],
  ])('fail/a pid file holding %j is refused', async (content, message) => {
    const pidFile = temp.dir(`bad-${content || 'empty'}.pid`);
    writeFileSync(pidFile, content);
    await expect(readPidFile(pidFile)).rejects.toThrow(message);
    expect(await runReloadHook({ kind: 'signal', signal: 'SIGHUP', pidFile }, CONTEXT)).toMatchObject({ ok: false, detail: expect.stringMatching(message) as unknown });
  });

  it('fail/a missing pid file, a process that is gone', async () => {
    expect(await runReloadHook({ kind: 'signal', signal: 'SIGHUP', pidFile: temp.dir('none.pid') }, CONTEXT)).toMatchObject({ ok: false, detail: expect.stringMatching(/cannot read the pid file .*ENOENT/) as unknown });
    const exited = spawn(process.execPath, ['-e', '']);
    await once(exited, 'exit');
    const stale = temp.dir('stale.pid');
    writeFileSync(stale, `${exited.pid}\n`);
    expect(await runReloadHook({ kind: 'signal', signal: 'SIGHUP', pidFile: stale }, CONTEXT)).toMatchObject({ ok: false, detail: `no process ${exited.pid} (a stale pid file ${stale}?)` });
  });
});

describe('health endpoint', () => {
  it('ok/GET /healthz: the status as JSON, 200; other paths 404, other methods 405', async () => {
    const { agent } = fakeAgent(ca, temp.dir('health'), { token: await tokenOf('health') });
    const health = await startHealthServer(agent, { host: '127.0.0.1', port: 0 });
    try {
      const ready = await agent.ready();
      await eventually(() => agent.status().bundleEtag !== null, 'the first event of the bundle stream');
      const { status, body } = await getHealth(health.url);
      expect(status).toBe(200);
      expect(body).toEqual({
        status: 'ok',
        dir: temp.dir('health'),
        spiffeId: ID('health'),
        serial: ready.serial,
        notBefore: ready.notBefore,
        notAfter: ready.notAfter,
        nextRenewalAt: ready.nextRenewalAt,
        revoked: false,
        lastError: null,
        bundleEtag: expect.any(String) as unknown,
        crlUpdatedAt: expect.any(String) as unknown,
        crlNextUpdate: expect.any(String) as unknown,
        clockBehindMs: expect.any(Number) as unknown,
        pendingWrite: false,
        counters: { enrolments: 1, renewals: 0, renewalFailures: 0, writes: 1, writeFailures: 0, bundleUpdates: 0, crlUpdates: 0, reloads: 0, reloadFailures: 0, expirations: 0 },
      });
      expect((await fetch(`${health.url}/metrics`)).status).toBe(404);
      expect((await fetch(`${health.url}/healthz`, { method: 'POST' })).status).toBe(405);
      expect((await fetch(`${health.url}/healthz`, { method: 'HEAD' })).status).toBe(200);
    } finally {
      await health.close();
      await agent.stop();
    }
  });

  it('fail/a non-loopback address is refused unless allowed (ERR_CONFIG naming the flag)', async () => {
    const { agent } = fakeAgent(ca, temp.dir('health-any'));
    try {
      await expect(startHealthServer(agent, { host: '0.0.0.0', port: 0 })).rejects.toMatchObject({ code: 'ERR_CONFIG', message: expect.stringMatching(/not a loopback address.*--health-listen-any/) as unknown });
    } finally {
      await agent.stop();
    }
  });
});
