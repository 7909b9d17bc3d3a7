/**
 * Group commit for PostgreSQL's issuance writes.
 *
 * Every write that carries an audit entry ends by locking the audit chain's meta row, and holds
 * that lock through COMMIT (kysely-store.ts #appendAuditRows): one commit at a time, across every
 * CA process on the database. Here the writes of concurrent requests in one process share one
 * transaction on one pooled connection: each item's rows go in under a SAVEPOINT (so an item that
 * fails — a serial collision — rolls back alone and gets the error it would have had on its own),
 * then the chain lock is taken once, the successful items' audit entries are chained in queue
 * order, and the batch commits once. A batch that cannot commit fails every item in it and keeps
 * nothing.
 *
 * The chain lock is taken after the items' own row locks (token, previous certificate), never
 * before: the order every other writer keeps, so none of them waits on a batch in a cycle.
 * Batches of two processes can still deadlock on each other's row locks (one redeems token A
 * then B, the other B then A); PostgreSQL then aborts one statement, which rolls back to its
 * savepoint and retries in the next batch, after the other process has committed.
 *
 * No timer: a batch starts as soon as one is not already running, and takes what was queued
 * until its BEGIN completed; work queued meanwhile goes in the next batch.
 */
import { sql, type Kysely } from 'kysely';
import { backendErrorCode, DEADLOCK_DETECTED } from './backend.js';
import type { StoreSchema } from './schema.js';
import type { AuditEntry } from './types.js';

type Db = Kysely<StoreSchema>;

/** What an item wrote: its result, and the audit entry to chain for it (null: none). */
export interface GroupItemResult<T> {
  value: T;
  audit: AuditEntry | null;
}

/** An item's writes, run inside the batch's transaction; it must not append audit rows itself. */
export type GroupItemWork<T> = (trx: Db) => Promise<GroupItemResult<T>>;

/** Appends entries, in order, after the chain's tail, as the transaction's last write. */
export type ChainAppender = (trx: Db, entries: readonly AuditEntry[]) => Promise<void>;

interface Pending {
  work: GroupItemWork<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  /** Times this item was chosen as a deadlock victim and put back. */
  deadlocks: number;
}

type Outcome = { kind: 'ok'; value: unknown } | { kind: 'failed'; error: unknown } | { kind: 'again' };

/** Items per transaction at most: bounds the time the chain lock is held and the audit INSERT's size. */
const MAX_BATCH = 256;
/** A deadlock victim is put back this many times, then fails with the deadlock error. */
const MAX_DEADLOCK_RETRIES = 3;

export class PostgresGroupCommit {
  readonly #db: Db;
  readonly #appendChain: ChainAppender;
  #queue: Pending[] = [];
  #draining = false;

  constructor(db: Db, appendChain: ChainAppender) {
    this.#db = db;
    this.#appendChain = appendChain;
  }

  /** Queues `work`; resolves with its value once its batch has committed. */
  run<T>(work: GroupItemWork<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ work, resolve: resolve as (value: unknown) => void, reject, deadlocks: 0 });
      if (this.#draining) return;
      this.#draining = true;
      void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0) await this.#commitNext();
    } finally {
      this.#draining = false;
    }
  }

  /** Runs one batch; settles every item in it (or puts deadlock victims back). Never throws. */
  async #commitNext(): Promise<void> {
    let batch: Pending[] | undefined;
    const outcomes: Outcome[] = [];
    try {
      await this.#db.transaction().execute(async (trx) => {
        // Cut after BEGIN: what arrived while the connection was taken and BEGIN ran joins too.
        batch = this.#queue.splice(0, MAX_BATCH);
        const entries: AuditEntry[] = [];
        if (batch.length === 1) {
          // Alone, an item needs no savepoint (two round trips fewer): its failure rolls back
          // the transaction, which holds nothing else, and reaches it through the catch below.
          const { value, audit } = await batch[0]!.work(trx);
          outcomes.push({ kind: 'ok', value });
          if (audit !== null) entries.push(audit);
        } else {
          for (const item of batch) {
            await sql`SAVEPOINT item`.execute(trx);
            try {
              const { value, audit } = await item.work(trx);
              await sql`RELEASE SAVEPOINT item`.execute(trx);
              outcomes.push({ kind: 'ok', value });
              if (audit !== null) entries.push(audit);
            } catch (error) {
              // Undoes this item's writes and releases its row locks; the batch goes on. Should the
              // rollback itself fail (connection lost), the batch fails as a whole.
              await sql`ROLLBACK TO SAVEPOINT item`.execute(trx);
              await sql`RELEASE SAVEPOINT item`.execute(trx);
              outcomes.push(isDeadlockVictim(error, item) ? { kind: 'again' } : { kind: 'failed', error });
            }
          }
        }
        if (entries.length > 0) await this.#appendChain(trx, entries);
      });
    } catch (error) {
      // BEGIN, the chain append or COMMIT failed (or a lone item did): nothing of the batch was kept.
      batch ??= this.#queue.splice(0, MAX_BATCH);
      const lone = batch.length === 1 ? batch[0]! : undefined;
      if (lone !== undefined && isDeadlockVictim(error, lone)) this.#queue.unshift({ ...lone, deadlocks: lone.deadlocks + 1 });
      else for (const item of batch) item.reject(error);
      return;
    }
    const retry: Pending[] = [];
    batch!.forEach((item, i) => {
      const outcome = outcomes[i]!;
      if (outcome.kind === 'ok') item.resolve(outcome.value);
      else if (outcome.kind === 'failed') item.reject(outcome.error);
      else retry.push({ ...item, deadlocks: item.deadlocks + 1 });
    });
    // Ahead of newer work, in their original order.
    this.#queue.unshift(...retry);
  }
}

function isDeadlockVictim(error: unknown, item: Pending): boolean {
  return backendErrorCode(error) === DEADLOCK_DETECTED && item.deadlocks < MAX_DEADLOCK_RETRIES;
}
