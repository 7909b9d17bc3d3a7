/**
 * Kysely's SqliteDialect with two changes that make several processes on one database file safe:
 *
 * - Transactions start with BEGIN IMMEDIATE, taking the write lock at once (waiting up to
 *   busy_timeout). A plain deferred BEGIN reads first and upgrades later; in WAL mode that
 *   upgrade fails with SQLITE_BUSY_SNAPSHOT, without waiting, when another process wrote
 *   in between. Every transaction of the store writes, so nothing is lost by locking early.
 * - The adapter reports transactional DDL (SQLite has it; Kysely's adapter just says no), so the
 *   Migrator runs all pending migrations in one such transaction: a second process migrating
 *   at the same time waits for the first, then sees the migrations already recorded; a failed
 *   migration rolls back entirely.
 */
import {
  CompiledQuery,
  SqliteAdapter,
  SqliteDialect,
  SqliteDriver,
  type DatabaseConnection,
  type DialectAdapter,
  type Driver,
  type SqliteDialectConfig,
} from 'kysely';

class ImmediateTransactionSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

class TransactionalDdlSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

export class ImmediateSqliteDialect extends SqliteDialect {
  readonly #config: SqliteDialectConfig;

  constructor(config: SqliteDialectConfig) {
    super(config);
    this.#config = config;
  }

  override createDriver(): Driver {
    return new ImmediateTransactionSqliteDriver(this.#config);
  }

  override createAdapter(): DialectAdapter {
    return new TransactionalDdlSqliteAdapter();
  }
}
