/**
 * tlsmesh/pki: keys, CSRs, certificate profiles, CRLs, OCSP, SPIFFE IDs, PEM. No I/O.
 */
export { createIntermediateCertificate, createRootCertificate, intermediateSubject, rootSubject } from './authority-certificates.js';
export type { IntermediateRequest, RootRequest } from './authority-certificates.js';
export { keyIdentifierOf, readIssuerFields } from './certificate-fields.js';
export type { IssuerFields } from './certificate-fields.js';
export { createCsr, csrDer, MAX_CSR_BYTES, parseCsr, parseCsrAsync } from './csr.js';
export type { CsrRequest, ParsedCsr } from './csr.js';
export { bytesToIp, canonicalDnsName, canonicalIp, ipToBytes } from './ip.js';
export { checkPublicKey, DEFAULT_KEY_TYPE, generateKeyPair, isKeyType, KEY_TYPES, publicKeyFromSpki, spkiOf } from './keys.js';
export type { KeyAlgorithm, KeyDescription, KeyPair, KeyType } from './keys.js';
export { fingerprintOf, LEAF_SUBJECT_DER, LeafIssuer } from './leaf.js';
export type { LeafIssuerOptions, LeafRequest } from './leaf.js';
export { certificatesToPem, parsePem, pemBlocks, toPem } from './pem.js';
export type { PemBlock } from './pem.js';
export { checkPassphrase, MIN_PASSPHRASE_LENGTH, openPrivateKey, sealPrivateKey } from './sealed-key.js';
export { randomSerial, SERIAL_BYTES, serialHex } from './serial.js';
export { parseSpiffeId, parseWorkloadId, spiffeIdOf, validateTrustDomain } from './spiffe.js';
export type { SpiffeId } from './spiffe.js';
export { expectSpiffeId, spiffeIdsOf } from './peer-identity.js';
export { CrlIssuer, crlToPem, isRevocationReason, parseCrl, REVOCATION_REASONS, serialKey, verifyCrlSignature } from './crl.js';
export type { CrlEntry, CrlIssuerOptions, CrlRequest, ParsedCrl, RevocationReason, RevokedEntry } from './crl.js';
export {
  createOcspRequest,
  MAX_OCSP_REQUEST_BYTES,
  ocspErrorResponse,
  OcspResponder,
  parseOcspRequest,
  parseOcspResponse,
  verifyOcspResponse,
} from './ocsp.js';
export type { CertId, OcspCertStatus, OcspErrorStatus, OcspResponderOptions, OcspSingleAnswer, ParsedOcspRequest, ParsedOcspResponse } from './ocsp.js';
export { createOcspResponderCertificate } from './ocsp-responder-certificate.js';
export type { OcspResponderCertificateRequest } from './ocsp-responder-certificate.js';
