/**
 * The leaf (X.509-SVID) profile, encoded directly as DER.
 *
 * @peculiar/x509 spends ~97% of issuance time in ASN.1 encoding; here everything that is the same
 * for every leaf of one issuer (issuer name, AKI, CRL/OCSP URLs, key usages) is encoded once, and
 * each issuance only encodes serial, validity, key, SKI and SANs, then signs. Tests build the same
 * certificate with @peculiar/x509 and compare the TBSCertificate byte for byte, and check every
 * issued chain with `openssl verify -x509_strict` and GnuTLS `certtool --verify-chain`.
 *
 * Profile: v3; subject O=tlsmesh; exactly one URI SAN (the SPIFFE ID) plus allowed DNS/IP SANs;
 * basicConstraints CA:FALSE critical; keyUsage digitalSignature (+ keyEncipherment for RSA keys)
 * critical; extKeyUsage serverAuth + clientAuth; SKI; AKI; CRL distribution point; AIA OCSP.
 */
import type { KeyObject } from 'node:crypto';
import { createHash } from 'node:crypto';
import {
  bitString,
  booleanTrue,
  explicit,
  namedBits,
  octetString,
  oid,
  sequence,
  set,
  smallInteger,
  time,
  tlv,
  TAG,
  unsignedInteger,
} from './der.js';
import { readIssuerFields, keyIdentifierOf, type IssuerFields } from './certificate-fields.js';
import { ipToBytes } from './ip.js';
import { OID } from './oids.js';
import { signatureAlgorithmFor, signWith, signWithAsync, type SignatureAlgorithm } from './signing.js';

export interface LeafIssuerOptions {
  /** DER of the issuing CA certificate. */
  issuerCertDer: Buffer;
  issuerNotAfter: Date;
  issuerPrivateKey: KeyObject;
  /** Goes into cRLDistributionPoints; omitted when absent. */
  crlUrl?: string | undefined;
  /** Goes into authorityInfoAccess (OCSP); omitted when absent. */
  ocspUrl?: string | undefined;
}

export interface LeafRequest {
  serial: Buffer;
  /** SubjectPublicKeyInfo DER of the workload key (from its CSR). */
  spki: Buffer;
  /** The key is RSA (adds keyEncipherment, which RSA key exchange in TLS 1.2 needs). */
  rsaKey: boolean;
  spiffeId: string;
  dnsNames: readonly string[];
  ipAddresses: readonly string[];
  notBefore: Date;
  notAfter: Date;
}

/** The subject every leaf carries; identity lives in the URI SAN, not in the subject. */
export const LEAF_SUBJECT_DER = sequence(set(sequence(oid(OID.organizationName), tlv(TAG.UTF8_STRING, Buffer.from('tlsmesh')))));

const VERSION_3 = explicit(0, smallInteger(2));
const KEY_USAGE = { digitalSignature: 0, keyEncipherment: 2 } as const;

function extension(extnOid: string, critical: boolean, value: Buffer): Buffer {
  return critical ? sequence(oid(extnOid), booleanTrue(), octetString(value)) : sequence(oid(extnOid), octetString(value));
}

const BASIC_CONSTRAINTS_LEAF = extension(OID.basicConstraints, true, sequence());
const KEY_USAGE_SIGN = extension(OID.keyUsage, true, namedBits([KEY_USAGE.digitalSignature]));
const KEY_USAGE_SIGN_ENCIPHER = extension(OID.keyUsage, true, namedBits([KEY_USAGE.digitalSignature, KEY_USAGE.keyEncipherment]));
const EXT_KEY_USAGE = extension(OID.extKeyUsage, false, sequence(oid(OID.serverAuth), oid(OID.clientAuth)));

/** Issues leaves for one CA key; build it once per key, not per certificate. */
export class LeafIssuer {
  readonly issuer: IssuerFields;
  private readonly algorithm: SignatureAlgorithm;
  private readonly privateKey: KeyObject;
  /** Extensions after SAN that never change for this issuer: CRL DP, AIA. */
  private readonly trailingExtensions: Buffer;
  private readonly authorityKeyId: Buffer;

  constructor(options: LeafIssuerOptions) {
    this.issuer = readIssuerFields(options.issuerCertDer, options.issuerNotAfter);
    this.privateKey = options.issuerPrivateKey;
    this.algorithm = signatureAlgorithmFor(options.issuerPrivateKey);
    this.authorityKeyId = extension(OID.authorityKeyIdentifier, false, sequence(tlv(0x80, this.issuer.keyIdentifier)));
    const trailing: Buffer[] = [];
    if (options.crlUrl) {
      const uri = tlv(0x86, Buffer.from(options.crlUrl, 'latin1'));
      trailing.push(extension(OID.crlDistributionPoints, false, sequence(sequence(explicit(0, explicit(0, uri))))));
    }
    if (options.ocspUrl) {
      const uri = tlv(0x86, Buffer.from(options.ocspUrl, 'latin1'));
      trailing.push(extension(OID.authorityInfoAccess, false, sequence(sequence(oid(OID.ocsp), uri))));
    }
    this.trailingExtensions = Buffer.concat(trailing);
  }

  /** The DER TBSCertificate for a request (exposed for the oracle tests). */
  encodeTbs(request: LeafRequest): Buffer {
    const names = [tlv(0x86, Buffer.from(request.spiffeId, 'latin1'))];
    for (const dns of request.dnsNames) names.push(tlv(0x82, Buffer.from(dns, 'latin1')));
    for (const ip of request.ipAddresses) names.push(tlv(0x87, ipToBytes(ip)));
    const extensions = sequence(
      BASIC_CONSTRAINTS_LEAF,
      request.rsaKey ? KEY_USAGE_SIGN_ENCIPHER : KEY_USAGE_SIGN,
      EXT_KEY_USAGE,
      extension(OID.subjectKeyIdentifier, false, octetString(keyIdentifierOf(request.spki))),
      this.authorityKeyId,
      extension(OID.subjectAltName, false, sequence(...names)),
      this.trailingExtensions,
    );
    return sequence(
      VERSION_3,
      unsignedInteger(request.serial),
      this.algorithm.identifier,
      this.issuer.subjectDer,
      sequence(time(request.notBefore), time(request.notAfter)),
      LEAF_SUBJECT_DER,
      request.spki,
      explicit(3, extensions),
    );
  }

  /** Encodes and signs; returns the certificate DER. */
  issue(request: LeafRequest): Buffer {
    const tbs = this.encodeTbs(request);
    return sequence(tbs, this.algorithm.identifier, bitString(signWith(this.privateKey, this.algorithm, tbs)));
  }

  /** issue() with the signature made on libuv's thread pool (the CA's issuance path). */
  async issueAsync(request: LeafRequest): Promise<Buffer> {
    const tbs = this.encodeTbs(request);
    return sequence(tbs, this.algorithm.identifier, bitString(await signWithAsync(this.privateKey, this.algorithm, tbs)));
  }
}

/** SHA-256 fingerprint, lowercase hex, as `openssl x509 -fingerprint -sha256` shows it (without colons). */
export const fingerprintOf = (der: Buffer): string => createHash('sha256').update(der).digest('hex');
