/**
 * Creating a CA: a root, an intermediate signed by it, and a token-signing key, all sealed with the
 * passphrase into the store. With `offlineRoot`, the root's sealed key is handed back to be written
 * elsewhere and the store keeps only the root certificate: a stolen CA server then cannot mint
 * another intermediate.
 */
import { createSecretKey, randomBytes } from 'node:crypto';
import { CrlIssuer } from '../pki/crl.js';
import { TlsmeshError } from '../errors.js';
import {
  checkPassphrase,
  createIntermediateCertificate,
  createRootCertificate,
  generateKeyPair,
  randomSerial,
  validateTrustDomain,
  type KeyType,
} from '../pki/index.js';
import type { Store } from '../store/index.js';
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

const DAY_MS = 86_400_000;

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
  const notBefore = new Date(Math.floor(now.getTime() / 1000) * 1000 - 60_000);

  const root = generateKeyPair(keyType);
  const rootId = keyIdOf('root', root.publicKey);
  const rootNotAfter = new Date(notBefore.getTime() + lifetimes.rootDays * DAY_MS);
  const rootCertDer = await createRootCertificate({ trustDomain, privateKey: root.privateKey, serial: randomSerial(), notBefore, notAfter: rootNotAfter });

  const intermediate = generateKeyPair(keyType);
  const intermediateId = keyIdOf('intermediate', intermediate.publicKey);
  const intermediateNotAfter = new Date(notBefore.getTime() + lifetimes.intermediateDays * DAY_MS);
  const intermediateCertDer = await createIntermediateCertificate({
    trustDomain,
    publicKey: intermediate.publicKey,
    label: intermediateId.slice(-8),
    issuerCertDer: rootCertDer,
    issuerPrivateKey: root.privateKey,
    serial: randomSerial(),
    notBefore,
    notAfter: intermediateNotAfter,
  });

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
  // The root's CRL (no entries: intermediates are rotated, not revoked), signed now while the
  // root key is at hand, valid until the intermediate expires: an offline root is needed again
  // only to rotate, which signs the next one. Relying parties need it (Node checks every CA).
  const rootCrlSigner = new CrlIssuer({ issuerCertDer: rootCertDer, issuerPrivateKey: root.privateKey });
  await store.insertCrl(rootId, (crlNumber) => ({
    thisUpdate: notBefore,
    nextUpdate: intermediateNotAfter,
    revocationEpoch: 0,
    der: rootCrlSigner.issue({ crlNumber, thisUpdate: notBefore, nextUpdate: intermediateNotAfter, entries: [] }),
  }));
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
