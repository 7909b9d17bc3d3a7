/**
 * Two separately opened stores on one PostgreSQL database stand for two CA processes: each has
 * its own pool, so their transactions really interleave in the server.
 */
import pg from 'pg';
import { describe, expect, it, onTestFinished } from 'vitest';
import { openPostgresStore, openStore, type Store } from '../../src/store/index.js';
import { createTestDatabase, requirePgInSuite, untilASessionWaitsOnALock } from '../helpers/pg.js';
import { T0, audit, caKey, certificate, token } from './records.js';

/** Two stores on one fresh database, not yet migrated. */
async function twoProcesses(): Promise<[Store, Store]> {
  const database = await createTestDatabase();
  onTestFinished(() => database.drop());
  const first = await openPostgresStore({ connectionString: database.url, poolSize: 8 });
  onTestFinished(() => first.close());
  const second = await openPostgresStore({ connectionString: database.url, poolSize: 8 });
  onTestFinished(() => second.close());
  return [first, second];
}

describe('PostgreSQL store under concurrency', async () => {
  if (!(await requirePgInSuite())) return;

  it('migrate() from two stores at once on an empty database: both succeed, schema usable from both', async () => {
    const [first, second] = await twoProcesses();
    await Promise.all([first.migrate(), second.migrate(), first.migrate(), second.migrate()]);
    expect(await first.initMeta('k', 'from-first')).toBe('from-first');
    expect(await second.getMeta('k')).toBe('from-first');
    await second.migrate();
  });

  it('a renewal committing while revokeIdentity waits on its row lock is revoked too', async () => {
    const database = await createTestDatabase();
    onTestFinished(() => database.drop());
    const store = await openPostgresStore({ connectionString: database.url });
    onTestFinished(() => store.close());
    await store.migrate();
    await store.putCaKey(caKey());
    const identity = 'spiffe://example.org/racing';
    const previous = certificate({ spiffeId: identity, notAfter: new Date(Date.now() + 86_400_000) });
    await store.insertCertificate(previous, audit());
    const renewed = certificate({ spiffeId: identity, notAfter: new Date(Date.now() + 86_400_000), origin: `renew:${previous.serial}` });

    // A renewal in flight, by hand so the interleaving is exact: the previous row locked and
    // the new certificate inserted, not yet committed.
    const renewal = new pg.Client({ connectionString: database.url });
    await renewal.connect();
    onTestFinished(() => renewal.end());
    await renewal.query('BEGIN');
    await renewal.query("UPDATE certificates SET status = 'valid' WHERE serial = $1 AND status = 'valid'", [previous.serial]);
    await renewal.query(
      `INSERT INTO certificates (serial, spiffe_id, dns_names, ip_addresses, not_before, not_after, issuer_key_id, kind, status, revoked_at, revocation_reason, der, created_at, origin)
       SELECT $1, spiffe_id, dns_names, ip_addresses, not_before, not_after, issuer_key_id, kind, status, revoked_at, revocation_reason, der, created_at, $2 FROM certificates WHERE serial = $3`,
      [renewed.serial, renewed.origin, previous.serial],
    );

    const revoking = store.revokeIdentity(identity, new Date(), 'keyCompromise', audit({ action: 'revoke' }));
    // Commit only once PostgreSQL shows revokeIdentity blocked on the renewal's row lock.
    await untilASessionWaitsOnALock(renewal, 'revokeIdentity never waited for the renewal lock');
    await renewal.query('COMMIT');
    const revoked = await revoking;
    expect(revoked.map((record) => record.serial).sort()).toEqual([previous.serial, renewed.serial].sort());
    expect((await store.getCertificate(renewed.serial))?.status).toBe('revoked');
  });

  it('each of 50 tokens redeemed from both stores at once succeeds exactly once', async () => {
    const [first, second] = await twoProcesses();
    await first.migrate();
    await first.putCaKey(caKey());
    const tokens = Array.from({ length: 50 }, () => token());
    for (const record of tokens) await first.createToken(record, audit({ action: 'token.create' }));

    const attempts = tokens.flatMap((record) =>
      [first, second].map(async (store) => {
        const cert = certificate({ origin: `enroll:${record.jti}` });
        const result = await store.redeemTokenAndInsertCertificate(record.jti, T0, cert, audit({ action: 'enroll' }));
        return { jti: record.jti, serial: cert.serial, result };
      }),
    );
    const outcomes = await Promise.all(attempts);

    expect(outcomes.filter((outcome) => outcome.result === 'ok')).toHaveLength(50);
    expect(outcomes.filter((outcome) => outcome.result === 'token-used')).toHaveLength(50);
    const certificates = await second.listCertificates({});
    expect(certificates).toHaveLength(50);
    expect(await first.listAudit({ action: 'enroll' })).toHaveLength(50);
    // The winner of each token is the one whose certificate exists and whose serial the token names.
    for (const outcome of outcomes.filter((o) => o.result === 'ok')) {
      expect((await first.getToken(outcome.jti))?.usedBySerial).toBe(outcome.serial);
      expect(await second.getCertificate(outcome.serial)).not.toBeNull();
    }
  });

  it('concurrent inserts with distinct serials from both stores all land', async () => {
    const [first, second] = await twoProcesses();
    await Promise.all([first.migrate(), second.migrate()]);
    await first.putCaKey(caKey());
    const certs = Array.from({ length: 100 }, () => certificate());
    await Promise.all(certs.map((cert, i) => (i % 2 === 0 ? first : second).insertCertificate(cert, audit({ action: 'issue' }))));
    const stored = await first.listCertificates({});
    expect(stored.map((cert) => cert.serial).sort()).toEqual(certs.map((cert) => cert.serial).sort());
    expect(await second.listAudit({ action: 'issue' })).toHaveLength(100);
  });

  it('the same serial inserted from both stores at once lands once; the other gets ERR_SERIAL_COLLISION', async () => {
    const [first, second] = await twoProcesses();
    await first.migrate();
    await first.putCaKey(caKey());
    const cert = certificate();
    const results = await Promise.allSettled([first, second].map((store) => store.insertCertificate(cert, audit({ action: 'issue' }))));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(rejected?.reason).toMatchObject({ code: 'ERR_SERIAL_COLLISION' });
    expect(await first.listAudit({ action: 'issue' })).toHaveLength(1);
  });

  it('reads int8 columns as numbers without touching the global pg type parsers', async () => {
    const [store] = await twoProcesses();
    await store.migrate();
    await store.appendAudit(audit({ at: T0 }));
    const [entry] = await store.listAudit({});
    expect(typeof entry?.id).toBe('number');
    expect(entry?.at.getTime()).toBe(T0.getTime());
    // The process-wide default still gives int8 as text.
    const globalInt8Parser = pg.types.getTypeParser(20, 'text') as (value: string) => unknown;
    expect(globalInt8Parser('9007199254740993')).toBe('9007199254740993');
  });

  it('openStore accepts postgres:// and postgresql:// URLs', async () => {
    const database = await createTestDatabase();
    onTestFinished(() => database.drop());
    for (const url of [database.url, database.url.replace(/^postgres:/, 'postgresql:')]) {
      const store = await openStore(url);
      onTestFinished(() => store.close());
      expect(store.backend).toBe('postgres');
    }
  });
});

describe('PostgreSQL store without a server', () => {
  it('openPostgresStore fails with ERR_STORE when nothing listens', async () => {
    await expect(openPostgresStore({ connectionString: 'postgres://postgres@127.0.0.1:1/none' })).rejects.toMatchObject({
      code: 'ERR_STORE',
    });
  });
});
