/**
 * A workload's identity as the SDK uses it: its certificate chain and key, the trust bundle it
 * verifies peers against, and the CRL when one is published. Validated once, when constructed,
 * so every transport can build TLS options from it without re-checking anything.
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { TlsmeshError } from '../errors.js';
import { parseCrl, serialKey, verifyCrlSignature, type ParsedCrl } from '../pki/crl.js';
import { parseSpiffeId, pemBlocks, readIssuerFields, spiffeIdsOf, toPem } from '../pki/index.js';

/** The PEM texts an identity is made of (the shape `enrollWithToken` and the agent's files have). */
export interface IdentityMaterial {
  /** The leaf first, then the intermediates. */
  certPem: string;
  keyPem: string;
  /** The roots to trust for peers. */
  bundlePem: string;
  /** The CA's CRL (`X509 CRL` or `CRL` PEM blocks), covering every CA in the chain. */
  crlPem?: string | undefined;
}

/** Which part of the material a problem is in: file sources name the matching file. */
export type IdentityPart = 'cert' | 'key' | 'bundle' | 'crl';

export interface IdentityProblem {
  part: IdentityPart;
  message: string;
}

/**
 * A complete, validated identity. Construct with `new Identity(material)`.
 *
 * @example
 * const identity = new Identity({ certPem, keyPem, bundlePem });
 * identity.spiffeId; // 'spiffe://example.org/billing/api'
 */
export class Identity {
  readonly certPem: string;
  readonly bundlePem: string;
  /** The CRL re-labelled `X509 CRL` (what OpenSSL reads), or undefined. */
  readonly crlPem: string | undefined;
  /**
   * The same CRLs one PEM text each: what to give Node's `crl` option. Given one text holding
   * several CRLs, Node reads only the first, and every handshake then fails with
   * UNABLE_TO_GET_CRL for the CA whose CRL was dropped.
   */
  readonly crlList: readonly string[];
  readonly leaf: X509Certificate;
  /** The bundle's certificates, parsed. */
  readonly roots: readonly X509Certificate[];
  readonly spiffeId: string;
  readonly trustDomain: string;
  /** Lowercase hex, as the CA's API and store write serials. */
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /**
   * The CRL's nextUpdate (the earliest, when there are several), or undefined without a CRL.
   * Past it, OpenSSL refuses every handshake that checks the CRL: the transports then keep
   * enforcing this CRL's entries themselves (see `staleCrl` in the server and client options).
   */
  readonly crlNextUpdate: Date | undefined;
  /** The CRLs' thisUpdate (the latest), or undefined without a CRL. */
  readonly crlThisUpdate: Date | undefined;
  readonly #revoked: ReadonlySet<string>;
  readonly #crlNumbers: ReadonlyMap<string, bigint>;
  // Private so that logging or serialising an Identity never prints the key.
  readonly #keyPem: string;

  /** Throws ERR_IDENTITY_INVALID naming the part that is wrong. */
  constructor(material: IdentityMaterial) {
    const checked = checkMaterial(material);
    if ('problem' in checked) throw new TlsmeshError('ERR_IDENTITY_INVALID', `${PART_NAMES[checked.problem.part]}: ${checked.problem.message}`);
    this.certPem = material.certPem;
    this.#keyPem = material.keyPem;
    this.bundlePem = material.bundlePem;
    this.crlPem = checked.crl?.pem;
    this.crlList = checked.crl?.list ?? [];
    this.#revoked = checked.crl?.revoked ?? new Set();
    this.#crlNumbers = checked.crl?.numbers ?? new Map();
    this.crlNextUpdate = checked.crl?.nextUpdate;
    this.crlThisUpdate = checked.crl?.thisUpdate;
    this.leaf = checked.leaf;
    this.roots = checked.roots;
    this.spiffeId = checked.spiffeId;
    this.trustDomain = parseSpiffeId(checked.spiffeId).trustDomain;
    this.serial = checked.leaf.serialNumber.toLowerCase();
    this.notBefore = new Date(checked.leaf.validFrom);
    this.notAfter = new Date(checked.leaf.validTo);
  }

  get keyPem(): string {
    return this.#keyPem;
  }

  /**
   * Is a peer certificate with this serial in the CRL? Serials as Node gives them
   * (`getPeerCertificate().serialNumber`, upper case) or as the CA writes them (lower case).
   * Serials are 126 random bits from the CA, so the serial alone identifies the certificate.
   */
  isRevoked(serial: string): boolean {
    return this.#revoked.size > 0 && this.#revoked.has(serialKey(serial));
  }

  /** Entries in the CRL (0 without one). */
  get revokedCount(): number {
    return this.#revoked.size;
  }

  /** Has the CRL passed its nextUpdate at `now` (ms)? False without a CRL. */
  crlStale(now: number): boolean {
    return this.crlNextUpdate !== undefined && now >= this.crlNextUpdate.getTime();
  }

  /** The same identity with another trust bundle (what a CA rotation step makes); certificate, key and CRL are kept. */
  withBundle(bundlePem: string): Identity {
    return new Identity({ certPem: this.certPem, keyPem: this.#keyPem, bundlePem, crlPem: this.crlPem });
  }

  /** The same identity with another CRL (what a CRL update makes); the certificate and key are kept. */
  withCrl(crlPem: string | undefined): Identity {
    return new Identity({ certPem: this.certPem, keyPem: this.#keyPem, bundlePem: this.bundlePem, crlPem });
  }

  /**
   * Why this identity's CRLs must not replace `previous`'s, or null: a CRL numbered below the one
   * in use for the same CA is older (a CA process that is behind, a delayed answer, a replayed
   * file), and taking it would un-revoke what the newer one lists.
   */
  crlRollbackFrom(previous: Identity): string | null {
    for (const [issuer, number] of previous.#crlNumbers) {
      const next = this.#crlNumbers.get(issuer);
      if (next !== undefined && next < number) return `a CRL numbered ${next} would replace number ${number} of the same CA`;
    }
    return null;
  }

  /** Same certificate, key and bundle (the CRL may differ): connections made with either need not be recycled. */
  sameCredentialsAs(other: Identity): boolean {
    return other.certPem === this.certPem && other.#keyPem === this.#keyPem && other.bundlePem === this.bundlePem;
  }

  /** True when both hold the same PEM texts (a file re-read with nothing new in it). */
  sameMaterialAs(other: Identity): boolean {
    return other.certPem === this.certPem && other.#keyPem === this.#keyPem && other.bundlePem === this.bundlePem && other.crlPem === this.crlPem;
  }

  /** What is safe to log: never the key. */
  toJSON(): Record<string, string | boolean> {
    return {
      spiffeId: this.spiffeId,
      serial: this.serial,
      notBefore: this.notBefore.toISOString(),
      notAfter: this.notAfter.toISOString(),
      hasCrl: this.crlPem !== undefined,
      ...(this.crlNextUpdate ? { crlNextUpdate: this.crlNextUpdate.toISOString() } : {}),
    };
  }
}

const PART_NAMES: Record<IdentityPart, string> = { cert: 'certificate chain', key: 'private key', bundle: 'trust bundle', crl: 'CRL' };

/** The first problem with the material, or null: lets file sources name the file at fault. */
export function identityProblem(material: IdentityMaterial): IdentityProblem | null {
  const checked = checkMaterial(material);
  return 'problem' in checked ? checked.problem : null;
}

interface CheckedCrl {
  pem: string;
  list: string[];
  revoked: ReadonlySet<string>;
  thisUpdate: Date;
  nextUpdate: Date;
  /** cRLNumber per issuer (issuer Name DER, hex), for the CRLs we verified. */
  numbers: ReadonlyMap<string, bigint>;
}

type Checked = { problem: IdentityProblem } | { leaf: X509Certificate; roots: X509Certificate[]; spiffeId: string; crl: CheckedCrl | undefined };

function checkMaterial(material: IdentityMaterial): Checked {
  if (material === null || typeof material !== 'object') throw new TypeError('identity material must be an object');
  for (const field of ['certPem', 'keyPem', 'bundlePem'] as const) {
    if (typeof material[field] !== 'string') throw new TypeError(`identity material: ${field} must be a string`);
  }
  const chain = certificates(material.certPem);
  if (typeof chain === 'string') return { problem: { part: 'cert', message: chain } };
  const leaf = chain[0]!;
  const ids = spiffeIdsOf(leaf.subjectAltName);
  if (ids.length !== 1) return { problem: { part: 'cert', message: `the leaf must name exactly one SPIFFE ID, it names ${ids.length}` } };
  try {
    parseSpiffeId(ids[0]!);
  } catch (error) {
    return { problem: { part: 'cert', message: (error as Error).message } };
  }
  const key = privateKey(material.keyPem);
  if (typeof key === 'string') return { problem: { part: 'key', message: key } };
  if (!leaf.checkPrivateKey(key)) return { problem: { part: 'key', message: 'the key does not belong to the leaf certificate' } };
  const bundle = cached(bundles, material.bundlePem, () => certificates(material.bundlePem));
  if (typeof bundle === 'string') return { problem: { part: 'bundle', message: bundle } };
  const crlPem = material.crlPem;
  const crl =
    crlPem === undefined
      ? undefined
      : cached(crlChecks, `${crlPem}\0${material.bundlePem}\0${chain.slice(1).map((ca) => ca.fingerprint256).join(',')}`, () => checkCrls(crlPem, chain.slice(1), bundle));
  if (typeof crl === 'string') return { problem: { part: 'crl', message: crl } };
  return { leaf, roots: bundle, spiffeId: ids[0]!, crl };
}

/** A whole block count check: a file cut short mid-block must not pass as a shorter chain. */
function truncated(text: string): boolean {
  return (text.match(/-----BEGIN /g) ?? []).length !== (text.match(/-----END /g) ?? []).length;
}

/**
 * Identities built from the same bundle or CRL text (every renewal, every CRL update, and many
 * agents or services in one process) share the parsing and checking of it: both are pure
 * functions of the text (and, for CRLs, of the CA certificates checked against), and their
 * results are never mutated. A few entries suffice: texts change rarely and all at once.
 */
const bundles = new Map<string, X509Certificate[] | string>();
const crlChecks = new Map<string, CheckedCrl | string>();
const CACHE_ENTRIES = 8;

function cached<T>(cache: Map<string, T>, key: string, compute: () => T): T {
  const hit = cache.get(key);
  if (hit !== undefined) {
    cache.delete(key);
    cache.set(key, hit); // most recently used last
    return hit;
  }
  const value = compute();
  if (cache.size >= CACHE_ENTRIES) cache.delete(cache.keys().next().value!);
  cache.set(key, value);
  return value;
}

function certificates(text: string): X509Certificate[] | string {
  if (truncated(text)) return 'a PEM block is cut short (a file still being written?)';
  const ders = pemBlocks(text, 'CERTIFICATE');
  if (ders.length === 0) return 'no CERTIFICATE PEM block';
  try {
    return ders.map((der) => new X509Certificate(der));
  } catch (error) {
    return `a certificate does not parse (${(error as Error).message})`;
  }
}

function privateKey(text: string): KeyObject | string {
  if (truncated(text)) return 'the PEM block is cut short (a file still being written?)';
  try {
    return createPrivateKey(text);
  } catch (error) {
    return `not a readable unencrypted private key (${(error as Error).message})`;
  }
}

/**
 * The CRLs, parsed (ours, strictly) and re-labelled `X509 CRL` (@peculiar/x509 writes `BEGIN
 * CRL`; OpenSSL reads only the former), then handed to OpenSSL once as well (a throwaway
 * context, once per update, never per connection).
 *
 * - A CRL whose issuer is among our CA certificates (our chain's intermediates, the bundle's
 *   roots) must carry that issuer's signature, or the whole set is refused.
 * - Our own chain's CAs must each have such a verified CRL: OpenSSL checks one for every CA in a
 *   chain, and a set without ours would also let a forged crl.pem drop our revocations.
 * - A CRL for a CA we hold no certificate of (another intermediate of the trust domain) is kept:
 *   OpenSSL verifies it against the peer's chain, and its entries can only refuse. It never
 *   decides freshness: only verified CRLs do, so a forged, expired one cannot make the set
 *   "stale" and switch OpenSSL's CRL checking off.
 */
function checkCrls(text: string, chainCas: readonly X509Certificate[], bundle: readonly X509Certificate[]): CheckedCrl | string {
  if (truncated(text)) return 'a PEM block is cut short (a file still being written?)';
  const ders = [...pemBlocks(text, 'X509 CRL'), ...pemBlocks(text, 'CRL')];
  if (ders.length === 0) return 'no X509 CRL PEM block';
  const known = [...chainCas, ...bundle];
  const verified: ParsedCrl[] = [];
  const revoked = new Set<string>();
  for (const der of ders) {
    let crl: ParsedCrl;
    try {
      crl = parseCrl(der);
    } catch (error) {
      return (error as Error).message;
    }
    const issuers = known.filter((certificate) => crlIssuedBy(crl, certificate));
    if (issuers.length > 0) {
      if (!issuers.some((issuer) => verifyCrlSignature(crl, issuer.raw))) return 'a CRL does not verify with the CA certificate it names as issuer';
      verified.push(crl);
    }
    for (const serial of crl.revoked.keys()) revoked.add(serial);
  }
  const top = chainCas[chainCas.length - 1];
  const ourCas = [...chainCas, ...(top ? bundle.filter((root) => top.checkIssued(root) && top.verify(root.publicKey)) : [])];
  for (const ca of ourCas) {
    if (!verified.some((crl) => crlIssuedBy(crl, ca))) return `no CRL for ${ca.subject.replace(/\n/g, ', ')} (a CRL must cover every CA in the chain)`;
  }
  const list = ders.map((der) => toPem(der, 'X509 CRL'));
  try {
    createSecureContext({ crl: list });
  } catch (error) {
    return `OpenSSL cannot read it (${(error as Error).message})`;
  }
  const numbers = new Map<string, bigint>();
  for (const crl of verified) {
    const issuer = crl.issuerDer.toString('hex');
    const number = crl.crlNumber ?? 0n;
    if ((numbers.get(issuer) ?? -1n) < number) numbers.set(issuer, number);
  }
  const fresh = verified.length > 0 ? verified : undefined;
  return {
    pem: list.join(''),
    list,
    revoked,
    thisUpdate: new Date(Math.max(...(fresh ?? []).map((crl) => crl.thisUpdate.getTime()), 0)),
    nextUpdate: new Date(Math.min(...(fresh ?? []).map((crl) => crl.nextUpdate.getTime()), 8.64e15)),
    numbers,
  };
}

/**
 * Same issuer Name, byte for byte (the CRL's issuer field against the certificate's subject),
 * and, when the CRL names its key (authorityKeyIdentifier), the same key: two CAs may share a
 * name (a root and its successor from an older tlsmesh), and must not be taken for each other.
 */
function crlIssuedBy(crl: ParsedCrl, certificate: X509Certificate): boolean {
  const fields = issuerFieldsOf(certificate);
  return fields.subjectDer.equals(crl.issuerDer) && (crl.authorityKeyId === undefined || crl.authorityKeyId.equals(fields.keyIdentifier));
}

const issuerFields = new WeakMap<X509Certificate, { subjectDer: Buffer; keyIdentifier: Buffer }>();
function issuerFieldsOf(certificate: X509Certificate): { subjectDer: Buffer; keyIdentifier: Buffer } {
  let fields = issuerFields.get(certificate);
  if (fields === undefined) {
    fields = readIssuerFields(certificate.raw, new Date(certificate.validTo));
    issuerFields.set(certificate, fields);
  }
  return fields;
}
