/** A P-256 root and intermediate made in process, for the micro-benchmarks (leaf encoding, CRLs). */
import { createIntermediateCertificate, createRootCertificate, generateKeyPair, randomSerial, type KeyPair } from '../src/pki/index.js';

export interface BenchChain {
  rootDer: Buffer;
  intermediateDer: Buffer;
  intermediateKey: KeyPair;
  notBefore: Date;
  notAfter: Date;
}

export async function benchChain(trustDomain: string): Promise<BenchChain> {
  const now = Math.floor(Date.now() / 1000) * 1000;
  const notBefore = new Date(now - 60_000);
  const notAfter = new Date(now + 24 * 3600_000);
  const rootKey = generateKeyPair('p256');
  const intermediateKey = generateKeyPair('p256');
  const rootDer = await createRootCertificate({ trustDomain, privateKey: rootKey.privateKey, serial: randomSerial(), notBefore, notAfter });
  const intermediateDer = await createIntermediateCertificate({
    trustDomain,
    publicKey: intermediateKey.publicKey,
    label: 'bench',
    issuerCertDer: rootDer,
    issuerPrivateKey: rootKey.privateKey,
    serial: randomSerial(),
    notBefore,
    notAfter,
  });
  return { rootDer, intermediateDer, intermediateKey, notBefore, notAfter };
}
