/**
 * Every fault the agent is expected to survive or explain, each against the real CA:
 *
 * - the CA down at start (retries with backoff, health says why, enrols when it is back);
 * - the CA down for longer than the lifetime (expiry is loud: error log, health 503, counter;
 *   `--once` on expired files exits 3; a new token brings it back);
 * - an output directory that cannot be written (refused before the token is spent), a disk that
 *   fills up or turns read-only mid-life (the old files stay and serve, the error is reported, the
 *   write is retried — on a real tmpfs when the tests run as root);
 * - corrupt files on disk (replaced: by enrolling again with a token, or without one when only
 *   bundle.pem or crl.pem is damaged; exit 3 naming the file when a token is needed and absent);
 * - a token that is expired, already used or malformed (exit 3, the CA's code, a clear message).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NODE_FS, runAgentOnce, startHealthServer, tokenFromFile, writeCredentialSet, type DirectoryFs } from '../../src/agent/index.js';
import { startTestCa, shiftedAuthority, type TestCa } from '../helpers/ca.js';
import { capturedLogger, expiredMaterialFor, materialFor, withDeadline } from '../sdk/support.js';
import { baseOptions, fakeAgent, getHealth, ID, opensslVerify, readText, serialOnDisk, startProxy, tempRoot, tinyTmpfs, tokenFile, tokenFor } from './support.js';

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

const once = (dir: string, extra: Parameters<typeof runAgentOnce>[0] extends infer O ? Partial<O> : never = {}) => {
  const log = capturedLogger();
  return withDeadline(runAgentOnce({ ...baseOptions(ca, dir), logger: log.logger, ...extra }), 30_000, '--once to finish').then((result) => ({ ...result, log }));
};
const tokenIn = async (name: string, spiffeId: string) => {
  const path = tokenFile(temp.dir(`${name}.token`), await tokenFor(ca, spiffeId));
  return { token: tokenFromFile(path), tokenHint: `the token file ${path}` };
};

describe('the CA unreachable', () => {
  it('fail/CA down at start: retries with growing backoff, the health endpoint says why (503), enrols once the CA is back', async () => {
    const proxy = await startProxy(ca, 'down');
    const { agent, events, clock, advanceTo } = fakeAgent(ca, temp.dir('down-at-start'), { caUrl: proxy.url, ...(await tokenIn('down-at-start', ID('down-at-start'))) });
    const health = await startHealthServer(agent, { host: '127.0.0.1', port: 0 });
    try {
      const first = await events.next('failed');
      expect(first).toMatchObject({ step: 'enrol', error: { code: 'ERR_CA_UNREACHABLE' }, retryInMs: 750 }); // 1 s nominal, random 0.5
      expect(await getHealth(health.url)).toMatchObject({ status: 503, body: { status: 'error', serial: null, lastError: { code: 'ERR_CA_UNREACHABLE' }, counters: { renewalFailures: 1 } } });

      let mark = events.mark();
      advanceTo(clock.now + first.retryInMs!);
      const second = await events.next('failed', { from: mark });
      expect(second.retryInMs).toBe(1500);

      proxy.up();
      mark = events.mark();
      advanceTo(clock.now + second.retryInMs!);
      await events.next('ready', { from: mark });
      expect(await getHealth(health.url)).toMatchObject({ status: 200, body: { status: 'ok', spiffeId: ID('down-at-start'), counters: { enrolments: 1, renewalFailures: 2 } } });
    } finally {
      await health.close();
      await agent.stop();
      await proxy.close();
    }
  });

  it('fail/CA down when renewal is due (files kept, health expiring) and beyond the lifetime: expiry is loud (error log, health 503, counter) and keeps being retried', async () => {
    const dir = temp.dir('expiry');
    const proxy = await startProxy(ca, 'up');
    const daemon = fakeAgent(ca, dir, { caUrl: proxy.url, ...(await tokenIn('expiry', ID('expiry'))) });
    const health = await startHealthServer(daemon.agent, { host: '127.0.0.1', port: 0 });
    try {
      const ready = await daemon.agent.ready();
      proxy.down();
      // Renewal due, CA down: the renewal fails, the current files stay and serve ('expiring', 200).
      const due = daemon.events.mark();
      daemon.advanceTo(Date.parse(ready.nextRenewalAt!));
      expect(await daemon.events.next('failed', { from: due })).toMatchObject({ step: 'renew', error: { code: 'ERR_CA_UNREACHABLE' } });
      expect(await getHealth(health.url)).toMatchObject({ status: 200, body: { status: 'expiring', serial: ready.serial, counters: { renewalFailures: 1 } } });
      expect(serialOnDisk(dir)).toBe(ready.serial);

      // Still down at notAfter.
      const notAfter = Date.parse(ready.notAfter!);
      const mark = daemon.events.mark();
      daemon.advanceTo(notAfter + 1);
      const expired = await daemon.events.next('expired', { from: mark });
      expect(expired.serial).toBe(ready.serial);
      const line = await daemon.log.next((entry) => entry['event'] === 'agent.expired');
      expect(line).toMatchObject({ level: 50, serial: ready.serial });
      expect(line.msg).toMatch(/expired at .* a new enrolment token is needed/);
      expect(await getHealth(health.url)).toMatchObject({ status: 503, body: { status: 'expired', counters: { expirations: 1 } } });

      // It keeps trying, loudly, with backoff.
      const failed = await daemon.events.next('failed', { from: mark });
      expect(failed.error).toMatchObject({ code: 'ERR_CA_UNREACHABLE' });
      // Before expiry a failed renewal is a warning; after it, an error.
      expect(daemon.log.lines.find((entry) => entry['event'] === 'agent.renew_failed')).toMatchObject({ level: 40 });
      expect(await daemon.log.next((entry) => entry['event'] === 'agent.renew_failed' && entry.level === 50)).toMatchObject({ code: 'ERR_CA_UNREACHABLE' });
      const again = daemon.events.mark();
      daemon.advanceTo(daemon.clock.now + failed.retryInMs!);
      await daemon.events.next('failed', { from: again });
      expect(serialOnDisk(dir)).toBe(ready.serial); // the expired files stay: nothing better to put there
    } finally {
      await health.close();
      await daemon.agent.stop();
    }

    await proxy.close();
  });

  it('fail/--once on an expired set (truly expired: issued on a CA clock two days back) exits 3 without a token; a new token brings it back', async () => {
    const dir = temp.dir('expired-once');
    const expired = await expiredMaterialFor(ca, ID('expired-once'));
    await writeCredentialSet(dir, { ...expired });
    const result = await once(dir);
    expect(result.exitCode).toBe(3);
    expect(result.error).toMatchObject({ code: 'ERR_TOKEN_MALFORMED', message: expect.stringMatching(/cert\.pem expired at .*no enrolment token/) as unknown });
    expect(result.status).toMatchObject({ status: 'error', serial: null });
    expect(serialOnDisk(dir)).toBe(expired.serial); // left as it was

    const recovered = await once(dir, await tokenIn('expired-once', ID('expired-once')));
    expect(recovered).toMatchObject({ exitCode: 0, status: { status: 'ok', counters: { enrolments: 1 } } });
    expect(serialOnDisk(dir)).toBe(recovered.status.serial);
  });
});

describe('an output directory that cannot be written', () => {
  it('fail/the output path runs through a regular file (what stops root too): ERR_IDENTITY_FILE, exit 1, and the token is not spent', async () => {
    const file = temp.dir('a-regular-file');
    writeFileSync(file, 'not a directory');
    const token = await tokenIn('unwritable', ID('unwritable'));
    const result = await once(join(file, 'out'), token);
    expect(result.exitCode).toBe(1);
    expect(result.error).toMatchObject({ code: 'ERR_IDENTITY_FILE', message: expect.stringContaining(join(file, 'out')) as unknown });
    // The same token still enrols: the directory was checked before the CA was asked.
    expect((await once(temp.dir('unwritable-ok'), token)).exitCode).toBe(0);
  });

  it('fail/disk full during a renewal: the old set stays whole and serves, the error is reported, the write is retried without asking the CA again', async () => {
    const dir = temp.dir('disk-full');
    const broken = { on: false };
    const fs: DirectoryFs = {
      ...NODE_FS,
      writeFile: (path, content, mode) => (broken.on ? Promise.reject(Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' })) : NODE_FS.writeFile(path, content, mode)),
    };
    const { agent, events, clock, advanceTo } = fakeAgent(ca, dir, { fs, ...(await tokenIn('disk-full', ID('disk-full'))) });
    try {
      const ready = await agent.ready();
      broken.on = true;
      let mark = events.mark();
      advanceTo(Date.parse(ready.nextRenewalAt!));
      const failed = await events.next('failed', { from: mark });
      expect(failed).toMatchObject({ step: 'write', error: { code: 'ERR_IDENTITY_FILE', message: expect.stringMatching(/ENOSPC \(disk full\).*previous files are unchanged/) as unknown } });
      expect(serialOnDisk(dir)).toBe(ready.serial);
      expect(agent.status()).toMatchObject({ status: 'expiring', pendingWrite: true, lastError: { code: 'ERR_IDENTITY_FILE' }, counters: { renewals: 1, writeFailures: 1, writes: 1 } });

      broken.on = false;
      mark = events.mark();
      advanceTo(clock.now + failed.retryInMs!);
      const written = await events.next('written', { from: mark });
      expect(written.reasons).toEqual(['renewed']);
      expect(serialOnDisk(dir)).toBe(written.serial);
      const { certificates } = await ca.admin.listCertificates({ spiffeId: ID('disk-full') });
      expect(certificates).toHaveLength(2); // the enrolment and one renewal: the retry only wrote
      expect(agent.status()).toMatchObject({ pendingWrite: false, counters: { renewals: 1, writes: 2 } });
    } finally {
      await agent.stop();
    }
  });

  it('fail/a real full tmpfs, then a read-only remount: old files intact, error reported, written once the space is back (root only)', async (context) => {
    const tmpfs = tinyTmpfs(256);
    if (tmpfs === null) {
      context.skip('needs root and permission to mount a tmpfs (root ignores chmod, so this is how a write fails for root)');
      return;
    }
    const dir = join(tmpfs.path, 'out');
    const { agent, events, clock, advanceTo } = fakeAgent(ca, dir, { ...(await tokenIn('tmpfs', ID('tmpfs'))) });
    try {
      const ready = await agent.ready();
      for (const [code, breakIt, fixIt] of [
        ['ENOSPC', () => tmpfs.fill(), () => tmpfs.unfill()],
        ['EROFS', () => tmpfs.readOnly(true), () => tmpfs.readOnly(false)],
      ] as const) {
        const before = serialOnDisk(dir);
        breakIt();
        let mark = events.mark();
        agent.renewNow();
        advanceTo(clock.now);
        const failed = await events.next('failed', { from: mark });
        expect(failed).toMatchObject({ step: 'write', error: { code: 'ERR_IDENTITY_FILE', message: expect.stringContaining(code) as unknown } });
        expect(serialOnDisk(dir)).toBe(before);
        fixIt();
        mark = events.mark();
        advanceTo(clock.now + failed.retryInMs!);
        const written = await events.next('written', { from: mark });
        expect(serialOnDisk(dir)).toBe(written.serial);
        expect(written.serial).not.toBe(ready.serial);
      }
    } finally {
      await agent.stop();
      tmpfs.cleanup();
    }
  });
});

describe('corrupt files on disk', () => {
  const enrolled = async (name: string): Promise<{ dir: string; serial: string }> => {
    const dir = temp.dir(name);
    const result = await once(dir, await tokenIn(name, ID(name)));
    expect(result.exitCode).toBe(0);
    return { dir, serial: result.status.serial! };
  };

  it('fail/a corrupt cert.pem is reported (naming it) and replaced by enrolling again with the token at hand', async () => {
    const { dir, serial } = await enrolled('corrupt-cert');
    writeFileSync(join(dir, 'cert.pem'), '-----BEGIN CERTIFICATE-----\nnot base64 at all\n');
    const result = await once(dir, await tokenIn('corrupt-cert-2', ID('corrupt-cert')));
    expect(result.exitCode).toBe(0);
    expect(result.log.lines.find((line) => line['event'] === 'agent.files_unusable')).toMatchObject({ level: 40, reason: expect.stringMatching(/^cert\.pem: /) as unknown });
    expect(result.status.serial).not.toBe(serial);
    expect(serialOnDisk(dir)).toBe(result.status.serial);
    const verdict = await opensslVerify(dir);
    expect(verdict, verdict.output).toMatchObject({ status: 0 });
  });

  it('fail/a corrupt cert.pem and no token: exit 3, naming cert.pem and saying a token is needed', async () => {
    const { dir } = await enrolled('corrupt-no-token');
    writeFileSync(join(dir, 'cert.pem'), 'garbage');
    const result = await once(dir);
    expect(result.exitCode).toBe(3);
    expect(result.error?.message).toMatch(/cert\.pem: .*no enrolment token/);
  });

  it('fail/a key.pem that is not the certificate\'s and no token: exit 3, naming key.pem', async () => {
    const { dir } = await enrolled('mismatch');
    writeFileSync(join(dir, 'key.pem'), (await materialFor(ca, ID('other'))).keyPem);
    const result = await once(dir);
    expect(result.exitCode).toBe(3);
    expect(result.error?.message).toMatch(/key\.pem: private key: the key does not belong to the leaf certificate/);
  });

  it('ok/a corrupt bundle.pem is replaced without a token and without the CA (the configured bundle stands in)', async () => {
    const { dir, serial } = await enrolled('corrupt-bundle');
    writeFileSync(join(dir, 'bundle.pem'), '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    const proxy = await startProxy(ca, 'down');
    try {
      const result = await once(dir, { caUrl: proxy.url });
      expect(result).toMatchObject({ exitCode: 0, status: { serial, counters: { writes: 1, enrolments: 0, renewals: 0 } } });
      expect(result.log.lines.find((line) => line['event'] === 'agent.files_repaired')).toMatchObject({ repairs: [expect.stringMatching(/^bundle\.pem: /)] });
      expect(readText(join(dir, 'bundle.pem'))).toBe(ca.bundlePem);
    } finally {
      await proxy.close();
    }
  });

  it('ok/a corrupt crl.pem is dropped at once, then replaced by the CA\'s CRLs through the feed', async () => {
    const { dir, serial } = await enrolled('corrupt-crl');
    const good = readText(join(dir, 'crl.pem'));
    writeFileSync(join(dir, 'crl.pem'), '-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n');
    const { agent, events } = fakeAgent(ca, dir);
    try {
      await agent.ready();
      const refreshed = await events.next('written', { from: 0, where: (event) => event.reasons.includes('crl') });
      expect(refreshed.serial).toBe(serial);
      expect(readText(join(dir, 'crl.pem'))).toBe(good);
      expect(events.events.find((event) => event.type === 'written')).toMatchObject({ reasons: ['repaired'] });
      const verdict = await opensslVerify(dir, { crl: true });
      expect(verdict, verdict.output).toMatchObject({ status: 0 });
    } finally {
      await agent.stop();
    }
  });
});

describe('tokens', () => {
  it('fail/an expired token: exit 3 with ERR_TOKEN_EXPIRED and a clear message; nothing written', async () => {
    const dir = temp.dir('token-expired');
    const past = shiftedAuthority(ca, -2 * 3600_000);
    const { token } = await past.createToken({ spiffeId: ID('token-expired') }, { spiffeId: past.adminId, peer: null });
    const path = tokenFile(temp.dir('token-expired.token'), token);
    const result = await once(dir, { token: tokenFromFile(path), tokenHint: `the token file ${path}` });
    expect(result.exitCode).toBe(3);
    expect(result.error).toMatchObject({ code: 'ERR_TOKEN_EXPIRED', message: expect.stringMatching(new RegExp(`refused the enrolment token from the token file ${path}: .*expired.*a new token is needed`)) as unknown });
    expect(existsSync(join(dir, 'cert.pem'))).toBe(false);
  });

  it('fail/a token already used: the daemon does not start (ERR_TOKEN_REUSED, exit 3)', async () => {
    const token = await tokenIn('token-reused', ID('token-reused'));
    expect((await once(temp.dir('token-reused-1'), token)).exitCode).toBe(0);
    const { agent, events } = fakeAgent(ca, temp.dir('token-reused-2'), token);
    const error = await agent.ready().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ERR_TOKEN_REUSED', message: expect.stringMatching(/already been used/) as unknown });
    expect((await events.next('fatal', { from: 0 })).error).toBe(error);
    expect(agent.status().nextRenewalAt).toBeNull(); // stopped: no retry of a token that cannot work
  });

  it('fail/a malformed token, and no token at all: exit 3', async () => {
    const path = temp.dir('garbage.token');
    writeFileSync(path, 'not-a-jwt\n');
    const malformed = await once(temp.dir('token-garbage'), { token: tokenFromFile(path) });
    expect(malformed).toMatchObject({ exitCode: 3, error: { code: 'ERR_TOKEN_MALFORMED' } });
    const none = await once(temp.dir('token-none'), { token: tokenFromFile(temp.dir('no-such.token')), tokenHint: 'TLSMESH_TOKEN' });
    expect(none).toMatchObject({ exitCode: 3, error: { code: 'ERR_TOKEN_MALFORMED', message: expect.stringMatching(/holds no credentials yet, and there is no enrolment token.*TLSMESH_TOKEN/) as unknown } });
  });

  it('fail/a token for another identity than the one configured: exit 2 (configuration)', async () => {
    const dir = temp.dir('token-other');
    mkdirSync(dir);
    const result = await once(dir, { ...(await tokenIn('token-other', ID('somebody'))), spiffeId: ID('me') });
    expect(result).toMatchObject({ exitCode: 2, error: { code: 'ERR_CONFIG', message: expect.stringMatching(/is for spiffe:\/\/example.org\/somebody/) as unknown } });
    expect(readFileSync(temp.dir('token-other.token'), 'utf8')).toMatch(/\./); // left in place
  });
});
