/**
 * Creating a CA: a root, an intermediate signed by it, and a token-signing key, all sealed with the
 * passphrase into the store. With `offlineRoot`, the root's sealed key is handed back to be written
 * elsewhere and the store keeps only the root certificate: a stolen CA server then cannot mint
 * another intermediate.
 */
import { createSecretKey, randomBytes } from 'node:crypto';
import { TlsmeshError } from '../errors.js';
import { checkPassphrase, validateTrustDomain, type KeyType } from '../pki/index.js';
import type { Store } from '../store/index.js';
import { caNotBefore, makeIntermediate, makeRoot, signRootCrl } from './ca-keys.js';
import { keyIdOf, sealCaKey } from './keyring.js';

export interface CaLifetimes {
  rootDays: number;
  intermediateDays: number;
}

export const DEFAULT_CA_LIFETIMES: CaLifetimes = { rootDays: 3650, intermediateDays: 365 };

export interface InitCaOptions {
  store: Store;
  trustDomain: string;
  passphrase: string;
  keyType?: KeyType;
  lifetimes?: CaLifetimes;
  offlineRoot?: boolean;
  now?: Date;
  /** Who ran it, for the audit log. */
  actor?: string;
}

export interface InitCaResult {
  trustDomain: string;
  rootCertDer: Buffer;
  intermediateCertDer: Buffer;
  /** The sealed root key when `offlineRoot` was asked for: write it out, it is not in the store. */
  offlineRootKey: string | null;
}


export async function initCa(options: InitCaOptions): Promise<InitCaResult> {
  const { store } = options;
  const trustDomain = validateTrustDomain(options.trustDomain);
  const passphrase = checkPassphrase(options.passphrase);
  const now = options.now ?? new Date();
  const lifetimes = options.lifetimes ?? DEFAULT_CA_LIFETIMES;
  if (lifetimes.intermediateDays >= lifetimes.rootDays) {
    throw new TlsmeshError('ERR_CONFIG', 'intermediate lifetime must be shorter than the root lifetime');
  }
  if ((await store.listCaKeys()).length > 0 || (await store.getMeta('trust_domain')) !== null) {
    throw new TlsmeshError('ERR_CA_ALREADY_INITIALIZED', 'this store already holds a CA; use a new data directory or database');
  }
  const keyType = options.keyType ?? 'p256';
  const notBefore = caNotBefore(now);
  const root = await makeRoot({ trustDomain, keyType, notBefore, days: lifetimes.rootDays });
  const rootId = root.id;
  const rootNotAfter = root.notAfter;
  const rootCertDer = root.certDer;
  const intermediate = await makeIntermediate({
    trustDomain,
    keyType,
    notBefore,
    days: lifetimes.intermediateDays,
    issuerCertDer: rootCertDer,
    issuerPrivateKey: root.privateKey,
    issuerNotAfter: rootNotAfter,
  });
  const intermediateId = intermediate.id;
  const intermediateNotAfter = intermediate.notAfter;
  const intermediateCertDer = intermediate.certDer;

  const tokenKey = createSecretKey(randomBytes(32)); // HS256: see tokens.ts for why
  const tokenId = keyIdOf('token-signing', tokenKey);

  const sealedRoot = await sealCaKey('root', rootId, root.privateKey, passphrase);
  const storedTrustDomain = await store.initMeta('trust_domain', trustDomain);
  if (storedTrustDomain !== trustDomain) {
    throw new TlsmeshError('ERR_CA_ALREADY_INITIALIZED', `this store already belongs to trust domain ${storedTrustDomain}`);
  }
  await store.putCaKey({
    id: rootId,
    kind: 'root',
    state: 'active',
    certDer: rootCertDer,
    encryptedKey: options.offlineRoot ? null : sealedRoot,
    notBefore,
    notAfter: rootNotAfter,
    createdAt: now,
  });
  await store.putCaKey({
    id: intermediateId,
    kind: 'intermediate',
    state: 'active',
    certDer: intermediateCertDer,
    encryptedKey: await sealCaKey('intermediate', intermediateId, intermediate.privateKey, passphrase),
    notBefore,
    notAfter: intermediateNotAfter,
    createdAt: now,
  });
  // The root's CRL, signed now while the root key is at hand: relying parties need one for every
  // CA in the chain (Node checks them all).
  await signRootCrl(store, root, notBefore, intermediateNotAfter);
  await store.putCaKey({
    id: tokenId,
    kind: 'token-signing',
    state: 'active',
    certDer: null,
    encryptedKey: await sealCaKey('token-signing', tokenId, tokenKey, passphrase),
    notBefore,
    notAfter: intermediateNotAfter,
    createdAt: now,
  });
  await store.appendAudit({
    at: now,
    actor: options.actor ?? 'cli:local',
    action: 'ca.init',
    subject: trustDomain,
    outcome: 'ok',
    code: null,
    detail: { root: rootId, intermediate: intermediateId, tokenKey: tokenId, keyType, offlineRoot: options.offlineRoot === true },
    peer: null,
  });
  return { trustDomain, rootCertDer, intermediateCertDer, offlineRootKey: options.offlineRoot ? sealedRoot : null };
}
