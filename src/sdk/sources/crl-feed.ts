/**
 * Follows a document the CA publishes — its CRLs, its trust bundle — for an in-process identity:
 * the watch stream pushes each new version the moment the CA publishes it (a revocation reaches
 * this process in well under a second), and a poll with the last ETag runs beside it as the
 * fallback: it catches a stream that died silently (a half-open connection sends no error) and
 * serves alone while the stream cannot be opened.
 */
import type { CaClient, PemDocument } from '../../client/index.js';
import { REAL_TIMERS, type Timers } from './renewal-loop.js';

export interface DocumentFeedOptions {
  /** One poll: the document, or 'not-modified' for this ETag. */
  poll(etag: string | undefined): Promise<PemDocument | 'not-modified'>;
  /** Opens the watch stream; returns its closer. */
  stream(onDocument: (document: PemDocument) => void, onEnd: (error?: Error) => void): () => void;
  /** Called with each text that differs from the last one delivered (or `initialPem`). */
  onDocument(pem: string): void;
  /** The text already in use, so the stream's first event does not repeat it. */
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

export interface CrlFeedOptions extends Omit<DocumentFeedOptions, 'poll' | 'stream' | 'onDocument'> {
  client: Pick<CaClient, 'fetchCrls' | 'watchCrls'>;
  /** Called with each CRL text that differs from the last one delivered (or `initialPem`). */
  onCrls(pem: string): void;
}

export interface CrlFeed {
  /** Polls now (for example after being told something was revoked). */
  refresh(): Promise<void>;
  /** Closes the watch stream and opens a new one at once (after the connection settings changed). */
  reconnect(): void;
  stop(): void;
}

export const DEFAULT_CRL_POLL_MS = 30_000;
/** First wait before re-opening a broken stream; doubles up to the poll interval. */
const RECONNECT_MIN_MS = 1_000;

/** The CA's CRLs (`GET /v1/crl`, PEM, and its watch stream). */
export function startCrlFeed(options: CrlFeedOptions): CrlFeed {
  const { client, ...rest } = options;
  return startDocumentFeed({ ...rest, poll: (etag) => client.fetchCrls(etag), stream: (on, end) => client.watchCrls(on, end), onDocument: (pem) => options.onCrls(pem) });
}

/** The CA's trust bundle (`GET /v1/bundle` and its watch stream): it changes when a CA rotation adds or retires a root. */
export function startBundleFeed(options: Omit<DocumentFeedOptions, 'poll' | 'stream'> & { client: Pick<CaClient, 'fetchBundle' | 'watchBundle'> }): CrlFeed {
  const { client, ...rest } = options;
  return startDocumentFeed({ ...rest, poll: (etag) => client.fetchBundle(etag), stream: (on, end) => client.watchBundle(on, end) });
}

export function startDocumentFeed(options: DocumentFeedOptions): CrlFeed {
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
  let reconnecting = false;

  const deliver = (document: PemDocument): void => {
    etag = document.etag;
    if (document.pem === lastPem) return;
    lastPem = document.pem;
    options.onDocument(document.pem);
  };

  const poll = async (): Promise<void> => {
    try {
      const answer = await options.poll(etag);
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
    closeStream = options.stream(
      (document) => {
        reconnectDelay = RECONNECT_MIN_MS;
        deliver(document);
      },
      (error) => {
        closeStream = undefined;
        if (stopped) return;
        if (reconnecting) {
          reconnecting = false;
          openStream();
          return;
        }
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
    reconnect() {
      if (stopped || options.watch === false) return;
      if (closeStream) {
        reconnecting = true;
        closeStream();
      } else {
        timers.clearTimeout(reconnectHandle);
        openStream();
      }
    },
    stop() {
      stopped = true;
      timers.clearTimeout(pollHandle);
      timers.clearTimeout(reconnectHandle);
      closeStream?.();
    },
  };
}
