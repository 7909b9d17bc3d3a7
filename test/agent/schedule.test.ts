/**
 * The agent's time decisions, exhaustively: when to renew (2/3 ± lifetime/20, on the certificate's
 * own dates), what counts as expired or not yet valid with a clock off by minutes, how far behind
 * the CA our clock is, and what the health endpoint says.
 */
import { describe, expect, it } from 'vitest';
import { clockBehindMs, healthHttpStatus, healthState, isExpired, shouldRenew, validityProblem } from '../../src/agent/index.js';

const HOUR = 3_600_000;
const MIN = 60_000;
const T0 = Date.UTC(2030, 0, 1);
const day = { notBefore: new Date(T0), notAfter: new Date(T0 + 24 * HOUR) };

describe('shouldRenew', () => {
  it.each([
    ['ok/not at 2/3 - 1 ms (no jitter)', T0 + 16 * HOUR - 1, 0, false],
    ['ok/at 2/3 (no jitter)', T0 + 16 * HOUR, 0, true],
    ['ok/jitter -1 moves it lifetime/20 earlier', T0 + 16 * HOUR - 72 * MIN, -1, true],
    ['ok/jitter -1: not a millisecond before that', T0 + 16 * HOUR - 72 * MIN - 1, -1, false],
    ['ok/jitter +1 moves it lifetime/20 later', T0 + 16 * HOUR + 72 * MIN - 1, 1, false],
    ['ok/jitter +1 at the later point', T0 + 16 * HOUR + 72 * MIN, 1, true],
    ['ok/a fresh certificate', T0 + MIN, 0, false],
    ['ok/an expired certificate is due', T0 + 25 * HOUR, 0, true],
    ['ok/before notBefore (a clock behind) is not due', T0 - 5 * MIN, 0, false],
  ])('%s', (_name, now, jitter, expected) => {
    expect(shouldRenew(now, day, jitter)).toBe(expected);
  });

  it('fail/jitter out of [-1, 1] and a non-finite now are programming errors', () => {
    expect(() => shouldRenew(T0, day, 2)).toThrow(RangeError);
    expect(() => shouldRenew(Number.NaN, day, 0)).toThrow(TypeError);
  });

  it('ok/an empty lifetime is due at once', () => {
    expect(shouldRenew(T0, { notBefore: new Date(T0), notAfter: new Date(T0) }, 0)).toBe(true);
  });
});

describe('validityProblem and isExpired (tolerance 5 min)', () => {
  const tolerance = 5 * MIN;
  it.each([
    ['ok/inside the validity', T0 + HOUR, null],
    ['ok/notBefore 4 min in our future (our clock 5 min behind, CA backdates 60 s)', T0 - 4 * MIN, null],
    ['ok/notBefore exactly the tolerance ahead', T0 - 5 * MIN, null],
    ['fail/notBefore more than the tolerance ahead', T0 - 5 * MIN - 1, 'not-yet-valid'],
    ['fail/at notAfter', T0 + 24 * HOUR, 'expired'],
    ['fail/after notAfter', T0 + 25 * HOUR, 'expired'],
  ])('%s', (_name, now, expected) => {
    expect(validityProblem(now, day, tolerance)).toBe(expected);
    expect(isExpired(now, day)).toBe(expected === 'expired');
  });
});

describe('clockBehindMs', () => {
  it.each([
    ['ok/our clock 5 min behind, 60 s backdate: at least 4 min', T0 + 60_000 - 5 * MIN, 4 * MIN],
    ['ok/our clock right: the backdate hides it (0)', T0 + 60_000, 0],
    ['ok/our clock ahead: cannot tell (0; renewal comes early, which is safe)', T0 + 60_000 + 5 * MIN, 0],
  ])('%s', (_name, now, expected) => {
    expect(clockBehindMs(now, day)).toBe(expected);
  });
});

describe('healthState', () => {
  const due = T0 + 16 * HOUR;
  it.each([
    ['error/no certificate yet', T0, undefined, undefined, false, 'error', 503],
    ['ok/fresh', T0 + HOUR, day, due, false, 'ok', 200],
    ['ok/past the renewal point: expiring (still 200: the certificate serves)', due, day, due, false, 'expiring', 200],
    ['fail/expired', T0 + 24 * HOUR, day, due, false, 'expired', 503],
    ['fail/revoked', T0 + HOUR, day, due, true, 'error', 503],
  ] as const)('%s', (_name, now, certificate, renewalDue, revoked, state, http) => {
    expect(healthState(now, certificate, renewalDue, revoked)).toBe(state);
    expect(healthHttpStatus(state)).toBe(http);
  });
});
