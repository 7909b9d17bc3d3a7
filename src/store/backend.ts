import type { Store } from './types.js';

export type StoreBackend = Store['backend'];

/** Error codes the backends give a unique or primary-key violation (better-sqlite3, pg). */
const UNIQUE_VIOLATION_CODES: ReadonlySet<string> = new Set([
  'SQLITE_CONSTRAINT_PRIMARYKEY',
  'SQLITE_CONSTRAINT_UNIQUE',
  '23505',
]);

/** The driver's error code (`SQLITE_…` or a PostgreSQL SQLSTATE), if the error carries one. */
export function backendErrorCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string') {
    return error.code;
  }
  return undefined;
}

/** Decided by error code, never by message text (messages change between versions and locales). */
export function isUniqueViolation(error: unknown): boolean {
  const code = backendErrorCode(error);
  return code !== undefined && UNIQUE_VIOLATION_CODES.has(code);
}

/** PostgreSQL's SQLSTATE for a transaction it aborted to break a deadlock. */
export const DEADLOCK_DETECTED = '40P01';
