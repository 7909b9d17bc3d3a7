/**
 * The Store contract (src/store/types.ts), run against both backends. Each test gets a fresh,
 * migrated store: a temporary SQLite file, or a new PostgreSQL database.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { openPostgresStore, openSqliteStore, type Store } from '../../src/store/index.js';
import { createTestDatabase, requirePgInSuite } from '../helpers/pg.js';
import { DAY, HOUR, T0, at, audit, caKey, certificate, token } from './records.js';

interface Backend {
  name: 'sqlite' | 'postgres';
  /** Awaited first in the describe body; false when the backend is not available here. */
  ready(): Promise<boolean>;
  /** A fresh, migrated store, closed (and its database dropped) when the test finishes. */
  open(): Promise<Store>;
}

const sqliteDir = mkdtempSync(join(tmpdir(), 'tlsmesh-store-'));
afterAll(() => rmSync(sqliteDir, { recursive: true, force: true }));

const backends: Backend[] = [
  {
    name: 'sqlite',
    ready: () => Promise.resolve(true),
    async open() {
      const store = await openSqliteStore({ path: join(sqliteDir, `${randomUUID()}.db`) });
      onTestFinished(() => store.close());
      await store.migrate();
      return store;
    },
  },
  {
    name: 'postgres',
    ready: requirePgInSuite,
    async open() {
      const database = await createTestDatabase();
      const store = await openPostgresStore({ connectionString: database.url, poolSize: 4 });
      // Runs last-registered-first: close the pool, then drop the database.
      onTestFinished(() => database.drop());
      onTestFinished(() => store.close());
      await store.migrate();
      return store;
    },
  },
];

/** Store with the CA key every certificate built by records.ts names as its issuer. */
async function storeWithIssuer(backend: Backend): Promise<Store> {
  const store = await backend.open();
  await store.putCaKey(caKey());
  return store;
}

async function errorOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the promise to reject');
}

describe.each(backends)('Store on $name', async (backend) => {
  if (!(await backend.ready())) return;

  it('migrate is idempotent', async () => {
    const store = await backend.open();
    await store.migrate();
    expect(store.backend).toBe(backend.name);
    expect(await store.getMeta('k')).toBeNull();
    expect(await store.migrationStatus()).toEqual({ pending: [], unknown: [] });
  });

  describe('newest certificate per identity', () => {
    it('picks, per SPIFFE ID, the certificate with the latest notAfter, expired ones included; an identity whose newest is revoked is left out', async () => {
      const store = await storeWithIssuer(backend);
      const api = 'spiffe://example.org/api';
      const web = 'spiffe://example.org/web';
      const gone = 'spiffe://example.org/gone';
      const apiOld = certificate({ spiffeId: api, notBefore: at(-2 * DAY), notAfter: at(-DAY) });
      const apiNew = certificate({ spiffeId: api, notBefore: at(-HOUR), notAfter: at(23 * HOUR) });
      // Revoked, but not the newest: the renewal after it is what counts.
      const apiRevoked = certificate({ spiffeId: api, notBefore: at(-2 * HOUR), notAfter: at(22 * HOUR), status: 'revoked', revokedAt: T0, revocationReason: 'keyCompromise' });
      // Revoked as a whole: its older certificate expired unrevoked and must not stand in for it.
      const cutExpired = certificate({ spiffeId: 'spiffe://example.org/cut', notBefore: at(-DAY - HOUR), notAfter: at(-HOUR) });
      const cutRevoked = certificate({ spiffeId: 'spiffe://example.org/cut', notBefore: at(-8 * HOUR), notAfter: at(16 * HOUR), status: 'revoked', revokedAt: T0, revocationReason: 'cessationOfOperation' });
      const webExpired = certificate({ spiffeId: web, kind: 'admin', notBefore: at(-3 * DAY), notAfter: at(-2 * DAY) });
      const goneRevoked = certificate({ spiffeId: gone, status: 'revoked', revokedAt: T0, revocationReason: 'unspecified' });
      for (const record of [apiOld, apiNew, apiRevoked, cutExpired, cutRevoked, webExpired, goneRevoked]) await store.insertCertificate(record, audit());

      const newest = await store.newestCertificatePerIdentity();
      expect(newest).toEqual([
        { spiffeId: api, kind: 'workload', serial: apiNew.serial, notBefore: apiNew.notBefore, notAfter: apiNew.notAfter },
        { spiffeId: web, kind: 'admin', serial: webExpired.serial, notBefore: webExpired.notBefore, notAfter: webExpired.notAfter },
      ]);
    });

    it('within a window: started by `at`, ended no earlier than `expiredSince`', async () => {
      const store = await storeWithIssuer(backend);
      const api = 'spiffe://example.org/api';
      const current = certificate({ spiffeId: api, notBefore: at(-HOUR), notAfter: at(23 * HOUR) });
      // Dated after `at`: not the certificate in use at `at`, so the current one answers.
      const future = certificate({ spiffeId: api, notBefore: at(HOUR), notAfter: at(25 * HOUR) });
      const recent = certificate({ spiffeId: 'spiffe://example.org/recent', notBefore: at(-DAY - HOUR), notAfter: at(-HOUR) });
      const retired = certificate({ spiffeId: 'spiffe://example.org/retired', notBefore: at(-3 * DAY), notAfter: at(-2 * DAY) });
      for (const record of [current, future, recent, retired]) await store.insertCertificate(record, audit());
      const newest = await store.newestCertificatePerIdentity({ at: T0, expiredSince: at(-DAY) });
      expect(newest.map((record) => record.serial)).toEqual([current.serial, recent.serial]);
      expect((await store.newestCertificatePerIdentity()).map((record) => record.serial)).toEqual([future.serial, recent.serial, retired.serial]);
    });

    it('is empty on an empty store', async () => {
      const store = await backend.open();
      expect(await store.newestCertificatePerIdentity()).toEqual([]);
    });
  });

  it('tells error listeners about operations that fail with ERR_STORE, and only those', async () => {
    const store = await storeWithIssuer(backend);
    const seen: string[] = [];
    const stop = store.onError((operation, error) => seen.push(`${operation}:${(error as { code?: string }).code ?? ''}`));
    const duplicate = certificate();
    await store.insertCertificate(duplicate, audit());
    // A coded refusal that is not a store failure is not reported.
    expect(await errorOf(store.insertCertificate(duplicate, audit()))).toMatchObject({ code: 'ERR_SERIAL_COLLISION' });
    expect(seen).toEqual([]);
    await store.close();
    expect(await errorOf(store.listCertificates({}))).toMatchObject({ code: 'ERR_STORE' });
    expect(seen).toEqual(['listCertificates:ERR_STORE']);
    stop();
    await errorOf(store.listCertificates({}));
    expect(seen).toHaveLength(1);
  });

  describe('renewal insert', () => {
    it('inserts only while the previous certificate is valid; otherwise writes nothing', async () => {
      const store = await backend.open();
      await store.putCaKey(caKey());
      const previous = certificate();
      await store.insertCertificate(previous, audit());
      const renewed = certificate({ origin: `renew:${previous.serial}` });
      expect(await store.insertRenewedCertificate(previous.serial, renewed, audit({ action: 'renew' }))).toBe('ok');
      expect(await store.getCertificate(renewed.serial)).toEqual(renewed);

      await store.revokeCertificate(renewed.serial, T0, 'keyCompromise', audit({ action: 'revoke' }));
      const tooLate = certificate({ origin: `renew:${renewed.serial}` });
      expect(await store.insertRenewedCertificate(renewed.serial, tooLate, audit({ action: 'renew', subject: 'too-late' }))).toBe('previous-not-valid');
      expect(await store.insertRenewedCertificate('00unknown', certificate(), audit({ action: 'renew', subject: 'unknown' }))).toBe('previous-not-valid');
      expect(await store.getCertificate(tooLate.serial)).toBeNull();
      expect((await store.listAudit({ action: 'renew', limit: 10 })).map((entry) => entry.subject)).not.toContain('too-late');
    });
  });

  describe('meta', () => {
    it('getMeta of an absent key is null', async () => {
      const store = await backend.open();
      expect(await store.getMeta('trust-domain')).toBeNull();
    });

    it('initMeta sets an absent key and keeps the first value afterwards', async () => {
      const store = await backend.open();
      expect(await store.initMeta('trust-domain', 'example.org')).toBe('example.org');
      expect(await store.initMeta('trust-domain', 'other.org')).toBe('example.org');
      expect(await store.getMeta('trust-domain')).toBe('example.org');
      expect(await store.initMeta('ca-id', '')).toBe('');
      expect(await store.getMeta('ca-id')).toBe('');
    });
  });

  describe('CA keys', () => {
    it('putCaKey / listCaKeys round-trip every field, oldest first', async () => {
      const store = await backend.open();
      const root = caKey({ id: 'root-1', kind: 'root', encryptedKey: null, createdAt: at(-2 * DAY) });
      const intermediate = caKey();
      const signing = caKey({ id: 'tok-1', kind: 'token-signing', certDer: null, state: 'prepared', createdAt: at(HOUR) });
      await store.putCaKey(signing);
      await store.putCaKey(intermediate);
      await store.putCaKey(root);
      expect(await store.listCaKeys()).toEqual([root, intermediate, signing]);
    });

    it('putCaKey with an existing id replaces the record', async () => {
      const store = await backend.open();
      await store.putCaKey(caKey({ state: 'prepared', certDer: null }));
      const signed = caKey({ state: 'prepared', certDer: Buffer.from('signed later') });
      await store.putCaKey(signed);
      expect(await store.listCaKeys()).toEqual([signed]);
    });

    it('setCaKeyState changes only the state', async () => {
      const store = await backend.open();
      await store.putCaKey(caKey({ state: 'prepared' }));
      await store.setCaKeyState('intermediate-1', 'active');
      expect(await store.listCaKeys()).toEqual([caKey({ state: 'active' })]);
      await store.setCaKeyState('intermediate-1', 'retired');
      expect((await store.listCaKeys())[0]?.state).toBe('retired');
    });

    it('setCaKeyState of an unknown id is ERR_NOT_FOUND', async () => {
      const store = await backend.open();
      expect(await errorOf(store.setCaKeyState('nope', 'active'))).toMatchObject({ code: 'ERR_NOT_FOUND' });
    });
  });

  describe('tokens', () => {
    it('createToken stores the token and its audit entry; getToken returns it', async () => {
      const store = await backend.open();
      const record = token({ ipAddresses: ['192.0.2.1'] });
      await store.createToken(record, audit({ action: 'token.create', subject: record.jti }));
      expect(await store.getToken(record.jti)).toEqual(record);
      const entries = await store.listAudit({ action: 'token.create' });
      expect(entries.map((entry) => entry.subject)).toEqual([record.jti]);
    });

    it('getToken of an unknown jti is null', async () => {
      const store = await backend.open();
      expect(await store.getToken('unknown')).toBeNull();
    });

    it('a duplicate jti is ERR_STORE and writes no audit entry', async () => {
      const store = await backend.open();
      const record = token();
      await store.createToken(record, audit({ action: 'token.create' }));
      const error = await errorOf(store.createToken({ ...record, createdBy: 'someone-else' }, audit({ action: 'token.create' })));
      expect(error).toMatchObject({ code: 'ERR_STORE' });
      expect((error as Error).cause).toBeDefined();
      expect(await store.getToken(record.jti)).toEqual(record);
      expect(await store.listAudit({ action: 'token.create' })).toHaveLength(1);
    });
  });

  describe('redeemTokenAndInsertCertificate', () => {
    it('ok: marks the token used and stores the certificate and the audit entry', async () => {
      const store = await storeWithIssuer(backend);
      const record = token();
      await store.createToken(record, audit({ action: 'token.create' }));
      const cert = certificate({ origin: `enroll:${record.jti}` });
      const usedAt = at(5 * 60_000 + 1);
      expect(await store.redeemTokenAndInsertCertificate(record.jti, usedAt, cert, audit({ action: 'enroll' }))).toBe('ok');
      expect(await store.getToken(record.jti)).toEqual({ ...record, usedAt, usedBySerial: cert.serial });
      expect(await store.getCertificate(cert.serial)).toEqual(cert);
      expect(await store.listAudit({ action: 'enroll' })).toHaveLength(1);
    });

    it('a second redeem is token-used and writes nothing', async () => {
      const store = await storeWithIssuer(backend);
      const record = token();
      await store.createToken(record, audit());
      const first = certificate();
      await store.redeemTokenAndInsertCertificate(record.jti, at(1), first, audit({ action: 'enroll' }));
      const second = certificate();
      expect(await store.redeemTokenAndInsertCertificate(record.jti, at(2), second, audit({ action: 'enroll' }))).toBe(
        'token-used',
      );
      expect(await store.getCertificate(second.serial)).toBeNull();
      expect(await store.getToken(record.jti)).toMatchObject({ usedAt: at(1), usedBySerial: first.serial });
      expect(await store.listAudit({ action: 'enroll' })).toHaveLength(1);
    });

    it('an unknown jti is token-unknown and writes nothing', async () => {
      const store = await storeWithIssuer(backend);
      const cert = certificate();
      expect(await store.redeemTokenAndInsertCertificate('never-issued', T0, cert, audit({ action: 'enroll' }))).toBe(
        'token-unknown',
      );
      expect(await store.getCertificate(cert.serial)).toBeNull();
      expect(await store.getToken('never-issued')).toBeNull();
      expect(await store.listAudit({ action: 'enroll' })).toEqual([]);
    });

    it('a duplicate serial is ERR_SERIAL_COLLISION and leaves the token unused', async () => {
      const store = await storeWithIssuer(backend);
      const existing = certificate({ spiffeId: 'spiffe://example.org/first' });
      await store.insertCertificate(existing, audit({ action: 'issue' }));
      const record = token();
      await store.createToken(record, audit());
      const clash = certificate({ serial: existing.serial, spiffeId: 'spiffe://example.org/second' });

      const error = await errorOf(store.redeemTokenAndInsertCertificate(record.jti, at(1), clash, audit({ action: 'enroll' })));
      expect(error).toMatchObject({ code: 'ERR_SERIAL_COLLISION' });
      expect(await store.getToken(record.jti)).toEqual(record);
      expect(await store.getCertificate(existing.serial)).toEqual(existing);
      expect(await store.listAudit({ action: 'enroll' })).toEqual([]);

      // The token is still good for a retry with a fresh serial.
      const retry = certificate();
      expect(await store.redeemTokenAndInsertCertificate(record.jti, at(2), retry, audit({ action: 'enroll' }))).toBe('ok');
      expect(await store.getToken(record.jti)).toMatchObject({ usedAt: at(2), usedBySerial: retry.serial });
    });
  });

  describe('revocation publishing', () => {
    it('the revocation epoch grows with each certificate revoked, and only then', async () => {
      const store = await storeWithIssuer(backend);
      const [a, b, c] = [certificate(), certificate({ spiffeId: 'spiffe://example.org/other' }), certificate({ spiffeId: 'spiffe://example.org/other' })];
      for (const cert of [a, b, c]) await store.insertCertificate(cert, audit({ action: 'issue' }));
      expect(await store.revocationEpoch()).toBe(0);
      await store.revokeCertificate(a.serial, at(1), 'keyCompromise', audit({ action: 'revoke' }));
      expect(await store.revocationEpoch()).toBe(1);
      // Already revoked, and unknown: nothing changed, so the epoch stays.
      await store.revokeCertificate(a.serial, at(2), 'superseded', audit({ action: 'revoke' }));
      await store.revokeCertificate('00unknown', at(2), 'superseded', audit({ action: 'revoke' }));
      expect(await store.revocationEpoch()).toBe(1);
      await store.revokeIdentity('spiffe://example.org/other', at(3), 'cessationOfOperation', audit({ action: 'revoke' }));
      expect(await store.revocationEpoch()).toBe(2);
      await store.revokeIdentity('spiffe://example.org/other', at(4), 'cessationOfOperation', audit({ action: 'revoke' }));
      expect(await store.revocationEpoch()).toBe(2);
    });

    it('listRevoked gives the issuer\'s revoked certificates not expired before the cut-off', async () => {
      const store = await storeWithIssuer(backend);
      await store.putCaKey(caKey({ id: 'intermediate-2', createdAt: at(1) }));
      const expiredLongAgo = certificate({ notBefore: at(-3 * DAY), notAfter: at(-2 * DAY) });
      const current = certificate();
      const stillValid = certificate();
      const otherIssuer = certificate({ issuerKeyId: 'intermediate-2' });
      for (const cert of [expiredLongAgo, current, stillValid, otherIssuer]) await store.insertCertificate(cert, audit({ action: 'issue' }));
      for (const cert of [expiredLongAgo, current, otherIssuer]) await store.revokeCertificate(cert.serial, at(5), 'keyCompromise', audit({ action: 'revoke' }));
      const listed = await store.listRevoked('intermediate-1', at(-DAY));
      expect(listed).toEqual([{ serial: current.serial, revokedAt: at(5), reason: 'keyCompromise' }]);
      expect((await store.listRevoked('intermediate-1', at(-4 * DAY))).map((entry) => entry.serial).sort()).toEqual([expiredLongAgo.serial, current.serial].sort());
    });

    it('insertCrl numbers CRLs 1, 2, 3… per issuer and latestCrl returns the newest', async () => {
      const store = await storeWithIssuer(backend);
      await store.putCaKey(caKey({ id: 'intermediate-2', createdAt: at(1) }));
      expect(await store.latestCrl('intermediate-1')).toBeNull();
      const draft = (n: bigint) => ({ thisUpdate: at(0), nextUpdate: at(DAY), revocationEpoch: 7, der: Buffer.from(`crl ${n}`) });
      const numbers: bigint[] = [];
      for (let i = 0; i < 7; i++) numbers.push((await store.insertCrl('intermediate-1', draft)).crlNumber);
      expect(numbers).toEqual([1n, 2n, 3n, 4n, 5n, 6n, 7n]);
      expect((await store.insertCrl('intermediate-2', draft)).crlNumber).toBe(1n);
      const latest = await store.latestCrl('intermediate-1');
      expect(latest).toMatchObject({ issuerKeyId: 'intermediate-1', crlNumber: 7n, thisUpdate: at(0), nextUpdate: at(DAY), revocationEpoch: 7 });
      expect(latest?.der.toString()).toBe('crl 7');
    });

    it('concurrent insertCrl calls never share a number (the signer is asked again)', async () => {
      const store = await storeWithIssuer(backend);
      const seen: bigint[] = [];
      const draft = (n: bigint) => {
        seen.push(n);
        return { thisUpdate: at(0), nextUpdate: at(DAY), revocationEpoch: 0, der: Buffer.from(String(n)) };
      };
      const records = await Promise.all(Array.from({ length: 8 }, () => store.insertCrl('intermediate-1', draft)));
      const numbers = records.map((record) => record.crlNumber).sort((x, y) => Number(x - y));
      expect(numbers).toEqual([1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n]);
      for (const record of records) expect(record.der.toString()).toBe(String(record.crlNumber));
    });
  });

  describe('certificates', () => {
    it('insertCertificate round-trips every field, including empty arrays', async () => {
      const store = await storeWithIssuer(backend);
      const plain = certificate({ dnsNames: [], ipAddresses: [], der: Buffer.alloc(0), origin: 'serve', kind: 'ca-server' });
      const full = certificate({ origin: 'renew:00ab' });
      await store.insertCertificate(plain, audit({ action: 'issue' }));
      await store.insertCertificate(full, audit({ action: 'issue' }));
      expect(await store.getCertificate(plain.serial)).toEqual(plain);
      const stored = await store.getCertificate(full.serial);
      expect(stored).toEqual(full);
      expect(stored?.der.equals(full.der)).toBe(true);
      expect(stored?.notBefore.getTime()).toBe(T0.getTime());
      expect(await store.listAudit({ action: 'issue' })).toHaveLength(2);
    });

    it('a duplicate serial is ERR_SERIAL_COLLISION; the first certificate stays, no audit entry', async () => {
      const store = await storeWithIssuer(backend);
      const first = certificate();
      await store.insertCertificate(first, audit({ action: 'issue' }));
      const error = await errorOf(store.insertCertificate(certificate({ serial: first.serial, kind: 'admin' }), audit({ action: 'issue' })));
      expect(error).toMatchObject({ code: 'ERR_SERIAL_COLLISION' });
      expect(await store.getCertificate(first.serial)).toEqual(first);
      expect(await store.listAudit({ action: 'issue' })).toHaveLength(1);
    });

    it('a certificate naming an unknown issuer key is refused (ERR_STORE)', async () => {
      const store = await backend.open();
      const cert = certificate({ issuerKeyId: 'no-such-key' });
      expect(await errorOf(store.insertCertificate(cert, audit({ action: 'issue' })))).toMatchObject({ code: 'ERR_STORE' });
      expect(await store.getCertificate(cert.serial)).toBeNull();
      expect(await store.listAudit({ action: 'issue' })).toEqual([]);
    });

    it('getCertificate of an unknown serial is null', async () => {
      const store = await backend.open();
      expect(await store.getCertificate('00ff')).toBeNull();
    });

    describe('listCertificates', () => {
      const alice = 'spiffe://example.org/alice';
      const bob = 'spiffe://example.org/bob';
      // created in this order; the list is newest first.
      const a = certificate({ serial: '0a', spiffeId: alice, createdAt: at(0) });
      const b = certificate({ serial: '0b', spiffeId: alice, createdAt: at(1) });
      const c = certificate({ serial: '0c', spiffeId: bob, kind: 'admin', createdAt: at(2) });
      const d = certificate({ serial: '0d', spiffeId: bob, notBefore: at(-3 * DAY), notAfter: at(-2 * DAY), createdAt: at(3) });
      const e = certificate({ serial: '0e', spiffeId: alice, notBefore: at(2 * DAY), notAfter: at(3 * DAY), createdAt: at(4) });
      const revokedB = { ...b, status: 'revoked' as const, revokedAt: at(HOUR), revocationReason: 'keyCompromise' };

      async function populated(): Promise<Store> {
        const store = await storeWithIssuer(backend);
        for (const cert of [a, b, c, d, e]) await store.insertCertificate(cert, audit({ action: 'issue' }));
        await store.revokeCertificate(b.serial, at(HOUR), 'keyCompromise', audit({ action: 'revoke' }));
        return store;
      }
      const serials = (records: { serial: string }[]): string[] => records.map((record) => record.serial);

      it('without a filter: all, newest first, records intact', async () => {
        const store = await populated();
        expect(await store.listCertificates({})).toEqual([e, d, c, revokedB, a]);
      });

      it('filters by spiffeId, status, kind and combinations', async () => {
        const store = await populated();
        expect(serials(await store.listCertificates({ spiffeId: alice }))).toEqual(['0e', '0b', '0a']);
        expect(serials(await store.listCertificates({ status: 'revoked' }))).toEqual(['0b']);
        expect(serials(await store.listCertificates({ status: 'valid' }))).toEqual(['0e', '0d', '0c', '0a']);
        expect(serials(await store.listCertificates({ kind: 'admin' }))).toEqual(['0c']);
        expect(serials(await store.listCertificates({ spiffeId: alice, status: 'valid' }))).toEqual(['0e', '0a']);
        expect(serials(await store.listCertificates({ spiffeId: bob, kind: 'workload' }))).toEqual(['0d']);
        expect(await store.listCertificates({ spiffeId: 'spiffe://example.org/nobody' })).toEqual([]);
      });

      it('validAt keeps certificates whose window contains the instant, both ends included', async () => {
        const store = await populated();
        expect(serials(await store.listCertificates({ validAt: at(HOUR) }))).toEqual(['0c', '0b', '0a']);
        expect(serials(await store.listCertificates({ validAt: at(-2 * DAY) }))).toEqual(['0d']);
        expect(serials(await store.listCertificates({ validAt: at(2 * DAY) }))).toEqual(['0e']);
        expect(serials(await store.listCertificates({ validAt: at(DAY) }))).toEqual(['0c', '0b', '0a']);
        expect(serials(await store.listCertificates({ validAt: at(DAY + 1) }))).toEqual([]);
        expect(serials(await store.listCertificates({ validAt: at(HOUR), status: 'valid' }))).toEqual(['0c', '0a']);
      });

      it('notAfterFrom keeps certificates that expire at or after the instant', async () => {
        const store = await populated();
        expect(serials(await store.listCertificates({ notAfterFrom: at(DAY) }))).toEqual(['0e', '0c', '0b', '0a']);
        expect(serials(await store.listCertificates({ notAfterFrom: at(DAY + 1) }))).toEqual(['0e']);
        expect(serials(await store.listCertificates({ notAfterFrom: at(-2 * DAY), status: 'valid', kind: 'workload' }))).toEqual(['0e', '0d', '0a']);
      });

      it('pages with limit and offset', async () => {
        const store = await populated();
        expect(serials(await store.listCertificates({ limit: 2 }))).toEqual(['0e', '0d']);
        expect(serials(await store.listCertificates({ limit: 2, offset: 2 }))).toEqual(['0c', '0b']);
        expect(serials(await store.listCertificates({ offset: 3 }))).toEqual(['0b', '0a']);
        expect(serials(await store.listCertificates({ limit: 0 }))).toEqual([]);
        expect(serials(await store.listCertificates({ spiffeId: alice, limit: 1, offset: 1 }))).toEqual(['0b']);
      });

      it('spiffeIdContains: a case-insensitive substring, with LIKE wildcards matching only themselves', async () => {
        const store = await storeWithIssuer(backend);
        const ids = ['spiffe://example.org/ns/a_b', 'spiffe://example.org/ns/axb', 'spiffe://example.org/ns/100%', 'spiffe://example.org/ns/1000', 'spiffe://example.org/ns/back\\slash', 'spiffe://example.org/ns/Mixed'];
        for (const [i, spiffeId] of ids.entries()) await store.insertCertificate(certificate({ serial: `0${i + 1}`, spiffeId, createdAt: at(i) }), audit());
        const found = async (text: string): Promise<string[]> => (await store.listCertificates({ spiffeIdContains: text })).map((record) => record.spiffeId).sort();
        expect(await found('a_b')).toEqual(['spiffe://example.org/ns/a_b']);
        expect(await found('_')).toEqual(['spiffe://example.org/ns/a_b']);
        expect(await found('100%')).toEqual(['spiffe://example.org/ns/100%']);
        expect(await found('%')).toEqual(['spiffe://example.org/ns/100%']);
        expect(await found('k\\s')).toEqual(['spiffe://example.org/ns/back\\slash']);
        expect(await found('mIXED')).toEqual(['spiffe://example.org/ns/Mixed']);
        expect(await found("' OR 1=1 --")).toEqual([]);
        expect(await found('ns/')).toHaveLength(ids.length);
        expect(await store.countCertificates({ spiffeIdContains: '%' })).toBe(1);
      });

      it('notAfterFrom / notAfterBefore bound notAfter (from included, before excluded); countCertificates agrees with the list', async () => {
        const store = await populated();
        expect(serials(await store.listCertificates({ notAfterFrom: at(DAY) }))).toEqual(['0e', '0c', '0b', '0a']);
        expect(serials(await store.listCertificates({ notAfterBefore: at(DAY) }))).toEqual(['0d']);
        expect(serials(await store.listCertificates({ notAfterFrom: at(0), notAfterBefore: at(2 * DAY), status: 'valid' }))).toEqual(['0c', '0a']);
        expect(await store.countCertificates({})).toBe(5);
        expect(await store.countCertificates({ status: 'valid', notAfterFrom: at(0) })).toBe(3);
        expect(await store.countCertificates({ spiffeId: alice, limit: 1 })).toBe(3);
        expect(await store.countCertificates({ spiffeId: 'spiffe://example.org/nobody' })).toBe(0);
      });

      it('rejects a negative or fractional limit/offset with RangeError', async () => {
        const store = await backend.open();
        await expect(store.listCertificates({ limit: -1 })).rejects.toBeInstanceOf(RangeError);
        await expect(store.listCertificates({ offset: 1.5 })).rejects.toBeInstanceOf(RangeError);
      });
    });
  });

  describe('revokeCertificate', () => {
    it('revokes a valid certificate, returns it after the change, writes the audit entry', async () => {
      const store = await storeWithIssuer(backend);
      const cert = certificate();
      await store.insertCertificate(cert, audit({ action: 'issue' }));
      const revoked = { ...cert, status: 'revoked' as const, revokedAt: at(HOUR + 7), revocationReason: 'superseded' };
      expect(await store.revokeCertificate(cert.serial, at(HOUR + 7), 'superseded', audit({ action: 'revoke' }))).toEqual(revoked);
      expect(await store.getCertificate(cert.serial)).toEqual(revoked);
      expect(await store.listAudit({ action: 'revoke' })).toHaveLength(1);
    });

    it('an unknown serial gives null and writes nothing', async () => {
      const store = await storeWithIssuer(backend);
      expect(await store.revokeCertificate('00dead', T0, 'unspecified', audit({ action: 'revoke' }))).toBeNull();
      expect(await store.listAudit({ action: 'revoke' })).toEqual([]);
    });

    it('an already revoked certificate keeps its first revokedAt and reason', async () => {
      const store = await storeWithIssuer(backend);
      const cert = certificate();
      await store.insertCertificate(cert, audit({ action: 'issue' }));
      await store.revokeCertificate(cert.serial, at(HOUR), 'keyCompromise', audit({ action: 'revoke' }));
      const again = await store.revokeCertificate(cert.serial, at(2 * HOUR), 'superseded', audit({ action: 'revoke' }));
      expect(again).toEqual({ ...cert, status: 'revoked', revokedAt: at(HOUR), revocationReason: 'keyCompromise' });
    });
  });

  describe('revokeIdentity', () => {
    it('revokes the valid, unexpired certificates of that identity only, and returns them', async () => {
      const store = await storeWithIssuer(backend);
      const alice = 'spiffe://example.org/alice';
      const when = at(HOUR);
      const current = certificate({ serial: '01', spiffeId: alice, createdAt: at(1) });
      const endsNow = certificate({ serial: '02', spiffeId: alice, notAfter: when, createdAt: at(2) });
      const expired = certificate({ serial: '03', spiffeId: alice, notBefore: at(-2 * DAY), notAfter: at(-DAY), createdAt: at(3) });
      const earlierRevoked = certificate({ serial: '04', spiffeId: alice, createdAt: at(4) });
      const otherIdentity = certificate({ serial: '05', spiffeId: 'spiffe://example.org/bob', createdAt: at(5) });
      for (const cert of [current, endsNow, expired, earlierRevoked, otherIdentity]) {
        await store.insertCertificate(cert, audit({ action: 'issue' }));
      }
      await store.revokeCertificate('04', at(10), 'keyCompromise', audit({ action: 'revoke' }));

      const result = await store.revokeIdentity(alice, when, 'cessationOfOperation', audit({ action: 'revoke.identity' }));
      const revokedNow = { status: 'revoked' as const, revokedAt: when, revocationReason: 'cessationOfOperation' };
      expect(result).toEqual([
        { ...endsNow, ...revokedNow },
        { ...current, ...revokedNow },
      ]);
      expect(await store.getCertificate('03')).toEqual(expired);
      expect(await store.getCertificate('04')).toMatchObject({ revokedAt: at(10), revocationReason: 'keyCompromise' });
      expect(await store.getCertificate('05')).toEqual(otherIdentity);
      expect(await store.listAudit({ action: 'revoke.identity' })).toHaveLength(1);
    });

    it('an identity with nothing to revoke gives [] and still records the audit entry', async () => {
      const store = await storeWithIssuer(backend);
      expect(await store.revokeIdentity('spiffe://example.org/nobody', T0, 'unspecified', audit({ action: 'revoke.identity' }))).toEqual([]);
      expect(await store.listAudit({ action: 'revoke.identity' })).toHaveLength(1);
    });
  });

  describe('audit log', () => {
    it('appendAudit / listAudit round-trip entries in append order with increasing ids', async () => {
      const store = await backend.open();
      const entries = [
        audit({ action: 'enroll', subject: 'spiffe://example.org/a', actor: 'peer:10.0.0.1', peer: '10.0.0.1:5555', at: at(3) }),
        audit({
          action: 'renew',
          outcome: 'refused',
          code: 'ERR_CERT_REVOKED',
          detail: { serial: '0a', sans: ['a', 'b'], nested: { n: 1.5, ok: true, none: null } },
          at: at(1),
        }),
        audit({ action: 'enroll', outcome: 'error', code: 'ERR_INTERNAL', at: at(2) }),
      ];
      for (const entry of entries) await store.appendAudit(entry);
      const listed = await store.listAudit({});
      expect(listed.map(({ id: _id, ...entry }) => entry)).toEqual(entries);
      const ids = listed.map((record) => record.id);
      expect(ids.every((id) => Number.isSafeInteger(id))).toBe(true);
      expect([...ids].sort((x, y) => x - y)).toEqual(ids);
      expect(new Set(ids).size).toBe(3);
    });

    it('filters by action, pages with afterId and limit', async () => {
      const store = await backend.open();
      for (const action of ['enroll', 'renew', 'enroll', 'revoke', 'enroll']) await store.appendAudit(audit({ action }));
      const idsOf = (records: { id: number }[]): number[] => records.map((record) => record.id);
      const ids = idsOf(await store.listAudit({}));
      expect(ids).toHaveLength(5);
      const [id1 = 0, id2 = 0, id3 = 0, id4 = 0, id5 = 0] = ids;
      expect(idsOf(await store.listAudit({ action: 'enroll' }))).toEqual([id1, id3, id5]);
      expect(idsOf(await store.listAudit({ afterId: id2 }))).toEqual([id3, id4, id5]);
      expect(idsOf(await store.listAudit({ action: 'enroll', afterId: id1, limit: 1 }))).toEqual([id3]);
      expect(idsOf(await store.listAudit({ limit: 2 }))).toEqual([id1, id2]);
      expect(await store.listAudit({ afterId: id5 })).toEqual([]);
      expect(await store.listAudit({ action: 'nothing' })).toEqual([]);
    });

    it('filters by outcome, lists newest first, pages backwards with beforeId', async () => {
      const store = await backend.open();
      const outcomes = ['ok', 'refused', 'ok', 'refused', 'error'] as const;
      for (const outcome of outcomes) await store.appendAudit(audit({ action: 'renew', outcome }));
      const idsOf = (records: { id: number }[]): number[] => records.map((record) => record.id);
      const [id1 = 0, id2 = 0, id3 = 0, id4 = 0, id5 = 0] = idsOf(await store.listAudit({}));
      expect(idsOf(await store.listAudit({ outcome: 'refused' }))).toEqual([id2, id4]);
      expect(idsOf(await store.listAudit({ newestFirst: true }))).toEqual([id5, id4, id3, id2, id1]);
      expect(idsOf(await store.listAudit({ newestFirst: true, beforeId: id4, limit: 2 }))).toEqual([id3, id2]);
      expect(idsOf(await store.listAudit({ newestFirst: true, outcome: 'refused', action: 'renew', limit: 1 }))).toEqual([id4]);
      expect(await store.listAudit({ beforeId: id1 })).toEqual([]);
    });
  });

  it('close is idempotent', async () => {
    const store = await backend.open();
    await store.close();
    await store.close();
  });
});
