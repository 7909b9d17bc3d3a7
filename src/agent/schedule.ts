/**
 * The agent's decisions about time, as pure functions (tested exhaustively; the loop that acts on
 * them is agent.ts). The renewal point itself is the SDK's `renewAt` (2/3 of the lifetime ±
 * lifetime/20); what the agent adds is how it reads a certificate's dates on a host whose clock
 * may be off by a few minutes, and what its health endpoint says.
 */
import { renewAt } from '../sdk/sources/renew-schedule.js';

/** The two dates every decision here needs (an `Identity` has them). */
export interface Validity {
  notBefore: Date;
  notAfter: Date;
}

/** How far the host clock may be off before the agent warns about it (±5 minutes). */
export const DEFAULT_CLOCK_SKEW_TOLERANCE_MS = 5 * 60_000;

/**
 * Is it time to renew? True from `renewAt(notBefore, notAfter, jitter)` on (2/3 of the lifetime,
 * moved by `jitter` in [-1, 1] times lifetime/20), and for an expired certificate.
 *
 * @example shouldRenew(Date.now(), identity, 0) // false for a certificate issued a minute ago
 */
export function shouldRenew(now: number, certificate: Validity, jitter: number): boolean {
  if (!Number.isFinite(now)) throw new TypeError('now must be a finite number of milliseconds');
  return now >= renewAt(certificate.notBefore, certificate.notAfter, jitter).getTime();
}

/** True once `notAfter` has passed: the certificate is no use to anyone. */
export function isExpired(now: number, certificate: Validity): boolean {
  return now >= certificate.notAfter.getTime();
}

/**
 * Whether a certificate can be used at `now`: 'expired', 'not-yet-valid' (it starts more than
 * `toleranceMs` in the future: this host's clock is behind by more than the tolerance), or null.
 * A notBefore in the future within the tolerance is fine: the CA backdates by up to 60 s only,
 * so a host a few minutes behind sees every fresh certificate start "later".
 */
export function validityProblem(now: number, certificate: Validity, toleranceMs: number): 'expired' | 'not-yet-valid' | null {
  if (isExpired(now, certificate)) return 'expired';
  if (certificate.notBefore.getTime() - now > toleranceMs) return 'not-yet-valid';
  return null;
}

/**
 * How far this host's clock is behind the CA's, at least, judged from a certificate that the CA
 * has just issued (its notBefore is the CA's time minus a backdate of 0–60 s, so a notBefore in
 * our future means our clock is behind by at least that much). 0 when it cannot tell (a clock
 * ahead makes certificates look older: renewal comes a little early, which is safe).
 *
 * @example clockBehindMs(Date.now() - 300_000, issued) // ≈ 240_000 with a 60 s backdate
 */
export function clockBehindMs(now: number, certificate: Validity): number {
  return Math.max(0, certificate.notBefore.getTime() - now);
}

/** What the health endpoint reports. */
export type HealthState = 'ok' | 'expiring' | 'expired' | 'error';

/**
 * The health state: 'error' without a usable certificate (none yet, or revoked), 'expired' past
 * notAfter, 'expiring' past the renewal point (renewal is overdue: the CA refuses or cannot be
 * reached, the certificate is still good), else 'ok'.
 */
export function healthState(now: number, certificate: Validity | undefined, renewalDueAt: number | undefined, revoked: boolean): HealthState {
  if (certificate === undefined || revoked) return 'error';
  if (isExpired(now, certificate)) return 'expired';
  if (renewalDueAt !== undefined && now >= renewalDueAt) return 'expiring';
  return 'ok';
}

/** The HTTP status for a health state: 200 while the workload holds a usable certificate. */
export const healthHttpStatus = (state: HealthState): 200 | 503 => (state === 'ok' || state === 'expiring' ? 200 : 503);
