/**
 * Signal gathering: the newest certificate per identity from a real SQLite store, and counters
 * read by name from a real prom-client Registry (metrics created here with the agreed names).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Counter, Gauge, Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_ALERT_POLICY } from '../../src/ca/alerts/evaluate.js';
import { ALERT_METRICS, createSignalSource, newestCertificates, readCounter } from '../../src/ca/alerts/signals.js';
import type { PublishedCrls } from '../../src/ca/crl-publisher.js';
import { openStore, type Store } from '../../src/store/index.js';
import { DAY, HOUR, T0, at, audit, caKey, certificate } from '../store/records.js';

let dir: string;
let store: Store;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tlsmesh-alert-signals-'));
  store = await openStore(`sqlite:${join(dir, 'ca.db')}`);
  await store.migrate();
  await store.putCaKey(caKey());
});
afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const id = (name: string): string => `spiffe://example.org/${name}`;

describe('newestCertificates (SQLite store)', () => {
  it('keeps the newest workload/admin certificate per identity unless it is revoked, recently expired ones included', async () => {
    const insert = (overrides: Parameters<typeof certificate>[0]) => store.insertCertificate(certificate(overrides), audit({ action: 'issue' }));
    // renewed: the newer certificate wins
    await insert({ serial: '01', spiffeId: id('renewed'), notBefore: at(-DAY / 2), notAfter: at(DAY / 2), createdAt: at(-DAY / 2) });
    await insert({ serial: '02', spiffeId: id('renewed'), notBefore: at(-HOUR), notAfter: at(DAY - HOUR), createdAt: at(-HOUR) });
    // newest revoked: the identity is not expected to renew, and is left out
    await insert({ serial: '03', spiffeId: id('revoked-newest'), notBefore: at(-DAY / 2), notAfter: at(DAY / 2), createdAt: at(-DAY / 2) });
    await insert({ serial: '04', spiffeId: id('revoked-newest'), notBefore: at(-HOUR), notAfter: at(DAY - HOUR), createdAt: at(-HOUR) });
    await store.revokeCertificate('04', at(-HOUR / 2), 'keyCompromise', audit({ action: 'revoke' }));
    // expired an hour ago (inside the 24 h lookback) / two days ago (outside: decommissioned)
    await insert({ serial: '05', spiffeId: id('expired-recently'), notBefore: at(-DAY - HOUR), notAfter: at(-HOUR), createdAt: at(-DAY - HOUR) });
    await insert({ serial: '06', spiffeId: id('expired-long-ago'), notBefore: at(-3 * DAY), notAfter: at(-2 * DAY), createdAt: at(-3 * DAY) });
    // an admin, the CA's own server certificate (not a workload's business), one dated in the future
    await insert({ serial: '07', spiffeId: id('tlsmesh/admin/ops'), kind: 'admin', notBefore: at(-DAY), notAfter: at(29 * DAY), createdAt: at(-DAY) });
    await insert({ serial: '08', spiffeId: id('tlsmesh/ca'), kind: 'ca-server', notBefore: at(-DAY), notAfter: at(0), createdAt: at(-DAY) });
    await insert({ serial: '09', spiffeId: id('future'), notBefore: at(HOUR), notAfter: at(DAY), createdAt: at(-HOUR) });

    const found = await newestCertificates(store, T0, DAY);
    const bySpiffeId = Object.fromEntries(found.map((signal) => [signal.spiffeId, `${signal.kind}:${signal.serial}`]));
    expect(bySpiffeId).toEqual({
      [id('renewed')]: 'workload:02',
      [id('expired-recently')]: 'workload:05',
      [id('tlsmesh/admin/ops')]: 'admin:07',
    });
    expect(found.find((signal) => signal.serial === '02')).toEqual({ spiffeId: id('renewed'), kind: 'workload', serial: '02', notBefore: at(-HOUR), notAfter: at(DAY - HOUR) });
  });

  it('pages through more identities than one page holds', async () => {
    for (let i = 0; i < 620; i++) {
      await store.insertCertificate(certificate({ spiffeId: id(`many/${i}`), notBefore: at(-HOUR), notAfter: at(DAY), createdAt: at(-HOUR + i) }), audit({ action: 'issue' }));
    }
    const found = await newestCertificates(store, T0, DAY);
    expect(found.filter((signal) => signal.spiffeId.startsWith(id('many/')))).toHaveLength(620);
  });
});

describe('counters from a Registry', () => {
  it('absent registry or metric is no signal; a metric of another type under the name is none either', async () => {
    const registry = new Registry();
    new Gauge({ name: ALERT_METRICS.storeErrors, help: 'a gauge by mistake', registers: [registry] });
    expect(await readCounter(undefined, [ALERT_METRICS.handshakeRefusals], () => true)).toBeNull();
    expect(await readCounter(registry, [ALERT_METRICS.handshakeRefusals], () => true)).toBeNull();
    expect(await readCounter(registry, [ALERT_METRICS.storeErrors], () => true)).toBeNull();
  });

  it('sums the matching label sets over the named counters; registered but never incremented is 0', async () => {
    const registry = new Registry();
    const enrollments = new Counter({ name: ALERT_METRICS.enrollments, help: 'h', labelNames: ['result', 'code'], registers: [registry] });
    enrollments.inc({ result: 'refused', code: 'ERR_TOKEN_REUSED' }, 3);
    enrollments.inc({ result: 'refused', code: 'ERR_TOKEN_EXPIRED' }, 2);
    enrollments.inc({ result: 'ok', code: '' }, 100);
    const renewals = new Counter({ name: ALERT_METRICS.renewals, help: 'h', labelNames: ['result', 'code'], registers: [registry] });
    renewals.inc({ result: 'refused', code: 'ERR_CERT_REVOKED' }, 4);
    new Counter({ name: ALERT_METRICS.plaintextRequests, help: 'h', labelNames: ['transport'], registers: [registry] });
    const refused = (labels: Record<string, unknown>): boolean => labels['result'] === 'refused';
    expect(await readCounter(registry, [ALERT_METRICS.enrollments, ALERT_METRICS.renewals], refused)).toBe(9);
    expect(await readCounter(registry, [ALERT_METRICS.plaintextRequests], () => true)).toBe(0);
  });

  it('the signal source samples counters at each gathering and reads the CRLs it is given', async () => {
    const registry = new Registry();
    const refusals = new Counter({ name: ALERT_METRICS.handshakeRefusals, help: 'h', labelNames: ['component', 'transport', 'reason'], registers: [registry] });
    const crl = { issuerKeyId: 'int-1', record: { thisUpdate: at(0), nextUpdate: at(DAY) } } as unknown as PublishedCrls['all'][number];
    const crls = { current: () => ({ all: [crl] }) as unknown as PublishedCrls };
    const gather = createSignalSource({ store, crls, registry, policy: DEFAULT_ALERT_POLICY, expiredLookbackMs: DAY });
    await gather(at(0));
    refusals.inc({ component: 'ca', transport: 'https', reason: 'expired' }, 7);
    const signals = await gather(at(60_000));
    expect(signals.counters.handshakeRefusals).toEqual([{ atMs: at(0).getTime(), value: 0 }, { atMs: at(60_000).getTime(), value: 7 }]);
    expect(signals.counters.requestRefusals).toBeNull();
    expect(signals.crls).toEqual([{ issuer: 'int-1', thisUpdate: at(0), nextUpdate: at(DAY) }]);
    // Samples older than the longest window are dropped.
    const later = await gather(at(3 * HOUR));
    expect(later.counters.handshakeRefusals).toEqual([{ atMs: at(3 * HOUR).getTime(), value: 7 }]);
  });
});
