/**
 * Keeps the CA's CRLs current: one per intermediate in use (the active one, and any superseded by
 * a rotation whose leaves are still valid) listing its revoked leaves, and one per root in the
 * bundle (revoked intermediates). Node checks a CRL for every CA in a chain, so a relying party
 * needs them all (DESIGN.md traps).
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
import { createHash, type KeyObject } from 'node:crypto';
import type { Logger } from '../observe/logger.js';
import { CrlIssuer, crlToPem, isRevocationReason, parseCrl, type RevokedEntry } from '../pki/crl.js';
import type { CrlRecord, Store } from '../store/index.js';
import type { ActiveIssuer, Keyring, RootAuthority } from './keyring.js';
import { LiveKeyring } from './live-keyring.js';

export interface CrlPolicy {
  /** nextUpdate − thisUpdate of the intermediates' CRLs (default 24 h). */
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
  /** Revoked serials it lists. */
  entries: number;
}

/** What the CRL routes serve: every CRL a relying party needs, and an ETag over all of them. */
export interface PublishedCrls {
  /** The active intermediate's CRL (what GET /v1/crl answers in DER). */
  active: PublishedCrl;
  /** Every CRL: the roots' first, then the intermediates', active first. */
  all: readonly PublishedCrl[];
  /** All of them, `X509 CRL` PEM. */
  pem: string;
  etag: string;
  /** The store's revocation epoch the intermediates' CRLs cover. */
  epoch: number;
}

export interface CrlPublisherOptions {
  store: Store;
  keyring: Keyring | LiveKeyring;
  clock: () => Date;
  logger: Logger;
  policy?: Partial<CrlPolicy> | undefined;
}

export class CrlPublisher {
  readonly policy: CrlPolicy;
  readonly #store: Store;
  readonly #keys: () => Keyring;
  readonly #clock: () => Date;
  readonly #logger: Logger;
  /** One signer per CA key, built once (keyed by key id; a rotation adds one). */
  readonly #signers = new Map<string, CrlIssuer>();
  readonly #listeners = new Set<(crls: PublishedCrls) => void>();
  #current: PublishedCrls | undefined;
  #fingerprint: string | undefined;
  /** Serialises publishing: a revoke and a poll tick must not sign the same CRL twice. */
  #queue: Promise<unknown> = Promise.resolve();
  #pending = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: CrlPublisherOptions) {
    this.policy = { ...DEFAULT_CRL_POLICY, ...options.policy };
    if (this.policy.refreshBeforeMs >= this.policy.validityMs) throw new RangeError('CRL refreshBeforeMs must be shorter than validityMs');
    this.#store = options.store;
    const keys = options.keyring;
    this.#keys = keys instanceof LiveKeyring ? () => keys.current() : () => keys;
    this.#clock = options.clock;
    this.#logger = options.logger;
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

  /** Publishes now if anything was revoked since the last CRL (by any process), one is due, or the keys changed. */
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
    const keyring = this.#keys();
    const epoch = await this.#store.revocationEpoch();
    // The common tick: nothing revoked anywhere, nothing due, the same keys, after one small read.
    const sameKeys = keyring.fingerprint === this.#fingerprint;
    if (!starting && sameKeys && this.#current !== undefined && epoch <= this.#current.epoch && !this.#due(now, keyring)) return;
    const roots: PublishedCrl[] = [];
    for (const root of keyring.rootAuthorities) {
      const crl = await this.#rootCrl(now, root);
      if (crl) roots.push(crl);
    }
    const intermediates: PublishedCrl[] = [];
    for (const issuer of keyring.issuers.values()) intermediates.push(await this.#intermediateCrl(now, epoch, issuer));
    const all = [...roots, ...intermediates];
    const previous = this.#current;
    const numbers = (crls: readonly PublishedCrl[]): string => crls.map((crl) => `${crl.issuerKeyId}#${crl.record.crlNumber}`).join(',');
    this.#fingerprint = keyring.fingerprint;
    if (!starting && previous !== undefined && numbers(previous.all) === numbers(all)) return;
    const pem = all.map((crl) => crl.pem).join('');
    const etag = `"${createHash('sha256').update(pem).digest('base64url').slice(0, 27)}"`;
    this.#current = { active: intermediates[0]!, all, pem, etag, epoch: Math.min(...intermediates.map((crl) => crl.record.revocationEpoch)) };
    for (const listener of this.#listeners) listener(this.#current);
  }

  #due(now: Date, keyring: Keyring): boolean {
    for (const crl of this.#current!.all) {
      const isRoot = keyring.rootAuthorities.some((root) => root.record.id === crl.issuerKeyId);
      if (!isRoot && crl.record.nextUpdate.getTime() - now.getTime() <= this.policy.refreshBeforeMs) return true;
      const online = keyring.rootAuthorities.find((root) => root.record.id === crl.issuerKeyId && root.privateKey !== null);
      if (online && now.getTime() >= rootDueAt(crl.record)) return true;
    }
    return false;
  }

  #signer(id: string, certDer: Buffer, privateKey: KeyObject): CrlIssuer {
    let signer = this.#signers.get(id);
    if (!signer) this.#signers.set(id, (signer = new CrlIssuer({ issuerCertDer: certDer, issuerPrivateKey: privateKey })));
    return signer;
  }

  async #intermediateCrl(now: Date, epoch: number, issuer: ActiveIssuer): Promise<PublishedCrl> {
    const issuerKeyId = issuer.record.id;
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
    const signer = this.#signer(issuerKeyId, issuer.certDer, issuer.privateKey);
    const record = await this.#store.insertCrl(
      issuerKeyId,
      (crlNumber) => ({ thisUpdate, nextUpdate, revocationEpoch: epoch, der: signer.issue({ crlNumber, thisUpdate, nextUpdate, entries }) }),
      // Another process stored one meanwhile that covers at least this epoch and is not due.
      (newest) => newest.revocationEpoch >= epoch && newest.nextUpdate.getTime() - now.getTime() > this.policy.refreshBeforeMs,
    );
    if (record.revocationEpoch !== epoch || record.thisUpdate.getTime() !== thisUpdate.getTime()) return this.#published(record); // adopted
    await this.#audit(record, entries.length, latest === null ? 'first' : latest.revocationEpoch < epoch ? 'revocation' : 'refresh');
    return this.#published(record);
  }

  async #rootCrl(now: Date, root: RootAuthority): Promise<PublishedCrl | null> {
    const latest = await this.#store.latestCrl(root.record.id);
    if (latest !== null && (root.privateKey === null || now.getTime() < rootDueAt(latest))) {
      if (root.privateKey === null && latest.nextUpdate.getTime() - now.getTime() < this.policy.refreshBeforeMs) {
        this.#logger.error(
          { event: 'crl.root_stale', issuer: root.record.id, nextUpdate: latest.nextUpdate.toISOString() },
          "a root's CRL is about to expire and the root key is offline: run `tlsmesh ca rotate crl --root-key FILE` (or rotate) before then",
        );
      }
      return this.#published(latest);
    }
    if (root.privateKey === null) {
      this.#logger.error({ event: 'crl.root_missing', issuer: root.record.id }, 'no CRL for an offline root in the store: relying parties that check every CA in the chain will refuse handshakes');
      return null;
    }
    // tlsmesh replaces intermediates by rotation and does not revoke them, so the list is empty.
    const thisUpdate = wholeSecond(now);
    const nextUpdate = new Date(thisUpdate.getTime() + ROOT_CRL_VALIDITY_MS);
    const signer = this.#signer(root.record.id, root.certDer, root.privateKey);
    const record = await this.#store.insertCrl(
      root.record.id,
      (crlNumber) => ({ thisUpdate, nextUpdate, revocationEpoch: 0, der: signer.issue({ crlNumber, thisUpdate, nextUpdate, entries: [] }) }),
      (newest) => now.getTime() < rootDueAt(newest),
    );
    if (record.thisUpdate.getTime() === thisUpdate.getTime()) await this.#audit(record, 0, latest === null ? 'first' : 'refresh');
    return this.#published(record);
  }

  #published(record: CrlRecord): PublishedCrl {
    // Parsed once per CRL published or adopted (100k entries take ~0.14 s; nothing on the polls).
    return { issuerKeyId: record.issuerKeyId, record, pem: crlToPem(record.der), entries: parseCrl(record.der).revoked.size };
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
