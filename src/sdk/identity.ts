/**
 * A workload's identity as the SDK uses it: its certificate chain and key, the trust bundle it
 * verifies peers against, and the CRL when one is published. Validated once, when constructed,
 * so every transport can build TLS options from it without re-checking anything.
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { TlsmeshError } from '../errors.js';
import { parseSpiffeId, pemBlocks, spiffeIdsOf, toPem } from '../pki/index.js';

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
  readonly leaf: X509Certificate;
  readonly spiffeId: string;
  readonly trustDomain: string;
  /** Lowercase hex, as the CA's API and store write serials. */
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  // Private so that logging or serialising an Identity never prints the key.
  readonly #keyPem: string;

  /** Throws ERR_IDENTITY_INVALID naming the part that is wrong. */
  constructor(material: IdentityMaterial) {
    const checked = checkMaterial(material);
    if ('problem' in checked) throw new TlsmeshError('ERR_IDENTITY_INVALID', `${PART_NAMES[checked.problem.part]}: ${checked.problem.message}`);
    this.certPem = material.certPem;
    this.#keyPem = material.keyPem;
    this.bundlePem = material.bundlePem;
    this.crlPem = checked.crlPem;
    this.leaf = checked.leaf;
    this.spiffeId = checked.spiffeId;
    this.trustDomain = parseSpiffeId(checked.spiffeId).trustDomain;
    this.serial = checked.leaf.serialNumber.toLowerCase();
    this.notBefore = new Date(checked.leaf.validFrom);
    this.notAfter = new Date(checked.leaf.validTo);
  }

  get keyPem(): string {
    return this.#keyPem;
  }

  /** True when both hold the same PEM texts (a file re-read with nothing new in it). */
  sameMaterialAs(other: Identity): boolean {
    return other.certPem === this.certPem && other.#keyPem === this.#keyPem && other.bundlePem === this.bundlePem && other.crlPem === this.crlPem;
  }

  /** What is safe to log: never the key. */
  toJSON(): Record<string, string | boolean> {
    return { spiffeId: this.spiffeId, serial: this.serial, notBefore: this.notBefore.toISOString(), notAfter: this.notAfter.toISOString(), hasCrl: this.crlPem !== undefined };
  }
}

const PART_NAMES: Record<IdentityPart, string> = { cert: 'certificate chain', key: 'private key', bundle: 'trust bundle', crl: 'CRL' };

/** The first problem with the material, or null: lets file sources name the file at fault. */
export function identityProblem(material: IdentityMaterial): IdentityProblem | null {
  const checked = checkMaterial(material);
  return 'problem' in checked ? checked.problem : null;
}

type Checked = { problem: IdentityProblem } | { leaf: X509Certificate; spiffeId: string; crlPem: string | undefined };

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
  const bundle = certificates(material.bundlePem);
  if (typeof bundle === 'string') return { problem: { part: 'bundle', message: bundle } };
  const crl = material.crlPem === undefined ? undefined : crlAsOpenSslPem(material.crlPem);
  if (crl !== undefined && crl.problem !== undefined) return { problem: { part: 'crl', message: crl.problem } };
  return { leaf, spiffeId: ids[0]!, crlPem: crl?.pem };
}

/** A whole block count check: a file cut short mid-block must not pass as a shorter chain. */
function truncated(text: string): boolean {
  return (text.match(/-----BEGIN /g) ?? []).length !== (text.match(/-----END /g) ?? []).length;
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
 * @peculiar/x509 writes `BEGIN CRL`, OpenSSL reads only `BEGIN X509 CRL`: re-label, then let
 * OpenSSL itself parse it (a throwaway context; once per update, never per connection).
 */
function crlAsOpenSslPem(text: string): { pem: string; problem?: undefined } | { pem?: undefined; problem: string } {
  if (truncated(text)) return { problem: 'a PEM block is cut short (a file still being written?)' };
  const ders = [...pemBlocks(text, 'X509 CRL'), ...pemBlocks(text, 'CRL')];
  if (ders.length === 0) return { problem: 'no X509 CRL PEM block' };
  const pem = ders.map((der) => toPem(der, 'X509 CRL')).join('');
  try {
    createSecureContext({ crl: pem });
  } catch (error) {
    return { problem: `OpenSSL cannot read it (${(error as Error).message})` };
  }
  return { pem };
}
