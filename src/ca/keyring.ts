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
    /** The active intermediate: signs every new leaf. */
    readonly issuer: ActiveIssuer,
    /** Every intermediate not retired (active first, then prepared and superseded), by key id: each publishes a CRL. */
    readonly issuers: ReadonlyMap<string, ActiveIssuer>,
    /** Every root not retired (prepared, active, superseded): the trust bundle. */
    readonly rootAuthorities: readonly RootAuthority[],
    private readonly tokenKeys: ReadonlyMap<string, KeyObject>,
    readonly activeTokenKey: TokenKey,
    /** The root that signed the active intermediate. */
    readonly root: RootAuthority,
    /** Key ids and states: equal fingerprints, equal keyrings (LiveKeyring reloads compare it). */
    readonly fingerprint: string,
  ) {
    this.roots = rootAuthorities.map((authority) => authority.certDer);
    this.bundlePem = certificatesToPem(this.roots);
    this.bundleEtag = `"${createHash('sha256').update(this.bundlePem).digest('base64url').slice(0, 27)}"`;
  }

  readonly roots: readonly Buffer[];
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
    const newestFirst = (a: CaKeyRecord, b: CaKeyRecord): number => b.createdAt.getTime() - a.createdAt.getTime();
    const active = (kind: CaKeyKind): CaKeyRecord | undefined => records.filter((r) => r.kind === kind && r.state === 'active').sort(newestFirst)[0];
    const intermediate = active('intermediate');
    const tokenKey = active('token-signing');
    if (trustDomain === null || intermediate === undefined || tokenKey === undefined || intermediate.certDer === null) {
      throw new TlsmeshError('ERR_CA_NOT_INITIALIZED', 'the store holds no initialised CA (run `tlsmesh ca init`)');
    }
    if (intermediate.encryptedKey === null || tokenKey.encryptedKey === null) {
      throw new TlsmeshError('ERR_CA_NOT_INITIALIZED', 'the active intermediate or token key has no private key in the store');
    }
    const rootRecords = records.filter((r) => r.kind === 'root' && r.state !== 'retired' && r.certDer !== null);
    const roots = rootRecords.map((r) => r.certDer!);
    checkPins(roots, urls.pinnedRoots);

    // The active intermediate signs leaves; superseded ones (after a rotation) still sign their
    // leaves' CRLs and OCSP answers until they are retired.
    const issuers = new Map<string, ActiveIssuer>();
    // A prepared one is loaded too: its CRL is published (and reaches every workload with the new
    // bundle) before it signs its first leaf, so no peer ever meets a chain it has no CRL for.
    const others = records.filter(
      (r) => r.kind === 'intermediate' && r.id !== intermediate.id && r.state !== 'retired' && r.certDer !== null && r.encryptedKey !== null,
    );
    const inUse = [intermediate, ...others.sort(newestFirst)];
    for (const record of inUse) {
      const key = await openPrivateKey(record.encryptedKey!, passphrase, sealLabel('intermediate', record.id));
      checkIntermediate(record, key, roots);
      issuers.set(record.id, {
        record,
        certDer: record.certDer!,
        privateKey: key,
        leafIssuer: new LeafIssuer({
          issuerCertDer: record.certDer!,
          issuerNotAfter: record.notAfter,
          issuerPrivateKey: key,
          crlUrl: urls.crlUrl === undefined ? undefined : `${urls.crlUrl}/${record.id}`,
          ocspUrl: urls.ocspUrl,
        }),
      });
    }
    // Every token key not retired still verifies the tokens it made; only the active one mints.
    const tokenKeys = new Map<string, KeyObject>();
    for (const record of records) {
      if (record.kind !== 'token-signing' || record.state === 'retired' || record.encryptedKey === null) continue;
      tokenKeys.set(record.id, await openPrivateKey(record.encryptedKey, passphrase, sealLabel('token-signing', record.id)));
    }
    // A root key signs only its root's CRL; kept offline, that CRL is signed at init and at each
    // rotation step that needs the root, and the CA never needs the key.
    const rootAuthorities: RootAuthority[] = [];
    for (const record of rootRecords) {
      const privateKey = record.encryptedKey === null ? null : await openPrivateKey(record.encryptedKey, passphrase, sealLabel('root', record.id));
      rootAuthorities.push({ record, certDer: record.certDer!, privateKey });
    }
    const root = rootAuthorities.find((authority) => issuedBy(intermediate.certDer!, authority.certDer));
    if (root === undefined) throw new TlsmeshError('ERR_CA_INTEGRITY', 'no root in use signed the active intermediate');
    const fingerprint = records.map((r) => `${r.id}:${r.state}`).sort().join(',');
    return new Keyring(trustDomain, issuers.get(intermediate.id)!, issuers, rootAuthorities, tokenKeys, { id: tokenKey.id, key: tokenKeys.get(tokenKey.id)! }, root, fingerprint);
  }
}

/**
 * The checks that make a row written by someone without the passphrase useless: every root in use
 * is pinned (when pins are configured), each intermediate in use is signed by one of them, and
 * its sealed key belongs to its certificate.
 */
function checkPins(roots: readonly Buffer[], pinned: readonly string[] | undefined): void {
  if (pinned === undefined) return;
  for (const root of roots) {
    const fingerprint = fingerprintOf(root);
    if (!pinned.includes(fingerprint)) {
      throw new TlsmeshError('ERR_CA_INTEGRITY', `the store holds a root (sha256 ${fingerprint}) that ca.yaml does not pin in rootFingerprints`);
    }
  }
}

function checkIntermediate(record: CaKeyRecord, key: KeyObject, roots: readonly Buffer[]): void {
  const intermediate = new X509Certificate(record.certDer!);
  const which = record.state === 'active' ? 'the active intermediate' : `intermediate ${record.id}`;
  if (!intermediate.checkPrivateKey(key)) throw new TlsmeshError('ERR_CA_INTEGRITY', `${which} key does not belong to the intermediate certificate`);
  if (!roots.some((root) => issuedBy(record.certDer!, root))) throw new TlsmeshError('ERR_CA_INTEGRITY', `${which} is not signed by a root in use`);
}

function issuedBy(certDer: Buffer, issuerDer: Buffer): boolean {
  const certificate = new X509Certificate(certDer);
  const issuer = new X509Certificate(issuerDer);
  return certificate.checkIssued(issuer) && certificate.verify(issuer.publicKey);
}

/** For tests and init: a KeyObject from PEM. */
export const privateKeyFromPem = (pem: string): KeyObject => createPrivateKey(pem);
