/**
 * SQLite group commit: writes issued in the same event-loop turn share one transaction, and a
 * failing operation inside it (a serial collision) rolls back alone — its token stays unused —
 * while the others commit.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Kysely, SqliteDialect } from 'kysely';
import { openSqliteStore, type Store } from '../../src/store/index.js';
import { verifyStoredAuditChain } from '../../src/store/audit-chain-io.js';
import type { StoreSchema } from '../../src/store/schema.js';
import { SqliteGroupCommit } from '../../src/store/sqlite-group-commit.js';
import { audit, caKey, certificate, token } from './records.js';

describe('SQLite group commit', () => {
  let dir: string;
  let store: Store;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tlsmesh-group-'));
    store = await openSqliteStore({ path: join(dir, 'ca.db') });
    await store.migrate();
    await store.putCaKey(caKey());
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a collision in the middle of a batch fails alone; the rest commit', async () => {
    const tokens = Array.from({ length: 20 }, (_, i) => token({ jti: `jti-${i}` }));
    for (const record of tokens) await store.createToken(record, audit({ action: 'token.create' }));
    const taken = certificate();
    await store.insertCertificate(taken, audit());

    // All twenty start in one turn, so they land in one batch; number 7 reuses a serial.
    const results = await Promise.allSettled(
      tokens.map((record, i) =>
        store.redeemTokenAndInsertCertificate(record.jti, new Date(), certificate(i === 7 ? { serial: taken.serial } : {}), audit({ action: 'enroll', subject: record.jti })),
      ),
    );
    expect(results.map((result) => (result.status === 'fulfilled' ? result.value : (result.reason as { code: string }).code))).toEqual(
      tokens.map((_, i) => (i === 7 ? 'ERR_SERIAL_COLLISION' : 'ok')),
    );
    expect((await store.getToken('jti-7'))?.usedAt).toBeNull();
    expect((await store.getToken('jti-8'))?.usedAt).not.toBeNull();
    const enrolAudit = await store.listAudit({ action: 'enroll', limit: 100 });
    expect(enrolAudit.map((entry) => entry.subject).sort()).toEqual(tokens.filter((_, i) => i !== 7).map((record) => record.jti).sort());
    // The failed one can be retried with a fresh serial.
    expect(await store.redeemTokenAndInsertCertificate('jti-7', new Date(), certificate(), audit())).toBe('ok');
    // Items after the rolled-back one chain onto the tail before it (the batch's memo of the
    // tail was dropped with it), so the chain has no gap and no fork.
    const report = await verifyStoredAuditChain(store);
    expect(report.ok, report.break?.message).toBe(true);
    expect(report.count).toBe(20 + 1 + 19 + 1);
  });

  it('audit entries of several batches in a row chain without gaps (the tail is carried within a batch, read at the next)', async () => {
    for (let round = 0; round < 3; round++) {
      await Promise.all(Array.from({ length: 10 }, (_, i) => store.appendAudit(audit({ action: 'status', subject: `r${round}-${i}` }))));
    }
    const report = await verifyStoredAuditChain(store);
    expect(report.ok, report.break?.message).toBe(true);
    expect(report.count).toBe(30);
    expect(report.head?.seq).toBe(30);
  });

  it('redeeming one token twice in one batch: exactly one wins', async () => {
    await store.createToken(token({ jti: 'twice' }), audit());
    const results = await Promise.all([
      store.redeemTokenAndInsertCertificate('twice', new Date(), certificate(), audit()),
      store.redeemTokenAndInsertCertificate('twice', new Date(), certificate(), audit()),
      store.redeemTokenAndInsertCertificate('unknown', new Date(), certificate(), audit()),
    ]);
    expect(results).toEqual(['ok', 'token-used', 'token-unknown']);
  });

  it('when the batch cannot commit, every operation in it fails with ERR_STORE and nothing is kept', async () => {
    for (let i = 0; i < 3; i++) await store.createToken(token({ jti: `locked-${i}` }), audit());
    // Another process holds the write lock for longer than the busy timeout lets us wait.
    const other = new Database(join(dir, 'ca.db'));
    other.pragma('busy_timeout = 0');
    other.exec('BEGIN IMMEDIATE');
    try {
      const results = await Promise.allSettled([0, 1, 2].map((i) => store.redeemTokenAndInsertCertificate(`locked-${i}`, new Date(), certificate(), audit())));
      expect(results.map((result) => (result.status === 'rejected' ? (result.reason as { code: string }).code : result.value))).toEqual(['ERR_STORE', 'ERR_STORE', 'ERR_STORE']);
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    for (let i = 0; i < 3; i++) expect((await store.getToken(`locked-${i}`))?.usedAt).toBeNull();
  }, 30_000);
});

describe('SqliteGroupCommit on its own', () => {
  let dir: string;
  let database: Database.Database;
  let db: Kysely<StoreSchema>;
  let group: SqliteGroupCommit;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tlsmesh-group-unit-'));
    database = new Database(join(dir, 'unit.db'));
    database.pragma('journal_mode = WAL');
    database.exec('CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB NOT NULL)');
    db = new Kysely<StoreSchema>({ dialect: new SqliteDialect({ database }) });
    group = new SqliteGroupCommit(db, database, (sql) => database.prepare(sql));
  });
  afterEach(async () => {
    await db.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  const insertBlob = (size: number) => (): number => database.prepare('INSERT INTO blobs (data) VALUES (?)').run(Buffer.alloc(size, 7)).changes;
  const count = (): number => (database.prepare('SELECT count(*) AS n FROM blobs').get() as { n: number }).n;

  it('a disk-full in the middle of a batch keeps nothing of it, and every caller hears so', async () => {
    // Room for a little more than the first items: the fourth runs out of pages.
    const pages = (database.pragma('page_count', { simple: true }) as number) + 6;
    database.pragma(`max_page_count = ${pages}`);
    const results = await Promise.allSettled([1, 2, 3, 4, 5, 6].map((i) => group.run(insertBlob(i === 4 ? 200_000 : 2000))));
    expect(results.every((result) => result.status === 'rejected')).toBe(true);
    expect(count()).toBe(0);
    // The database is usable again afterwards.
    database.pragma('max_page_count = 1073741823');
    await expect(group.run(insertBlob(10))).resolves.toBe(1);
    expect(count()).toBe(1);
  });

  it('work queued while a batch commits (here: from inside it) runs in the next batch', async () => {
    let inner: Promise<number> | undefined;
    const outer = await group.run(() => {
      inner = group.run(insertBlob(10));
      return insertBlob(10)();
    });
    expect(outer).toBe(1);
    await expect(inner).resolves.toBe(1);
    expect(count()).toBe(2);
  });

  it('the batch memo: items after one see what it left; a rolled-back item takes the memo with it', async () => {
    const seen: unknown[] = [];
    await Promise.allSettled([
      group.run((sql) => void sql.memo.set('tail', 'first')),
      group.run((sql) => void seen.push(sql.memo.get('tail'))),
      group.run((sql) => {
        sql.memo.set('tail', 'rolled back');
        throw new Error('refused after writing');
      }),
      group.run((sql) => void seen.push(sql.memo.get('tail'))),
    ]);
    expect(seen).toEqual(['first', undefined]);
  });

  it('a new batch starts with an empty memo, after a batch that committed and after one that failed as a whole', async () => {
    await group.run((sql) => void sql.memo.set('tail', 'committed'));
    const afterCommit = await group.run((sql) => sql.memo.get('tail'));
    // An item that ends the transaction and throws aborts the whole batch (nothing of it kept).
    const failed = group.run((sql) => {
      sql.memo.set('tail', 'never committed');
      insertBlob(10)();
      database.exec('ROLLBACK');
      throw new Error('the transaction is gone');
    });
    await expect(failed).rejects.toThrow('the transaction is gone');
    const afterFailure = await group.run((sql) => sql.memo.get('tail'));
    expect([afterCommit, afterFailure, count()]).toEqual([undefined, undefined, 0]);
  });

  it('an error thrown by one item rolls back that item only', async () => {
    const results = await Promise.allSettled([
      group.run(insertBlob(10)),
      group.run(() => {
        insertBlob(10)();
        throw new Error('refused after writing');
      }),
      group.run(insertBlob(10)),
    ]);
    expect(results.map((result) => result.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(count()).toBe(2);
  });
});
