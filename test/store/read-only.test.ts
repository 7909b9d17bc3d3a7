/**
 * A store opened read-only (what `tlsmesh ca audit-log` uses) reads like any other and can write
 * nothing: the SQLite file keeps its bytes, even its journal mode, and PostgreSQL refuses writes
 * in the session itself.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/index.js';
import { createTestDatabase, requirePgInSuite } from '../helpers/pg.js';
import { audit } from './records.js';

const dir = mkdtempSync(join(tmpdir(), 'tlsmesh-read-only-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const digest = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

describe('read-only SQLite store', () => {
  it('reads a store kept in rollback-journal mode without switching it to WAL or changing a byte; writes fail with ERR_STORE', async () => {
    const path = join(dir, 'evidence.db');
    const writer = await openStore(`sqlite:${path}`);
    await writer.migrate();
    await writer.appendAudit(audit({ action: 'status' }));
    await writer.close();
    // As a copy kept for evidence might be: back in the default rollback-journal mode.
    const raw = new Database(path);
    raw.pragma('journal_mode = DELETE');
    raw.close();
    const before = digest(path);

    const reader = await openStore(`sqlite:${path}`, { readOnly: true });
    expect(await reader.migrationStatus()).toEqual({ pending: [], unknown: [] });
    expect(await reader.countAudit()).toBe(1);
    await expect(reader.appendAudit(audit({ action: 'status' }))).rejects.toMatchObject({ code: 'ERR_STORE' });
    await reader.close();

    expect(digest(path)).toBe(before);
    expect(existsSync(`${path}-wal`)).toBe(false);
    const check = new Database(path, { readonly: true });
    expect(check.pragma('journal_mode', { simple: true })).toBe('delete');
    check.close();
  });

  it('a path with no file is ERR_STORE, and no file is created there', async () => {
    const path = join(dir, 'typo.db');
    await expect(openStore(`sqlite:${path}`, { readOnly: true })).rejects.toMatchObject({ code: 'ERR_STORE', message: expect.stringContaining('no SQLite store file') as unknown });
    expect(existsSync(path)).toBe(false);
  });
});

describe('read-only PostgreSQL store', async () => {
  if (!(await requirePgInSuite())) return;

  it('reads, and the session refuses writes (ERR_STORE); nothing is written', async () => {
    const database = await createTestDatabase();
    try {
      const writer = await openStore(database.url);
      await writer.migrate();
      await writer.appendAudit(audit({ action: 'status' }));
      await writer.close();

      const reader = await openStore(database.url, { readOnly: true });
      try {
        expect(await reader.migrationStatus()).toEqual({ pending: [], unknown: [] });
        expect(await reader.countAudit()).toBe(1);
        await expect(reader.appendAudit(audit({ action: 'status' }))).rejects.toMatchObject({ code: 'ERR_STORE' });
        expect(await reader.countAudit()).toBe(1);
      } finally {
        await reader.close();
      }
    } finally {
      await database.drop();
    }
  });
});
