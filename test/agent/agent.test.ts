/**
 * The agent against a real CA, on a fake clock: enrolment (files, modes, OpenSSL's verdict),
 * restart without a token, renewal at 2/3 with a new key and a whole-set swap, `--once`, and a
 * host clock off by ±5 minutes.
 */
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAgentOnce, tokenFromFile } from '../../src/agent/index.js';
import { renewAt } from '../../src/sdk/sources/renew-schedule.js';
import { fileIdentity } from '../../src/sdk/sources/file.js';
import { pemBlocks } from '../../src/pki/index.js';
import { startTestCa, type TestCa } from '../helpers/ca.js';
import { FakeClock } from '../sdk/fake-clock.js';
import { capturedLogger, withDeadline } from '../sdk/support.js';
import { baseOptions, fakeAgent, ID, opensslVerify, readText, recorder, serialOnDisk, startProxy, tempRoot, tokenFile, tokenFor, type CaProxy } from './support.js';

/** Every regular file under `dir` (links not followed) whose content includes `text`. */
function filesHolding(dir: string, text: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    const info = lstatSync(path);
    if (info.isDirectory()) return filesHolding(path, text);
    return info.isFile() && readFileSync(path, 'utf8').includes(text) ? [path] : [];
  });
}

let ca: TestCa;
let temp: ReturnType<typeof tempRoot>;
let proxy: CaProxy;

beforeAll(async () => {
  ca = await startTestCa();
  temp = tempRoot();
  proxy = await startProxy(ca, 'down'); // a CA address that answers nothing: proves no CA call was needed
});
afterAll(async () => {
  await proxy.close();
  temp.cleanup();
  await ca.close();
});

describe('enrolment and restart', () => {
  it('ok/enrols with a token file: cert.pem (leaf + intermediate), key.pem 0600, bundle.pem, crl.pem; OpenSSL verifies the chain and the CRLs', async () => {
    const dir = temp.dir('enrol');
    const path = tokenFile(temp.dir('enrol.token'), await tokenFor(ca, ID('enrol')));
    const { agent, events } = fakeAgent(ca, dir, { token: tokenFromFile(path), tokenHint: `the token file ${path}` });
    try {
      const status = await agent.ready();
      expect(status).toMatchObject({ status: 'ok', spiffeId: ID('enrol'), lastError: null, revoked: false, pendingWrite: false, counters: { enrolments: 1, writes: 1, renewals: 0 } });
      expect(events.events.find((event) => event.type === 'written')).toMatchObject({ reasons: ['enrolled'] });

      expect(pemBlocks(readText(join(dir, 'cert.pem')), 'CERTIFICATE')).toHaveLength(2);
      expect(statSync(join(dir, 'key.pem')).mode & 0o777).toBe(0o600);
      expect(readText(join(dir, 'bundle.pem'))).toBe(ca.bundlePem);
      expect(readText(join(dir, 'crl.pem'))).toMatch(/-----BEGIN X509 CRL-----/);
      expect(readlinkSync(join(dir, '..data'))).toMatch(/^\.tlsmesh-/);
      expect(serialOnDisk(dir)).toBe(status.serial);

      const plain = await opensslVerify(dir);
      expect(plain, plain.output).toMatchObject({ status: 0 });
      const withCrls = await opensslVerify(dir, { crl: true });
      expect(withCrls, withCrls.output).toMatchObject({ status: 0 });

      // The renewal is planned on the certificate's own dates: 2/3 of its lifetime (jitter 0 here).
      const expected = renewAt(new Date(status.notBefore!), new Date(status.notAfter!), 0).toISOString();
      expect(status.nextRenewalAt).toBe(expected);
      expect(existsSync(path)).toBe(true); // the spent token is left where the operator put it
    } finally {
      await agent.stop();
    }
  });

  it('ok/a restart reuses a valid set: no token, no CA (the CA address answers nothing)', async () => {
    const dir = temp.dir('restart');
    const first = fakeAgent(ca, dir, { token: tokenFromFile(tokenFile(temp.dir('restart.token'), await tokenFor(ca, ID('restart')))) });
    const serial = (await first.agent.ready()).serial;
    await first.agent.stop();

    const again = fakeAgent(ca, dir, { caUrl: proxy.url });
    try {
      const status = await again.agent.ready();
      expect(status).toMatchObject({ status: 'ok', serial, counters: { enrolments: 0, writes: 0 } });
      expect(again.events.events.find((event) => event.type === 'ready')).toMatchObject({ reused: true });
      expect(again.log.lines.find((line) => line['event'] === 'agent.reused')).toBeDefined();
    } finally {
      await again.agent.stop();
    }
  });

  it('ok/renews at 2/3 of the lifetime over mTLS with a new key; the whole set is swapped at once; the old key is gone from disk', async () => {
    const dir = temp.dir('renew');
    const { agent, events, advanceTo } = fakeAgent(ca, dir, { token: tokenFromFile(tokenFile(temp.dir('renew.token'), await tokenFor(ca, ID('renew')))) });
    try {
      const first = await agent.ready();
      const oldKey = readText(join(dir, 'key.pem'));
      const oldVersion = readlinkSync(join(dir, '..data'));
      const reader = await fileIdentity({ dir }, { debounceMs: 10, logger: capturedLogger().logger });
      const seen = withDeadline(new Promise<string>((resolve) => reader.subscribe((identity) => resolve(identity.serial))), 20_000, 'the reader to see the new set');

      const due = Date.parse(first.nextRenewalAt!);
      const mark = events.mark();
      advanceTo(due - 1);
      expect(events.events.slice(mark).filter((event) => event.type === 'written')).toEqual([]);
      advanceTo(due);
      const written = await events.next('written', { from: mark });
      expect(written.reasons).toEqual(['renewed']);
      expect(written.serial).not.toBe(first.serial);

      expect(serialOnDisk(dir)).toBe(written.serial);
      const newKey = readText(join(dir, 'key.pem'));
      expect(newKey).not.toBe(oldKey);
      // The old key is nowhere under the directory any more: its version directory went with it.
      expect(existsSync(join(dir, oldVersion))).toBe(false);
      expect(filesHolding(dir, oldKey)).toEqual([]);
      expect(readdirSync(dir).filter((name) => name.startsWith('.tlsmesh-'))).toEqual([readlinkSync(join(dir, '..data'))]);
      expect(await seen).toBe(written.serial);
      reader.close();

      const { certificates } = await ca.admin.listCertificates({ spiffeId: ID('renew') });
      expect(certificates.find((c) => c.serial === written.serial)?.origin).toBe(`renew:${first.serial}`);
      // The fake clock now runs 16 h ahead of the CA's, so by it the fresh certificate is already
      // 2/3 old: 'expiring', and the next attempt waits 30 s rather than looping on the CA.
      expect(agent.status()).toMatchObject({ status: 'expiring', counters: { renewals: 1, enrolments: 1, writes: 2 } });
      expect(Date.parse(agent.status().nextRenewalAt!)).toBe(due + 30_000);
      const verdict = await opensslVerify(dir, { crl: true });
      expect(verdict, verdict.output).toMatchObject({ status: 0 });
    } finally {
      await agent.stop();
    }
  });
});

describe('--once', () => {
  it('ok/enrols and exits 0; again with a valid set, exits 0 without the CA', async () => {
    const dir = temp.dir('once');
    const token = tokenFromFile(tokenFile(temp.dir('once.token'), await tokenFor(ca, ID('once'))));
    const first = await runAgentOnce({ ...baseOptions(ca, dir), token, logger: capturedLogger().logger });
    expect(first).toMatchObject({ exitCode: 0, error: null, status: { status: 'ok', spiffeId: ID('once'), counters: { enrolments: 1 } } });
    expect(serialOnDisk(dir)).toBe(first.status.serial);
    expect(readText(join(dir, 'crl.pem'))).toMatch(/X509 CRL/);

    const second = await runAgentOnce({ ...baseOptions(ca, dir), caUrl: proxy.url, logger: capturedLogger().logger });
    expect(second).toMatchObject({ exitCode: 0, status: { serial: first.status.serial, counters: { enrolments: 0, renewals: 0, writes: 0 } } });
  });

  it('ok/a set that is due is renewed, then --once exits 0', async () => {
    const dir = temp.dir('once-due');
    const token = tokenFromFile(tokenFile(temp.dir('once-due.token'), await tokenFor(ca, ID('once-due'))));
    const first = await runAgentOnce({ ...baseOptions(ca, dir), token, logger: capturedLogger().logger });
    const clock = new FakeClock(Date.parse(first.status.notBefore!) + (Date.parse(first.status.notAfter!) - Date.parse(first.status.notBefore!)) * 0.8);
    const second = await runAgentOnce({ ...baseOptions(ca, dir), clock: clock.clock, timers: clock, logger: capturedLogger().logger });
    expect(second).toMatchObject({ exitCode: 0, status: { counters: { renewals: 1 } } });
    expect(second.status.serial).not.toBe(first.status.serial);
    expect(serialOnDisk(dir)).toBe(second.status.serial);
  });
});

describe('--once, the CA down', () => {
  it('ok/a due set that cannot be renewed now is left in place: exit 0 at once (not at the deadline), the error says why', async () => {
    const dir = temp.dir('once-due-down');
    const token = tokenFromFile(tokenFile(temp.dir('once-due-down.token'), await tokenFor(ca, ID('once-due-down'))));
    const first = await runAgentOnce({ ...baseOptions(ca, dir), token, logger: capturedLogger().logger });
    const lifetime = Date.parse(first.status.notAfter!) - Date.parse(first.status.notBefore!);
    const clock = new FakeClock(Date.parse(first.status.notBefore!) + lifetime * 0.8); // past 2/3 + the largest jitter
    const result = await runAgentOnce({ ...baseOptions(ca, dir), caUrl: proxy.url, clock: clock.clock, timers: clock, logger: capturedLogger().logger });
    expect(result).toMatchObject({ exitCode: 0, error: { code: 'ERR_CA_UNREACHABLE' }, status: { status: 'expiring', serial: first.status.serial } });
    expect(serialOnDisk(dir)).toBe(first.status.serial);
  });

  it('fail/no set and the CA down: retries until --once-timeout, then exit 4', async () => {
    const clock = new FakeClock(Date.now());
    const events = recorder();
    const running = runAgentOnce({ ...baseOptions(ca, temp.dir('once-down')), caUrl: proxy.url, token: tokenFromFile(tokenFile(temp.dir('once-down.token'), await tokenFor(ca, ID('once-down')))), clock: clock.clock, timers: clock, timeoutMs: 10_000, logger: capturedLogger().logger, onEvent: events.onEvent });
    const failed = await events.next('failed');
    clock.advanceTo(clock.now + failed.retryInMs!);
    await events.next('failed', { from: events.events.indexOf(failed) + 1 });
    clock.advanceTo(clock.now + 10_000);
    expect(await running).toMatchObject({ exitCode: 4, error: { code: 'ERR_CA_UNREACHABLE' }, status: { status: 'error' } });
  });
});

describe('clock skew', () => {
  it.each([
    ['5 minutes behind', -5 * 60_000],
    ['5 minutes ahead', 5 * 60_000],
  ])('ok/host clock %s: enrols, reports ok, plans renewal on the certificate\'s dates, and reuses the set after a restart', async (_name, offsetMs) => {
    const dir = temp.dir(`skew${offsetMs}`);
    const { agent, log, clock } = fakeAgent(ca, dir, { offsetMs, token: tokenFromFile(tokenFile(temp.dir(`skew${offsetMs}.token`), await tokenFor(ca, ID('skew')))) });
    try {
      const status = await agent.ready();
      expect(status.status).toBe('ok');
      // Behind: the fresh certificate starts ~4 min in our future (60 s backdate); that is seen and corrected for.
      if (offsetMs < 0) expect(status.clockBehindMs).toBeGreaterThan(3 * 60_000);
      else expect(status.clockBehindMs).toBe(0);
      expect(status.nextRenewalAt).toBe(renewAt(new Date(status.notBefore!), new Date(status.notAfter!), 0).toISOString());
      expect(log.lines.filter((line) => line['event'] === 'agent.clock_skew')).toEqual([]);
    } finally {
      await agent.stop();
    }
    const again = fakeAgent(ca, dir, { fakeClock: clock, caUrl: proxy.url });
    try {
      expect(await again.agent.ready()).toMatchObject({ status: 'ok', counters: { writes: 0 } });
      expect(again.log.lines.filter((line) => line['event'] === 'agent.clock_skew')).toEqual([]);
    } finally {
      await again.agent.stop();
    }
  });

  it('ok/a clock 10 minutes behind is beyond the tolerance: a warning, and the agent still works', async () => {
    const dir = temp.dir('skew-far');
    const { agent, log } = fakeAgent(ca, dir, { offsetMs: -10 * 60_000, token: tokenFromFile(tokenFile(temp.dir('skew-far.token'), await tokenFor(ca, ID('skew-far')))) });
    try {
      expect((await agent.ready()).status).toBe('ok');
      expect(log.lines.find((line) => line['event'] === 'agent.clock_skew')).toMatchObject({ level: 40 });
    } finally {
      await agent.stop();
    }
  });
});
