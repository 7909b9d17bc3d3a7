/**
 * WebhookNotifier: turns each evaluation's firing alerts into webhook messages.
 *
 * - An alert is sent when it starts firing, again only after `repeatIntervalMs` while it keeps
 *   firing, and once as `resolved` when it stops (if its firing message got through).
 * - Each webhook has its own state and at most one message in flight: while a slow receiver is
 *   being retried, later changes wait and go out together in the next evaluation, so nothing
 *   queues without bound and nothing waits on a receiver except this notifier.
 * - A message is retried with exponential backoff and full jitter, up to `maxAttempts`, each POST
 *   bounded by the webhook's timeout. When every attempt fails, what it carried is sent again
 *   with the next evaluation.
 */
import type { Logger } from '../../observe/logger.js';
import type { Alert } from './evaluate.js';
import { alertFingerprint, postJson, redactedUrl, webhookAlert, webhookMessage, type PostTarget, type WebhookAlert } from './webhook.js';

export interface WebhookTarget extends PostTarget {
  /** Attempts per message, the first included. */
  maxAttempts: number;
}

export interface Backoff {
  initialMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: Readonly<Backoff> = Object.freeze({ initialMs: 1000, maxMs: 60_000 });

export interface WebhookNotifierOptions {
  webhooks: readonly WebhookTarget[];
  repeatIntervalMs: number;
  clock: () => Date;
  logger: Logger;
  /** `receiver` in the payload (default `tlsmesh-ca`). */
  receiver?: string;
  /** `externalURL` and each alert's `generatorURL` (the CA's public URL). */
  externalUrl: string;
  backoff?: Backoff;
  /** In [0, 1); the jitter (injectable for tests). */
  random?: () => number;
  /** Waits between attempts (injectable for tests); must settle early when the signal aborts. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

interface Firing {
  alert: Alert;
  startsAt: Date;
  /** When a message with it last got through; null: never (or the last attempt failed). */
  sentAt: Date | null;
  /** Whether any firing message got through (a resolved one is owed only then). */
  everSent: boolean;
}

class WebhookState {
  readonly firing = new Map<string, Firing>();
  /** Resolved alerts whose message has not got through yet. */
  readonly resolved = new Map<string, WebhookAlert>();
  inFlight: Promise<void> | null = null;
  constructor(readonly target: WebhookTarget) {}
}

export class WebhookNotifier {
  readonly #states: WebhookState[];
  readonly #options: WebhookNotifierOptions;
  readonly #backoff: Backoff;
  readonly #random: () => number;
  readonly #sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly #abort = new AbortController();

  constructor(options: WebhookNotifierOptions) {
    this.#options = options;
    this.#states = options.webhooks.map((target) => new WebhookState(target));
    this.#backoff = options.backoff ?? DEFAULT_BACKOFF;
    this.#random = options.random ?? Math.random;
    this.#sleep = options.sleep ?? abortableSleep;
  }

  /**
   * Takes the alerts firing now and starts sending what changed. Returns at once; `idle()` waits
   * for the deliveries.
   */
  notify(alerts: readonly Alert[]): void {
    if (this.#abort.signal.aborted) return;
    const now = this.#options.clock();
    const current = new Map(alerts.map((alert) => [alertFingerprint(alert.labels), alert]));
    for (const state of this.#states) {
      for (const [fingerprint, alert] of current) {
        const known = state.firing.get(fingerprint);
        if (known) known.alert = alert;
        else state.firing.set(fingerprint, { alert, startsAt: now, sentAt: null, everSent: false });
        state.resolved.delete(fingerprint);
      }
      for (const [fingerprint, firing] of state.firing) {
        if (current.has(fingerprint)) continue;
        state.firing.delete(fingerprint);
        if (firing.everSent) state.resolved.set(fingerprint, webhookAlert(firing.alert, 'resolved', firing.startsAt, now, this.#options.externalUrl));
      }
      if (state.inFlight === null) this.#send(state, now);
    }
  }

  /** Resolves when no message is in flight. */
  async idle(): Promise<void> {
    for (;;) {
      const pending = this.#states.map((state) => state.inFlight).filter((flight) => flight !== null);
      if (pending.length === 0) return;
      await Promise.all(pending);
    }
  }

  /** Stops: cancels waits between retries and requests in flight; sends nothing more. */
  async close(): Promise<void> {
    this.#abort.abort();
    await this.idle();
  }

  #send(state: WebhookState, now: Date): void {
    const due = [...state.firing.entries()].filter(([, firing]) => firing.sentAt === null || now.getTime() - firing.sentAt.getTime() >= this.#options.repeatIntervalMs);
    const resolved = [...state.resolved.entries()];
    if (due.length === 0 && resolved.length === 0) return;
    const alerts = [
      ...due.map(([, firing]) => webhookAlert(firing.alert, 'firing', firing.startsAt, null, this.#options.externalUrl)),
      ...resolved.map(([, alert]) => alert),
    ];
    const body = JSON.stringify(webhookMessage(alerts, this.#options.receiver ?? 'tlsmesh-ca', this.#options.externalUrl));
    state.inFlight = this.#deliver(state.target, body).then((delivered) => {
      state.inFlight = null;
      if (!delivered) return;
      for (const [fingerprint, firing] of due) {
        firing.sentAt = now;
        firing.everSent = true;
        // It stopped firing while this message was on its way: the receiver now thinks it fires,
        // so it is owed a resolved message (unless it has started firing again meanwhile).
        if (!state.firing.has(fingerprint) && !state.resolved.has(fingerprint)) {
          state.resolved.set(fingerprint, webhookAlert(firing.alert, 'resolved', firing.startsAt, this.#options.clock(), this.#options.externalUrl));
        }
      }
      for (const [fingerprint, alert] of resolved) if (state.resolved.get(fingerprint) === alert) state.resolved.delete(fingerprint);
    });
  }

  /** True when the receiver took the message. Never throws. */
  async #deliver(target: WebhookTarget, body: string): Promise<boolean> {
    const signal = this.#abort.signal;
    const where = redactedUrl(target.url);
    for (let attempt = 1; attempt <= target.maxAttempts; attempt++) {
      if (signal.aborted) return false;
      const outcome = await postJson(target, body, signal);
      if (outcome.ok) {
        this.#options.logger.info({ event: 'alerts.webhook_sent', webhook: where, attempt }, 'alert webhook delivered');
        return true;
      }
      const last = attempt === target.maxAttempts || !outcome.retry;
      this.#options.logger[last ? 'error' : 'warn'](
        { event: last ? 'alerts.webhook_failed' : 'alerts.webhook_retry', webhook: where, attempt, reason: outcome.reason },
        last ? 'alert webhook not delivered; trying again with the next evaluation' : 'alert webhook attempt failed; retrying',
      );
      if (last) return false;
      // Full jitter: a random wait up to the exponential bound, so many CAs do not retry in step.
      const bound = Math.min(this.#backoff.maxMs, this.#backoff.initialMs * 2 ** (attempt - 1));
      await this.#sleep(Math.floor(this.#random() * bound), signal);
    }
    return false;
  }
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    timer.unref();
    signal.addEventListener('abort', done);
  });
}
