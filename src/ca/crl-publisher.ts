/**
 * Keeps the CA's CRLs current: one for the active intermediate (its revoked leaves) and one for
 * the root (revoked intermediates). Node checks a CRL for every CA in a chain, so a relying party
 * needs both (DESIGN.md traps).
 *
 * - A revocation made through this process is published before the revoke call returns.
 * - Revocations made by another CA process on the same PostgreSQL are noticed by polling the
 *   store's revocation epoch (one indexed read per second by default) and published here too;
 *   a newer CRL another process already stored is adopted instead of signed again.
 * - A CRL is re-signed well before its nextUpdate (an expired CRL makes Node refuse every
 *   handshake), by default when half its validity is left.
 *
 * cRLNumbers come from the store (Store.insertCrl), so they only grow across processes.
 */
import { createHash } from 'node:crypto';
import type { Logger } from '../observe/logger.js';
import { CrlIssuer, crlToPem, isRevocationReason, type RevokedEntry } from '../pki/crl.js';
import type { CrlRecord, Store } from '../store/index.js';
import type { Keyring } from './keyring.js';

export interface CrlPolicy {
  /** nextUpdate − thisUpdate of the intermediate's CRL (default 24 h). */
  validityMs: number;
  /** Re-sign when less than this is left before nextUpdate (default half the validity). */
  refreshBeforeMs: number;
  /** How often to look for revocations made by other CA processes (default 1 s). */
  pollMs: number;
}

export const DEFAULT_CRL_POLICY: CrlPolicy = { validityMs: 24 * 3_600_000, refreshBeforeMs: 12 * 3_600_000, pollMs: 1_000 };

/** A root CRL signed online is valid this long (it rarely changes; refreshed at half). */
const ROOT_CRL_VALIDITY_MS = 30 * 24 * 3_600_000;

export interface PublishedCrl {
  issuerKeyId: string;
  record: CrlRecord;
  pem: string;
}

/** What the CRL routes serve: every CRL a relying party needs, and an ETag over all of them. */
export interface PublishedCrls {
  intermediate: PublishedCrl;
  root: PublishedCrl | null;
  /** The root's CRL (when there is one) and the intermediate's, `X509 CRL` PEM. */
  pem: string;
  etag: string;
  /** The store's revocation epoch the intermediate's CRL covers. */
  epoch: number;
}

export interface CrlPublisherOptions {
  store: Store;
  keyring: Keyring;
  clock: () => Date;
  logger: Logger;
  policy?: Partial<CrlPolicy> | undefined;
}

export class CrlPublisher {
  readonly policy: CrlPolicy;
  readonly #store: Store;
  readonly #keyring: Keyring;
  readonly #clock: () => Date;
  readonly #logger: Logger;
  readonly #intermediateSigner: CrlIssuer;
  readonly #rootSigner: CrlIssuer | null;
  readonly #listeners = new Set<(crls: PublishedCrls) => void>();
  #current: PublishedCrls | undefined;
  /** Serialises publishing: a revoke and a poll tick must not sign the same CRL twice. */
  #queue: Promise<unknown> = Promise.resolve();
  #pending = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: CrlPublisherOptions) {
    this.policy = { ...DEFAULT_CRL_POLICY, ...options.policy };
    if (this.policy.refreshBeforeMs >= this.policy.validityMs) throw new RangeError('CRL refreshBeforeMs must be shorter than validityMs');
    this.#store = options.store;
    this.#keyring = options.keyring;
    this.#clock = options.clock;
    this.#logger = options.logger;
    const { issuer, root } = options.keyring;
    this.#intermediateSigner = new CrlIssuer({ issuerCertDer: issuer.certDer, issuerPrivateKey: issuer.privateKey });
    this.#rootSigner = root.privateKey === null ? null : new CrlIssuer({ issuerCertDer: root.certDer, issuerPrivateKey: root.privateKey });
  }

  /** Loads or signs the CRLs, then polls. Call once, before serving. */
  async start(): Promise<void> {
    await this.#serialised(() => this.#refresh(true));
    this.#timer = setInterval(() => {
      // A tick while a refresh is still queued adds nothing (a slow store must not pile them up).
      if (this.#pending > 0) return;
      this.refresh().catch((error: unknown) => this.#logger.error({ err: error, event: 'crl.refresh_failed' }, 'could not refresh the CRL; serving the last one'));
    }, this.policy.pollMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#listeners.clear();
  }

  /** The CRLs being served. */
  current(): PublishedCrls {
    if (this.#current === undefined) throw new Error('CrlPublisher.start() has not completed');
    return this.#current;
  }

  /** Called with the new CRLs whenever they change (watch streams, OCSP cache). */
  onChange(listener: (crls: PublishedCrls) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Publishes now if anything was revoked since the last CRL (by any process) or one is due. */
  refresh(): Promise<void> {
    return this.#serialised(() => this.#refresh(false));
  }

  #serialised(work: () => Promise<void>): Promise<void> {
    this.#pending += 1;
    const next = this.#queue.then(work).finally(() => {
      this.#pending -= 1;
    });
    this.#queue = next.catch(() => undefined);
    return next;
  }

  async #refresh(starting: boolean): Promise<void> {
    const now = this.#clock();
    const epoch = await this.#store.revocationEpoch();
    // The common tick: nothing revoked anywhere and nothing due, after one small read.
    if (!starting && this.#current !== undefined && epoch <= this.#current.epoch && !this.#due(now)) return;
    const intermediate = await this.#intermediateCrl(now, epoch);
    const root = await this.#rootCrl(now);
    const previous = this.#current;
    if (!starting && previous !== undefined && previous.intermediate.record.crlNumber === intermediate.record.crlNumber && previous.root?.record.crlNumber === root?.record.crlNumber) {
      return;
    }
    const pem = (root ? root.pem : '') + intermediate.pem;
    const etag = `"${createHash('sha256').update(pem).digest('base64url').slice(0, 27)}"`;
    this.#current = { intermediate, root, pem, etag, epoch: intermediate.record.revocationEpoch };
    for (const listener of this.#listeners) listener(this.#current);
  }

  #due(now: Date): boolean {
    const current = this.#current!;
    if (current.intermediate.record.nextUpdate.getTime() - now.getTime() <= this.policy.refreshBeforeMs) return true;
    const root = current.root?.record;
    return root !== undefined && this.#rootSigner !== null && now.getTime() >= rootDueAt(root);
  }

  async #intermediateCrl(now: Date, epoch: number): Promise<PublishedCrl> {
    const issuerKeyId = this.#keyring.issuer.record.id;
    const latest = await this.#store.latestCrl(issuerKeyId);
    if (latest !== null && latest.revocationEpoch >= epoch && latest.nextUpdate.getTime() - now.getTime() > this.policy.refreshBeforeMs) {
      return this.#published(latest);
    }
    // RFC 5280 §3.3: an entry stays until a regular CRL issued after the certificate expired has
    // carried it; keeping entries for one more validity period does that.
    const revoked = await this.#store.listRevoked(issuerKeyId, new Date(now.getTime() - this.policy.validityMs));
    const entries: RevokedEntry[] = revoked.map((entry) => ({
      serial: Buffer.from(entry.serial, 'hex'),
      revokedAt: entry.revokedAt,
      reason: isRevocationReason(entry.reason) ? entry.reason : 'unspecified',
    }));
    const thisUpdate = wholeSecond(now);
    const nextUpdate = new Date(thisUpdate.getTime() + this.policy.validityMs);
    const record = await this.#store.insertCrl(
      issuerKeyId,
      (crlNumber) => ({ thisUpdate, nextUpdate, revocationEpoch: epoch, der: this.#intermediateSigner.issue({ crlNumber, thisUpdate, nextUpdate, entries }) }),
      // Another process stored one meanwhile that covers at least this epoch and is not due.
      (newest) => newest.revocationEpoch >= epoch && newest.nextUpdate.getTime() - now.getTime() > this.policy.refreshBeforeMs,
    );
    if (record.revocationEpoch !== epoch || record.thisUpdate.getTime() !== thisUpdate.getTime()) return this.#published(record); // adopted
    await this.#audit(record, entries.length, latest === null ? 'first' : latest.revocationEpoch < epoch ? 'revocation' : 'refresh');
    return this.#published(record);
  }

  async #rootCrl(now: Date): Promise<PublishedCrl | null> {
    const root = this.#keyring.root;
    const latest = await this.#store.latestCrl(root.record.id);
    if (latest !== null && (this.#rootSigner === null || now.getTime() < rootDueAt(latest))) {
      if (this.#rootSigner === null && latest.nextUpdate.getTime() - now.getTime() < this.policy.refreshBeforeMs) {
        this.#logger.error(
          { event: 'crl.root_stale', issuer: root.record.id, nextUpdate: latest.nextUpdate.toISOString() },
          "the root's CRL is about to expire and the root key is offline: rotate the intermediate (which re-signs it) before then",
        );
      }
      return this.#published(latest);
    }
    if (this.#rootSigner === null) {
      this.#logger.error({ event: 'crl.root_missing', issuer: root.record.id }, 'no CRL for the offline root in the store: relying parties that check every CA in the chain will refuse handshakes');
      return null;
    }
    // tlsmesh replaces intermediates by rotation and does not revoke them, so the list is empty.
    const thisUpdate = wholeSecond(now);
    const nextUpdate = new Date(thisUpdate.getTime() + ROOT_CRL_VALIDITY_MS);
    const signer = this.#rootSigner;
    const record = await this.#store.insertCrl(root.record.id, (crlNumber) => ({
      thisUpdate,
      nextUpdate,
      revocationEpoch: 0,
      der: signer.issue({ crlNumber, thisUpdate, nextUpdate, entries: [] }),
    }));
    await this.#audit(record, 0, latest === null ? 'first' : 'refresh');
    return this.#published(record);
  }

  #published(record: CrlRecord): PublishedCrl {
    return { issuerKeyId: record.issuerKeyId, record, pem: crlToPem(record.der) };
  }

  async #audit(record: CrlRecord, entries: number, why: string): Promise<void> {
    this.#logger.info({ event: 'crl.published', issuer: record.issuerKeyId, crlNumber: record.crlNumber.toString(), entries, why }, 'CRL published');
    await this.#store.appendAudit({
      at: this.#clock(),
      actor: 'ca',
      action: 'crl.publish',
      subject: record.issuerKeyId,
      outcome: 'ok',
      code: null,
      detail: { crlNumber: record.crlNumber.toString(), entries, why, nextUpdate: record.nextUpdate.toISOString() },
      peer: null,
    });
  }
}

/** An online root re-signs its CRL when half of its validity is left. */
function rootDueAt(record: CrlRecord): number {
  return record.nextUpdate.getTime() - (record.nextUpdate.getTime() - record.thisUpdate.getTime()) / 2;
}

/** CRL times are whole seconds; rounding down keeps thisUpdate from lying in the future. */
function wholeSecond(date: Date): Date {
  return new Date(Math.floor(date.getTime() / 1000) * 1000);
}
