/**
 * When to renew, as pure functions (tested exhaustively; the loop that acts on them is separate):
 * at 2/3 of the lifetime, moved by up to lifetime/20 either way so that workloads enrolled together
 * do not all come back to the CA in the same second; while the CA is unreachable, exponential
 * backoff with jitter.
 */

/**
 * The moment to renew a certificate valid from `notBefore` to `notAfter`. `jitter` is a draw in
 * [-1, 1] (-1: lifetime/20 early, 1: lifetime/20 late). A certificate whose lifetime is empty or
 * negative is due at once (`notBefore`).
 *
 * @example renewAt(new Date(0), new Date(24 * 3600_000), 0) // 16 h after notBefore
 */
export function renewAt(notBefore: Date, notAfter: Date, jitter: number): Date {
  if (!(notBefore instanceof Date) || Number.isNaN(notBefore.getTime())) throw new TypeError('notBefore must be a valid Date');
  if (!(notAfter instanceof Date) || Number.isNaN(notAfter.getTime())) throw new TypeError('notAfter must be a valid Date');
  if (typeof jitter !== 'number' || !(jitter >= -1 && jitter <= 1)) throw new RangeError(`jitter must be a number in [-1, 1], got ${String(jitter)}`);
  const start = notBefore.getTime();
  const lifetime = notAfter.getTime() - start;
  if (lifetime <= 0) return new Date(start);
  return new Date(start + Math.round((lifetime * 2) / 3 + (jitter * lifetime) / 20));
}

export interface BackoffPolicy {
  /** The first retry's nominal delay (default 1 s). */
  baseMs: number;
  /** No retry waits longer than this (default 5 min). */
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 1000, maxMs: 5 * 60_000 };

/**
 * How long to wait before retry number `attempt` (0 for the first retry): `baseMs * 2^attempt`,
 * capped at `maxMs`, then scaled into [1/2, 1) of that by `random` in [0, 1) (whole milliseconds, rounded down).
 */
export function retryDelayMs(attempt: number, random: number, policy: BackoffPolicy = DEFAULT_BACKOFF): number {
  if (!Number.isInteger(attempt) || attempt < 0) throw new RangeError(`attempt must be a non-negative integer, got ${String(attempt)}`);
  if (typeof random !== 'number' || !(random >= 0 && random < 1)) throw new RangeError(`random must be in [0, 1), got ${String(random)}`);
  const nominal = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(attempt, 52));
  return Math.floor(nominal * (0.5 + random / 2));
}
