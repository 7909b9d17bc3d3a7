import { closeSync, existsSync, openSync } from 'node:fs';
import Database from 'better-sqlite3';
import { Kysely, type SqliteDatabase } from 'kysely';
import { TlsmeshError } from '../errors.js';
import { KyselyStore } from './kysely-store.js';
import type { StoreSchema } from './schema.js';
import { ImmediateSqliteDialect } from './sqlite-dialect.js';
import { SqliteGroupCommit } from './sqlite-group-commit.js';
import type { Store } from './types.js';

export interface SqliteStoreOptions {
  /** Database file; created with mode 0600 if missing (its directory must exist). `:memory:` for tests. */
  path: string;
  /**
   * Open for reading only: the file must exist and is never written (no WAL switch, no creation;
   * any write fails with ERR_STORE). For tools that check a store, such as `audit-log verify`.
   */
  readOnly?: boolean;
}

/** How long a statement waits for another process's write lock before failing with SQLITE_BUSY. */
const BUSY_TIMEOUT_MS = 5000;

/**
 * Opens (creating if needed) a SQLite store: WAL journal, `synchronous = NORMAL`, foreign keys on.
 * Does not migrate; call `store.migrate()` before use.
 *
 * Open one store per file per process: several processes may share the file, but two stores on
 * one file in the same process can stall each other (a waiting write blocks the event loop).
 *
 * @example
 * const store = await openSqliteStore({ path: '/var/lib/tlsmesh/ca.db' });
 * await store.migrate();
 */
export async function openSqliteStore(options: SqliteStoreOptions): Promise<Store> {
  const { path } = options;
  if (typeof path !== 'string' || path === '') {
    throw new TypeError('openSqliteStore: path must be a non-empty string');
  }
  if (options.readOnly) return openReadOnly(path);
  let database: Database.Database | undefined;
  try {
    if (path !== ':memory:') createPrivateFileIfMissing(path);
    database = new Database(path, { fileMustExist: path !== ':memory:' });
    // busy_timeout first, so switching to WAL waits for a concurrent opener instead of failing.
    database.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    database.pragma('journal_mode = WAL');
    // NORMAL in WAL mode: a power loss may drop the last commits but never corrupts the file.
    database.pragma('synchronous = NORMAL');
    database.pragma('foreign_keys = ON');
  } catch (error) {
    database?.close();
    throw new TlsmeshError('ERR_STORE', 'cannot open the SQLite store file', { cause: error });
  }
  const prepare = statementCache(database);
  const cached: SqliteDatabase = { close: () => database.close(), prepare };
  const db = new Kysely<StoreSchema>({ dialect: new ImmediateSqliteDialect({ database: cached }) });
  return Promise.resolve(new KyselyStore(db, 'sqlite', new SqliteGroupCommit(db, database, prepare)));
}

function openReadOnly(path: string): Promise<Store> {
  if (!existsSync(path)) throw new TlsmeshError('ERR_STORE', `there is no SQLite store file at ${path}`);
  let database: Database.Database | undefined;
  try {
    database = new Database(path, { readonly: true, fileMustExist: true });
    database.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  } catch (error) {
    database?.close();
    throw new TlsmeshError('ERR_STORE', 'cannot open the SQLite store file for reading', { cause: error });
  }
  const opened = database;
  const prepare = statementCache(opened);
  const db = new Kysely<StoreSchema>({ dialect: new ImmediateSqliteDialect({ database: { close: () => opened.close(), prepare } }) });
  return Promise.resolve(new KyselyStore(db, 'sqlite'));
}

const STATEMENT_CACHE_SIZE = 256;

/**
 * Kysely prepares every query afresh, and better-sqlite3 compiles the SQL on each prepare()
 * (~60 µs, a quarter of an enrolment's store time). The store's SQL texts are few and fixed, so
 * compiled statements are kept by SQL text. Sharing one is safe here: Kysely runs each to
 * completion (all()/run()) on the single connection and this store never streams.
 */
function statementCache(database: Database.Database): (sql: string) => Database.Statement {
  const statements = new Map<string, Database.Statement>();
  return (sql: string) => {
    let statement = statements.get(sql);
    if (statement === undefined) {
      statement = database.prepare(sql);
      if (statements.size >= STATEMENT_CACHE_SIZE) statements.delete(statements.keys().next().value!);
      statements.set(sql, statement);
    }
    return statement;
  };
}

/**
 * The file holds encrypted CA keys and the audit log: nobody but the owner may read it. SQLite
 * gives its -wal and -shm files the mode of the database file, so they are private too.
 */
function createPrivateFileIfMissing(path: string): void {
  try {
    closeSync(openSync(path, 'wx', 0o600));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
}
