import type { AuditChainAnchor, AuditChainRow } from './audit-chain.js';

/**
 * What the CA keeps, and the one interface both backends (SQLite, PostgreSQL) implement.
 * Times are `Date` here and epoch milliseconds in the tables. Serials are lowercase hex of the
 * DER INTEGER content octets (so a leading 00 octet, when present, is part of the string).
 */

export type CertificateKind = 'workload' | 'admin' | 'ca-server' | 'ocsp-responder';
export type CertificateStatus = 'valid' | 'revoked';

export interface CertificateRecord {
  serial: string;
  spiffeId: string;
  dnsNames: string[];
  ipAddresses: string[];
  notBefore: Date;
  notAfter: Date;
  /** `id` of the CaKeyRecord that signed it. */
  issuerKeyId: string;
  kind: CertificateKind;
  status: CertificateStatus;
  revokedAt: Date | null;
  revocationReason: string | null;
  /** DER of the issued certificate. */
  der: Buffer;
  createdAt: Date;
  /** How it came to be: `enroll:<jti>`, `renew:<serial>`, `init`, `serve`. */
  origin: string;
}

export interface TokenRecord {
  jti: string;
  spiffeId: string;
  dnsNames: string[];
  ipAddresses: string[];
  createdAt: Date;
  expiresAt: Date;
  /** Who asked for it (a SPIFFE ID, or `cli:local`). */
  createdBy: string;
  usedAt: Date | null;
  usedBySerial: string | null;
}

export type CaKeyKind = 'root' | 'intermediate' | 'token-signing';
/**
 * A CA key's life: `prepared` (made, published in the bundle if a root, not signing yet) →
 * `active` (signing) → `superseded` (another key signs; this one still signs CRLs and OCSP for
 * what it issued, and a root stays in the bundle) → `retired` (out of the bundle, never used).
 */
export type CaKeyState = 'prepared' | 'active' | 'superseded' | 'retired';

export interface CaKeyRecord {
  id: string;
  kind: CaKeyKind;
  state: CaKeyState;
  /** Certificate DER; null for keys that have none (token signing). */
  certDer: Buffer | null;
  /** Passphrase-encrypted private key envelope; null when the key is kept offline (root). */
  encryptedKey: string | null;
  notBefore: Date;
  notAfter: Date;
  createdAt: Date;
}

/** A CRL as signed by one issuer; `revocationEpoch` is the store's epoch it was built from. */
export interface CrlRecord {
  issuerKeyId: string;
  crlNumber: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  revocationEpoch: number;
  der: Buffer;
  createdAt: Date;
}

/** What a CRL entry needs from a revoked certificate. */
export interface RevokedSerial {
  serial: string;
  revokedAt: Date;
  reason: string;
}

/** What `insertCrl` asks its caller to sign once it knows the number. */
export interface CrlDraft {
  thisUpdate: Date;
  nextUpdate: Date;
  revocationEpoch: number;
  der: Buffer;
}

export type AuditOutcome = 'ok' | 'refused' | 'error';

export interface AuditEntry {
  at: Date;
  /** SPIFFE ID of an authenticated caller, `peer:<address>` otherwise, or `cli:local`. */
  actor: string;
  /** e.g. `ca.init`, `enroll`, `renew`, `revoke`, `token.create`, `certs.list`. */
  action: string;
  /** What the action was about: a SPIFFE ID, a serial, a jti. */
  subject: string | null;
  outcome: AuditOutcome;
  /** Error code when refused or failed. */
  code: string | null;
  /** Small JSON object; never secrets. */
  detail: Record<string, unknown>;
  /** Remote address, when the action came over the network. */
  peer: string | null;
}

export interface AuditRecord extends AuditEntry {
  id: number;
}

export interface CertificateFilter {
  spiffeId?: string | undefined;
  /**
   * Only SPIFFE IDs containing this text, ignoring ASCII case (the dashboard's search). `%`, `_`
   * and `\\` match themselves: they are escaped before the LIKE, on both backends.
   */
  spiffeIdContains?: string | undefined;
  status?: CertificateStatus | undefined;
  kind?: CertificateKind | undefined;
  /** Only certificates signed by this CA key. */
  issuerKeyId?: string | undefined;
  /** Only certificates whose validity window contains this instant. */
  validAt?: Date | undefined;
  /** Only certificates with notAfter at or after this instant. */
  notAfterFrom?: Date | undefined;
  /** Only certificates with notAfter strictly before this instant. */
  notAfterBefore?: Date | undefined;
  limit?: number | undefined;
  offset?: number | undefined;
}

export interface AuditFilter {
  action?: string | undefined;
  outcome?: AuditOutcome | undefined;
  afterId?: number | undefined;
  /** Only entries with an id below this one (pages backwards with `newestFirst`). */
  beforeId?: number | undefined;
  /** Highest id first instead of append order. */
  newestFirst?: boolean | undefined;
  limit?: number | undefined;
}

/** The newest certificate of one SPIFFE ID: what expiry metrics, alerts and renewal health look at. */
export interface IdentityCertificate {
  spiffeId: string;
  kind: CertificateKind;
  serial: string;
  notBefore: Date;
  notAfter: Date;
}

/** Told about every store operation that failed with ERR_STORE (for the store-errors metric). */
export type StoreErrorListener = (operation: string, error: Error) => void;

export type RedeemResult = 'ok' | 'token-used' | 'token-unknown';

export interface Store {
  readonly backend: 'sqlite' | 'postgres';
  /** Creates or upgrades the schema; safe to call from several processes at once. */
  migrate(): Promise<void>;
  /**
   * How the store's schema compares with this version's migrations, without changing anything:
   * `pending`, the ones `migrate()` would run; `unknown`, ones the store has run that this version
   * does not have (it was upgraded by a newer tlsmesh).
   */
  migrationStatus(): Promise<{ pending: string[]; unknown: string[] }>;
  close(): Promise<void>;

  getMeta(key: string): Promise<string | null>;
  /** Adds one to a numeric meta value (0 when absent) and returns the new value. */
  incrementMeta(key: string): Promise<number>;
  /** Sets the value only when the key is absent; returns the value now stored. */
  initMeta(key: string, value: string): Promise<string>;

  putCaKey(record: CaKeyRecord): Promise<void>;
  listCaKeys(): Promise<CaKeyRecord[]>;
  setCaKeyState(id: string, state: CaKeyState): Promise<void>;

  createToken(record: TokenRecord, audit: AuditEntry): Promise<void>;
  getToken(jti: string): Promise<TokenRecord | null>;
  /**
   * Atomically marks the token used and inserts the certificate and the audit entry.
   * 'token-used' / 'token-unknown': nothing was written. A duplicate serial throws
   * TlsmeshError ERR_SERIAL_COLLISION and nothing was written (the token stays unused).
   */
  redeemTokenAndInsertCertificate(
    jti: string,
    usedAt: Date,
    certificate: CertificateRecord,
    audit: AuditEntry,
  ): Promise<RedeemResult>;
  /** Inserts a certificate with its audit entry in one transaction; duplicate serial: ERR_SERIAL_COLLISION. */
  insertCertificate(certificate: CertificateRecord, audit: AuditEntry): Promise<void>;
  /**
   * A renewal: inserts the new certificate only if `previousSerial` is still valid, checked (and
   * on PostgreSQL row-locked) in the same transaction, so a renewal cannot outrun a revocation.
   * 'previous-not-valid': nothing was written. Duplicate serial: ERR_SERIAL_COLLISION.
   */
  insertRenewedCertificate(previousSerial: string, certificate: CertificateRecord, audit: AuditEntry): Promise<'ok' | 'previous-not-valid'>;
  getCertificate(serial: string): Promise<CertificateRecord | null>;
  listCertificates(filter: CertificateFilter): Promise<CertificateRecord[]>;
  /** How many certificates match (limit and offset are ignored). */
  countCertificates(filter: CertificateFilter): Promise<number>;
  /** Revokes one certificate if it is valid; returns the record after the call (null if unknown). */
  revokeCertificate(serial: string, at: Date, reason: string, audit: AuditEntry): Promise<CertificateRecord | null>;
  /** Revokes every valid, unexpired (at `at`) certificate of the identity; returns those revoked. */
  revokeIdentity(spiffeId: string, at: Date, reason: string, audit: AuditEntry): Promise<CertificateRecord[]>;

  /** Grows with every certificate revoked, by any CA process on this store; CRL publishers poll it. */
  revocationEpoch(): Promise<number>;
  /** Revoked certificates signed by `issuerKeyId` whose notAfter is at or after `notAfterFrom`: a CRL's entries. */
  listRevoked(issuerKeyId: string, notAfterFrom: Date): Promise<RevokedSerial[]>;
  /**
   * Stores a CRL under the issuer's next cRLNumber: `sign` is called with that number and returns
   * the signed CRL. When another process took the number meanwhile, `sign` runs again with the
   * next one, so numbers only grow. Keeps the newest few CRLs per issuer. When `adopt` says so of
   * the issuer's newest stored CRL (looked at under the same lock), that one is returned instead
   * and nothing is written.
   */
  insertCrl(issuerKeyId: string, sign: (crlNumber: bigint) => CrlDraft, adopt?: (latest: CrlRecord) => boolean): Promise<CrlRecord>;
  /** The issuer's CRL with the highest cRLNumber, or null. */
  latestCrl(issuerKeyId: string): Promise<CrlRecord | null>;

  /**
   * For each SPIFFE ID, its certificate with the latest notAfter among those that started by `at`
   * and ended no earlier than `expiredSince` (both optional), unless that one is revoked (then the
   * identity is left out: it is not expected to renew). Expired ones count:
   * an identity whose newest certificate has expired was not renewed; `expiredSince` says how long
   * such an identity is still looked at before it is taken for decommissioned.
   */
  newestCertificatePerIdentity(window?: { at?: Date; expiredSince?: Date }): Promise<IdentityCertificate[]>;
  /** Calls `listener` for each operation that fails with ERR_STORE; returns the unsubscribe. */
  onError(listener: StoreErrorListener): () => void;

  /** Appends to the audit log's hash chain (audit-chain.ts); every write above that takes an AuditEntry does too. */
  appendAudit(entry: AuditEntry): Promise<void>;
  listAudit(filter: AuditFilter): Promise<AuditRecord[]>;
  /** Chained audit rows with seq above `afterSeq`, in chain order, at most `limit`: what verification walks. */
  readAuditChain(afterSeq: number, limit: number): Promise<AuditChainRow[]>;
  /** Audit rows lacking a chain field or with a seq below 1 (written outside tlsmesh), in id order. */
  listUnchainedAudit(limit: number): Promise<AuditChainRow[]>;
  /** Every row of the audit table, chained or not: verification checks the chain accounts for all of them. */
  countAudit(): Promise<number>;
  /** The chain's newest position and hash; null while the log is empty. */
  auditChainHead(): Promise<AuditChainAnchor | null>;
}
