/**
 * Making the CA's own keys and certificates: shared by `ca init` (the first root and
 * intermediate) and `ca rotate prepare` (their successors). Certificates are backdated 60 s for
 * clock skew, like leaves; key ids come from the public key (keyring.ts keyIdOf).
 */
import type { KeyObject } from 'node:crypto';
import { CrlIssuer } from '../pki/crl.js';
import { createIntermediateCertificate, createRootCertificate, generateKeyPair, randomSerial, type KeyType } from '../pki/index.js';
import type { Store } from '../store/index.js';
import { keyIdOf } from './keyring.js';

const DAY_MS = 86_400_000;

export interface MadeCaKey {
  id: string;
  privateKey: KeyObject;
  certDer: Buffer;
  notBefore: Date;
  notAfter: Date;
}

/** Whole seconds, 60 s in the past. */
export const caNotBefore = (now: Date): Date => new Date(Math.floor(now.getTime() / 1000) * 1000 - 60_000);

/** `labelled`: a root made by rotation names itself apart from its predecessors (see RootRequest.label). */
export async function makeRoot(options: { trustDomain: string; keyType: KeyType; notBefore: Date; days: number; labelled?: boolean }): Promise<MadeCaKey> {
  const key = generateKeyPair(options.keyType);
  const id = keyIdOf('root', key.publicKey);
  const notAfter = new Date(options.notBefore.getTime() + options.days * DAY_MS);
  const certDer = await createRootCertificate({
    trustDomain: options.trustDomain,
    privateKey: key.privateKey,
    serial: randomSerial(),
    notBefore: options.notBefore,
    notAfter,
    ...(options.labelled === true ? { label: id.slice(-8) } : {}),
  });
  return { id, privateKey: key.privateKey, certDer, notBefore: options.notBefore, notAfter };
}

export async function makeIntermediate(options: {
  trustDomain: string;
  keyType: KeyType;
  notBefore: Date;
  days: number;
  issuerCertDer: Buffer;
  issuerPrivateKey: KeyObject;
  /** An intermediate never outlives its root. */
  issuerNotAfter: Date;
}): Promise<MadeCaKey> {
  const key = generateKeyPair(options.keyType);
  const id = keyIdOf('intermediate', key.publicKey);
  const notAfter = new Date(Math.min(options.notBefore.getTime() + options.days * DAY_MS, options.issuerNotAfter.getTime()));
  const certDer = await createIntermediateCertificate({
    trustDomain: options.trustDomain,
    publicKey: key.publicKey,
    label: id.slice(-8),
    issuerCertDer: options.issuerCertDer,
    issuerPrivateKey: options.issuerPrivateKey,
    serial: randomSerial(),
    notBefore: options.notBefore,
    notAfter,
  });
  return { id, privateKey: key.privateKey, certDer, notBefore: options.notBefore, notAfter };
}

/**
 * Signs and stores a root's CRL (no entries: intermediates are rotated, not revoked), valid until
 * `nextUpdate` — the expiry of the intermediate it was signed for, so an offline root is needed
 * again only at the next rotation, which signs the next one.
 */
export async function signRootCrl(store: Store, root: { id: string; certDer: Buffer; privateKey: KeyObject }, thisUpdate: Date, nextUpdate: Date): Promise<void> {
  const signer = new CrlIssuer({ issuerCertDer: root.certDer, issuerPrivateKey: root.privateKey });
  await store.insertCrl(root.id, (crlNumber) => ({ thisUpdate, nextUpdate, revocationEpoch: 0, der: signer.issue({ crlNumber, thisUpdate, nextUpdate, entries: [] }) }));
}
