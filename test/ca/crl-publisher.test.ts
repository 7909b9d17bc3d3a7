/**
 * CrlPublisher with an injected clock on a real SQLite store: re-signing before nextUpdate, not
 * re-signing when nothing changed, revocations by "another process" picked up by refresh(), and
 * the offline root's CRL (signed at init, an error logged as it nears expiry).
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { CrlPublisher } from '../../src/ca/crl-publisher.js';
import { initCa } from '../../src/ca/init.js';
import { Keyring } from '../../src/ca/keyring.js';
import { parseCrl, verifyCrlSignature } from '../../src/pki/crl.js';
import { openSqliteStore, type Store } from '../../src/store/index.js';
import { capturedLogger } from '../sdk/support.js';
import { certificate } from '../store/records.js';

const PASSPHRASE = 'a passphrase long enough for the test';
const HOUR = 3_600_000;
const dir = mkdtempSync(join(tmpdir(), 'tlsmesh-crl-publisher-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function setup(offlineRoot: boolean): Promise<{ store: Store; keyring: Keyring; clock: { now: number }; publisher: CrlPublisher; log: ReturnType<typeof capturedLogger> }> {
  const store = await openSqliteStore({ path: join(dir, `${randomUUID()}.db`) });
  onTestFinished(() => store.close());
  await store.migrate();
  const start = new Date('2026-11-22T12:00:00Z');
  await initCa({ store, trustDomain: 'example.org', passphrase: PASSPHRASE, offlineRoot, now: start });
  const keyring = await Keyring.load(store, PASSPHRASE);
  const clock = { now: start.getTime() + 60_000 };
  const log = capturedLogger();
  const publisher = new CrlPublisher({ store, keyring, clock: () => new Date(clock.now), logger: log.logger, policy: { validityMs: 24 * HOUR, refreshBeforeMs: 12 * HOUR, pollMs: 3_600_000 } });
  await publisher.start();
  onTestFinished(() => publisher.stop());
  return { store, keyring, clock, publisher, log };
}

describe('CrlPublisher', () => {
  it('re-signs only when a revocation happened or less than refreshBefore is left', async () => {
    const { store, keyring, clock, publisher } = await setup(false);
    const first = publisher.current().active.record;
    expect(first.crlNumber).toBe(1n);
    expect(first.nextUpdate.getTime() - first.thisUpdate.getTime()).toBe(24 * HOUR);
    expect(verifyCrlSignature(parseCrl(first.der), keyring.issuer.certDer)).toBe(true);

    await publisher.refresh();
    expect(publisher.current().active.record.crlNumber).toBe(1n); // nothing changed

    clock.now += 11 * HOUR; // 13 h left: not due yet
    await publisher.refresh();
    expect(publisher.current().active.record.crlNumber).toBe(1n);

    clock.now += 1 * HOUR + 1000; // just under 12 h left: due
    await publisher.refresh();
    const refreshed = publisher.current().active.record;
    expect(refreshed.crlNumber).toBe(2n);
    expect(refreshed.thisUpdate.getTime()).toBe(Math.floor(clock.now / 1000) * 1000);
    const audit = await store.listAudit({ action: 'crl.publish' });
    // The root's CRL was signed by init (under its ca.init entry); the publisher signed these two.
    expect(audit.map((entry) => [entry.subject, entry.detail['why']])).toEqual([[keyring.issuer.record.id, 'first'], [keyring.issuer.record.id, 'refresh']]);
  });

  it('a revocation written by another process is published on the next refresh, with its entry', async () => {
    const { store, keyring, publisher } = await setup(false);
    const changes: bigint[] = [];
    publisher.onChange((crls) => changes.push(crls.active.record.crlNumber));
    const revoked = certificate({ issuerKeyId: keyring.issuer.record.id, notAfter: new Date(Date.now() + 48 * HOUR) });
    await store.insertCertificate(revoked, { at: new Date(), actor: 'test', action: 'issue', subject: null, outcome: 'ok', code: null, detail: {}, peer: null });
    // Straight through the store, as another CA process on the same database would.
    await store.revokeCertificate(revoked.serial, new Date(), 'keyCompromise', { at: new Date(), actor: 'other', action: 'revoke', subject: revoked.serial, outcome: 'ok', code: null, detail: {}, peer: null });
    await publisher.refresh();
    expect(changes).toEqual([2n]);
    const crl = parseCrl(publisher.current().active.record.der);
    expect(crl.revoked.get(revoked.serial)?.reason).toBe('keyCompromise');
    expect(publisher.current().epoch).toBe(1);
  });

  it('an offline root: its CRL from init is served, never re-signed here, and an error is logged as it nears expiry', async () => {
    const { keyring, clock, publisher, log } = await setup(true);
    expect(keyring.root.privateKey).toBeNull();
    const root = publisher.current().all.find((crl) => crl.issuerKeyId === keyring.root.record.id)!;
    expect(root.record.crlNumber).toBe(1n);
    expect(root.record.nextUpdate.getTime()).toBe(keyring.issuer.record.notAfter.getTime()); // valid until the intermediate expires
    expect(verifyCrlSignature(parseCrl(root.record.der), keyring.root.certDer)).toBe(true);
    clock.now = root.record.nextUpdate.getTime() - 6 * HOUR;
    await publisher.refresh(); // the intermediate's CRL is due, so the root's is looked at too
    expect(publisher.current().all.find((crl) => crl.issuerKeyId === keyring.root.record.id)!.record.crlNumber).toBe(1n);
    expect(log.lines.some((line) => line['event'] === 'crl.root_stale' && line.level === 50)).toBe(true);
  });
});
