/**
 * Root and intermediate CA certificates. Made rarely (init, rotation), so they are built with
 * @peculiar/x509 rather than the hand-written leaf encoder.
 *
 * Both carry a critical URI name constraint permitting only the trust domain (the bare host, not
 * `spiffe://host`: RFC 5280 §4.2.1.10), so a leaf naming another trust domain fails validation in
 * OpenSSL, GnuTLS and Go even if a CA key were misused.
 */
import { AsnConvert } from '@peculiar/asn1-schema';
import { GeneralName, GeneralSubtree, GeneralSubtrees, NameConstraints } from '@peculiar/asn1-x509';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { OID } from './oids.js';
import { issueWithLibrary, toCryptoKeyPair, webAlgorithmFor, x509Library } from './x509-library.js';

export interface RootRequest {
  trustDomain: string;
  privateKey: KeyObject;
  serial: Buffer;
  notBefore: Date;
  notAfter: Date;
  /** How many intermediates may follow (1: root → intermediate → leaf). */
  pathLength?: number;
  /**
   * Appended to the subject's CN. Roots made by rotation carry one so that no two roots of a
   * trust domain share a name: CRLs, and verifiers, find a CA by its name first.
   */
  label?: string;
}

export interface IntermediateRequest {
  trustDomain: string;
  /** Public key of the new intermediate. */
  publicKey: KeyObject;
  /** Distinguishes intermediates across rotations in the subject CN. */
  label: string;
  issuerCertDer: Buffer;
  issuerPrivateKey: KeyObject;
  serial: Buffer;
  notBefore: Date;
  notAfter: Date;
}

function nameConstraintExtension(trustDomain: string): InstanceType<ReturnType<typeof x509Library>['Extension']> {
  const x509 = x509Library();
  const constraints = new NameConstraints({
    permittedSubtrees: new GeneralSubtrees([new GeneralSubtree({ base: new GeneralName({ uniformResourceIdentifier: trustDomain }) })]),
  });
  return new x509.Extension(OID.nameConstraints, true, AsnConvert.serialize(constraints));
}

const caKeyUsage = (): InstanceType<ReturnType<typeof x509Library>['KeyUsagesExtension']> => {
  const x509 = x509Library();
  return new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true);
};

export const rootSubject = (trustDomain: string, label?: string): string => `O=tlsmesh, OU=${trustDomain}, CN=tlsmesh root CA ${trustDomain}${label ? ` ${label}` : ''}`;
export const intermediateSubject = (trustDomain: string, label: string): string =>
  `O=tlsmesh, OU=${trustDomain}, CN=tlsmesh intermediate CA ${trustDomain} ${label}`;

/** A self-signed root CA certificate (DER). */
export async function createRootCertificate(request: RootRequest): Promise<Buffer> {
  const x509 = x509Library();
  const publicKey = createPublicKey(request.privateKey);
  const keys = await toCryptoKeyPair(request.privateKey, publicKey);
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: request.serial.toString('hex'),
    name: rootSubject(request.trustDomain, request.label),
    notBefore: request.notBefore,
    notAfter: request.notAfter,
    signingAlgorithm: webAlgorithmFor(request.privateKey),
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, request.pathLength ?? 1, true),
      caKeyUsage(),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      nameConstraintExtension(request.trustDomain),
    ],
  });
  return Buffer.from(certificate.rawData);
}

/** An intermediate CA certificate (DER) signed by the root; pathLen 0: it signs only leaves. */
export async function createIntermediateCertificate(request: IntermediateRequest): Promise<Buffer> {
  return issueWithLibrary({
    issuerCertDer: request.issuerCertDer,
    issuerPrivateKey: request.issuerPrivateKey,
    subjectPublicKey: request.publicKey,
    serial: request.serial,
    subject: intermediateSubject(request.trustDomain, request.label),
    notBefore: request.notBefore,
    notAfter: request.notAfter,
    // SKI and AKI follow, as in every certificate issueWithLibrary makes.
    extensions: (x509) => [new x509.BasicConstraintsExtension(true, 0, true), caKeyUsage(), nameConstraintExtension(request.trustDomain)],
  });
}
