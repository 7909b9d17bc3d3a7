/**
 * Follows the CA's CRLs for an in-process identity: the watch stream pushes each new CRL the
 * moment the CA publishes it (a revocation reaches this process in well under a second), and a
 * poll with the last ETag runs beside it as the fallback: it catches a stream that died silently
 * (a half-open connection sends no error) and serves alone while the stream cannot be opened.
 */
import type { CaClient } from '../../client/index.js';
import { REAL_TIMERS, type Timers } from './renewal-loop.js';

export interface CrlFeedOptions {
  client: Pick<CaClient, 'fetchCrls' | 'watchCrls'>;
  /** Called with each CRL text that differs from the last one delivered (or `initialPem`). */
  onCrls(pem: string): void;
  /** The CRLs already in use, so the stream's first event does not repeat them. */
  initialPem?: string | undefined;
  /** Told about a failed poll or a broken stream (the last CRL stays in use). */
  onError(error: Error): void;
  /** Follow the watch stream (default true); false polls only. */
  watch?: boolean;
  /** Poll interval (default 30 s): how late a revocation shows when the stream is down. */
  pollMs?: number;
  timers?: Timers;
  random?: () => number;
}

export interface CrlFeed {
  /** Polls now (for example after being told something was revoked). */
  refresh(): Promise<void>;
  stop(): void;
}

export const DEFAULT_CRL_POLL_MS = 30_000;
/** First wait before re-opening a broken stream; doubles up to the poll interval. */
const RECONNECT_MIN_MS = 1_000;

export function startCrlFeed(options: CrlFeedOptions): CrlFeed {
  const timers = options.timers ?? REAL_TIMERS;
  const random = options.random ?? Math.random;
  const pollMs = options.pollMs ?? DEFAULT_CRL_POLL_MS;
  let etag: string | undefined;
  let lastPem = options.initialPem;
  let stopped = false;
  let pollHandle: unknown;
  let reconnectHandle: unknown;
  let closeStream: (() => void) | undefined;
  let reconnectDelay = RECONNECT_MIN_MS;

  const deliver = (crls: { pem: string; etag: string }): void => {
    etag = crls.etag;
    if (crls.pem === lastPem) return;
    lastPem = crls.pem;
    options.onCrls(crls.pem);
  };

  const poll = async (): Promise<void> => {
    try {
      const answer = await options.client.fetchCrls(etag);
      if (!stopped && answer !== 'not-modified') deliver(answer);
    } catch (error) {
      if (!stopped) options.onError(error instanceof Error ? error : new Error(String(error)));
    }
  };

  const schedulePoll = (): void => {
    // ±10 % jitter so a fleet started together does not poll in step.
    pollHandle = timers.setTimeout(() => {
      void poll().finally(() => {
        if (!stopped) schedulePoll();
      });
    }, pollMs * (0.9 + random() * 0.2));
  };

  const openStream = (): void => {
    closeStream = options.client.watchCrls(
      (crls) => {
        reconnectDelay = RECONNECT_MIN_MS;
        deliver(crls);
      },
      (error) => {
        closeStream = undefined;
        if (stopped) return;
        if (error) options.onError(error);
        const wait = reconnectDelay * (0.5 + random());
        reconnectDelay = Math.min(reconnectDelay * 2, pollMs);
        reconnectHandle = timers.setTimeout(openStream, wait);
      },
    );
  };

  if (options.watch !== false) openStream();
  schedulePoll();
  return {
    refresh: poll,
    stop() {
      stopped = true;
      timers.clearTimeout(pollHandle);
      timers.clearTimeout(reconnectHandle);
      closeStream?.();
    },
  };
}
