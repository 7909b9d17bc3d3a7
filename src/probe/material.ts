/**
 * What the prober presents and trusts, checked before any connection: the trust bundle (--ca), a
 * valid client credential (--cert/--key), and optionally an issuer to mint test certificates with
 * (--issuer-cert/--issuer-key) and a revoked credential (--revoked-cert/--revoked-key).
 *
 * Every problem is an ERR_CONFIG naming the flag; no message ever contains key material.
 */
import { createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { TlsmeshError } from '../errors.js';
import { certificatesToPem, pemBlocks, spiffeIdsOf } from '../pki/index.js';

/** A certificate chain (leaf first) and the leaf's private key, as PEM. */
export interface Credential {
  certPem: string;
  keyPem: string;
}

export interface ProbeMaterial {
  /** Roots the server's chain must reach (--ca). */
  bundlePem: string;
  /** A client credential the server should accept (--cert/--key). */
  client: Credential;
  /** A CA certificate (optionally followed by its chain) and its key, trusted by the server (--issuer-cert/--issuer-key). */
  issuer?: Credential | undefined;
  /** A client credential that has been revoked (--revoked-cert/--revoked-key). */
  revoked?: Credential | undefined;
}

export interface CheckedCredential extends Credential {
  leaf: X509Certificate;
}

export interface CheckedIssuer {
  certificate: X509Certificate;
  /** The issuer and whatever chain followed it in the file: sent after each minted leaf. */
  chainPem: string;
  privateKey: KeyObject;
}

export interface CheckedMaterial {
  bundlePem: string;
  bundle: X509Certificate[];
  client: CheckedCredential;
  /** The one SPIFFE ID of the client certificate: every minted certificate names it too. */
  clientSpiffeId: string;
  issuer: CheckedIssuer | undefined;
  revoked: CheckedCredential | undefined;
}

function certificates(pem: string, flag: string): X509Certificate[] {
  const ders = pemBlocks(pem, 'CERTIFICATE');
  if (ders.length === 0) throw new TlsmeshError('ERR_CONFIG', `${flag} holds no CERTIFICATE PEM block`);
  try {
    return ders.map((der) => new X509Certificate(der));
  } catch (cause) {
    throw new TlsmeshError('ERR_CONFIG', `${flag} holds a certificate that cannot be parsed`, { cause });
  }
}

function privateKey(pem: string, flag: string): KeyObject {
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(pem)) {
    throw new TlsmeshError('ERR_CONFIG', `${flag} is encrypted; the prober needs an unencrypted key`);
  }
  try {
    return createPrivateKey(pem);
  } catch (cause) {
    // The parser's message is not passed on: it could quote part of the key.
    throw new TlsmeshError('ERR_CONFIG', `${flag} is not a PEM private key that can be read`, { cause });
  }
}

const spki = (key: KeyObject): Buffer => (key.type === 'private' ? createPublicKey(key) : key).export({ format: 'der', type: 'spki' });

function credential(value: Credential, certFlag: string, keyFlag: string): { checked: CheckedCredential; key: KeyObject; chain: X509Certificate[] } {
  const chain = certificates(value.certPem, certFlag);
  const key = privateKey(value.keyPem, keyFlag);
  const leaf = chain[0]!;
  if (!spki(key).equals(spki(leaf.publicKey))) throw new TlsmeshError('ERR_CONFIG', `${keyFlag} is not the key of the first certificate in ${certFlag}`);
  return { checked: { certPem: certificatesToPem(chain.map((c) => c.raw)), keyPem: value.keyPem, leaf }, key, chain };
}

/** Validates the material; throws ERR_CONFIG naming the flag at fault. */
export function checkMaterial(material: ProbeMaterial): CheckedMaterial {
  const bundle = certificates(material.bundlePem, '--ca');
  const client = credential(material.client, '--cert', '--key').checked;
  const ids = spiffeIdsOf(client.leaf.subjectAltName);
  if (ids.length !== 1) {
    throw new TlsmeshError('ERR_CONFIG', `the --cert certificate names ${ids.length} SPIFFE IDs; the prober needs exactly one (its test certificates copy it)`);
  }
  let issuer: CheckedIssuer | undefined;
  if (material.issuer !== undefined) {
    const { key, chain } = credential(material.issuer, '--issuer-cert', '--issuer-key');
    const certificate = chain[0]!;
    if (!certificate.ca) throw new TlsmeshError('ERR_CONFIG', '--issuer-cert is not a CA certificate (basicConstraints CA:TRUE)');
    issuer = { certificate, chainPem: certificatesToPem(chain.map((c) => c.raw)), privateKey: key };
  }
  const revoked = material.revoked === undefined ? undefined : credential(material.revoked, '--revoked-cert', '--revoked-key').checked;
  return { bundlePem: certificatesToPem(bundle.map((c) => c.raw)), bundle, client, clientSpiffeId: ids[0]!, issuer, revoked };
}
