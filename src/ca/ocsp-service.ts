/**
 * The CA's OCSP responder (RFC 6960) for the leaves of the active intermediate.
 *
 * Answers are signed by a delegated responder certificate (EKU OCSPSigning, ocsp-nocheck) that
 * the intermediate issues at start to a key that lives only in this process's memory, re-issued
 * when 2/3 of its short lifetime has passed; the intermediate key itself never signs per request.
 *
 * Status comes from the store, so a revocation made by another CA process on the same
 * PostgreSQL is answered as soon as this process sees it. Statuses are cached per serial, and so
 * are whole signed answers to requests without a nonce; both caches are dropped whenever the CRL
 * publisher sees a new revocation (here or in another process, within its poll interval), so a
 * cached "good" never outlives a revoke.
 */
import type { Logger } from '../observe/logger.js';
import { generateKeyPair, randomSerial, serialHex } from '../pki/index.js';
import { createOcspResponderCertificate } from '../pki/ocsp-responder-certificate.js';
import {
  ocspErrorResponse,
  OcspResponder,
  parseOcspRequest,
  type CertId,
  type OcspCertStatus,
  type OcspSingleAnswer,
} from '../pki/ocsp.js';
import { isTlsmeshError } from '../errors.js';
import type { Store } from '../store/index.js';
import type { CrlPublisher } from './crl-publisher.js';
import type { ActiveIssuer, Keyring } from './keyring.js';
import { LiveKeyring } from './live-keyring.js';
import { ocspResponderSpiffeId } from './identities.js';

export interface OcspPolicy {
  /** Lifetime of the delegated responder certificate (default 3 days; ocsp-nocheck keeps it short). */
  responderLifetimeMs: number;
  /** nextUpdate − thisUpdate of each answer (default 1 h). */
  answerValidityMs: number;
  /** Cached answers (no nonce) are reused for at most this long (default 5 min). */
  cacheMs: number;
  /** Serials kept in the cache (default 10,000). */
  cacheEntries: number;
}

export const DEFAULT_OCSP_POLICY: OcspPolicy = { responderLifetimeMs: 3 * 24 * 3_600_000, answerValidityMs: 3_600_000, cacheMs: 5 * 60_000, cacheEntries: 10_000 };

interface CachedAnswer {
  response: Buffer;
  until: number;
}

export class OcspService {
  readonly policy: OcspPolicy;
  readonly #store: Store;
  readonly #keys: () => Keyring;
  readonly #clock: () => Date;
  readonly #logger: Logger;
  readonly #cache = new Map<string, CachedAnswer>();
  /** Status per serial, for requests with a nonce (signed each time, but no store read). */
  readonly #statuses = new Map<string, { status: OcspCertStatus; until: number }>();
  /** Bumped when the caches are dropped: a lookup that began before must not refill them. */
  #generation = 0;
  /** One delegated responder per intermediate in use (active and superseded), by key id. */
  readonly #responders = new Map<string, { responder: OcspResponder; renewAt: number }>();
  readonly #renewing = new Map<string, Promise<void>>();
  /** Per intermediate, a responder used only for `covers` (it signs nothing). */
  readonly #coverage = new Map<string, OcspResponder>();
  #unsubscribe: (() => void) | undefined;

  constructor(options: { store: Store; keyring: Keyring | LiveKeyring; clock: () => Date; logger: Logger; publisher: CrlPublisher; policy?: Partial<OcspPolicy> | undefined }) {
    this.policy = { ...DEFAULT_OCSP_POLICY, ...options.policy };
    this.#store = options.store;
    const keys = options.keyring;
    this.#keys = keys instanceof LiveKeyring ? () => keys.current() : () => keys;
    this.#clock = options.clock;
    this.#logger = options.logger;
    this.#unsubscribe = options.publisher.onChange(() => this.#clearCaches());
  }

  /** Certifies a responder for the active intermediate (the others get theirs when first asked). */
  async start(): Promise<void> {
    await this.#responderFor(this.#keys().issuer);
  }

  stop(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  /** The DER OCSPResponse for a DER OCSPRequest; never throws for bad input (it answers malformedRequest). */
  async answer(requestDer: Buffer): Promise<Buffer> {
    let certIds: CertId[];
    let nonce: Buffer | undefined;
    try {
      ({ certIds, nonce } = parseOcspRequest(requestDer));
    } catch (error) {
      if (!isTlsmeshError(error)) throw error;
      this.#logger.info({ event: 'ocsp.malformed', reason: error.message }, 'OCSP request refused');
      return ocspErrorResponse('malformedRequest');
    }
    // RFC 6960 §2.3: a responder that is not authoritative for a certificate answers
    // "unauthorized". One request names certificates of one issuer (ours: one intermediate).
    const issuer = certIds.length === 0 ? undefined : [...this.#keys().issuers.values()].find((candidate) => this.#covers(candidate, certIds));
    if (issuer === undefined) return ocspErrorResponse('unauthorized');
    const responder = await this.#responderFor(issuer);
    const now = this.#clock();
    const cacheKey = certIds.length === 1 && nonce === undefined ? `${issuer.record.id}/${certIds[0]!.serial}/${certIds[0]!.hashAlgorithmOid}` : undefined;
    if (cacheKey !== undefined) {
      const cached = this.#cache.get(cacheKey);
      if (cached !== undefined && cached.until > now.getTime()) return cached.response;
    }
    const thisUpdate = new Date(Math.floor(now.getTime() / 1000) * 1000);
    const nextUpdate = new Date(thisUpdate.getTime() + this.policy.answerValidityMs);
    const generation = this.#generation;
    const answers: OcspSingleAnswer[] = [];
    for (const certId of certIds) answers.push({ certId, status: await this.#cachedStatusOf(issuer.record.id, certId.serial, now.getTime(), generation), thisUpdate, nextUpdate });
    const response = responder.respond(answers, { producedAt: thisUpdate, nonce });
    // A revocation seen while the store was read: answer, but cache nothing read before it.
    if (cacheKey !== undefined && generation === this.#generation) {
      if (this.#cache.size >= this.policy.cacheEntries) this.#cache.delete(this.#cache.keys().next().value!);
      this.#cache.set(cacheKey, { response, until: now.getTime() + this.policy.cacheMs });
    }
    return response;
  }

  async #cachedStatusOf(issuerKeyId: string, serial: string, now: number, generation: number): Promise<OcspCertStatus> {
    const key = `${issuerKeyId}/${serial}`;
    const cached = this.#statuses.get(key);
    if (cached !== undefined && cached.until > now) return cached.status;
    const status = await this.#statusOf(issuerKeyId, serial);
    if (generation !== this.#generation) return status;
    if (this.#statuses.size >= this.policy.cacheEntries) this.#statuses.delete(this.#statuses.keys().next().value!);
    this.#statuses.set(key, { status, until: now + this.policy.cacheMs });
    return status;
  }

  /** Do the CertIDs name this intermediate (its name and key hashes)? Checked without signing anything. */
  #covers(issuer: ActiveIssuer, certIds: readonly CertId[]): boolean {
    let probe = this.#coverage.get(issuer.record.id);
    if (!probe) this.#coverage.set(issuer.record.id, (probe = new OcspResponder({ issuerCertDer: issuer.certDer, responderCertDer: issuer.certDer, responderPrivateKey: issuer.privateKey })));
    return certIds.every((certId) => probe.covers(certId));
  }

  #clearCaches(): void {
    this.#generation += 1;
    this.#cache.clear();
    this.#statuses.clear();
  }

  async #statusOf(issuerKeyId: string, serial: string): Promise<OcspCertStatus> {
    const record = await this.#store.getCertificate(serial);
    // Only that intermediate's leaves are answered for; the CertID matched its hashes already, so
    // a serial we never issued under it is "unknown", not "good".
    if (record === null || record.issuerKeyId !== issuerKeyId) return { kind: 'unknown' };
    if (record.status === 'revoked') return { kind: 'revoked', revokedAt: record.revokedAt ?? record.createdAt, reason: record.revocationReason ?? 'unspecified' };
    return { kind: 'good' };
  }

  async #responderFor(issuer: ActiveIssuer): Promise<OcspResponder> {
    const id = issuer.record.id;
    const held = this.#responders.get(id);
    if (held !== undefined && this.#clock().getTime() < held.renewAt) return held.responder;
    let renewing = this.#renewing.get(id);
    if (!renewing) {
      renewing = this.#issueResponder(issuer).finally(() => this.#renewing.delete(id));
      this.#renewing.set(id, renewing);
    }
    try {
      await renewing;
    } catch (error) {
      // Keep answering with the current certificate while it is still valid.
      if (held === undefined) throw error;
      this.#logger.error({ err: error, event: 'ocsp.responder_renewal_failed' }, 'could not renew the OCSP responder certificate; using the current one');
      return held.responder;
    }
    return this.#responders.get(id)!.responder;
  }

  async #issueResponder(issuer: ActiveIssuer): Promise<void> {
    const { trustDomain } = this.#keys();
    const now = this.#clock();
    const notBefore = new Date(Math.floor(now.getTime() / 1000) * 1000 - 60_000);
    const notAfter = new Date(Math.min(notBefore.getTime() + this.policy.responderLifetimeMs, issuer.record.notAfter.getTime()));
    const key = generateKeyPair('p256');
    const serial = randomSerial();
    const certDer = await createOcspResponderCertificate({
      issuerCertDer: issuer.certDer,
      issuerPrivateKey: issuer.privateKey,
      responderPublicKey: key.publicKey,
      serial,
      notBefore,
      notAfter,
      trustDomain,
    });
    // Every certificate the CA signs is in the store and the audit log, this one too.
    await this.#store.insertCertificate(
      {
        serial: serialHex(serial),
        spiffeId: ocspResponderSpiffeId(trustDomain),
        dnsNames: [],
        ipAddresses: [],
        notBefore,
        notAfter,
        issuerKeyId: issuer.record.id,
        kind: 'ocsp-responder',
        status: 'valid',
        revokedAt: null,
        revocationReason: null,
        der: certDer,
        createdAt: now,
        origin: 'serve',
      },
      { at: now, actor: 'ca', action: 'ocsp.responder', subject: serialHex(serial), outcome: 'ok', code: null, detail: { notAfter: notAfter.toISOString() }, peer: null },
    );
    const responder = new OcspResponder({ issuerCertDer: issuer.certDer, responderCertDer: certDer, responderPrivateKey: key.privateKey });
    this.#responders.set(issuer.record.id, { responder, renewAt: notBefore.getTime() + ((notAfter.getTime() - notBefore.getTime()) * 2) / 3 });
    this.#clearCaches();
    this.#logger.info({ event: 'ocsp.responder_issued', serial: serialHex(serial), notAfter: notAfter.toISOString() }, 'OCSP responder certificate issued');
  }
}
