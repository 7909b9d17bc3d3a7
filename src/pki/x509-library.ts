/**
 * @peculiar/x509, set up once on first use rather than at import (no import-time side effects).
 * It needs `reflect-metadata` loaded before it and a WebCrypto provider.
 */
import 'reflect-metadata';
import { createPublicKey, webcrypto, type KeyObject } from 'node:crypto';
import * as x509 from '@peculiar/x509';

let ready = false;

export function x509Library(): typeof x509 {
  if (!ready) {
    x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
    ready = true;
  }
  return x509;
}

type WebAlgorithm = webcrypto.RsaHashedImportParams | webcrypto.EcKeyImportParams | webcrypto.Algorithm;

/** WebCrypto algorithm parameters for a node:crypto key (signing with the curve's matching hash). */
export function webAlgorithmFor(key: KeyObject): WebAlgorithm & { hash?: string } {
  switch (key.asymmetricKeyType) {
    case 'ec': {
      const p384 = key.asymmetricKeyDetails?.namedCurve === 'secp384r1';
      return { name: 'ECDSA', namedCurve: p384 ? 'P-384' : 'P-256', hash: p384 ? 'SHA-384' : 'SHA-256' };
    }
    case 'rsa':
      return { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    case 'ed25519':
      return { name: 'Ed25519' };
    default:
      throw new TypeError(`unsupported key type ${key.asymmetricKeyType ?? 'unknown'}`);
  }
}

/** Converts node:crypto keys to WebCrypto keys for @peculiar/x509. */
export async function toCryptoKeyPair(privateKey: KeyObject, publicKey: KeyObject): Promise<webcrypto.CryptoKeyPair> {
  const algorithm = webAlgorithmFor(privateKey);
  const subtle = webcrypto.subtle;
  const [priv, pub] = await Promise.all([
    subtle.importKey('pkcs8', privateKey.export({ format: 'der', type: 'pkcs8' }), algorithm, false, ['sign']),
    subtle.importKey('spki', publicKey.export({ format: 'der', type: 'spki' }), algorithm, true, ['verify']),
  ]);
  return { privateKey: priv, publicKey: pub };
}

export interface SignedByIssuer {
  issuerCertDer: Buffer;
  issuerPrivateKey: KeyObject;
  subjectPublicKey: KeyObject;
  serial: Buffer;
  subject: string;
  notBefore: Date;
  notAfter: Date;
  /** The profile's own extensions; SKI and AKI are added after them. */
  extensions: (library: typeof x509) => x509.Extension[];
}

/** A certificate (DER) for `subjectPublicKey` signed by an issuing CA, with SKI and AKI. */
export async function issueWithLibrary(request: SignedByIssuer): Promise<Buffer> {
  const library = x509Library();
  const issuer = new library.X509Certificate(request.issuerCertDer);
  const issuerKeys = await toCryptoKeyPair(request.issuerPrivateKey, createPublicKey(request.issuerPrivateKey));
  const subjectPublic = await webcrypto.subtle.importKey(
    'spki',
    request.subjectPublicKey.export({ format: 'der', type: 'spki' }),
    webAlgorithmFor(request.subjectPublicKey),
    true,
    ['verify'],
  );
  const certificate = await library.X509CertificateGenerator.create({
    serialNumber: request.serial.toString('hex'),
    subject: request.subject,
    issuer: issuer.subject,
    notBefore: request.notBefore,
    notAfter: request.notAfter,
    signingAlgorithm: webAlgorithmFor(request.issuerPrivateKey),
    publicKey: subjectPublic,
    signingKey: issuerKeys.privateKey,
    extensions: [
      ...request.extensions(library),
      await library.SubjectKeyIdentifierExtension.create(subjectPublic),
      await library.AuthorityKeyIdentifierExtension.create(issuer),
    ],
  });
  return Buffer.from(certificate.rawData);
}
