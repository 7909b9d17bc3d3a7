/**
 * The loop that renews an identity on the schedule `renewAt` gives, retrying with backoff while
 * renewal fails and keeping the current identity meanwhile. Clock, timers and randomness are
 * injected so tests drive it with a fake clock.
 */
import type { Identity } from '../identity.js';
import { DEFAULT_BACKOFF, renewAt, retryDelayMs, type BackoffPolicy } from './renew-schedule.js';

export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Real timers that do not keep the process alive on their own (a server does that). */
export const REAL_TIMERS: Timers = {
  setTimeout(callback, ms) {
    const handle = setTimeout(callback, ms);
    handle.unref();
    return handle;
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

// setTimeout fires at once for delays above 2^31-1 ms (~24.8 days): wake up and look again instead.
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface RenewalLoopOptions {
  initial: Identity;
  /** Gets the next identity (for example from the CA); a rejection is retried with backoff. */
  renew(current: Identity): Promise<Identity>;
  onRenewed(identity: Identity): void;
  onError(error: Error): void;
  clock?: () => number;
  timers?: Timers;
  /** Uniform in [0, 1). */
  random?: () => number;
  backoff?: BackoffPolicy;
}

export interface RenewalLoop {
  /** When the next attempt is due (undefined once stopped). */
  nextAttemptAt(): Date | undefined;
  /** Renews at once instead of waiting (after a CA rotation, or to pick up new names). */
  renewNow(): void;
  stop(): void;
}

export function startRenewalLoop(options: RenewalLoopOptions): RenewalLoop {
  const clock = options.clock ?? Date.now;
  const timers = options.timers ?? REAL_TIMERS;
  const random = options.random ?? Math.random;
  const backoff = options.backoff ?? DEFAULT_BACKOFF;
  let current = options.initial;
  let failures = 0;
  let due: number | undefined;
  let handle: unknown;
  let stopped = false;

  const schedule = (at: number): void => {
    due = at;
    const wait = Math.max(0, at - clock());
    handle = timers.setTimeout(wait > MAX_TIMER_MS ? () => schedule(at) : attempt, Math.min(wait, MAX_TIMER_MS));
  };
  const scheduleRenewal = (): void => schedule(renewAt(current.notBefore, current.notAfter, random() * 2 - 1).getTime());

  const attempt = (): void => {
    options.renew(current).then(
      (next) => {
        if (stopped) return;
        current = next;
        failures = 0;
        options.onRenewed(next);
        scheduleRenewal();
      },
      (error: unknown) => {
        if (stopped) return;
        options.onError(error instanceof Error ? error : new Error(String(error)));
        schedule(clock() + retryDelayMs(failures, random(), backoff));
        failures += 1;
      },
    );
  };

  scheduleRenewal();
  return {
    nextAttemptAt: () => (stopped || due === undefined ? undefined : new Date(due)),
    renewNow() {
      if (stopped) return;
      timers.clearTimeout(handle);
      schedule(clock());
    },
    stop() {
      stopped = true;
      timers.clearTimeout(handle);
    },
  };
}
