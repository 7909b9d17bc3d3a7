/**
 * Following the two documents the CA publishes for everyone, the trust bundle and the CRLs, with
 * the SDK's `startDocumentFeed` (watch stream plus ETag poll beside it). The agent's part is small:
 * it calls whichever client is current (rebuilt when the trust changes) and notes the ETag of each
 * version it sees, changed or not, for the health report.
 */
import type { CaClient, PemDocument } from '../client/index.js';
import { startDocumentFeed, type CrlFeed } from '../sdk/sources/crl-feed.js';
import type { Timers } from '../sdk/sources/renewal-loop.js';

/** The CA calls the feeds make (a CaClient has them). */
export type DocumentClient = Pick<CaClient, 'fetchBundle' | 'watchBundle' | 'fetchCrls' | 'watchCrls'>;

export type DocumentKind = 'bundle' | 'crl';

export interface AgentFeedOptions {
  kind: DocumentKind;
  /** Asked on each call, so a client rebuilt with new trust is used from then on (then `reconnect()`). */
  client: () => DocumentClient;
  /** The version already on disk (its first delivery is then not repeated). */
  initialPem: string | undefined;
  onDocument(pem: string): void;
  /** The ETag of every version seen, changed or not. */
  onVersion?: ((etag: string) => void) | undefined;
  onError(error: Error): void;
  watch: boolean;
  pollMs: number;
  timers?: Timers | undefined;
  random?: (() => number) | undefined;
}

/** Starts following one document; `reconnect()` after the client changed, `stop()` to end. */
export function startAgentFeed(options: AgentFeedOptions): CrlFeed {
  const noted = (document: PemDocument): PemDocument => {
    options.onVersion?.(document.etag);
    return document;
  };
  const bundle = options.kind === 'bundle';
  return startDocumentFeed({
    poll: async (etag) => {
      const answer = await (bundle ? options.client().fetchBundle(etag) : options.client().fetchCrls(etag));
      return answer === 'not-modified' ? answer : noted(answer);
    },
    stream: (onDocument, onEnd) => {
      const deliver = (document: PemDocument): void => onDocument(noted(document));
      return bundle ? options.client().watchBundle(deliver, onEnd) : options.client().watchCrls(deliver, onEnd);
    },
    onDocument: (pem) => options.onDocument(pem),
    initialPem: options.initialPem,
    onError: (error) => options.onError(error),
    watch: options.watch,
    pollMs: options.pollMs,
    ...(options.timers ? { timers: options.timers } : {}),
    ...(options.random ? { random: options.random } : {}),
  });
}
