/**
 * The client certificates a correct server must refuse, made in memory for one probe: each names
 * the same SPIFFE ID as the valid client certificate (--cert) and differs from a good certificate
 * in exactly the property under test. Nothing is written to disk.
 *
 * Leaves with the normal profile (serverAuth + clientAuth) come from the PKI's LeafIssuer, with
 * dates a CA would never choose; the serverAuth-only leaf and the stranger's CA are profiles
 * LeafIssuer does not express, so they are built with @peculiar/x509.
 */
import { createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { certificatesToPem, generateKeyPair, LeafIssuer, randomSerial, spkiOf } from '../pki/index.js';
import { issueWithLibrary, toCryptoKeyPair, webAlgorithmFor, x509Library } from '../pki/x509-library.js';
import type { CheckedIssuer, Credential } from './material.js';

const DAY_MS = 86_400_000;

/** What differs from a good certificate. */
export type LeafDates = 'current' | 'expired' | 'not-yet-valid';

/**
 * Far enough from `now` that no clock-skew allowance (60 s is common, minutes at most) can make a
 * server accept the expired or not-yet-valid leaf.
 */
function validity(dates: LeafDates, now: Date): { notBefore: Date; notAfter: Date } {
  const at = (days: number): Date => new Date(now.getTime() + days * DAY_MS);
  switch (dates) {
    case 'current':
      return { notBefore: at(-1 / 24), notAfter: at(1) };
    case 'expired':
      return { notBefore: at(-3), notAfter: at(-2) };
    case 'not-yet-valid':
      return { notBefore: at(2), notAfter: at(3) };
  }
}

const keyPem = (key: KeyObject): string => key.export({ format: 'pem', type: 'pkcs8' }) as string;

/** A leaf from the trusted issuer with the usual profile, valid now or deliberately not. */
export function mintFromIssuer(issuer: CheckedIssuer, spiffeId: string, dates: LeafDates, now: Date): Credential {
  const leafIssuer = new LeafIssuer({ issuerCertDer: issuer.certificate.raw, issuerNotAfter: new Date(issuer.certificate.validTo), issuerPrivateKey: issuer.privateKey });
  const key = generateKeyPair('p256');
  const der = leafIssuer.issue({ serial: randomSerial(), spki: spkiOf(key.publicKey), rsaKey: false, spiffeId, dnsNames: [], ipAddresses: [], ...validity(dates, now) });
  return { certPem: certificatesToPem([der]) + issuer.chainPem, keyPem: keyPem(key.privateKey) };
}

/** A leaf from the trusted issuer, valid now, whose extendedKeyUsage is serverAuth only. */
export async function mintServerAuthOnly(issuer: CheckedIssuer, spiffeId: string, now: Date): Promise<Credential> {
  const key = generateKeyPair('p256');
  const der = await issueWithLibrary({
    issuerCertDer: issuer.certificate.raw,
    issuerPrivateKey: issuer.privateKey,
    subjectPublicKey: key.publicKey,
    serial: randomSerial(),
    subject: 'O=tlsmesh probe',
    ...validity('current', now),
    extensions: (x509) => [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }], false),
    ],
  });
  return { certPem: certificatesToPem([der]) + issuer.chainPem, keyPem: keyPem(key.privateKey) };
}

/**
 * A leaf from a CA made up for this probe and thrown away: what an attacker who controls some CA
 * (but not the server's) can present. Its chain is sent in full, so the server sees a complete
 * path to a root it does not trust rather than a missing issuer.
 */
export async function mintFromUnknownCa(spiffeId: string, now: Date): Promise<Credential> {
  const x509 = x509Library();
  const caKey = generateKeyPair('p256');
  const caKeys = await toCryptoKeyPair(caKey.privateKey, createPublicKey(caKey.privateKey));
  const { notBefore, notAfter } = validity('current', now);
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial().toString('hex'),
    name: 'O=tlsmesh probe, CN=untrusted CA made by tlsmesh probe',
    notBefore,
    notAfter,
    signingAlgorithm: webAlgorithmFor(caKey.privateKey),
    keys: caKeys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  const caDer = Buffer.from(ca.rawData);
  return mintFromIssuer({ certificate: new X509Certificate(caDer), chainPem: certificatesToPem([caDer]), privateKey: caKey.privateKey }, spiffeId, 'current', now);
}
