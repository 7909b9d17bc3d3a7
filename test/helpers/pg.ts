/**
 * PostgreSQL for tests: each caller gets its own fresh, empty database, dropped afterwards.
 *
 * Server: env TLSMESH_TEST_PG_URL (a superuser or CREATEDB role), default
 * postgres://postgres@127.0.0.1:5432/postgres. When it cannot be reached the tests are skipped
 * with the reason in the test name — except in CI (`CI=true`), where they fail: CI must never
 * pass by skipping the PostgreSQL half.
 *
 * @example
 * describePg('issuance on postgres', (pg) => {
 *   it('works', async () => {
 *     const store = await openPostgresStore({ connectionString: pg.url });
 *     // …
 *   });
 * });
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, it } from 'vitest';

export const TEST_PG_URL = process.env['TLSMESH_TEST_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export type PgAvailability = { available: true } | { available: false; reason: string };

export interface TestDatabase {
  /** Database name, `tlsmesh_test_<random>`. */
  readonly name: string;
  /** Connection string of the new database. */
  readonly url: string;
  /** Drops the database, disconnecting anything still connected to it. Idempotent. */
  drop(): Promise<void>;
}

let availability: Promise<PgAvailability> | undefined;

/** Whether the test server answers (checked once per test file). */
export function pgAvailability(): Promise<PgAvailability> {
  availability ??= withAdminClient(() => Promise.resolve({ available: true } as const)).catch((error: unknown) => ({
    available: false as const,
    reason: error instanceof Error ? error.message : String(error),
  }));
  return availability;
}

/** Creates an empty database on the test server; the caller must `drop()` it. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `tlsmesh_test_${randomBytes(6).toString('hex')}`;
  await withAdminClient((client) => client.query(`CREATE DATABASE ${name}`));
  const url = new URL(TEST_PG_URL);
  url.pathname = `/${name}`;
  let dropped: Promise<void> | undefined;
  return {
    name,
    url: url.toString(),
    drop() {
      dropped ??= withAdminClient(async (client) => {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      });
      return dropped;
    },
  };
}

/** What a describePg body gets: the suite's database, available inside tests and hooks. */
export interface PgSuite {
  /** Connection string of a database created for this describe block (in beforeAll). */
  readonly url: string;
}

/**
 * A describe block that runs only when the test PostgreSQL is reachable (see the module doc for
 * CI), with one fresh database for the whole block. Tests that need more databases (two
 * processes, one database each) call createTestDatabase() themselves.
 */
export function describePg(name: string, body: (pg: PgSuite) => void): void {
  describe(name, async () => {
    if (!(await requirePgInSuite())) return;
    let database: TestDatabase | undefined;
    beforeAll(async () => {
      database = await createTestDatabase();
    });
    afterAll(async () => {
      await database?.drop();
    });
    body({
      get url(): string {
        if (database === undefined) throw new Error('describePg: the database exists only inside tests and hooks');
        return database.url;
      },
    });
  });
}

/**
 * For suites that manage databases themselves: `await` it first thing in an async describe body.
 * Returns true when PostgreSQL is reachable. Otherwise it throws in CI (failing the file) or
 * registers one skipped test whose name gives the reason, and returns false.
 *
 * @example
 * describe('on postgres', async () => {
 *   if (!(await requirePgInSuite())) return;
 *   it('…', async () => { const db = await createTestDatabase(); try { … } finally { await db.drop(); } });
 * });
 */
export async function requirePgInSuite(): Promise<boolean> {
  const status = await pgAvailability();
  if (status.available) return true;
  const reason = `PostgreSQL at ${redact(TEST_PG_URL)} is not reachable (${status.reason}); set TLSMESH_TEST_PG_URL`;
  if (process.env['CI'] === 'true') {
    throw new Error(`CI requires PostgreSQL: ${reason}`);
  }
  console.warn(`[tlsmesh tests] skipping PostgreSQL tests: ${reason}`);
  it.skip(`skipped: ${reason}`, () => {});
  return false;
}

async function withAdminClient<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: TEST_PG_URL, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparsable TLSMESH_TEST_PG_URL)';
  }
}

/**
 * Resolves once some session of `client`'s database waits on a lock (polled every 20 ms, at most
 * 20 s): the moment a test has its statement blocked where it wants it. Throws `failure` when
 * no session ever waits.
 */
export async function untilASessionWaitsOnALock(client: pg.Client, failure: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const { rows } = await client.query<{ waiting: string }>(
      "SELECT count(*) AS waiting FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
    );
    if (Number(rows[0]!.waiting) > 0) return;
    if (Date.now() > deadline) throw new Error(failure);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
