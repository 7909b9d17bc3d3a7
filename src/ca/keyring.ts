/**
 * The CA's keys in memory: opened once from the store with the passphrase, then used for every
 * issuance. Holds the active intermediate (as a LeafIssuer, built once), the token-signing keys by
 * key id, and the trust bundle (every root not retired) with its ETag.
 */
import { createHash, createPrivateKey, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { TlsmeshError } from '../errors.js';
import { certificatesToPem, LeafIssuer, openPrivateKey, sealPrivateKey } from '../pki/index.js';
import type { CaKeyKind, CaKeyRecord, Store } from '../store/index.js';
import type { TokenKey } from './tokens.js';

export interface ActiveIssuer {
  record: CaKeyRecord;
  certDer: Buffer;
  leafIssuer: LeafIssuer;
}

export interface KeyringUrls {
  crlUrl?: string | undefined;
  ocspUrl?: string | undefined;
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
  static async load(store: Store, passphrase: string, urls: KeyringUrls = {}): Promise<Keyring> {
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
    const issuer: ActiveIssuer = {
      record: intermediate,
      certDer: intermediate.certDer,
      leafIssuer: new LeafIssuer({
        issuerCertDer: intermediate.certDer,
        issuerNotAfter: intermediate.notAfter,
        issuerPrivateKey: issuerKey,
        crlUrl: urls.crlUrl,
        ocspUrl: urls.ocspUrl,
      }),
    };
    // Every token key not retired still verifies the tokens it made; only the active one mints.
    const tokenKeys = new Map<string, KeyObject>();
    for (const record of records) {
      if (record.kind !== 'token-signing' || record.state === 'retired' || record.encryptedKey === null) continue;
      tokenKeys.set(record.id, await openPrivateKey(record.encryptedKey, passphrase, sealLabel('token-signing', record.id)));
    }
    const roots = records.filter((r) => r.kind === 'root' && r.state !== 'retired' && r.certDer !== null).map((r) => r.certDer!);
    return new Keyring(trustDomain, issuer, roots, tokenKeys, { id: tokenKey.id, key: tokenKeys.get(tokenKey.id)! });
  }
}

/** For tests and init: a KeyObject from PEM. */
export const privateKeyFromPem = (pem: string): KeyObject => createPrivateKey(pem);
