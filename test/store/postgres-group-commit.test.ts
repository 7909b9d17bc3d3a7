/**
 * PostgreSQL group commit: issuance writes started together share one transaction (checked
 * with the server's own record of it, the audit rows' xmin), a failing item rolls back alone, a batch
 * that cannot commit keeps nothing, and the audit chain verifies afterwards.
 */
import pg from 'pg';
import { describe, expect, it, onTestFinished } from 'vitest';
import { openPostgresStore, verifyStoredAuditChain, type Store } from '../../src/store/index.js';
import { createTestDatabase, requirePgInSuite, untilASessionWaitsOnALock } from '../helpers/pg.js';
import { at, audit, caKey, certificate, HOUR, token } from './records.js';

const POISON = 'spiffe://example.org/poison';

async function freshStore(): Promise<{ store: Store; url: string }> {
  const database = await createTestDatabase();
  onTestFinished(() => database.drop());
  const store = await openPostgresStore({ connectionString: database.url });
  onTestFinished(() => store.close());
  await store.migrate();
  await store.putCaKey(caKey());
  return { store, url: database.url };
}

async function sqlClient(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  onTestFinished(() => client.end());
  return client;
}

const codeOrValue = (result: PromiseSettledResult<unknown>): unknown => (result.status === 'fulfilled' ? result.value : (result.reason as { code: string }).code);

describe('PostgreSQL group commit', async () => {
  if (!(await requirePgInSuite())) return;

  it('a collision in the middle of a batch fails alone; the rest commit in one transaction', async () => {
    const { store, url } = await freshStore();
    const tokens = Array.from({ length: 20 }, (_, i) => token({ jti: `jti-${i}` }));
    for (const record of tokens) await store.createToken(record, audit({ action: 'token.create' }));
    const taken = certificate();
    await store.insertCertificate(taken, audit());

    // All twenty start in one turn, before the batch's BEGIN completes; number 7 reuses a serial.
    const certs = tokens.map((_, i) => certificate(i === 7 ? { serial: taken.serial } : {}));
    const results = await Promise.allSettled(
      tokens.map((record, i) => store.redeemTokenAndInsertCertificate(record.jti, new Date(), certs[i]!, audit({ action: 'enroll', subject: record.jti }))),
    );
    expect(results.map(codeOrValue)).toEqual(tokens.map((_, i) => (i === 7 ? 'ERR_SERIAL_COLLISION' : 'ok')));
    expect((await store.getToken('jti-7'))?.usedAt).toBeNull();
    expect((await store.getToken('jti-8'))?.usedAt).not.toBeNull();
    const enrolAudit = await store.listAudit({ action: 'enroll', limit: 100 });
    // Chained in queue order, without the failed one.
    expect(enrolAudit.map((entry) => entry.subject)).toEqual(tokens.filter((_, i) => i !== 7).map((record) => record.jti));

    // PostgreSQL's record of the writing transaction (xmin): the 19 audit rows went in together.
    // (The certificates' xmin are the items' savepoints, one subtransaction each.)
    const client = await sqlClient(url);
    const written = await client.query<{ n: string }>("SELECT count(DISTINCT xmin::text) AS n FROM audit_log WHERE action = 'enroll'");
    expect(Number(written.rows[0]!.n)).toBe(1);

    // The failed one can be retried with a fresh serial, and the chain holds.
    expect(await store.redeemTokenAndInsertCertificate('jti-7', new Date(), certificate(), audit())).toBe('ok');
    const report = await verifyStoredAuditChain(store);
    expect(report.ok).toBe(true);
    expect(report.count).toBe(20 + 1 + 19 + 1);
  });

  it('redeeming one token twice in one batch: exactly one wins', async () => {
    const { store } = await freshStore();
    await store.createToken(token({ jti: 'twice' }), audit());
    const winner = certificate();
    const results = await Promise.all([
      store.redeemTokenAndInsertCertificate('twice', new Date(), winner, audit({ action: 'enroll' })),
      store.redeemTokenAndInsertCertificate('twice', new Date(), certificate(), audit({ action: 'enroll' })),
      store.redeemTokenAndInsertCertificate('unknown', new Date(), certificate(), audit({ action: 'enroll' })),
    ]);
    expect(results).toEqual(['ok', 'token-used', 'token-unknown']);
    expect((await store.getToken('twice'))?.usedBySerial).toBe(winner.serial);
    expect(await store.countCertificates({})).toBe(1);
    expect(await store.listAudit({ action: 'enroll' })).toHaveLength(1);
    expect((await verifyStoredAuditChain(store)).ok).toBe(true);
  });

  it('renewals, inserts and plain audit entries share a batch; a renewal of a revoked certificate is refused alone', async () => {
    const { store } = await freshStore();
    const live = certificate();
    const revoked = certificate();
    await store.insertCertificate(live, audit());
    await store.insertCertificate(revoked, audit());
    await store.revokeCertificate(revoked.serial, new Date(), 'keyCompromise', audit({ action: 'revoke' }));
    const renewedLive = certificate();
    const results = await Promise.all([
      store.insertRenewedCertificate(live.serial, renewedLive, audit({ action: 'renew', subject: 'a' })),
      store.insertRenewedCertificate(revoked.serial, certificate(), audit({ action: 'renew', subject: 'b' })),
      store.appendAudit(audit({ action: 'renew', subject: 'c', outcome: 'refused', code: 'ERR_CSR_INVALID' })),
      store.insertCertificate(certificate(), audit({ action: 'renew', subject: 'd' })),
    ]);
    expect(results).toEqual(['ok', 'previous-not-valid', undefined, undefined]);
    expect(await store.getCertificate(renewedLive.serial)).not.toBeNull();
    expect((await store.listAudit({ action: 'renew' })).map((entry) => entry.subject)).toEqual(['a', 'c', 'd']);
    expect((await verifyStoredAuditChain(store)).ok).toBe(true);
  });

  it('when the batch cannot commit, every operation in it fails with ERR_STORE and nothing is kept', async () => {
    const { store, url } = await freshStore();
    // A deferred constraint trigger: it refuses the poisoned certificate at COMMIT, after every
    // item of the batch has succeeded on its own.
    const client = await sqlClient(url);
    await client.query(`CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.spiffe_id = '${POISON}' THEN RAISE EXCEPTION 'poisoned' USING ERRCODE = '23514'; END IF; RETURN NEW; END $$`);
    await client.query('CREATE CONSTRAINT TRIGGER refuse_poison AFTER INSERT ON certificates DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_poison()');
    for (let i = 0; i < 3; i++) await store.createToken(token({ jti: `doomed-${i}` }), audit());
    const before = await store.auditChainHead();

    const results = await Promise.allSettled(
      [0, 1, 2].map((i) => store.redeemTokenAndInsertCertificate(`doomed-${i}`, new Date(), certificate(i === 1 ? { spiffeId: POISON } : {}), audit({ action: 'enroll' }))),
    );
    expect(results.map(codeOrValue)).toEqual(['ERR_STORE', 'ERR_STORE', 'ERR_STORE']);
    for (let i = 0; i < 3; i++) expect((await store.getToken(`doomed-${i}`))?.usedAt).toBeNull();
    expect(await store.countCertificates({})).toBe(0);
    expect(await store.auditChainHead()).toEqual(before);

    // The store goes on: the next batch commits and the chain verifies.
    expect(await store.redeemTokenAndInsertCertificate('doomed-0', new Date(), certificate(), audit({ action: 'enroll' }))).toBe('ok');
    const report = await verifyStoredAuditChain(store);
    expect(report.ok).toBe(true);
    expect(report.head?.seq).toBe(before!.seq + 1);
  });

  it('a revocation chosen as a deadlock victim runs again and revokes, instead of failing with ERR_STORE', async () => {
    const { store, url } = await freshStore();
    const spiffeId = 'spiffe://example.org/deadlocked';
    const [older, newer] = [certificate({ spiffeId }), certificate({ spiffeId })];
    await store.insertCertificate(older, audit());
    await store.insertCertificate(newer, audit());
    // Another session, in the place of an issuance batch renewing this identity, holds the audit
    // chain lock; it checks for deadlocks far later than the store's sessions do.
    const other = await sqlClient(url);
    await other.query("SET deadlock_timeout = '60s'");
    await other.query('BEGIN');
    await other.query("SELECT value FROM meta WHERE key = 'audit_chain' FOR UPDATE");

    // The revocation locks both certificate rows, then waits for the chain lock.
    const revoking = store.revokeIdentity(spiffeId, at(HOUR), 'keyCompromise', audit({ action: 'revoke', subject: spiffeId }));
    await untilASessionWaitsOnALock(other, 'the revocation never waited for the chain lock');
    // Now the other session waits for a row the revocation holds: a cycle; PostgreSQL aborts the
    // revocation's transaction (its deadlock_timeout comes first), which lets this one through.
    const updated = await other.query('UPDATE certificates SET status = status WHERE serial = $1 RETURNING status', [older.serial]);
    // Granted only once the revocation's first attempt was rolled back: the row is still valid.
    expect(updated.rows).toEqual([{ status: 'valid' }]);
    await other.query('COMMIT');

    const revoked = await revoking;
    expect(revoked.map((record) => record.serial).sort()).toEqual([older.serial, newer.serial].sort());
    expect(revoked.every((record) => record.status === 'revoked')).toBe(true);
    expect(await store.listAudit({ action: 'revoke' })).toHaveLength(1);
    expect((await verifyStoredAuditChain(store)).ok).toBe(true);
  }, 30_000);

  it('an item chosen as a deadlock victim is retried in the next batch, not failed', async () => {
    const { store, url } = await freshStore();
    await store.createToken(token({ jti: 'first' }), audit());
    await store.createToken(token({ jti: 'second' }), audit());
    // Another session holds the second token's row; it waits far longer than the store's
    // backend before checking for a deadlock, so PostgreSQL aborts the store's statement.
    const other = await sqlClient(url);
    await other.query("SET deadlock_timeout = '60s'");
    await other.query('BEGIN');
    await other.query("SELECT jti FROM tokens WHERE jti = 'second' FOR UPDATE");

    // One batch: 'first' is locked by it, 'second' waits for the other session.
    const redeemed = Promise.all([
      store.redeemTokenAndInsertCertificate('first', new Date(), certificate(), audit({ action: 'enroll' })),
      store.redeemTokenAndInsertCertificate('second', new Date(), certificate(), audit({ action: 'enroll' })),
    ]);
    await untilASessionWaitsOnALock(other, 'the batch never waited for the second token');
    // Now the other session waits for 'first', which the batch holds: a cycle.
    const otherWaits = other.query("SELECT jti FROM tokens WHERE jti = 'first' FOR UPDATE");
    await otherWaits; // granted once the batch (with 'first', without 'second') has committed
    await other.query('ROLLBACK');
    expect(await redeemed).toEqual(['ok', 'ok']);
    expect(await store.listAudit({ action: 'enroll' })).toHaveLength(2);
    expect((await verifyStoredAuditChain(store)).ok).toBe(true);
  }, 30_000);
});
