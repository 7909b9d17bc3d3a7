/**
 * PKCS#10 certificate signing requests (RFC 2986).
 *
 * Creating a CSR happens on the workload, rarely: it uses @peculiar/x509. Parsing and verifying
 * happens in the CA on every issuance: it is a small strict DER walk plus one node:crypto verify,
 * several times faster than the library (tests keep @peculiar/x509 as the oracle).
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { TlsmeshError } from '../errors.js';
import { decodeOid, expectTag, readChildren, readWhole, TAG, type DerNode } from './der.js';
import { bytesToIp, canonicalDnsName, canonicalIp } from './ip.js';
import { checkPublicKey, publicKeyFromSpki, type KeyDescription } from './keys.js';
import { OID } from './oids.js';
import { pemBlocks } from './pem.js';
import { isAcceptedSignatureOid, verifyWith, verifyWithAsync } from './signing.js';
import { toCryptoKeyPair, webAlgorithmFor, x509Library } from './x509-library.js';

/** Largest CSR accepted, in DER octets; an RSA-8192 CSR with a few SANs is well below it. */
export const MAX_CSR_BYTES = 16 * 1024;

export interface ParsedCsr {
  der: Buffer;
  /** SubjectPublicKeyInfo DER, copied as is into the certificate. */
  spki: Buffer;
  publicKey: KeyObject;
  key: KeyDescription;
  uris: string[];
  dnsNames: string[];
  ipAddresses: string[];
  /** True when basicConstraints with cA TRUE is requested. */
  requestsCa: boolean;
}

const GENERAL_NAME = {
  otherName: 0xa0,
  rfc822Name: 0x81,
  dNSName: 0x82,
  directoryName: 0xa4,
  uniformResourceIdentifier: 0x86,
  iPAddress: 0x87,
  registeredID: 0x88,
} as const;

const malformed = (why: string): TlsmeshError => new TlsmeshError('ERR_CSR_MALFORMED', `malformed CSR: ${why}`);
const M = 'ERR_CSR_MALFORMED' as const;

/** Accepts PEM (`CERTIFICATE REQUEST` or `NEW CERTIFICATE REQUEST`) or DER. */
export function csrDer(input: Buffer | string): Buffer {
  const text = typeof input === 'string' ? input : input.subarray(0, 11).toString('latin1') === '-----BEGIN ' ? input.toString('latin1') : null;
  if (text === null) return input as Buffer;
  const der = pemBlocks(text, 'CERTIFICATE REQUEST')[0] ?? pemBlocks(text, 'NEW CERTIFICATE REQUEST')[0];
  if (!der) throw malformed('no "CERTIFICATE REQUEST" PEM block found');
  return der;
}

/**
 * Parses a CSR, checks its key against the key policy and verifies its self-signature.
 * Throws ERR_CSR_MALFORMED, ERR_CSR_SIGNATURE, ERR_CSR_EXTENSION, ERR_KEY_WEAK or ERR_KEY_UNSUPPORTED.
 */
export function parseCsr(input: Buffer | string): ParsedCsr {
  const read = readCsr(input);
  return finishCsr(read, verifyWith(read.algorithmOid, read.parsed.publicKey, read.signedDer, read.signature));
}

/**
 * parseCsr with the signature check on libuv's thread pool (the CA's issuance path): the same
 * checks in the same order, so the same input gives the same result or the same error code.
 */
export async function parseCsrAsync(input: Buffer | string): Promise<ParsedCsr> {
  const read = readCsr(input);
  return finishCsr(read, await verifyWithAsync(read.algorithmOid, read.parsed.publicKey, read.signedDer, read.signature));
}

/** A CSR read up to its signature check: what the check needs, and the attributes still unread. */
interface ReadCsr {
  parsed: ParsedCsr;
  algorithmOid: string;
  signedDer: Buffer;
  signature: Buffer;
  attributes: DerNode | undefined;
}

function readCsr(input: Buffer | string): ReadCsr {
  const der = csrDer(input);
  if (der.length > MAX_CSR_BYTES) throw malformed(`larger than ${MAX_CSR_BYTES} bytes`);
  const top = expectTag(readWhole(der, M), TAG.SEQUENCE, 'CertificationRequest SEQUENCE', M);
  const [info, algorithm, signature, extra] = readChildren(top, M);
  if (extra !== undefined) throw malformed('extra fields after the signature');
  expectTag(info, TAG.SEQUENCE, 'CertificationRequestInfo', M);
  expectTag(algorithm, TAG.SEQUENCE, 'signatureAlgorithm', M);
  expectTag(signature, TAG.BIT_STRING, 'signature BIT STRING', M);

  const [version, subject, spkiNode, attributes] = readChildren(info!, M);
  expectTag(version, TAG.INTEGER, 'version', M);
  if (version!.content.length !== 1 || version!.content[0] !== 0) throw malformed('version must be 0 (v1)');
  expectTag(subject, TAG.SEQUENCE, 'subject Name', M);
  expectTag(spkiNode, TAG.SEQUENCE, 'SubjectPublicKeyInfo', M);

  const publicKey = publicKeyFromSpki(spkiNode!.raw);
  const key = checkPublicKey(publicKey);

  const algorithmOid = decodeOid(expectTag(readChildren(algorithm!, M)[0], TAG.OID, 'algorithm OID', M).content);
  if (!isAcceptedSignatureOid(algorithmOid)) {
    throw new TlsmeshError('ERR_CSR_SIGNATURE', `CSR signature algorithm ${algorithmOid} is not accepted (SHA-2 ECDSA/RSA or Ed25519 only)`);
  }
  if (signature!.content[0] !== 0) throw malformed('signature BIT STRING has unused bits');
  const parsed: ParsedCsr = { der, spki: Buffer.from(spkiNode!.raw), publicKey, key, uris: [], dnsNames: [], ipAddresses: [], requestsCa: false };
  return { parsed, algorithmOid, signedDer: info!.raw, signature: signature!.content.subarray(1), attributes };
}

/** After the signature check: refuses a bad signature, then reads the requested names. */
function finishCsr(read: ReadCsr, signatureValid: boolean): ParsedCsr {
  if (!signatureValid) {
    throw new TlsmeshError('ERR_CSR_SIGNATURE', 'CSR signature does not verify with the public key it carries');
  }
  if (read.attributes !== undefined) readAttributes(read.attributes, read.parsed);
  return read.parsed;
}

function readAttributes(attributes: DerNode, parsed: ParsedCsr): void {
  if (attributes.tag !== 0xa0) throw malformed('attributes must be [0] IMPLICIT SET');
  for (const attribute of readChildren(attributes, M)) {
    const [type, values] = readChildren(expectTag(attribute, TAG.SEQUENCE, 'Attribute', M), M);
    const typeOid = decodeOid(expectTag(type, TAG.OID, 'attribute type', M).content);
    if (typeOid !== OID.extensionRequest) continue; // e.g. challengePassword: never used for anything
    for (const extensions of readChildren(expectTag(values, TAG.SET, 'attribute values', M), M)) {
      for (const extension of readChildren(expectTag(extensions, TAG.SEQUENCE, 'Extensions', M), M)) {
        readRequestedExtension(extension, parsed);
      }
    }
  }
}

/**
 * Only two requested extensions matter: the SAN (checked against what the caller may have) and
 * basicConstraints (CA:true is refused). Everything else requested (KU, EKU, ...) is ignored:
 * the certificate profile decides those, never the requester.
 */
function readRequestedExtension(extension: DerNode, parsed: ParsedCsr): void {
  const parts = readChildren(expectTag(extension, TAG.SEQUENCE, 'Extension', M), M);
  const extnId = decodeOid(expectTag(parts[0], TAG.OID, 'extnID', M).content);
  const value = expectTag(parts[parts.length - 1], TAG.OCTET_STRING, 'extnValue', M).content;
  if (extnId === OID.subjectAltName) {
    for (const name of readChildren(expectTag(readWhole(value, M), TAG.SEQUENCE, 'GeneralNames', M), M)) {
      readGeneralName(name, parsed);
    }
  } else if (extnId === OID.basicConstraints) {
    const first = readChildren(expectTag(readWhole(value, M), TAG.SEQUENCE, 'BasicConstraints', M), M)[0];
    if (first?.tag === TAG.BOOLEAN && first.content[0] !== 0) parsed.requestsCa = true;
  }
}

function readGeneralName(name: DerNode, parsed: ParsedCsr): void {
  switch (name.tag) {
    case GENERAL_NAME.uniformResourceIdentifier:
      parsed.uris.push(name.content.toString('latin1'));
      return;
    case GENERAL_NAME.dNSName:
      parsed.dnsNames.push(canonicalDnsName(name.content.toString('latin1')));
      return;
    case GENERAL_NAME.iPAddress:
      parsed.ipAddresses.push(bytesToIp(name.content));
      return;
    default:
      throw new TlsmeshError(
        'ERR_CSR_EXTENSION',
        `the CSR asks for a SAN of type [${name.tag & 0x1f}]; only URI, DNS and IP SANs are issued`,
      );
  }
}

export interface CsrRequest {
  privateKey: KeyObject;
  publicKey?: KeyObject;
  spiffeId: string;
  dnsNames?: readonly string[];
  ipAddresses?: readonly string[];
}

/**
 * Creates a PEM CSR naming the SPIFFE ID (URI SAN) and any DNS/IP SANs, signed by the key.
 *
 * @example
 * const { privateKey } = generateKeyPair('p256');
 * const pem = await createCsr({ privateKey, spiffeId: 'spiffe://example.org/api' });
 */
export async function createCsr(request: CsrRequest): Promise<string> {
  const x509 = x509Library();
  const publicKey = request.publicKey ?? createPublicKey(request.privateKey);
  const keys = await toCryptoKeyPair(request.privateKey, publicKey);
  const names = [
    { type: 'url' as const, value: request.spiffeId },
    ...(request.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value: canonicalDnsName(value) })),
    ...(request.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value: canonicalIp(value) })),
  ];
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys,
    signingAlgorithm: webAlgorithmFor(request.privateKey),
    extensions: [new x509.SubjectAlternativeNameExtension(names)],
  });
  return csr.toString('pem');
}
