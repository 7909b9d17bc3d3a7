/**
 * Group commit for SQLite's issuance writes.
 *
 * Each enrolment writes three rows (token redeemed, certificate, audit entry). Run one by one
 * through Kysely's async transaction, that costs ~240 µs, a third of an issuance: the per-commit
 * WAL write plus Kysely's async round trips around synchronous better-sqlite3 calls. Here the
 * writes that arrive in the same event-loop turn share one BEGIN IMMEDIATE … COMMIT, and each
 * operation runs in its own SAVEPOINT, so one that fails (a serial collision) rolls back alone.
 * The SQL is still built by Kysely (same schema, same row mappers) and only executed here,
 * synchronously, on the cached prepared statements; the hot statements are compiled once per
 * shape (query-shape.ts) rather than on every call.
 *
 * The batch runs while holding Kysely's single SQLite connection, so it never interleaves with
 * a Kysely transaction that is between two awaits.
 */
import type Database from 'better-sqlite3';
import type { Kysely } from 'kysely';
import { compileShape, shapeParameters, type Compilable, type CompiledShape, type QueryShape } from './query-shape.js';
import type { StoreSchema } from './schema.js';

type Db = Kysely<StoreSchema>;

/** Runs Kysely-built queries synchronously inside the batch. */
export interface SyncExecutor {
  /** Executes a write; returns the number of rows changed. */
  run(query: Compilable): number;
  /** Executes a read; returns the first row, if any. */
  first<Row>(query: Compilable): Row | undefined;
  /** `run` for a query compiled once per shape (query-shape.ts): the hot path's form. */
  runShape<Name extends string>(shape: QueryShape<Db, Name>, values: Readonly<Record<Name, unknown>>): number;
  /** `first` for a query compiled once per shape. */
  firstShape<Row, Name extends string>(shape: QueryShape<Db, Name>, values: Readonly<Record<Name, unknown>>): Row | undefined;
  /**
   * INSERT of one row, compiled once per table and column list; returns the rows changed. Every
   * key is a column, an undefined value included (bound as NULL, where Kysely's values() would
   * leave the column out: the same only while no column has a DEFAULT; the row mappers never
   * give undefined).
   */
  insert(table: keyof StoreSchema, row: Readonly<Record<string, unknown>>): number;
  /**
   * Values an item may leave for the next items of the same batch (the audit chain's tail). The
   * batch holds SQLite's write lock, so nothing else writes meanwhile; it is emptied when a batch
   * starts and whenever an item rolls back, so it never outlives what it describes.
   */
  readonly memo: Map<string, unknown>;
}

interface Pending {
  work: (executor: SyncExecutor) => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

export class SqliteGroupCommit {
  readonly #db: Kysely<StoreSchema>;
  readonly #database: Database.Database;
  readonly #prepare: (sql: string) => Database.Statement;
  #queue: Pending[] = [];
  #scheduled = false;
  #tail: Promise<void> = Promise.resolve();
  readonly #executor: SyncExecutor;

  constructor(db: Kysely<StoreSchema>, database: Database.Database, prepare: (sql: string) => Database.Statement) {
    this.#db = db;
    this.#database = database;
    this.#prepare = prepare;
    const statementFor = (query: Compilable): { statement: Database.Statement; parameters: readonly unknown[] } => {
      const compiled = query.compile();
      return { statement: this.#prepare(compiled.sql), parameters: compiled.parameters };
    };
    // Compiled once per store; prepared statements are cached by SQL text in #prepare.
    const shapes = new WeakMap<QueryShape<Db, string>, CompiledShape>();
    const compiled = <Name extends string>(shape: QueryShape<Db, Name>): CompiledShape => {
      let found = shapes.get(shape);
      if (found === undefined) {
        found = compileShape(shape.names, (values) => shape.build(db, values));
        shapes.set(shape, found);
      }
      return found;
    };
    const inserts = new Map<string, CompiledShape>();
    this.#executor = {
      run: (query) => {
        const { statement, parameters } = statementFor(query);
        return statement.run(...parameters).changes;
      },
      first: <Row>(query: Compilable) => {
        const { statement, parameters } = statementFor(query);
        return statement.get(...parameters) as Row | undefined;
      },
      runShape: (shape, values) => {
        const found = compiled(shape);
        return this.#prepare(found.sql).run(...shapeParameters(found, values)).changes;
      },
      firstShape: <Row, Name extends string>(shape: QueryShape<Db, Name>, values: Readonly<Record<Name, unknown>>) => {
        const found = compiled(shape);
        return this.#prepare(found.sql).get(...shapeParameters(found, values)) as Row | undefined;
      },
      insert: (table, row) => {
        const columns = Object.keys(row);
        const key = `${table}\u0000${columns.join('\u0000')}`;
        let found = inserts.get(key);
        if (found === undefined) {
          found = compileShape(columns, (values) => db.insertInto(table).values(values as never));
          inserts.set(key, found);
        }
        return this.#prepare(found.sql).run(...shapeParameters(found, row)).changes;
      },
      memo: new Map(),
    };
  }

  /** Queues `work` for the next batch; resolves with its result once the batch has committed. */
  run<T>(work: (executor: SyncExecutor) => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ work, resolve: resolve as (value: unknown) => void, reject });
      if (this.#scheduled) return;
      this.#scheduled = true;
      // setImmediate, not a microtask: requests whose sockets became readable in the same loop
      // iteration get to queue their writes before the batch is cut.
      setImmediate(() => {
        this.#scheduled = false;
        const batch = this.#queue;
        this.#queue = [];
        // Batches commit one after another; work queued meanwhile waits for the next cut.
        this.#tail = this.#tail.then(() => this.#commit(batch));
      });
    });
  }

  async #commit(batch: Pending[]): Promise<void> {
    const outcomes: { ok: boolean; value: unknown }[] = [];
    try {
      await this.#db.connection().execute(() => {
        const transaction = this.#database.transaction(() => {
          this.#executor.memo.clear();
          for (const item of batch) {
            const savepoint = this.#database.transaction(() => item.work(this.#executor));
            try {
              outcomes.push({ ok: true, value: savepoint() });
            } catch (error) {
              // SQLITE_FULL, IOERR or NOMEM can roll back the whole transaction, not just the
              // savepoint; better-sqlite3 would then run the next "savepoint" as a transaction
              // of its own and commit it. Abort the batch instead: all of it or nothing.
              if (!this.#database.inTransaction) throw error;
              this.#executor.memo.clear();
              outcomes.push({ ok: false, value: error });
            }
          }
        });
        transaction.immediate();
        return Promise.resolve();
      });
    } catch (error) {
      // BEGIN, COMMIT or the transaction itself failed: nothing of the batch was kept.
      for (const item of batch) item.reject(error);
      return;
    }
    batch.forEach((item, i) => (outcomes[i]!.ok ? item.resolve(outcomes[i]!.value) : item.reject(outcomes[i]!.value)));
  }
}
