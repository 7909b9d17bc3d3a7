/**
 * Query shapes (src/store/query-shape.ts) compile a Kysely query once and rebuild only its
 * parameters: Kysely compiling the same query with the real values is the oracle.
 */
import Database from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compileShape, shapeParameters } from '../../src/store/query-shape.js';
import type { StoreSchema } from '../../src/store/schema.js';

describe('query shapes', () => {
  let database: Database.Database;
  let db: Kysely<StoreSchema>;
  beforeEach(() => {
    database = new Database(':memory:');
    db = new Kysely<StoreSchema>({ dialect: new SqliteDialect({ database }) });
  });
  afterEach(async () => {
    await db.destroy();
  });

  it('gives the SQL and parameters Kysely gives for the same values, constants kept in place', () => {
    const build = (v: { serial: string; usedAt: number; jti: string }) =>
      db.updateTable('tokens').set({ used_at: v.usedAt, used_by_serial: v.serial }).where('jti', '=', v.jti).where('used_by_serial', '!=', 'constant-serial');
    const values = { usedAt: 1_700_000_000_123, serial: '0a1b', jti: 'token-id' };
    const shape = compileShape(['usedAt', 'serial', 'jti'], build);
    const direct = build(values).compile();
    expect(shape.sql).toBe(direct.sql);
    expect(shapeParameters(shape, values)).toEqual(direct.parameters);
    expect(shapeParameters(shape, values)).toContain('constant-serial');
  });

  it('an insert shape puts each column value in its own place, nulls included', () => {
    const row = { jti: 'j', spiffe_id: 'spiffe://td/a', dns_names: '[]', ip_addresses: '[]', created_at: 1, expires_at: 2, created_by: 'x', used_at: null, used_by_serial: null };
    const shape = compileShape(Object.keys(row), (values) => db.insertInto('tokens').values(values as never));
    const direct = db.insertInto('tokens').values(row).compile();
    expect(shape.sql).toBe(direct.sql);
    expect(shapeParameters(shape, row)).toEqual(direct.parameters);
  });

  it('refuses a shape whose value does not become a parameter (it would be silently ignored)', () => {
    expect(() => compileShape(['serial', 'unused'], (v) => db.selectFrom('certificates').select('serial').where('serial', '=', v.serial))).toThrow(/unused did not become parameters/);
  });
});
