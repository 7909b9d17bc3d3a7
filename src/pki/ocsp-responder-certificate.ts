/**
 * The delegated OCSP signing certificate (RFC 6960 §4.2.2.2): the intermediate CA certifies a
 * separate responder key, so its own key signs certificates and CRLs only and need not be online
 * for every OCSP answer.
 *
 * Made rarely (every few days), so it is built with @peculiar/x509 like the CA certificates.
 * It carries id-pkix-ocsp-nocheck: relying parties do not ask about the responder's own status
 * (there would be no one to ask but the responder itself), which is only acceptable because the
 * CA keeps its lifetime to a few days. It has no SAN: the issuing intermediate's critical URI name
 * constraint applies to names it carries, and a DN-only certificate has none of that kind.
 */
import type { KeyObject } from 'node:crypto';
import { OID } from './oids.js';
import { issueWithLibrary } from './x509-library.js';

export interface OcspResponderCertificateRequest {
  /** DER of the CA certificate whose certificates the responder speaks for; it signs this one. */
  issuerCertDer: Buffer;
  issuerPrivateKey: KeyObject;
  responderPublicKey: KeyObject;
  serial: Buffer;
  notBefore: Date;
  notAfter: Date;
  trustDomain: string;
}

export const ocspResponderSubject = (trustDomain: string): string => `O=tlsmesh, OU=${trustDomain}, CN=tlsmesh OCSP responder`;

/** DER NULL: the whole extnValue of id-pkix-ocsp-nocheck. */
const NULL_DER = new Uint8Array([0x05, 0x00]);

/** A delegated OCSP responder certificate (DER) signed by the issuing CA. */
export async function createOcspResponderCertificate(request: OcspResponderCertificateRequest): Promise<Buffer> {
  if (!(request.notAfter.getTime() > request.notBefore.getTime())) throw new TypeError('OCSP responder certificate: notAfter must be after notBefore');
  return issueWithLibrary({
    issuerCertDer: request.issuerCertDer,
    issuerPrivateKey: request.issuerPrivateKey,
    subjectPublicKey: request.responderPublicKey,
    serial: request.serial,
    subject: ocspResponderSubject(request.trustDomain),
    notBefore: request.notBefore,
    notAfter: request.notAfter,
    extensions: (x509) => [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([OID.ocspSigning], false),
      new x509.Extension(OID.ocspNoCheck, false, NULL_DER),
    ],
  });
}
