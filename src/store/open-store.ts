import { TlsmeshError } from '../errors.js';
import { openPostgresStore } from './postgres.js';
import { openSqliteStore } from './sqlite.js';
import type { Store } from './types.js';

const POSTGRES_URL = /^postgres(?:ql)?:\/\//i;
const SQLITE_PREFIX = 'sqlite:';
const ANY_URL_SCHEME = /^([a-z][a-z0-9+.-]*):\/\//i;

/**
 * Opens the store a configuration names: `postgres://…` or `postgresql://…` for PostgreSQL,
 * `sqlite:PATH` or a plain file path for SQLite. Any other `scheme://` is ERR_CONFIG.
 * Does not migrate; call `store.migrate()`. `readOnly` opens a store that is only read: a SQLite
 * file must exist and is never written, PostgreSQL sessions are read-only.
 *
 * @example
 * const store = await openStore(process.env.TLSMESH_STORE ?? 'sqlite:./ca.db');
 * await store.migrate();
 */
export async function openStore(url: string, options: { readOnly?: boolean } = {}): Promise<Store> {
  const readOnly = options.readOnly === true;
  if (typeof url !== 'string') {
    throw new TypeError('openStore: url must be a string');
  }
  if (POSTGRES_URL.test(url)) {
    return openPostgresStore({ connectionString: url, readOnly });
  }
  const path = url.startsWith(SQLITE_PREFIX) ? url.slice(SQLITE_PREFIX.length) : url;
  if (path === '') {
    throw new TlsmeshError('ERR_CONFIG', 'store: no SQLite file path given');
  }
  const scheme = ANY_URL_SCHEME.exec(path)?.[1];
  if (scheme !== undefined) {
    // Only the scheme is quoted: the rest of a URL may hold a password.
    throw new TlsmeshError('ERR_CONFIG', `store: unsupported URL scheme "${scheme}" (use postgres://, postgresql:// or sqlite:PATH)`);
  }
  return openSqliteStore({ path, readOnly });
}
