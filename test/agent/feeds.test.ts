/**
 * Following what the CA publishes: a new root (a real rotation step at the CA: prepare with a new
 * root, pinned in ca.yaml) reaches bundle.pem through the watch stream and the reload hook runs;
 * after activation the agent still reaches the CA (it trusts the roots on disk) and renews onto the
 * new chain. Revocations reach crl.pem through the CRL stream (or the ETag poll with --no-watch),
 * and OpenSSL then refuses the revoked certificate; the agent's own certificate revoked is loud,
 * makes the health endpoint answer 503, and is replaced with a token.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { startHealthServer, tokenFromFile } from '../../src/agent/index.js';
import { activateRotation, prepareRotation } from '../../src/ca/rotation.js';
import { fingerprintOf, pemBlocks } from '../../src/pki/index.js';
import { enrollWorkload, PASSPHRASE, startTestCa, type TestCa } from '../helpers/ca.js';
import { eventually, fakeAgent, getHealth, ID, opensslVerify, readText, serialOnDisk, tempRoot, tokenFile, tokenFor } from './support.js';

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

describe('trust bundle', () => {
  it('ok/a new root at the CA reaches bundle.pem through the stream (reload hook runs); after activation the agent renews onto the new chain', async () => {
    const rotating = await startTestCa(); // its own CA: this one's keys change
    const dir = temp.dir('bundle');
    const marker = temp.dir('bundle.reasons');
    const { agent, events, clock, advanceTo, log } = fakeAgent(rotating, dir, {
      token: tokenFromFile(tokenFile(temp.dir('bundle.token'), await tokenFor(rotating, ID('bundle')))),
      reload: [{ kind: 'exec', command: `printf '%s\\n' "$TLSMESH_RELOAD_REASON" >> '${marker}'` }],
    });
    try {
      const ready = await agent.ready();
      const mark = events.mark();
      const prepared = await prepareRotation({ store: rotating.running.authority.store, passphrase: PASSPHRASE, newRoot: true });
      const newRoot = prepared.root!;
      // The CA loads a new root only if ca.yaml pins it (what `tlsmesh ca rotate prepare` does).
      const configPath = join(rotating.dataDir, 'ca.yaml');
      const config = parseYaml(readFileSync(configPath, 'utf8')) as { rootFingerprints: string[] };
      writeFileSync(configPath, stringifyYaml({ ...config, rootFingerprints: [...config.rootFingerprints, newRoot.fingerprint] }));

      const written = await events.next('written', { from: mark, where: (event) => event.reasons.includes('bundle'), timeoutMs: 30_000 });
      expect(written.serial).toBe(ready.serial);
      const roots = pemBlocks(readText(join(dir, 'bundle.pem')), 'CERTIFICATE').map(fingerprintOf);
      expect(roots).toHaveLength(2);
      expect(roots).toContain(newRoot.fingerprint);
      const published = await rotating.anonymous.fetchBundle();
      expect(published).not.toBe('not-modified');
      expect(agent.status().bundleEtag).toBe((published as { etag: string }).etag);
      expect(readFileSync(marker, 'utf8')).toMatch(/bundle/);
      const still = await opensslVerify(dir);
      expect(still, still.output).toMatchObject({ status: 0 }); // the current chain still leads to the old root, which stays

      // Activation: the CA now presents (and issues under) the new chain; the agent trusts it
      // through bundle.pem, renews, and the new chain verifies against the bundle on disk.
      await activateRotation({ store: rotating.running.authority.store });
      await eventually(() => rotating.logs.some((line) => line.includes('ca.keys_reloaded') && line.includes(prepared.intermediateId)), 'the CA to load the activated keys');
      const before = events.mark();
      agent.renewNow();
      advanceTo(clock.now);
      const renewed = await events.next('written', { from: before, where: (event) => event.reasons.includes('renewed') });
      expect(serialOnDisk(dir)).toBe(renewed.serial);
      const verdict = await opensslVerify(dir);
      expect(verdict, verdict.output).toMatchObject({ status: 0 });
      const issuer = rotating.running.authority.keyring.issuer.record;
      expect(issuer.id).toBe(prepared.intermediateId);
      expect(pemBlocks(readText(join(dir, 'cert.pem')), 'CERTIFICATE')[1]!.equals(issuer.certDer!)).toBe(true); // issued under the new intermediate
      // Moving the streams onto a client with the new trust is quiet: no feed reported a failure.
      expect(log.lines.filter((line) => /_feed_failed$/.test(String(line['event'])))).toEqual([]);
    } finally {
      await agent.stop();
      await rotating.close();
    }
  });
});

describe('CRLs', () => {
  it('ok/a revocation reaches crl.pem through the watch stream; OpenSSL then refuses the revoked certificate', async () => {
    const dir = temp.dir('crl');
    const { agent, events } = fakeAgent(ca, dir, { token: tokenFromFile(tokenFile(temp.dir('crl.token'), await tokenFor(ca, ID('crl')))) });
    const other = await enrollWorkload(ca, ID('crl-other'));
    other.client.close();
    try {
      await agent.ready();
      const before = await opensslVerify(dir, { crl: true, certPem: other.certPem });
      expect(before, before.output).toMatchObject({ status: 0 });
      const mark = events.mark();
      await ca.admin.revoke({ serial: other.serial, reason: 'keyCompromise' });
      await events.next('written', { from: mark, where: (event) => event.reasons.includes('crl') });
      const after = await opensslVerify(dir, { crl: true, certPem: other.certPem });
      expect(after.status).not.toBe(0);
      expect(after.output).toMatch(/certificate revoked/);
      expect(agent.status()).toMatchObject({ status: 'ok', revoked: false, counters: { crlUpdates: 1 } });
      expect(agent.status().crlUpdatedAt).not.toBeNull();
    } finally {
      await agent.stop();
    }
  });

  it('ok/with --no-watch the ETag poll brings the revocation at the next poll', async () => {
    const dir = temp.dir('crl-poll');
    const { agent, events, clock, advanceTo } = fakeAgent(ca, dir, { watch: false, pollMs: 10_000, token: tokenFromFile(tokenFile(temp.dir('crl-poll.token'), await tokenFor(ca, ID('crl-poll')))) });
    const other = await enrollWorkload(ca, ID('crl-poll-other'));
    other.client.close();
    try {
      await agent.ready();
      await ca.admin.revoke({ serial: other.serial });
      const mark = events.mark();
      advanceTo(clock.now + 10_000);
      await events.next('written', { from: mark, where: (event) => event.reasons.includes('crl') });
      const after = await opensslVerify(dir, { crl: true, certPem: other.certPem });
      expect(after.output).toMatch(/certificate revoked/);
    } finally {
      await agent.stop();
    }
  });

  it('fail/the agent\'s own certificate revoked: loud, health 503, and replaced by enrolling with the new token in the file', async () => {
    const dir = temp.dir('own');
    const path = tokenFile(temp.dir('own.token'), await tokenFor(ca, ID('own')));
    const { agent, events, log, clock, advanceTo } = fakeAgent(ca, dir, { token: tokenFromFile(path), tokenHint: `the token file ${path}` });
    const health = await startHealthServer(agent, { host: '127.0.0.1', port: 0 });
    try {
      const ready = await agent.ready();
      tokenFile(path, await tokenFor(ca, ID('own'))); // the operator's answer to the alert, ahead of time here
      const mark = events.mark();
      await ca.admin.revoke({ serial: ready.serial!, reason: 'keyCompromise' });
      expect((await events.next('revoked', { from: mark })).serial).toBe(ready.serial);
      expect(await log.next((line) => line['event'] === 'agent.revoked')).toMatchObject({ level: 50, code: 'ERR_CERT_REVOKED' });
      await events.next('written', { from: mark, where: (event) => event.reasons.includes('crl') });
      expect(await getHealth(health.url)).toMatchObject({ status: 503, body: { status: 'error', revoked: true, lastError: { code: 'ERR_CERT_REVOKED' } } });

      advanceTo(clock.now);
      const enrolled = await events.next('written', { from: mark, where: (event) => event.reasons.includes('enrolled') });
      expect(enrolled.serial).not.toBe(ready.serial);
      expect(serialOnDisk(dir)).toBe(enrolled.serial);
      expect(await getHealth(health.url)).toMatchObject({ status: 200, body: { status: 'ok', revoked: false, serial: enrolled.serial } });
      const verdict = await opensslVerify(dir, { crl: true });
      expect(verdict, verdict.output).toMatchObject({ status: 0 });
    } finally {
      await health.close();
      await agent.stop();
    }
  });
});
