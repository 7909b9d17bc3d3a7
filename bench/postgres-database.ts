/**
 * A throwaway PostgreSQL database for one benchmark run, `tlsmesh_bench_<random>`, on the server
 * named by TLSMESH_BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/postgres, a role that
 * may CREATE DATABASE). Dropped WITH (FORCE), so a killed CA child cannot keep it alive.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const BENCH_PG_URL = process.env['TLSMESH_BENCH_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface BenchDatabase {
  url: string;
  drop: () => Promise<void>;
}

async function withAdminClient<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: BENCH_PG_URL, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** Null when the server answers; otherwise why not (a benchmark skips, it does not fail). */
export async function postgresUnavailableReason(): Promise<string | null> {
  try {
    await withAdminClient((client) => client.query('select 1'));
    return null;
  } catch (error) {
    return error instanceof Error ? error.message || error.name : String(error);
  }
}

/** The server URL with any password hidden, for messages. */
export function redactedPgUrl(): string {
  try {
    const url = new URL(BENCH_PG_URL);
    if (url.password !== '') url.password = '***';
    return url.toString();
  } catch {
    return '(unparsable TLSMESH_BENCH_PG_URL)';
  }
}

export async function createBenchDatabase(): Promise<BenchDatabase> {
  const name = `tlsmesh_bench_${randomBytes(6).toString('hex')}`;
  await withAdminClient((client) => client.query(`CREATE DATABASE ${name}`));
  const url = new URL(BENCH_PG_URL);
  url.pathname = `/${name}`;
  let dropped: Promise<void> | undefined;
  return {
    url: url.toString(),
    drop: () => {
      dropped ??= withAdminClient(async (client) => {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      });
      return dropped;
    },
  };
}
