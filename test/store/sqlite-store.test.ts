import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteStore, openStore } from '../../src/store/index.js';
import { audit, caKey, certificate } from './records.js';

const dir = mkdtempSync(join(tmpdir(), 'tlsmesh-sqlite-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let fileCount = 0;
const newPath = (): string => join(dir, `store-${++fileCount}.db`);

describe('SQLite store', () => {
  it('creates a new file readable by its owner only', async () => {
    const path = newPath();
    const store = await openSqliteStore({ path });
    await store.migrate();
    await store.appendAudit(audit());
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(`${path}-wal`).mode & 0o777).toBe(0o600);
    await store.close();
  });

  it('migrationStatus names what migrate would run and what a newer version ran, changing nothing', async () => {
    const path = newPath();
    const store = await openSqliteStore({ path });
    expect(await store.migrationStatus()).toEqual({ pending: ['0001_initial_schema', '0002_revocation_publishing', '0003_audit_chain'], unknown: [] });
    const tables = new Database(path, { readonly: true });
    expect(tables.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get()).toEqual({ n: 0 });
    tables.close();
    await store.migrate();
    expect(await store.migrationStatus()).toEqual({ pending: [], unknown: [] });
    const raw = new Database(path);
    raw.prepare("INSERT INTO kysely_migration (name, timestamp) VALUES ('9999_from_a_newer_tlsmesh', '2030-01-01T00:00:00.000Z')").run();
    raw.close();
    expect(await store.migrationStatus()).toEqual({ pending: [], unknown: ['9999_from_a_newer_tlsmesh'] });
    await store.close();
  });

  it('puts the file in WAL mode', async () => {
    const path = newPath();
    const store = await openSqliteStore({ path });
    await store.migrate();
    await store.close();
    const raw = new Database(path, { readonly: true });
    try {
      expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    } finally {
      raw.close();
    }
  });

  it('a reopened store sees the data', async () => {
    const path = newPath();
    const cert = certificate();
    const first = await openSqliteStore({ path });
    await first.migrate();
    await first.putCaKey(caKey());
    await first.insertCertificate(cert, audit({ action: 'issue' }));
    await first.close();

    const second = await openSqliteStore({ path });
    await second.migrate();
    expect(await second.getCertificate(cert.serial)).toEqual(cert);
    expect(await second.listCaKeys()).toEqual([caKey()]);
    await second.close();
  });

  it('a missing parent directory is ERR_STORE', async () => {
    await expect(openSqliteStore({ path: join(dir, 'no-such-dir', 'ca.db') })).rejects.toMatchObject({ code: 'ERR_STORE' });
  });

  it('an empty path is a TypeError', async () => {
    await expect(openSqliteStore({ path: '' })).rejects.toBeInstanceOf(TypeError);
  });

  it('works in memory', async () => {
    const store = await openSqliteStore({ path: ':memory:' });
    await store.migrate();
    expect(await store.initMeta('k', 'v')).toBe('v');
    await store.close();
  });

  it('several processes migrating one new file at once agree on one schema and one value', async () => {
    const path = newPath();
    const fixture = fileURLToPath(new URL('./fixtures/migrate-sqlite.ts', import.meta.url));
    const tsx = createRequire(import.meta.url).resolve('tsx');
    const run = promisify(execFile);
    // A common start instant, late enough for every child to have loaded: a barrier, not a timing assertion.
    const startAt = String(Date.now() + 3000);
    const outputs = await Promise.all(
      Array.from({ length: 6 }, () => run(process.execPath, ['--import', tsx, fixture, path, startAt])),
    );
    const winners = new Set(outputs.map((output) => output.stdout.trim()));
    expect(winners.size).toBe(1);
    const store = await openSqliteStore({ path });
    expect(await store.getMeta('winner')).toBe([...winners][0]);
    await store.close();
  }, 30_000);
});

describe('openStore', () => {
  it('opens sqlite:PATH and a plain path as SQLite, the same file either way', async () => {
    const path = newPath();
    const viaScheme = await openStore(`sqlite:${path}`);
    expect(viaScheme.backend).toBe('sqlite');
    await viaScheme.migrate();
    await viaScheme.initMeta('k', 'v');
    await viaScheme.close();
    const viaPath = await openStore(path);
    expect(viaPath.backend).toBe('sqlite');
    expect(await viaPath.getMeta('k')).toBe('v');
    await viaPath.close();
  });

  it.each(['mysql://user:secret@db/x', 'http://x', 'sqlite:', ''])('refuses %j with ERR_CONFIG', async (url) => {
    const error = await openStore(url).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ERR_CONFIG' });
    expect(String((error as Error).message)).not.toContain('secret');
  });
});
