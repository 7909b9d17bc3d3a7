/**
 * The loop around the pure decision: every interval (injected timer), gather the signals at the
 * injected clock's now, evaluate, and hand the firing alerts to the notifier. An evaluation never
 * waits for a webhook, and a tick while one still runs is skipped (a slow store must not pile
 * evaluations up). Tests call `evaluateNow()` instead of waiting for the timer.
 */
import type { Logger } from '../../observe/logger.js';
import { evaluateAlerts, type Alert, type AlertPolicy } from './evaluate.js';
import type { SignalSource } from './signals.js';

/** Starts a repeating timer; returns how to stop it. */
export type IntervalTimer = (tick: () => void, ms: number) => () => void;

export const realInterval: IntervalTimer = (tick, ms) => {
  const timer = setInterval(tick, ms);
  timer.unref();
  return () => clearInterval(timer);
};

export interface AlertSink {
  notify(alerts: readonly Alert[]): void;
  idle(): Promise<void>;
  close(): Promise<void>;
}

export interface AlertLoopOptions {
  gather: SignalSource;
  notifier: AlertSink;
  policy: AlertPolicy;
  clock: () => Date;
  intervalMs: number;
  logger: Logger;
  timer?: IntervalTimer;
}

export class AlertLoop {
  readonly #options: AlertLoopOptions;
  #stopTimer: (() => void) | null = null;
  #running: Promise<Alert[]> | null = null;
  #stopped = false;

  constructor(options: AlertLoopOptions) {
    this.#options = options;
  }

  /** Evaluates once now (which also takes the first counter samples), then every interval. */
  start(): void {
    if (this.#stopTimer !== null || this.#stopped) return;
    const tick = (): void => {
      if (this.#running !== null) return;
      this.evaluateNow().catch((error: unknown) => this.#options.logger.error({ err: error, event: 'alerts.evaluate_failed' }, 'could not evaluate alerts; trying again at the next interval'));
    };
    this.#stopTimer = (this.#options.timer ?? realInterval)(tick, this.#options.intervalMs);
    tick();
  }

  /** Gathers, evaluates and notifies once; resolves with the alerts firing (deliveries go on in the background). */
  evaluateNow(): Promise<Alert[]> {
    const run = (async () => {
      // An evaluation already running finishes first: the counter history stays in time order.
      if (this.#running !== null) await this.#running.catch(() => undefined);
      const now = this.#options.clock();
      const signals = await this.#options.gather(now);
      const alerts = evaluateAlerts(signals, now, this.#options.policy);
      if (!this.#stopped) this.#options.notifier.notify(alerts);
      return alerts;
    })();
    const tracked = run.finally(() => {
      if (this.#running === tracked) this.#running = null;
    });
    this.#running = tracked;
    return tracked;
  }

  /** Waits until every webhook message sent so far has been delivered or given up. */
  idle(): Promise<void> {
    return this.#options.notifier.idle();
  }

  /** Stops the timer, lets a running evaluation end, and cancels deliveries. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#stopTimer?.();
    this.#stopTimer = null;
    await this.#running?.catch(() => undefined);
    await this.#options.notifier.close();
  }
}
