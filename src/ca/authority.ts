/**
 * The authority: every decision the CA makes, independent of HTTP. Handlers translate requests
 * into these calls; these calls check, issue, and write the audit log. Refusals throw a
 * TlsmeshError after writing a `refused` audit entry, and issue nothing.
 */
import { X509Certificate } from 'node:crypto';
import { TlsmeshError, isTlsmeshError } from '../errors.js';
import {
  canonicalDnsName,
  canonicalIp,
  parseCsr,
  parseCsrAsync,
  parseWorkloadId,
  randomSerial,
  serialHex,
  spkiOf,
  type LeafRequest,
  type ParsedCsr,
} from '../pki/index.js';
import type { AuditEntry, CertificateFilter, CertificateKind, CertificateRecord, Store } from '../store/index.js';
import { adminSpiffeId, caSpiffeId, RESERVED_PATH_PREFIX } from './identities.js';
import type { Keyring } from './keyring.js';
import { LiveKeyring } from './live-keyring.js';
import { grantNames, type GrantedNames } from './name-policy.js';
import { DEFAULT_TOKEN_TTL_SECONDS, MAX_TOKEN_TTL_SECONDS, mintToken, verifyToken } from './tokens.js';

export interface Lifetimes {
  leafSeconds: number;
  adminSeconds: number;
  /** Leaves start this far in the past to tolerate clock skew between hosts (≤ 60 s). */
  backdateSeconds: number;
}

export const DEFAULT_LIFETIMES: Lifetimes = { leafSeconds: 24 * 3600, adminSeconds: 30 * 24 * 3600, backdateSeconds: 60 };

export interface AuthorityOptions {
  store: Store;
  /** The keys; a LiveKeyring when they may rotate while the CA runs. */
  keyring: Keyring | LiveKeyring;
  lifetimes?: Partial<Lifetimes>;
  clock?: () => Date;
  /** Serial numbers; tests inject collisions. Defaults to 126 random bits. */
  serials?: () => Buffer;
  /**
   * Awaited after a revocation is stored and before `revoke` returns: the CA publishes its new
   * CRL here, so a revoke call that returned is already in the CRL. Must not throw.
   */
  afterRevoke?: () => Promise<void>;
  /** Told how every audited operation ended (the CA's metrics); must not throw. */
  observer?: AuthorityObserver;
}

/** Sees each audited operation end: its action, result, error code and how long it took. */
export interface AuthorityObserver {
  completed(action: string, result: 'ok' | 'refused' | 'error', code: string | null, seconds: number): void;
}

export interface IssuedCertificate {
  serial: string;
  spiffeId: string;
  dnsNames: string[];
  ipAddresses: string[];
  notBefore: Date;
  notAfter: Date;
  /** Leaf followed by the issuing intermediate. */
  certificatePem: string;
  /** Every root in use. */
  bundlePem: string;
}

/** Who is asking: the authenticated SPIFFE ID, or the network address of an anonymous caller. */
export interface Caller {
  spiffeId: string | null;
  peer: string | null;
}

export interface TokenRequest {
  spiffeId: string;
  dnsNames?: readonly string[] | undefined;
  ipAddresses?: readonly string[] | undefined;
  ttlSeconds?: number | undefined;
}

const MAX_SERIAL_ATTEMPTS = 3;

/** Errors already written to the audit log, so the HTTP layer does not write them twice. */
const AUDITED = new WeakSet<TlsmeshError>();
export const wasAudited = (error: unknown): boolean => error instanceof TlsmeshError && AUDITED.has(error);

export class Authority {
  readonly store: Store;
  readonly #keys: () => Keyring;
  readonly lifetimes: Lifetimes;
  readonly clock: () => Date;
  readonly trustDomain: string;
  readonly #serials: () => Buffer;
  readonly #afterRevoke: (() => Promise<void>) | undefined;
  readonly #observer: AuthorityObserver | undefined;
  /** Issuances (enrolments, renewals, direct) under way in this process. */
  #issuing = 0;

  constructor(options: AuthorityOptions) {
    this.#serials = options.serials ?? (() => randomSerial());
    this.#afterRevoke = options.afterRevoke;
    this.#observer = options.observer;
    this.store = options.store;
    const keys = options.keyring;
    this.#keys = keys instanceof LiveKeyring ? () => keys.current() : () => keys;
    this.lifetimes = { ...DEFAULT_LIFETIMES, ...options.lifetimes };
    this.clock = options.clock ?? (() => new Date());
    this.trustDomain = this.#keys().trustDomain;
    if (this.lifetimes.backdateSeconds < 0 || this.lifetimes.backdateSeconds > 60) {
      throw new TlsmeshError('ERR_CONFIG', 'backdateSeconds must be between 0 and 60');
    }
  }

  /** The keys in use now (they change when a rotation step is applied). */
  get keyring(): Keyring {
    return this.#keys();
  }

  get adminId(): string {
    return adminSpiffeId(this.trustDomain);
  }

  get caId(): string {
    return caSpiffeId(this.trustDomain);
  }

  /** Enrolment: a one-time token plus a CSR gives a certificate for the identity the token names. */
  async enroll(input: { token: string; csr: string }, caller: Caller): Promise<IssuedCertificate> {
    const audit = this.auditor('enroll', caller);
    this.#issuing++;
    try {
      const claims = verifyToken(input.token, {
        trustDomain: this.trustDomain,
        now: this.clock(),
        keyFor: (kid) => this.keyring.tokenKey(kid),
      });
      audit.subject = claims.spiffeId;
      audit.detail['jti'] = claims.jti;
      const csr = await this.#parseCsr(input.csr);
      const names = grantNames(csr, claims);
      for (let attempt = 1; ; attempt++) {
        const { record, result } = await this.build(csr, names, 'workload', `enroll:${claims.jti}`, this.lifetimes.leafSeconds);
        try {
          const outcome = await this.store.redeemTokenAndInsertCertificate(claims.jti, this.clock(), record, audit.ok({ serial: record.serial }));
          if (outcome === 'token-used') throw new TlsmeshError('ERR_TOKEN_REUSED', 'this token has already been used; ask for a new one');
          if (outcome === 'token-unknown') throw new TlsmeshError('ERR_TOKEN_UNKNOWN', 'this token was never issued by this CA (no record of its id)');
          audit.succeeded();
          return result;
        } catch (error) {
          if (!isTlsmeshError(error, 'ERR_SERIAL_COLLISION') || attempt >= MAX_SERIAL_ATTEMPTS) throw error;
        }
      }
    } catch (error) {
      throw await audit.refused(error);
    } finally {
      this.#issuing--;
    }
  }

  /**
   * Renewal by a caller holding a current certificate (already verified by TLS and checked by
   * `authenticate`): same identity, SANs no wider than the current ones, and a new key.
   */
  async renew(input: { csr: string }, current: CertificateRecord, caller: Caller): Promise<IssuedCertificate> {
    const audit = this.auditor('renew', caller, current.spiffeId);
    audit.detail['previous'] = current.serial;
    this.#issuing++;
    try {
      if (current.kind === 'ca-server') throw new TlsmeshError('ERR_FORBIDDEN', 'CA server certificates are not renewed over the API');
      const csr = await this.#parseCsr(input.csr);
      if (spkiOf(csr.publicKey).equals(spkiOf(new X509Certificate(current.der).publicKey))) {
        throw new TlsmeshError('ERR_RENEW_SAME_KEY', 'the CSR reuses the key of the current certificate; generate a new key to renew');
      }
      const names = grantNames(csr, current);
      const ttl = current.kind === 'admin' ? this.lifetimes.adminSeconds : this.lifetimes.leafSeconds;
      const issued = await this.insertWithFreshSerial(csr, names, current.kind, `renew:${current.serial}`, ttl, audit, current.serial);
      audit.succeeded();
      return issued;
    } catch (error) {
      throw await audit.refused(error);
    } finally {
      this.#issuing--;
    }
  }

  /**
   * Issues without a token, for the CA's own use: the admin client certificate at init and the CA
   * server's TLS certificate at start. Never reachable from the network.
   */
  async issueDirect(csrPem: string, names: GrantedNames, kind: Exclude<CertificateKind, 'workload'>, origin: string): Promise<IssuedCertificate> {
    const audit = this.auditor(kind === 'admin' ? 'admin.issue' : 'server.issue', { spiffeId: null, peer: null }, names.spiffeId);
    audit.actor = 'ca:local';
    this.#issuing++;
    try {
      const ttl = kind === 'admin' ? this.lifetimes.adminSeconds : this.lifetimes.leafSeconds;
      return await this.insertWithFreshSerial(await this.#parseCsr(csrPem), names, kind, origin, ttl, audit);
    } catch (error) {
      throw await audit.refused(error);
    } finally {
      this.#issuing--;
    }
  }

  /** Admin: a one-time enrolment token for one workload identity. */
  async createToken(request: TokenRequest, caller: Caller): Promise<{ token: string; jti: string; expiresAt: Date; spiffeId: string }> {
    const audit = this.auditor('token.create', caller, request.spiffeId);
    try {
      const id = parseWorkloadId(request.spiffeId, this.trustDomain);
      if (id.path.startsWith(RESERVED_PATH_PREFIX) || id.path === RESERVED_PATH_PREFIX.slice(0, -1)) {
        throw new TlsmeshError('ERR_FORBIDDEN', `SPIFFE IDs under ${RESERVED_PATH_PREFIX} are reserved for the CA and its admins`);
      }
      const ttl = request.ttlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS;
      if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TOKEN_TTL_SECONDS) {
        throw new TlsmeshError('ERR_TTL_INVALID', `token lifetime must be 1 to ${MAX_TOKEN_TTL_SECONDS} seconds, got ${ttl}`);
      }
      const dnsNames = [...new Set((request.dnsNames ?? []).map(canonicalDnsName))];
      const ipAddresses = [...new Set((request.ipAddresses ?? []).map(canonicalIp))];
      const now = this.clock();
      const issuedAt = new Date(Math.floor(now.getTime() / 1000) * 1000);
      const expiresAt = new Date(issuedAt.getTime() + ttl * 1000);
      const { token, jti } = await mintToken(this.keyring.activeTokenKey, this.trustDomain, { spiffeId: id.uri, dnsNames, ipAddresses, issuedAt, expiresAt });
      await this.store.createToken(
        { jti, spiffeId: id.uri, dnsNames, ipAddresses, createdAt: now, expiresAt, createdBy: audit.actor, usedAt: null, usedBySerial: null },
        audit.ok({ jti, expiresAt: expiresAt.toISOString(), dnsNames, ipAddresses }),
      );
      audit.succeeded();
      return { token, jti, expiresAt, spiffeId: id.uri };
    } catch (error) {
      throw await audit.refused(error);
    }
  }

  /** Admin: issued certificates, newest first. */
  async listCertificates(filter: CertificateFilter, caller: Caller): Promise<CertificateRecord[]> {
    const audit = this.auditor('certs.list', caller);
    const records = await this.store.listCertificates(filter);
    await this.store.appendAudit(audit.ok({ count: records.length }));
    return records;
  }

  /** Admin: revoke one certificate by serial, or every current certificate of an identity. */
  async revoke(request: { serial?: string | undefined; spiffeId?: string | undefined; reason?: string | undefined }, caller: Caller): Promise<CertificateRecord[]> {
    const audit = this.auditor('revoke', caller, request.serial ?? request.spiffeId ?? null);
    try {
      const reason = request.reason ?? 'unspecified';
      const now = this.clock();
      if ((request.serial === undefined) === (request.spiffeId === undefined)) {
        throw new TlsmeshError('ERR_BAD_REQUEST', 'give exactly one of serial or spiffeId to revoke');
      }
      if (request.serial !== undefined) {
        const serial = request.serial.toLowerCase().replace(/:/g, '');
        const record = await this.store.revokeCertificate(serial, now, reason, audit.ok({ reason }));
        if (record === null) throw new TlsmeshError('ERR_NOT_FOUND', `no certificate with serial ${serial}`);
        audit.succeeded();
        await this.#afterRevoke?.();
        return [record];
      }
      const id = parseWorkloadId(request.spiffeId!, this.trustDomain);
      const revoked = await this.store.revokeIdentity(id.uri, now, reason, audit.ok({ reason }));
      audit.succeeded();
      await this.#afterRevoke?.();
      return revoked;
    } catch (error) {
      throw await audit.refused(error);
    }
  }

  /**
   * Checks a TLS-verified peer certificate against the store: it must be one we issued, not
   * revoked, and inside its validity window by the CA's clock. Returns its record. Refusals are
   * audited under `action`.
   */
  async authenticate(peerCertDer: Buffer, action: string, peer: string | null): Promise<CertificateRecord> {
    const serial = new X509Certificate(peerCertDer).serialNumber.toLowerCase();
    const record = await this.store.getCertificate(serial);
    const refuse = async (error: TlsmeshError): Promise<never> => {
      await this.auditor(action, { spiffeId: null, peer }, record?.spiffeId ?? serial).refused(error);
      throw error;
    };
    if (record === null || !record.der.equals(peerCertDer)) {
      return refuse(new TlsmeshError('ERR_CERT_UNKNOWN', `certificate ${serial} was not issued by this CA`));
    }
    if (record.status === 'revoked') return refuse(new TlsmeshError('ERR_CERT_REVOKED', `certificate ${serial} of ${record.spiffeId} has been revoked`));
    // OpenSSL judged validity once, at the handshake; a kept-alive connection or a resumed
    // session can outlive the certificate. The CA's clock decides on every request.
    const now = this.clock();
    if (now.getTime() > record.notAfter.getTime()) {
      return refuse(new TlsmeshError('ERR_CLIENT_CERT_REJECTED', `certificate ${serial} of ${record.spiffeId} expired at ${record.notAfter.toISOString()}`));
    }
    if (now.getTime() < record.notBefore.getTime()) {
      return refuse(new TlsmeshError('ERR_CLIENT_CERT_REJECTED', `certificate ${serial} of ${record.spiffeId} is not valid before ${record.notBefore.toISOString()}`));
    }
    return record;
  }

  /** Records a refusal decided outside the authority (e.g. by the TLS layer or body parsing). */
  async auditRefusal(action: string, caller: Caller, error: unknown, subject: string | null = null): Promise<TlsmeshError> {
    return this.auditor(action, caller, subject).refused(error);
  }

  // -------------------------------------------------------------------------------------------

  /**
   * The CSR's signature check and the leaf's signature run on libuv's thread pool only while
   * other issuances are under way: the event loop then serves those meanwhile (the main thread
   * is what bounds a loaded CA; bench/README.md has the figures). A lone request gains nothing
   * from the two thread hops and pays their latency, so it signs and verifies in place.
   */
  #offloadCrypto(): boolean {
    return this.#issuing > 1;
  }

  async #parseCsr(input: string): Promise<ParsedCsr> {
    return this.#offloadCrypto() ? parseCsrAsync(input) : parseCsr(input);
  }

  private async build(csr: ParsedCsr, names: GrantedNames, kind: CertificateKind, origin: string, ttlSeconds: number): Promise<{ record: CertificateRecord; result: IssuedCertificate }> {
    const now = this.clock();
    // One keyring for the whole certificate: a rotation landing meanwhile must not mix issuers.
    const keyring = this.keyring;
    const seconds = Math.floor(now.getTime() / 1000) * 1000;
    const notBefore = new Date(seconds - this.lifetimes.backdateSeconds * 1000);
    const issuerNotAfter = keyring.issuer.record.notAfter.getTime();
    const notAfter = new Date(Math.min(seconds + ttlSeconds * 1000, issuerNotAfter));
    const serial = this.#serials();
    const leaf: LeafRequest = {
      serial,
      spki: csr.spki,
      rsaKey: csr.key.algorithm === 'rsa',
      spiffeId: names.spiffeId,
      dnsNames: names.dnsNames,
      ipAddresses: names.ipAddresses,
      notBefore,
      notAfter,
    };
    // Signed with the keyring taken above, whatever rotation lands while the thread pool signs.
    const der = this.#offloadCrypto() ? await keyring.issuer.leafIssuer.issueAsync(leaf) : keyring.issuer.leafIssuer.issue(leaf);
    const record: CertificateRecord = {
      serial: serialHex(serial),
      spiffeId: names.spiffeId,
      dnsNames: names.dnsNames,
      ipAddresses: names.ipAddresses,
      notBefore,
      notAfter,
      issuerKeyId: keyring.issuer.record.id,
      kind,
      status: 'valid',
      revokedAt: null,
      revocationReason: null,
      der,
      createdAt: now,
      origin,
    };
    const result: IssuedCertificate = {
      serial: record.serial,
      spiffeId: names.spiffeId,
      dnsNames: names.dnsNames,
      ipAddresses: names.ipAddresses,
      notBefore,
      notAfter,
      certificatePem: keyring.chainPem(der),
      bundlePem: keyring.bundlePem,
    };
    return { record, result };
  }

  private async insertWithFreshSerial(
    csr: ParsedCsr,
    names: GrantedNames,
    kind: CertificateKind,
    origin: string,
    ttlSeconds: number,
    audit: Auditor,
    /** For renewals: the certificate that must still be valid when the new one is stored. */
    previousSerial?: string,
  ): Promise<IssuedCertificate> {
    for (let attempt = 1; ; attempt++) {
      const { record, result } = await this.build(csr, names, kind, origin, ttlSeconds);
      try {
        if (previousSerial === undefined) {
          await this.store.insertCertificate(record, audit.ok({ serial: record.serial }));
        } else if ((await this.store.insertRenewedCertificate(previousSerial, record, audit.ok({ serial: record.serial }))) === 'previous-not-valid') {
          throw new TlsmeshError('ERR_CERT_REVOKED', `certificate ${previousSerial} was revoked while it was being renewed`);
        }
        return result;
      } catch (error) {
        if (!isTlsmeshError(error, 'ERR_SERIAL_COLLISION') || attempt >= MAX_SERIAL_ATTEMPTS) throw error;
      }
    }
  }

  private auditor(action: string, caller: Caller, subject: string | null = null): Auditor {
    return new Auditor(this.store, this.clock, action, caller, subject, this.#observer);
  }
}

/** Collects what one operation's audit entry needs, then writes it once with the outcome. */
class Auditor {
  actor: string;
  detail: Record<string, unknown> = {};
  readonly #startedAt = performance.now();

  constructor(
    private readonly store: Store,
    private readonly clock: () => Date,
    private readonly action: string,
    private readonly caller: Caller,
    public subject: string | null,
    private readonly observer: AuthorityObserver | undefined,
  ) {
    this.actor = caller.spiffeId ?? (caller.peer ? `peer:${caller.peer}` : 'unknown');
  }

  /** After the operation's `ok` entry is stored: tells the observer. */
  succeeded(): void {
    this.observer?.completed(this.action, 'ok', null, (performance.now() - this.#startedAt) / 1000);
  }

  ok(extra: Record<string, unknown> = {}): AuditEntry {
    return this.entry('ok', null, extra);
  }

  /** Writes the refusal (or internal error) and returns the error to throw, as a TlsmeshError. */
  async refused(error: unknown): Promise<TlsmeshError> {
    const coded = isTlsmeshError(error) ? error : new TlsmeshError('ERR_INTERNAL', 'internal error while handling the request', { cause: error });
    const outcome = coded.status >= 500 ? 'error' : 'refused';
    AUDITED.add(coded);
    this.observer?.completed(this.action, outcome, coded.code, (performance.now() - this.#startedAt) / 1000);
    try {
      await this.store.appendAudit(this.entry(outcome, coded.code, { message: coded.message }));
    } catch (auditError) {
      // The store being down is reported as such; the original refusal is kept as the cause.
      if (!isTlsmeshError(error)) throw new TlsmeshError('ERR_STORE', 'the store failed while recording an error', { cause: auditError });
    }
    return coded;
  }

  private entry(outcome: AuditEntry['outcome'], code: string | null, extra: Record<string, unknown>): AuditEntry {
    return {
      at: this.clock(),
      actor: this.actor,
      action: this.action,
      subject: this.subject,
      outcome,
      code,
      detail: { ...this.detail, ...extra },
      peer: this.caller.peer,
    };
  }
}
