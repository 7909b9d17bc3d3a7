import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import type { CustomTypesConfig } from 'pg';
import { TlsmeshError } from '../errors.js';
import { KyselyStore } from './kysely-store.js';
import type { StoreSchema } from './schema.js';
import type { Store } from './types.js';

export interface PostgresStoreOptions {
  /** `postgres://user:password@host:port/database?…`, as understood by `pg`. */
  connectionString: string;
  /** Largest number of connections the store keeps open; default 10. */
  poolSize?: number;
  /** Sessions with default_transaction_read_only: every write fails with ERR_STORE. */
  readOnly?: boolean;
}

const INT8_OID = 20;

/**
 * pg returns int8 (bigint) as a string, since it can exceed 2^53. Every int8 in this schema is
 * an epoch-ms time or an audit id, far below 2^53, so it is read as a number. The parser is
 * given to this pool only: the process-wide pg.types registry is left alone.
 */
const builtinTypeParser = pg.types.getTypeParser as (oid: number, format?: 'text' | 'binary') => unknown;
const int8AsNumber: CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary'): unknown =>
    oid === INT8_OID && format !== 'binary'
      ? (value: string) => Number(value)
      : builtinTypeParser(oid, format)) as CustomTypesConfig['getTypeParser'],
};

/**
 * Opens a PostgreSQL store over a connection pool and checks that the server answers.
 * Does not migrate; call `store.migrate()` (safe from several processes at once).
 *
 * @example
 * const store = await openPostgresStore({ connectionString: 'postgres://tlsmesh@db/tlsmesh' });
 * await store.migrate();
 */
export async function openPostgresStore(options: PostgresStoreOptions): Promise<Store> {
  const { connectionString, poolSize = 10, readOnly = false } = options;
  if (typeof connectionString !== 'string' || connectionString === '') {
    throw new TypeError('openPostgresStore: connectionString must be a non-empty string');
  }
  if (!Number.isSafeInteger(poolSize) || poolSize < 1) {
    throw new RangeError('openPostgresStore: poolSize must be a positive integer');
  }
  const pool = new pg.Pool({
    connectionString,
    max: poolSize,
    types: int8AsNumber,
    application_name: 'tlsmesh',
    connectionTimeoutMillis: 10_000,
    // Read-only sessions: PostgreSQL itself refuses any write (tools that check a store).
    ...(readOnly ? { options: '-c default_transaction_read_only=on' } : {}),
  });
  // An idle connection that the server drops emits 'error' on the pool; with no listener that
  // would crash the process. The pool discards that connection and the next query opens another.
  pool.on('error', () => {});
  const db = new Kysely<StoreSchema>({ dialect: new PostgresDialect({ pool }) });
  try {
    await sql`select 1`.execute(db);
  } catch (error) {
    await db.destroy();
    // The connection string may carry a password: it is not repeated in the message.
    throw new TlsmeshError('ERR_STORE', 'cannot connect to the PostgreSQL store', { cause: error });
  }
  return new KyselyStore(db, 'postgres');
}
