/**
 * Logs the audit chain's head (`seq:hash`) when the CA starts and then whenever it has moved, at
 * most once per interval. A head kept outside the store (a log shipper, a SIEM, a WORM bucket) is
 * an anchor: `tlsmesh ca audit-log verify --expect-head SEQ:HASH` then catches a truncated tail
 * or a recomputed chain, which the chain alone cannot (docs/audit-log.md).
 */
import type { Logger } from '../observe/logger.js';
import { formatAuditAnchor, type AuditChainAnchor, type Store } from '../store/index.js';

/** Five minutes: at most that much of the tail can vanish unnoticed by an anchor. */
export const AUDIT_ANCHOR_INTERVAL_MS = 5 * 60_000;

export interface AuditAnchorsOptions {
  store: Store;
  logger: Logger;
  intervalMs?: number;
}

export interface AuditAnchors {
  /** Logs the head now if it moved since the last one logged (always, the first time). */
  logHead(): Promise<AuditChainAnchor | null>;
  stop(): void;
}

/**
 * Logs the head at once (awaited, so a CA whose store cannot be read fails to start), then on
 * a timer that does not keep the process alive.
 */
export async function startAuditAnchors(options: AuditAnchorsOptions): Promise<AuditAnchors> {
  const { store, logger } = options;
  let logged: string | undefined;
  let running = false;
  const logHead = async (): Promise<AuditChainAnchor | null> => {
    const head = await store.auditChainHead();
    const anchor = head === null ? 'empty' : formatAuditAnchor(head);
    if (anchor !== logged) {
      logger.info({ event: 'audit.head', seq: head?.seq ?? 0, hash: head?.hash ?? null, anchor }, 'audit chain head (keep it outside the store: tlsmesh ca audit-log verify --expect-head)');
      logged = anchor;
    }
    return head;
  };
  await logHead();
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    logHead()
      .catch((error: unknown) => logger.error({ err: error, event: 'audit.head_failed' }, 'could not read the audit chain head; will retry'))
      .finally(() => (running = false));
  }, options.intervalMs ?? AUDIT_ANCHOR_INTERVAL_MS);
  timer.unref();
  return { logHead, stop: () => clearInterval(timer) };
}
