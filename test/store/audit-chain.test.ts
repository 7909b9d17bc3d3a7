/**
 * The audit log's hash chain: the verifier on hand-made chains (ok/… and fail/… tables), then on
 * both backends: every write path appends a chained row, concurrent writers (one process; two
 * pools on PostgreSQL) still make one chain, and rows changed behind the store's back with the
 * driver (UPDATE, DELETE, INSERT, truncation, a recomputed chain) are caught. The SQLite chain is
 * also checked by a second implementation (Python's hashlib/json, test/helpers/audit_chain_check.py).
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { Kysely, Migrator } from 'kysely';
import pg from 'pg';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import {
  AuditChainVerifier,
  GENESIS_HASH,
  hashAuditRow,
  openPostgresStore,
  openSqliteStore,
  verifyStoredAuditChain,
  type AuditChainAnchor,
  type AuditChainReport,
  type AuditChainRow,
  type Store,
} from '../../src/store/index.js';
import { createMigrationProvider } from '../../src/store/migrations.js';
import type { StoreSchema } from '../../src/store/schema.js';
import { ImmediateSqliteDialect } from '../../src/store/sqlite-dialect.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { createTestDatabase, requirePgInSuite } from '../helpers/pg.js';
import { at, audit, caKey, certificate, HOUR, T0, token } from './records.js';

const run = promisify(execFile);
const PYTHON_CHECK = join(REPO_ROOT, 'test', 'helpers', 'audit_chain_check.py');

// ---------------------------------------------------------------------------------------------
// The verifier on chains built by hand

function chain(length: number): AuditChainRow[] {
  const rows: AuditChainRow[] = [];
  for (let seq = 1; seq <= length; seq++) rows.push(seal({ id: seq + 100, seq, at: T0.getTime() + seq, actor: 'cli:local', action: 'test', subject: `s${seq}`, outcome: 'ok', code: null, detail: `{"n":${seq}}`, peer: null }, rows.at(-1)));
  return rows;
}

/** The row with seq and chain fields computed after `previous`, as the store would write it. */
function seal(row: Omit<AuditChainRow, 'prevHash' | 'hash'>, previous: AuditChainRow | undefined): AuditChainRow {
  const prevHash = previous?.hash ?? GENESIS_HASH;
  return { ...row, prevHash, hash: hashAuditRow({ ...row, seq: row.seq!, prevHash }) };
}

/** Recomputes every hash from `from` on, keeping fields: what someone with write access could do. */
function recompute(rows: AuditChainRow[]): AuditChainRow[] {
  const out: AuditChainRow[] = [];
  for (const row of rows) out.push(seal(row, out.at(-1)));
  return out;
}

function verify(rows: AuditChainRow[], options: ConstructorParameters<typeof AuditChainVerifier>[0] = {}): AuditChainReport {
  const verifier = new AuditChainVerifier(options);
  for (const row of rows) if (!verifier.push(row)) break;
  return verifier.finish();
}

const anchorOf = (row: AuditChainRow): AuditChainAnchor => ({ seq: row.seq!, hash: row.hash! });

describe('AuditChainVerifier', () => {
  const rows = chain(6);

  it.each([
    { name: 'ok/empty log', input: [], options: {}, count: 0 },
    { name: 'ok/whole chain', input: rows, options: {}, count: 6 },
    { name: 'ok/with anchors on it', input: rows, options: { anchors: [anchorOf(rows[2]!), anchorOf(rows[5]!)] }, count: 6, anchors: 2 },
    { name: 'ok/partial segment from seq 3', input: rows.slice(2), options: { partial: true }, count: 4 },
  ])('$name', ({ input, options, count, anchors }) => {
    const report = verify(input, options);
    expect(report.break).toBeUndefined();
    expect(report.ok).toBe(true);
    expect(report.count).toBe(count);
    expect(report.head).toEqual(input.length === 0 ? null : anchorOf(input.at(-1)!));
    expect(report.anchorsMatched).toBe(anchors ?? 0);
  });

  const edited = rows.map((row) => (row.seq === 3 ? { ...row, actor: 'spiffe://example.org/someone-else' } : row));
  const detailRespaced = rows.map((row) => (row.seq === 4 ? { ...row, detail: '{"n": 4}' } : row));
  const withoutMiddle = rows.filter((row) => row.seq !== 4);
  const withoutFirst = rows.slice(1);
  const repeated = [...rows.slice(0, 3), rows[2]!, ...rows.slice(3)];
  const unchained = [...rows.slice(0, 2), { ...rows[2]!, seq: null, prevHash: null, hash: null }, ...rows.slice(3)];
  // Row 3 replaced by another whose own hash is recomputed (so it verifies by itself): 4 no longer links.
  const replaced = [...rows.slice(0, 2), seal({ ...rows[2]!, action: 'forged' }, rows[1]), ...rows.slice(3)];
  // A middle row deleted and everything after renumbered and rehashed: a consistent chain on its own.
  const rewritten = recompute(withoutMiddle.map((row, i) => ({ ...row, seq: i + 1 })));
  const genesisForged = [{ ...rows[0]!, prevHash: 'f'.repeat(64), hash: hashAuditRow({ ...rows[0]!, seq: 1, prevHash: 'f'.repeat(64) }) }, ...rows.slice(1)];

  it.each([
    { name: 'fail/a field edited', input: edited, options: {}, fault: 'edited', seq: 3, count: 2 },
    { name: 'fail/the stored detail text re-spaced', input: detailRespaced, options: {}, fault: 'edited', seq: 4, count: 3 },
    { name: 'fail/a middle row deleted', input: withoutMiddle, options: {}, fault: 'missing', seq: 5, count: 3 },
    { name: 'fail/the first row deleted', input: withoutFirst, options: {}, fault: 'missing', seq: 2, count: 0 },
    { name: 'fail/a row repeated', input: repeated, options: {}, fault: 'inserted', seq: 3, count: 3 },
    { name: 'fail/a row without chain fields', input: unchained, options: {}, fault: 'inserted', seq: null, count: 2 },
    { name: 'fail/a row replaced with its own hash recomputed', input: replaced, options: {}, fault: 'inserted', seq: 4, count: 3 },
    { name: 'fail/the first row not linked to genesis', input: genesisForged, options: {}, fault: 'inserted', seq: 1, count: 0 },
    { name: 'fail/tail truncated, caught by an anchor', input: rows.slice(0, 4), options: { anchors: [anchorOf(rows[5]!)] }, fault: 'truncated', seq: 6, count: 4 },
    { name: 'fail/chain recomputed, caught by an anchor', input: rewritten, options: { anchors: [anchorOf(rows[4]!)] }, fault: 'rewritten', seq: 5, count: 4 },
    { name: 'fail/partial segment without --partial', input: rows.slice(2), options: {}, fault: 'missing', seq: 3, count: 0 },
    { name: 'fail/anchor before a partial segment', input: rows.slice(2), options: { partial: true, anchors: [anchorOf(rows[0]!)] }, fault: 'missing', seq: 1, count: 4 },
  ])('$name', ({ input, options, fault, seq, count }) => {
    const report = verify(input, options);
    expect(report.ok).toBe(false);
    expect(report.break).toMatchObject({ fault, seq });
    expect(report.count).toBe(count);
  });

  it('truncation and recomputation verify without an anchor: the limit the docs state', () => {
    expect(verify(rows.slice(0, 4)).ok).toBe(true);
    expect(verify(rewritten).ok).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// Both backends

interface Backend {
  name: 'sqlite' | 'postgres';
  ready(): Promise<boolean>;
  /** A fresh, migrated store, and a way to run SQL on its database behind its back. */
  open(): Promise<{ store: Store; raw: (sql: string, params?: unknown[]) => Promise<void>; path?: string; url?: string }>;
}

const sqliteDir = mkdtempSync(join(tmpdir(), 'tlsmesh-audit-chain-'));
afterAll(() => rmSync(sqliteDir, { recursive: true, force: true }));

const backends: Backend[] = [
  {
    name: 'sqlite',
    ready: () => Promise.resolve(true),
    async open() {
      const path = join(sqliteDir, `${randomUUID()}.db`);
      const store = await openSqliteStore({ path });
      onTestFinished(() => store.close());
      await store.migrate();
      const raw = (sql: string, params: unknown[] = []): Promise<void> => {
        const database = new Database(path);
        try {
          database.prepare(sql).run(...params);
        } finally {
          database.close();
        }
        return Promise.resolve();
      };
      return { store, raw, path };
    },
  },
  {
    name: 'postgres',
    ready: requirePgInSuite,
    async open() {
      const database = await createTestDatabase();
      const store = await openPostgresStore({ connectionString: database.url, poolSize: 4 });
      onTestFinished(() => database.drop());
      onTestFinished(() => store.close());
      await store.migrate();
      const raw = async (sql: string, params: unknown[] = []): Promise<void> => {
        const client = new pg.Client({ connectionString: database.url });
        await client.connect();
        try {
          await client.query(sql.replace(/\?/g, (() => { let n = 0; return () => `$${++n}`; })()), params);
        } finally {
          await client.end();
        }
      };
      return { store, raw, url: database.url };
    },
  },
];

/** One entry through every store write that appends to the audit log: 7 rows. */
async function everyWritePath(store: Store): Promise<void> {
  await store.putCaKey(caKey());
  const tokenRecord = token();
  await store.createToken(tokenRecord, audit({ action: 'token.create', subject: tokenRecord.jti }));
  const enrolled = certificate();
  expect(await store.redeemTokenAndInsertCertificate(tokenRecord.jti, at(HOUR / 2), enrolled, audit({ action: 'enroll', detail: { serial: enrolled.serial, note: 'ünïcødé — "quoted"\n' } }))).toBe('ok');
  const renewed = certificate();
  expect(await store.insertRenewedCertificate(enrolled.serial, renewed, audit({ action: 'renew', subject: renewed.spiffeId, peer: '127.0.0.1' }))).toBe('ok');
  await store.insertCertificate(certificate({ kind: 'admin', spiffeId: 'spiffe://example.org/admin' }), audit({ action: 'admin.issue' }));
  await store.revokeCertificate(renewed.serial, at(HOUR), 'keyCompromise', audit({ action: 'revoke', subject: renewed.serial }));
  await store.revokeIdentity(enrolled.spiffeId, at(HOUR), 'superseded', audit({ action: 'revoke', subject: enrolled.spiffeId }));
  await store.appendAudit(audit({ action: 'enroll', outcome: 'refused', code: 'ERR_TOKEN_REUSED', detail: { message: 'the token was used' } }));
}

async function chainRows(store: Store): Promise<AuditChainRow[]> {
  return store.readAuditChain(0, 10_000);
}

describe.each(backends)('audit chain on $name', async (backend) => {
  if (!(await backend.ready())) return;

  it('every write path appends a linked row; the chain verifies and its head is the store head', async () => {
    const { store, path } = await backend.open();
    await everyWritePath(store);
    const report = await verifyStoredAuditChain(store);
    expect(report).toMatchObject({ ok: true, count: 7, first: { seq: 1 } });
    expect(report.head).toEqual(await store.auditChainHead());
    const rows = await chainRows(store);
    expect(rows.map((row) => row.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    // Chain order is append order.
    expect(rows.map((row) => row.action)).toEqual(['token.create', 'enroll', 'renew', 'admin.issue', 'revoke', 'revoke', 'enroll']);
    expect((await store.listAudit({})).map((entry) => entry.id)).toEqual(rows.map((row) => row.id));
    if (path !== undefined) {
      const { stdout } = await run('python3', [PYTHON_CHECK, 'sqlite', path]);
      expect(stdout.trim()).toBe(`ok 7 ${report.head!.seq}:${report.head!.hash}`);
    }
  });

  it('an empty log verifies with no head; an anchor on it is a truncation', async () => {
    const { store } = await backend.open();
    expect(await store.auditChainHead()).toBeNull();
    expect(await verifyStoredAuditChain(store)).toMatchObject({ ok: true, count: 0, head: null });
    expect((await verifyStoredAuditChain(store, { anchors: [{ seq: 1, hash: 'a'.repeat(64) }] })).break).toMatchObject({ fault: 'truncated', seq: 1 });
  });

  it('concurrent writes on one store (group-committed on SQLite) form one chain', async () => {
    const { store, path } = await backend.open();
    await store.putCaKey(caKey());
    await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        i % 3 === 0 ? store.appendAudit(audit({ action: 'certs.list', detail: { i } })) : store.insertCertificate(certificate(), audit({ action: 'issue', detail: { i } })),
      ),
    );
    // A serial collision inside a batch rolls back its savepoint; the next entry links to the one before.
    const taken = certificate();
    await store.insertCertificate(taken, audit({ action: 'issue' }));
    const results = await Promise.allSettled([store.insertCertificate(certificate(), audit({ action: 'issue' })), store.insertCertificate({ ...taken }, audit({ action: 'issue' })), store.insertCertificate(certificate(), audit({ action: 'issue' }))]);
    expect(results.map((result) => result.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    const report = await verifyStoredAuditChain(store);
    expect(report).toMatchObject({ ok: true, count: 63 });
    const rows = await chainRows(store);
    expect(rows.map((row) => row.id)).toEqual([...rows.map((row) => row.id)].sort((a, b) => a - b));
    if (path !== undefined) expect((await run('python3', [PYTHON_CHECK, 'sqlite', path])).stdout).toMatch(/^ok 63 63:/);
  });

  it('a row edited with SQL is caught at that row', async () => {
    const { store, raw } = await backend.open();
    await everyWritePath(store);
    const victim = (await chainRows(store))[2]!;
    await raw('UPDATE audit_log SET actor = ? WHERE id = ?', ['spiffe://example.org/innocent', victim.id]);
    expect((await verifyStoredAuditChain(store)).break).toMatchObject({ fault: 'edited', seq: 3, id: victim.id });
  });

  it('a middle row deleted is caught as missing at the row after it', async () => {
    const { store, raw } = await backend.open();
    await everyWritePath(store);
    await raw('DELETE FROM audit_log WHERE seq = ?', [4]);
    const report = await verifyStoredAuditChain(store);
    expect(report.break).toMatchObject({ fault: 'missing', seq: 5 });
    expect(report.count).toBe(3);
  });

  it('a row inserted with SQL (no chain fields) is caught; so is one given a free seq', async () => {
    const { store, raw } = await backend.open();
    await everyWritePath(store);
    await raw("INSERT INTO audit_log (at, actor, action, outcome, detail) VALUES (?, 'cli:local', 'enroll', 'ok', '{}')", [T0.getTime()]);
    const report = await verifyStoredAuditChain(store);
    expect(report.break).toMatchObject({ fault: 'inserted', seq: null });
    expect(report.break!.id).toBeGreaterThan(7);

    const { store: other, raw: otherRaw } = await backend.open();
    await everyWritePath(other);
    // Its own hash is right, but it links to a made-up predecessor.
    const forged = { at: T0.getTime(), actor: 'cli:local', action: 'enroll', subject: null, outcome: 'ok', code: null, detail: '{}', peer: null, seq: 8, prevHash: 'b'.repeat(64) };
    await otherRaw("INSERT INTO audit_log (at, actor, action, outcome, detail, seq, prev_hash, hash) VALUES (?, 'cli:local', 'enroll', 'ok', '{}', 8, ?, ?)", [forged.at, forged.prevHash, hashAuditRow(forged)]);
    expect((await verifyStoredAuditChain(other)).break).toMatchObject({ fault: 'inserted', seq: 8 });
  });

  it('a row forged with a seq the walk never meets (0, negative) is caught, and so is a duplicated seq once the unique index is dropped', async () => {
    for (const seq of [0, -5]) {
      const { store, raw } = await backend.open();
      await everyWritePath(store);
      await raw("INSERT INTO audit_log (at, actor, action, outcome, detail, seq, prev_hash, hash) VALUES (?, 'spiffe://evil/admin', 'revoke', 'ok', '{}', ?, ?, ?)", [T0.getTime(), seq, 'a'.repeat(64), 'b'.repeat(64)]);
      const report = await verifyStoredAuditChain(store);
      expect(report.ok).toBe(false);
      expect(report.break).toMatchObject({ fault: 'inserted', seq });
    }
    const { store, raw } = await backend.open();
    await everyWritePath(store);
    await raw('DROP INDEX audit_log_seq_idx');
    const [third] = (await chainRows(store)).filter((row) => row.seq === 3);
    await raw("INSERT INTO audit_log (at, actor, action, outcome, detail, seq, prev_hash, hash) VALUES (?, 'spiffe://evil/admin', 'revoke', 'ok', '{}', 3, ?, ?)", [T0.getTime(), third!.prevHash, third!.hash]);
    expect((await verifyStoredAuditChain(store)).ok).toBe(false);
  });

  it('a duplicated seq at a page boundary of the walk, never read by it, is caught by the row count', async (context) => {
    // One backend is enough: this checks the walk's bookkeeping, and SQLite writes 1,000 rows fast.
    if (backend.name !== 'sqlite') return context.skip('the same code on both backends; SQLite only for speed');
    const { store, raw } = await backend.open();
    for (let i = 0; i < 1000; i++) await store.appendAudit(audit({ action: 'certs.list', detail: { i } }));
    await raw('DROP INDEX audit_log_seq_idx');
    const [last] = (await chainRows(store)).filter((row) => row.seq === 1000);
    await raw("INSERT INTO audit_log (at, actor, action, outcome, detail, seq, prev_hash, hash) VALUES (?, 'spiffe://evil/admin', 'revoke', 'ok', '{}', 1000, ?, ?)", [T0.getTime(), last!.prevHash, last!.hash]);
    const report = await verifyStoredAuditChain(store);
    expect(report.break).toMatchObject({ fault: 'inserted' });
    expect(report.break!.message).toMatch(/1001 rows but the chain accounts for 1000/);
  });

  it('a truncated tail verifies alone but not against the anchor the CA logged; the CA then appends after the new tail', async () => {
    const { store, raw } = await backend.open();
    await everyWritePath(store);
    const anchor = (await store.auditChainHead())!;
    await raw('DELETE FROM audit_log WHERE seq > ?', [5]);
    expect((await verifyStoredAuditChain(store)).ok).toBe(true);
    expect((await verifyStoredAuditChain(store, { anchors: [anchor] })).break).toMatchObject({ fault: 'truncated', seq: 7 });
    // The next append reuses seq 6 with another hash: the anchor still catches it.
    await store.appendAudit(audit({ action: 'later' }));
    await store.appendAudit(audit({ action: 'later' }));
    expect((await verifyStoredAuditChain(store)).ok).toBe(true);
    expect((await verifyStoredAuditChain(store, { anchors: [anchor] })).break).toMatchObject({ fault: 'rewritten', seq: 7 });
  });

  it('a whole chain recomputed after an edit verifies alone, and fails against an anchor', async () => {
    const { store, raw } = await backend.open();
    await everyWritePath(store);
    const anchor = (await store.auditChainHead())!;
    const rows = await chainRows(store);
    const forged = recompute(rows.map((row) => (row.seq === 2 ? { ...row, actor: 'spiffe://example.org/innocent' } : row)));
    for (const row of forged) {
      await raw('UPDATE audit_log SET actor = ?, prev_hash = ?, hash = ? WHERE id = ?', [row.actor, row.prevHash, row.hash, row.id]);
    }
    expect((await verifyStoredAuditChain(store)).ok).toBe(true);
    expect((await verifyStoredAuditChain(store, { anchors: [anchor] })).break).toMatchObject({ fault: 'rewritten', seq: 7 });
  });
});

// ---------------------------------------------------------------------------------------------
// Upgrades and several writers

describe('the migration chains an existing audit log', () => {
  it('rows written before the upgrade are chained in id order and verify (SQLite, checked by Python too)', async () => {
    const path = join(sqliteDir, `${randomUUID()}.db`);
    const store = await openSqliteStore({ path });
    await store.close();
    // The schema as the previous release left it, with audit rows in it (ids with a gap).
    const database = new Database(path);
    const db = new Kysely<StoreSchema>({ dialect: new ImmediateSqliteDialect({ database }) });
    const { error } = await new Migrator({ db, provider: createMigrationProvider('sqlite') }).migrateTo('0002_revocation_publishing');
    expect(error).toBeUndefined();
    for (const id of [1, 2, 3, 5, 8]) {
      database.prepare("INSERT INTO audit_log (id, at, actor, action, outcome, detail) VALUES (?, ?, 'cli:local', ?, 'ok', ?)").run(id, T0.getTime() + id, `old-${id}`, JSON.stringify({ id }));
    }
    await db.destroy();

    const upgraded = await openSqliteStore({ path });
    try {
      await upgraded.migrate();
      await upgraded.appendAudit(audit({ action: 'after-upgrade' }));
      const rows = await upgraded.readAuditChain(0, 100);
      expect(rows.map((row) => [row.id, row.seq, row.action])).toEqual([
        [1, 1, 'old-1'],
        [2, 2, 'old-2'],
        [3, 3, 'old-3'],
        [5, 4, 'old-5'],
        [8, 5, 'old-8'],
        [9, 6, 'after-upgrade'],
      ]);
      expect(await verifyStoredAuditChain(upgraded)).toMatchObject({ ok: true, count: 6 });
    } finally {
      await upgraded.close();
    }
    expect((await run('python3', [PYTHON_CHECK, 'sqlite', path])).stdout).toMatch(/^ok 6 6:[0-9a-f]{64}\n$/);
  });
});

describe('two PostgreSQL pools appending at once', async () => {
  if (!(await requirePgInSuite())) return;

  it('make one chain: no fork, no gap, chain order is id order', async () => {
    const database = await createTestDatabase();
    onTestFinished(() => database.drop());
    const stores = await Promise.all([0, 1].map(() => openPostgresStore({ connectionString: database.url, poolSize: 6 })));
    onTestFinished(async () => {
      await Promise.all(stores.map((store) => store.close()));
    });
    await Promise.all(stores.map((store) => store.migrate()));
    await stores[0]!.putCaKey(caKey());
    await Promise.all(
      Array.from({ length: 120 }, (_, i) => {
        const store = stores[i % 2]!;
        return i % 4 === 0 ? store.appendAudit(audit({ action: 'certs.list', detail: { i } })) : store.insertCertificate(certificate(), audit({ action: 'issue', detail: { i } }));
      }),
    );
    const report = await verifyStoredAuditChain(stores[1]!);
    expect(report).toMatchObject({ ok: true, count: 120, head: { seq: 120 } });
    const rows = await stores[0]!.readAuditChain(0, 1000);
    expect(rows.map((row) => row.id)).toEqual([...rows.map((row) => row.id)].sort((a, b) => a - b));
  });
});
