/**
 * The CA's keys in memory: opened once from the store with the passphrase, then used for every
 * issuance. Holds the active intermediate (as a LeafIssuer, built once), the token-signing keys by
 * key id, and the trust bundle (every root not retired) with its ETag.
 */
import { createHash, createPrivateKey, createPublicKey, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { TlsmeshError } from '../errors.js';
import { certificatesToPem, fingerprintOf, LeafIssuer, openPrivateKey, sealPrivateKey } from '../pki/index.js';
import type { CaKeyKind, CaKeyRecord, Store } from '../store/index.js';
import type { TokenKey } from './tokens.js';

export interface ActiveIssuer {
  record: CaKeyRecord;
  certDer: Buffer;
  /** Signs leaves, and this issuer's CRLs and OCSP responder certificates. */
  privateKey: KeyObject;
  leafIssuer: LeafIssuer;
}

/** The root the active intermediate chains to; its key only when it is kept in the store (online). */
export interface RootAuthority {
  record: CaKeyRecord;
  certDer: Buffer;
  privateKey: KeyObject | null;
}

export interface KeyringOptions {
  /** Base of the CRL URLs in leaves: each leaf names `<crlUrl>/<issuer key id>`, its own issuer's CRL. */
  crlUrl?: string | undefined;
  ocspUrl?: string | undefined;
  /**
   * SHA-256 fingerprints (hex) of the roots this CA may use, from ca.yaml: a file the database
   * cannot change. Whoever can write to the store could otherwise add a root of their own,
   * which the CA would trust for admin clients and hand to every workload in the bundle.
   */
  pinnedRoots?: readonly string[] | undefined;
}

export const sealLabel = (kind: CaKeyKind, id: string): string => `tlsmesh:${kind}:${id}`;

/**
 * Key ids name the kind and the key: `intermediate-<16 hex of SHA-256(SPKI)>`. A secret key's id
 * is random instead: a hash of the secret has no business leaving the CA.
 */
export function keyIdOf(kind: CaKeyKind, key: KeyObject): string {
  if (key.type === 'secret') return `${kind}-${randomBytes(8).toString('hex')}`;
  const spki = (key.type === 'private' ? createPublicKey(key) : key).export({ format: 'der', type: 'spki' });
  return `${kind}-${createHash('sha256').update(spki).digest('hex').slice(0, 16)}`;
}

export async function sealCaKey(kind: CaKeyKind, id: string, key: KeyObject, passphrase: string): Promise<string> {
  return sealPrivateKey(key, passphrase, sealLabel(kind, id));
}

export class Keyring {
  private constructor(
    readonly trustDomain: string,
    readonly issuer: ActiveIssuer,
    readonly roots: readonly Buffer[],
    private readonly tokenKeys: ReadonlyMap<string, KeyObject>,
    readonly activeTokenKey: TokenKey,
    readonly root: RootAuthority,
  ) {
    this.bundlePem = certificatesToPem(roots);
    this.bundleEtag = `"${createHash('sha256').update(this.bundlePem).digest('base64url').slice(0, 27)}"`;
  }

  readonly bundlePem: string;
  readonly bundleEtag: string;

  /** Leaf + issuing intermediate, as a server or client presents them. */
  chainPem(leafDer: Buffer): string {
    return certificatesToPem([leafDer, this.issuer.certDer]);
  }

  /** The secret that verifies tokens with this key id (HS256), if the key is not retired. */
  tokenKey(kid: string): KeyObject | undefined {
    return this.tokenKeys.get(kid);
  }

  /** Loads and opens every key the CA needs; ERR_CA_NOT_INITIALIZED when the store holds no CA. */
  static async load(store: Store, passphrase: string, urls: KeyringOptions = {}): Promise<Keyring> {
    const trustDomain = await store.getMeta('trust_domain');
    const records = await store.listCaKeys();
    const active = (kind: CaKeyKind): CaKeyRecord | undefined =>
      records.filter((r) => r.kind === kind && r.state === 'active').sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime())[0];
    const intermediate = active('intermediate');
    const tokenKey = active('token-signing');
    if (trustDomain === null || intermediate === undefined || tokenKey === undefined || intermediate.certDer === null) {
      throw new TlsmeshError('ERR_CA_NOT_INITIALIZED', 'the store holds no initialised CA (run `tlsmesh ca init`)');
    }
    if (intermediate.encryptedKey === null || tokenKey.encryptedKey === null) {
      throw new TlsmeshError('ERR_CA_NOT_INITIALIZED', 'the active intermediate or token key has no private key in the store');
    }
    const issuerKey = await openPrivateKey(intermediate.encryptedKey, passphrase, sealLabel('intermediate', intermediate.id));
    const roots = records.filter((r) => r.kind === 'root' && r.state !== 'retired' && r.certDer !== null).map((r) => r.certDer!);
    checkIntegrity(intermediate.certDer, issuerKey, roots, urls.pinnedRoots);
    const issuer: ActiveIssuer = {
      record: intermediate,
      certDer: intermediate.certDer,
      privateKey: issuerKey,
      leafIssuer: new LeafIssuer({
        issuerCertDer: intermediate.certDer,
        issuerNotAfter: intermediate.notAfter,
        issuerPrivateKey: issuerKey,
        crlUrl: urls.crlUrl === undefined ? undefined : `${urls.crlUrl}/${intermediate.id}`,
        ocspUrl: urls.ocspUrl,
      }),
    };
    // Every token key not retired still verifies the tokens it made; only the active one mints.
    const tokenKeys = new Map<string, KeyObject>();
    for (const record of records) {
      if (record.kind !== 'token-signing' || record.state === 'retired' || record.encryptedKey === null) continue;
      tokenKeys.set(record.id, await openPrivateKey(record.encryptedKey, passphrase, sealLabel('token-signing', record.id)));
    }
    const rootRecord = records.find((r) => r.kind === 'root' && r.certDer !== null && issuedBy(intermediate.certDer!, r.certDer));
    if (rootRecord === undefined) throw new TlsmeshError('ERR_CA_INTEGRITY', 'no root in the store signed the active intermediate');
    // The root key signs only the root's CRL; when it is kept offline that CRL is signed at init
    // and at each rotation, and the CA never needs the key.
    const rootKey = rootRecord.encryptedKey === null ? null : await openPrivateKey(rootRecord.encryptedKey, passphrase, sealLabel('root', rootRecord.id));
    const root: RootAuthority = { record: rootRecord, certDer: rootRecord.certDer!, privateKey: rootKey };
    return new Keyring(trustDomain, issuer, roots, tokenKeys, { id: tokenKey.id, key: tokenKeys.get(tokenKey.id)! }, root);
  }
}

/**
 * The checks that make a row written by someone without the passphrase useless: every root in use
 * is pinned (when pins are configured), the intermediate is signed by one of them, and the
 * intermediate's sealed key belongs to its certificate.
 */
function checkIntegrity(intermediateDer: Buffer, intermediateKey: KeyObject, roots: readonly Buffer[], pinned: readonly string[] | undefined): void {
  const fail = (why: string): never => {
    throw new TlsmeshError('ERR_CA_INTEGRITY', why);
  };
  if (pinned !== undefined) {
    for (const root of roots) {
      const fingerprint = fingerprintOf(root);
      if (!pinned.includes(fingerprint)) fail(`the store holds a root (sha256 ${fingerprint}) that ca.yaml does not pin in rootFingerprints`);
    }
  }
  const intermediate = new X509Certificate(intermediateDer);
  if (!intermediate.checkPrivateKey(intermediateKey)) fail('the active intermediate key does not belong to the intermediate certificate');
  const signedByRoot = roots.some((root) => {
    const certificate = new X509Certificate(root);
    return intermediate.checkIssued(certificate) && intermediate.verify(certificate.publicKey);
  });
  if (!signedByRoot) fail('the active intermediate is not signed by a root in use');
}

function issuedBy(certDer: Buffer, issuerDer: Buffer): boolean {
  const certificate = new X509Certificate(certDer);
  const issuer = new X509Certificate(issuerDer);
  return certificate.checkIssued(issuer) && certificate.verify(issuer.publicKey);
}

/** For tests and init: a KeyObject from PEM. */
export const privateKeyFromPem = (pem: string): KeyObject => createPrivateKey(pem);
