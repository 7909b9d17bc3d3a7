/**
 * An RFC 6960 OCSP responder core without I/O: parses requests, signs BasicOCSPResponses, builds
 * error responses; plus the client half (request builder, response parser and verifier) that the
 * SDK and CLI use against our own responder.
 *
 * Everything is encoded directly as DER, like the leaf profile (leaf.ts), because OCSP sits on
 * the hot path of every relying party: what is the same for every response of one responder
 * (issuer hashes, ResponderID, signature AlgorithmIdentifier, the certs field) is computed once,
 * and each response only encodes times, statuses and the nonce, then signs. The tests check every
 * request and response with `openssl ocsp` and decode them with @peculiar/asn1-ocsp.
 *
 * Requests are untrusted network input, so the parser is strict: DER only (der.ts), a size cap,
 * a cap on CertIDs (each costs a status lookup), SHA-1/SHA-256 CertIDs only, and any critical
 * extension it does not understand is refused rather than ignored (RFC 5280 §4.2 semantics).
 */
import { createHash, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { TlsmeshError, type ErrorCode } from '../errors.js';
import { keyIdentifierOf } from './certificate-fields.js';
import {
  bitString,
  decodeOid,
  explicit,
  expectTag,
  generalizedTime,
  nullValue,
  octetString,
  oid,
  readChildren,
  readWhole,
  sequence,
  TAG,
  tlv,
  unsignedInteger,
  type DerNode,
} from './der.js';
import { isRevocationReason, revocationReasonCode, revocationReasonOf } from './crl.js';
import { OID } from './oids.js';
import { signatureAlgorithmFor, signWith, verifyWith, type SignatureAlgorithm } from './signing.js';

// ---------------------------------------------------------------------------------------------
// Types and limits

export interface CertId {
  hashAlgorithmOid: string;
  issuerNameHash: Buffer;
  issuerKeyHash: Buffer;
  /** Lowercase hex of the INTEGER magnitude, leading zero octets stripped (the store's form). */
  serial: string;
  /** The CertID DER, echoed verbatim in the response (clients match it byte for byte). */
  raw: Buffer;
}

export interface ParsedOcspRequest {
  certIds: CertId[];
  /** The nonce extension's OCTET STRING value as sent (the inner bytes). */
  nonce: Buffer | undefined;
}

/** Largest request accepted, in DER octets; 16 SHA-256 CertIDs and a nonce take well under 2 KiB. */
export const MAX_OCSP_REQUEST_BYTES = 8 * 1024;
/** Most CertIDs per request: each is a status lookup, so the cap bounds the work one request causes. */
export const MAX_OCSP_CERT_IDS = 16;
/** RFC 9654 §2.1: Nonce ::= OCTET STRING(SIZE(1..128)); anything else must be malformedRequest. */
const MAX_NONCE_BYTES = 128;

export type OcspCertStatus =
  | { kind: 'good' }
  /** `reason` is the RFC 5280 CRLReason name; 'unspecified' is sent as no reason at all. */
  | { kind: 'revoked'; revokedAt: Date; reason: string }
  | { kind: 'unknown' };

export interface OcspSingleAnswer {
  certId: CertId;
  status: OcspCertStatus;
  thisUpdate: Date;
  nextUpdate: Date;
}

export interface OcspResponderOptions {
  /** DER of the CA certificate the answers are about. */
  issuerCertDer: Buffer;
  /** The delegated responder certificate (ocsp-responder-certificate.ts), or the issuer's own. */
  responderCertDer: Buffer;
  responderPrivateKey: KeyObject;
}

export type OcspErrorStatus = 'malformedRequest' | 'internalError' | 'tryLater' | 'unauthorized';

export interface ParsedOcspResponse {
  status: 'successful' | OcspErrorStatus | 'sigRequired';
  producedAt?: Date;
  nonce?: Buffer;
  answers: Array<{ serial: string; status: OcspCertStatus; thisUpdate: Date; nextUpdate?: Date }>;
  /** The first certificate of the certs field (the signer, when a delegated responder signed). */
  responderCertDer?: Buffer;
  tbsDer?: Buffer;
  signatureOid?: string;
  signature?: Buffer;
}

// ---------------------------------------------------------------------------------------------
// Constants

const M: ErrorCode = 'ERR_OCSP_MALFORMED';
const TAG_ENUMERATED = 0x0a;

const STATUS_CODES = {
  successful: 0,
  malformedRequest: 1,
  internalError: 2,
  tryLater: 3,
  sigRequired: 5,
  unauthorized: 6,
} as const satisfies Record<ParsedOcspResponse['status'], number>;
const STATUS_BY_CODE: ReadonlyMap<number, ParsedOcspResponse['status']> = new Map(
  Object.entries(STATUS_CODES).map(([name, code]) => [code, name as ParsedOcspResponse['status']]),
);

const ERROR_STATUS_CODES: ReadonlyMap<string, number> = new Map(
  (['malformedRequest', 'internalError', 'tryLater', 'unauthorized'] as const).map((name) => [name, STATUS_CODES[name]]),
);


/** CertID digests accepted: SHA-1 because that is what OpenSSL and most clients send by default. */
const CERT_ID_HASHES: ReadonlyMap<string, { name: 'sha1' | 'sha256'; length: number }> = new Map([
  [OID.sha1, { name: 'sha1', length: 20 }],
  [OID.sha256, { name: 'sha256', length: 32 }],
]);

const NONCE_OID_DER = oid(OID.ocspNonce);
const BASIC_OID_DER = oid(OID.ocspBasic);
const GOOD_DER = Buffer.from([0x80, 0x00]); // [0] IMPLICIT NULL
const UNKNOWN_DER = Buffer.from([0x82, 0x00]); // [2] IMPLICIT NULL
const SUCCESSFUL_DER = tlv(TAG_ENUMERATED, Buffer.from([STATUS_CODES.successful]));
const EMPTY: Buffer = Buffer.alloc(0);

// ---------------------------------------------------------------------------------------------
// Shared helpers

const malformed = (what: 'request' | 'response', why: string): TlsmeshError => new TlsmeshError(M, `malformed OCSP ${what}: ${why}`);


/** DER GeneralizedTime: Z, seconds present, fraction only without trailing zeros (X.690 §11.7). */
const GENERALIZED_TIME = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d*[1-9]))?Z$/;

function readGeneralizedTime(node: DerNode | undefined, field: string): Date {
  const text = expectTag(node, TAG.GENERALIZED_TIME, `${field} GeneralizedTime`, M).content.toString('latin1');
  const match = GENERALIZED_TIME.exec(text);
  if (match === null) throw malformed('response', `${field} is not a DER GeneralizedTime (${JSON.stringify(text)})`);
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const millis = match[7] === undefined ? 0 : Math.floor(Number(`0.${match[7]}`) * 1000);
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second, millis));
  // Date.UTC rolls over (month 13, second 60...); a round trip catches fields out of range.
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day || date.getUTCHours() !== hour || date.getUTCMinutes() !== minute || date.getUTCSeconds() !== second) {
    throw malformed('response', `${field} is not a valid date (${text})`);
  }
  return date;
}

function readEnumerated(node: DerNode | undefined, field: string, what: 'request' | 'response'): number {
  const content = expectTag(node, TAG_ENUMERATED, `${field} ENUMERATED`, M).content;
  if (content.length !== 1 || content[0]! > 0x7f) throw malformed(what, `${field} is out of range`);
  return content[0]!;
}

interface CertificateParts {
  subjectDer: Buffer;
  issuerDer: Buffer;
  spkiDer: Buffer;
  /** The subjectPublicKey BIT STRING value: what CertID and ResponderID key hashes are over. */
  keyBits: Buffer;
}

/** The few fields OCSP needs from a certificate (certificate-fields.ts does not expose the key). */
function certificateParts(der: Buffer, code: ErrorCode): CertificateParts {
  const [tbs] = readChildren(expectTag(readWhole(der, code), TAG.SEQUENCE, 'Certificate', code), code);
  const fields = readChildren(expectTag(tbs, TAG.SEQUENCE, 'TBSCertificate', code), code);
  const offset = fields[0]?.tag === 0xa0 ? 1 : 0; // [0] version present in v3
  const issuer = expectTag(fields[offset + 2], TAG.SEQUENCE, 'issuer', code);
  const subject = expectTag(fields[offset + 4], TAG.SEQUENCE, 'subject', code);
  const spki = expectTag(fields[offset + 5], TAG.SEQUENCE, 'subjectPublicKeyInfo', code);
  const bits = expectTag(readChildren(spki, code)[1], TAG.BIT_STRING, 'subjectPublicKey', code).content;
  if (bits[0] !== 0) throw new TlsmeshError(code, 'subjectPublicKey has unused bits');
  return { subjectDer: Buffer.from(subject.raw), issuerDer: Buffer.from(issuer.raw), spkiDer: Buffer.from(spki.raw), keyBits: Buffer.from(bits.subarray(1)) };
}

type IssuerHashes = ReadonlyMap<string, { nameHash: Buffer; keyHash: Buffer }>;

/** issuerNameHash and issuerKeyHash of a CA certificate for every accepted CertID digest. */
function issuerHashesOf(parts: CertificateParts): IssuerHashes {
  const out = new Map<string, { nameHash: Buffer; keyHash: Buffer }>();
  for (const [hashOid, { name }] of CERT_ID_HASHES) {
    out.set(hashOid, {
      nameHash: createHash(name).update(parts.subjectDer).digest(),
      keyHash: name === 'sha1' ? keyIdentifierOf(parts.spkiDer) : createHash(name).update(parts.keyBits).digest(),
    });
  }
  return out;
}

function hashesMatch(hashes: IssuerHashes, certId: CertId): boolean {
  const expected = hashes.get(certId.hashAlgorithmOid);
  return expected !== undefined && expected.nameHash.equals(certId.issuerNameHash) && expected.keyHash.equals(certId.issuerKeyHash);
}

function readCertId(node: DerNode | undefined, what: 'request' | 'response'): CertId {
  const [algorithm, nameHash, keyHash, serial, extra] = readChildren(expectTag(node, TAG.SEQUENCE, 'CertID', M), M);
  const [algorithmOid, parameters, more] = readChildren(expectTag(algorithm, TAG.SEQUENCE, 'CertID hashAlgorithm', M), M);
  const hashAlgorithmOid = decodeOid(expectTag(algorithmOid, TAG.OID, 'hash algorithm OID', M).content, M);
  if (more !== undefined || (parameters !== undefined && (parameters.tag !== TAG.NULL || parameters.content.length !== 0))) {
    throw malformed(what, 'CertID hash algorithm parameters must be absent or NULL');
  }
  const hash = CERT_ID_HASHES.get(hashAlgorithmOid);
  if (hash === undefined) throw malformed(what, `CertID hash algorithm ${hashAlgorithmOid} is not supported (SHA-1 or SHA-256 only)`);
  const issuerNameHash = expectTag(nameHash, TAG.OCTET_STRING, 'issuerNameHash', M).content;
  const issuerKeyHash = expectTag(keyHash, TAG.OCTET_STRING, 'issuerKeyHash', M).content;
  if (issuerNameHash.length !== hash.length || issuerKeyHash.length !== hash.length) {
    throw malformed(what, `CertID hashes must be ${hash.length} octets for ${hash.name}`);
  }
  const integer = expectTag(serial, TAG.INTEGER, 'serialNumber', M).content;
  if (integer.length === 0) throw malformed(what, 'empty serialNumber INTEGER');
  if (integer.length > 1 && ((integer[0] === 0 && integer[1]! < 0x80) || (integer[0] === 0xff && integer[1]! >= 0x80))) {
    throw malformed(what, 'serialNumber INTEGER is not minimally encoded');
  }
  if (integer[0]! >= 0x80) throw malformed(what, 'serialNumber is negative');
  if (extra !== undefined) throw malformed(what, 'extra fields in CertID');
  const magnitude = integer.length > 1 && integer[0] === 0 ? integer.subarray(1) : integer;
  return {
    hashAlgorithmOid,
    issuerNameHash: Buffer.from(issuerNameHash),
    issuerKeyHash: Buffer.from(issuerKeyHash),
    serial: magnitude.toString('hex'),
    raw: Buffer.from(node!.raw),
  };
}

interface RawExtension {
  critical: boolean;
  value: Buffer;
}

/** `[n] EXPLICIT Extensions`: at least one Extension, no duplicates, DER booleans. */
function readExtensions(wrapper: DerNode, field: string, what: 'request' | 'response'): Map<string, RawExtension> {
  const [list, extra] = readChildren(wrapper, M);
  if (extra !== undefined) throw malformed(what, `extra data in ${field}`);
  const items = readChildren(expectTag(list, TAG.SEQUENCE, `${field} SEQUENCE`, M), M);
  if (items.length === 0) throw malformed(what, `${field} is empty`);
  const out = new Map<string, RawExtension>();
  for (const item of items) {
    const parts = readChildren(expectTag(item, TAG.SEQUENCE, 'Extension', M), M);
    const extnId = decodeOid(expectTag(parts[0], TAG.OID, 'extnID', M).content, M);
    let critical = false;
    let index = 1;
    if (parts[1]?.tag === TAG.BOOLEAN) {
      // DER: critical DEFAULT FALSE is omitted when false, and TRUE is 0xff.
      if (parts[1].content.length !== 1 || parts[1].content[0] !== 0xff) throw malformed(what, `extension ${extnId}: critical must be omitted or DER TRUE`);
      critical = true;
      index = 2;
    }
    const value = expectTag(parts[index], TAG.OCTET_STRING, `extnValue of ${extnId}`, M).content;
    if (parts.length !== index + 1) throw malformed(what, `extension ${extnId} has extra fields`);
    if (out.has(extnId)) throw malformed(what, `extension ${extnId} appears twice`);
    out.set(extnId, { critical, value });
  }
  return out;
}

/** The nonce (RFC 9654: extnValue is the DER of an OCTET STRING of 1..128 octets), or undefined. */
function takeNonce(extensions: Map<string, RawExtension>, field: string, what: 'request' | 'response'): Buffer | undefined {
  const extension = extensions.get(OID.ocspNonce);
  extensions.delete(OID.ocspNonce);
  for (const [extnId, { critical }] of extensions) {
    if (critical) throw malformed(what, `unsupported critical extension ${extnId} in ${field}`);
  }
  if (extension === undefined) return undefined;
  const nonce = expectTag(readWhole(extension.value, M), TAG.OCTET_STRING, 'nonce OCTET STRING', M).content;
  if (nonce.length < 1 || nonce.length > MAX_NONCE_BYTES) throw malformed(what, `the nonce must be 1 to ${MAX_NONCE_BYTES} octets, not ${nonce.length}`);
  return Buffer.from(nonce);
}

function checkNonceArgument(nonce: Buffer): void {
  if (nonce.length < 1 || nonce.length > MAX_NONCE_BYTES) throw new TypeError(`OCSP nonce must be 1 to ${MAX_NONCE_BYTES} octets, not ${nonce.length}`);
}

/** responseExtensions / requestExtensions carrying only the nonce, as OpenSSL sends it. */
const nonceExtensions = (tag: number, nonce: Buffer): Buffer => explicit(tag, sequence(sequence(NONCE_OID_DER, octetString(octetString(nonce)))));

// ---------------------------------------------------------------------------------------------
// Requests

/**
 * Parses a DER OCSPRequest. Throws ERR_OCSP_MALFORMED naming the problem; a signed request is
 * accepted and its signature ignored (the responder answers anyone, RFC 6960 §4.1.2).
 */
export function parseOcspRequest(der: Buffer): ParsedOcspRequest {
  if (der.length > MAX_OCSP_REQUEST_BYTES) throw malformed('request', `larger than ${MAX_OCSP_REQUEST_BYTES} bytes`);
  const [tbs, optionalSignature, extra] = readChildren(expectTag(readWhole(der, M), TAG.SEQUENCE, 'OCSPRequest', M), M);
  const fields = readChildren(expectTag(tbs, TAG.SEQUENCE, 'TBSRequest', M), M);
  if (optionalSignature !== undefined) checkRequestSignature(optionalSignature);
  if (extra !== undefined) throw malformed('request', 'extra fields after optionalSignature');

  let index = 0;
  if (fields[index]?.tag === 0xa0) {
    // DEFAULT v1 should be omitted in DER, but some encoders write it; a v1 marker changes nothing.
    const [version, more] = readChildren(fields[index]!, M);
    const content = expectTag(version, TAG.INTEGER, 'version', M).content;
    if (more !== undefined || content.length !== 1 || content[0] !== 0) throw malformed('request', 'version must be v1 (0)');
    index++;
  }
  if (fields[index]?.tag === 0xa1) {
    // requestorName: informative only, never used for a decision here.
    if (readChildren(fields[index]!, M).length !== 1) throw malformed('request', 'requestorName must hold exactly one GeneralName');
    index++;
  }
  const list = expectTag(fields[index++], TAG.SEQUENCE, 'requestList', M);
  let nonce: Buffer | undefined;
  if (fields[index]?.tag === 0xa2) nonce = takeNonce(readExtensions(fields[index++]!, 'requestExtensions', 'request'), 'requestExtensions', 'request');
  if (fields[index] !== undefined) throw malformed('request', `unexpected field with tag 0x${fields[index]!.tag.toString(16)} in TBSRequest`);

  const requests = readChildren(list, M);
  if (requests.length === 0) throw malformed('request', 'the request list is empty');
  if (requests.length > MAX_OCSP_CERT_IDS) throw malformed('request', `${requests.length} CertIDs; at most ${MAX_OCSP_CERT_IDS} are answered per request`);
  const certIds = requests.map((request) => {
    const [certId, singleExtensions, more] = readChildren(expectTag(request, TAG.SEQUENCE, 'Request', M), M);
    if (singleExtensions !== undefined) {
      if (singleExtensions.tag !== 0xa0) throw malformed('request', 'singleRequestExtensions must be [0]');
      takeNonce(readExtensions(singleExtensions, 'singleRequestExtensions', 'request'), 'singleRequestExtensions', 'request');
    }
    if (more !== undefined) throw malformed('request', 'extra fields in Request');
    return readCertId(certId, 'request');
  });
  return { certIds, nonce };
}

/** `[0] EXPLICIT Signature`: shape only, the signature is deliberately not checked. */
function checkRequestSignature(node: DerNode): void {
  if (node.tag !== 0xa0) throw malformed('request', `expected [0] optionalSignature but found tag 0x${node.tag.toString(16)}`);
  const [signature, extra] = readChildren(node, M);
  const [algorithm, bits, certs, more] = readChildren(expectTag(signature, TAG.SEQUENCE, 'Signature', M), M);
  expectTag(algorithm, TAG.SEQUENCE, 'signatureAlgorithm', M);
  expectTag(bits, TAG.BIT_STRING, 'signature BIT STRING', M);
  if (certs !== undefined && certs.tag !== 0xa0) throw malformed('request', 'Signature certs must be [0]');
  if (extra !== undefined || more !== undefined) throw malformed('request', 'extra fields in optionalSignature');
}

/** A DER OCSPRequest for the given serials (magnitude bytes) of certificates issued by the issuer. */
export function createOcspRequest(request: { issuerCertDer: Buffer; serials: readonly Buffer[]; nonce?: Buffer; hash?: 'sha1' | 'sha256' }): Buffer {
  if (request.serials.length === 0 || request.serials.length > MAX_OCSP_CERT_IDS) {
    throw new TypeError(`createOcspRequest: 1 to ${MAX_OCSP_CERT_IDS} serials, not ${request.serials.length}`);
  }
  const hashOid = request.hash === 'sha256' ? OID.sha256 : OID.sha1;
  const { nameHash, keyHash } = issuerHashesOf(certificateParts(request.issuerCertDer, 'ERR_INTERNAL')).get(hashOid)!;
  const prefix = Buffer.concat([sequence(oid(hashOid), nullValue()), octetString(nameHash), octetString(keyHash)]);
  const requests = request.serials.map((serial) => {
    if (serial.length === 0) throw new TypeError('createOcspRequest: empty serial');
    return sequence(sequence(prefix, unsignedInteger(serial)));
  });
  if (request.nonce !== undefined) checkNonceArgument(request.nonce);
  const extensions = request.nonce === undefined ? EMPTY : nonceExtensions(2, request.nonce);
  return sequence(sequence(sequence(...requests), extensions));
}

// ---------------------------------------------------------------------------------------------
// Responses

/** OCSPResponse with an error status and no responseBytes (RFC 6960 §4.2.1): unsigned by design. */
export function ocspErrorResponse(status: OcspErrorStatus): Buffer {
  const code = ERROR_STATUS_CODES.get(status);
  if (code === undefined) throw new TypeError(`ocspErrorResponse: unknown status ${String(status)}`);
  return sequence(tlv(TAG_ENUMERATED, Buffer.from([code])));
}

/** Signs OCSP responses about the certificates of one issuer; build it once per responder key. */
export class OcspResponder {
  private readonly issuerHashes: IssuerHashes;
  private readonly privateKey: KeyObject;
  private readonly algorithm: SignatureAlgorithm;
  /** `[2] byKey`: a ResponderID by key is 22 octets, by name would repeat the whole subject. */
  private readonly responderId: Buffer;
  /** `[0] certs` holding the delegated responder certificate; empty when the issuer signs itself. */
  private readonly certs: Buffer;

  constructor(options: OcspResponderOptions) {
    const issuer = certificateParts(options.issuerCertDer, 'ERR_INTERNAL');
    const responder = certificateParts(options.responderCertDer, 'ERR_INTERNAL');
    // A mismatched key or certificate would sign responses no client accepts: fail at startup.
    if (!createPublicKey(options.responderPrivateKey).export({ format: 'der', type: 'spki' }).equals(responder.spkiDer)) {
      throw new TypeError('OcspResponder: the private key does not belong to the responder certificate');
    }
    const selfSigned = options.responderCertDer.equals(options.issuerCertDer);
    if (!selfSigned) {
      const problem = delegationProblem(new X509Certificate(options.responderCertDer), new X509Certificate(options.issuerCertDer), undefined);
      if (problem !== undefined) throw new TypeError(`OcspResponder: ${problem}`);
    }
    this.issuerHashes = issuerHashesOf(issuer);
    this.privateKey = options.responderPrivateKey;
    this.algorithm = signatureAlgorithmFor(options.responderPrivateKey);
    this.responderId = explicit(2, octetString(keyIdentifierOf(responder.spkiDer)));
    this.certs = selfSigned ? EMPTY : explicit(0, sequence(options.responderCertDer));
  }

  /** Does this CertID name a certificate issued by our issuer (hashes match for its algorithm)? */
  covers(certId: CertId): boolean {
    return hashesMatch(this.issuerHashes, certId);
  }

  /**
   * A successful OCSPResponse answering every CertID given, signed by the responder key, with the
   * nonce echoed when given. good/revoked answers must be about our issuer's certificates: saying
   * "good" about another CA's certificate would be a false statement signed by us.
   */
  respond(answers: readonly OcspSingleAnswer[], options: { producedAt: Date; nonce?: Buffer | undefined }): Buffer {
    if (answers.length === 0) throw new TypeError('OcspResponder.respond: at least one answer is needed');
    const singles = answers.map((answer) => this.singleResponse(answer));
    let extensions = EMPTY;
    if (options.nonce !== undefined) {
      checkNonceArgument(options.nonce);
      extensions = nonceExtensions(1, options.nonce);
    }
    const tbs = sequence(this.responderId, generalizedTime(options.producedAt), sequence(...singles), extensions);
    const basic = sequence(tbs, this.algorithm.identifier, bitString(signWith(this.privateKey, this.algorithm, tbs)), this.certs);
    return sequence(SUCCESSFUL_DER, explicit(0, sequence(BASIC_OID_DER, octetString(basic))));
  }

  private singleResponse(answer: OcspSingleAnswer): Buffer {
    if (answer.status.kind !== 'unknown' && !this.covers(answer.certId)) {
      throw new TypeError(`OcspResponder.respond: serial ${answer.certId.serial} is not from this issuer; only 'unknown' may be answered for it`);
    }
    if (!(answer.nextUpdate.getTime() > answer.thisUpdate.getTime())) throw new TypeError('OcspResponder.respond: nextUpdate must be after thisUpdate');
    let status: Buffer;
    switch (answer.status.kind) {
      case 'good':
        status = GOOD_DER;
        break;
      case 'unknown':
        status = UNKNOWN_DER;
        break;
      case 'revoked': {
        const code = isRevocationReason(answer.status.reason) ? revocationReasonCode(answer.status.reason) : undefined;
        if (code === undefined) throw new TypeError(`OcspResponder.respond: unknown revocation reason ${answer.status.reason}`);
        // RFC 5280 §5.3.1: unspecified is better expressed by leaving the reason out.
        const reason = code === 0 ? EMPTY : explicit(0, tlv(TAG_ENUMERATED, Buffer.from([code])));
        status = tlv(0xa1, generalizedTime(answer.status.revokedAt), reason);
        break;
      }
    }
    return sequence(answer.certId.raw, status, generalizedTime(answer.thisUpdate), explicit(0, generalizedTime(answer.nextUpdate)));
  }
}

// ---------------------------------------------------------------------------------------------
// Client side: parsing and verifying responses

interface ResponseData {
  responderId: { byKey: Buffer } | { byName: Buffer };
  producedAt: Date;
  nonce: Buffer | undefined;
  singles: Array<{ certId: CertId; status: OcspCertStatus; thisUpdate: Date; nextUpdate: Date | undefined }>;
}

function readResponseData(tbsDer: Buffer): ResponseData {
  const fields = readChildren(expectTag(readWhole(tbsDer, M), TAG.SEQUENCE, 'ResponseData', M), M);
  let index = 0;
  if (fields[index]?.tag === 0xa0) {
    const [version, more] = readChildren(fields[index]!, M);
    const content = expectTag(version, TAG.INTEGER, 'version', M).content;
    if (more !== undefined || content.length !== 1 || content[0] !== 0) throw malformed('response', 'ResponseData version must be v1 (0)');
    index++;
  }
  const responderNode = fields[index++];
  let responderId: ResponseData['responderId'];
  if (responderNode?.tag === 0xa1) {
    const [name, more] = readChildren(responderNode, M);
    if (more !== undefined) throw malformed('response', 'extra data in ResponderID');
    responderId = { byName: Buffer.from(expectTag(name, TAG.SEQUENCE, 'ResponderID byName', M).raw) };
  } else if (responderNode?.tag === 0xa2) {
    const [hash, more] = readChildren(responderNode, M);
    const keyHash = expectTag(hash, TAG.OCTET_STRING, 'ResponderID byKey', M).content;
    if (more !== undefined || keyHash.length !== 20) throw malformed('response', 'ResponderID byKey must be a 20-octet SHA-1 hash');
    responderId = { byKey: Buffer.from(keyHash) };
  } else {
    throw malformed('response', 'missing ResponderID');
  }
  const producedAt = readGeneralizedTime(fields[index++], 'producedAt');
  const responses = readChildren(expectTag(fields[index++], TAG.SEQUENCE, 'responses', M), M);
  let nonce: Buffer | undefined;
  if (fields[index]?.tag === 0xa1) nonce = takeNonce(readExtensions(fields[index++]!, 'responseExtensions', 'response'), 'responseExtensions', 'response');
  if (fields[index] !== undefined) throw malformed('response', 'unexpected field in ResponseData');
  if (responses.length === 0) throw malformed('response', 'no SingleResponse');
  return { responderId, producedAt, nonce, singles: responses.map(readSingleResponse) };
}

function readSingleResponse(node: DerNode): ResponseData['singles'][number] {
  const fields = readChildren(expectTag(node, TAG.SEQUENCE, 'SingleResponse', M), M);
  const certId = readCertId(fields[0], 'response');
  const statusNode = fields[1];
  let status: OcspCertStatus;
  if (statusNode?.tag === 0x80 && statusNode.content.length === 0) {
    status = { kind: 'good' };
  } else if (statusNode?.tag === 0x82 && statusNode.content.length === 0) {
    status = { kind: 'unknown' };
  } else if (statusNode?.tag === 0xa1) {
    const [time, reasonNode, more] = readChildren(statusNode, M);
    const revokedAt = readGeneralizedTime(time, 'revocationTime');
    let reason = 'unspecified';
    if (reasonNode !== undefined) {
      if (reasonNode.tag !== 0xa0) throw malformed('response', 'revocationReason must be [0]');
      const [enumerated, extra] = readChildren(reasonNode, M);
      const reasonCode = readEnumerated(enumerated, 'revocationReason', 'response');
      // removeFromCRL (8) is for delta CRLs, but a responder may still say it.
      const name = reasonCode === 8 ? 'removeFromCRL' : revocationReasonOf(reasonCode);
      if (name === undefined || extra !== undefined) throw malformed('response', 'unknown revocationReason');
      reason = name;
    }
    if (more !== undefined) throw malformed('response', 'extra fields in RevokedInfo');
    status = { kind: 'revoked', revokedAt, reason };
  } else {
    throw malformed('response', 'certStatus is not good [0], revoked [1] or unknown [2]');
  }
  const thisUpdate = readGeneralizedTime(fields[2], 'thisUpdate');
  let index = 3;
  let nextUpdate: Date | undefined;
  if (fields[index]?.tag === 0xa0) {
    const [time, extra] = readChildren(fields[index++]!, M);
    if (extra !== undefined) throw malformed('response', 'extra data in nextUpdate');
    nextUpdate = readGeneralizedTime(time, 'nextUpdate');
  }
  if (fields[index]?.tag === 0xa1) {
    const extensions = readExtensions(fields[index++]!, 'singleExtensions', 'response');
    for (const [extnId, { critical }] of extensions) if (critical) throw malformed('response', `unsupported critical extension ${extnId} in singleExtensions`);
  }
  if (fields[index] !== undefined) throw malformed('response', 'unexpected field in SingleResponse');
  return { certId, status, thisUpdate, nextUpdate };
}

/**
 * Parses a DER OCSPResponse as our responder (or any RFC 6960 responder sending a
 * BasicOCSPResponse) produces it. Throws ERR_OCSP_MALFORMED. The signature is not checked
 * here: see verifyOcspResponse.
 */
export function parseOcspResponse(der: Buffer): ParsedOcspResponse {
  const [statusNode, bytesNode, extra] = readChildren(expectTag(readWhole(der, M), TAG.SEQUENCE, 'OCSPResponse', M), M);
  const status = STATUS_BY_CODE.get(readEnumerated(statusNode, 'responseStatus', 'response'));
  if (status === undefined) throw malformed('response', 'unknown responseStatus');
  if (extra !== undefined) throw malformed('response', 'extra fields in OCSPResponse');
  if (status !== 'successful') {
    if (bytesNode !== undefined) throw malformed('response', `an ${status} response must not carry responseBytes`);
    return { status, answers: [] };
  }
  if (bytesNode?.tag !== 0xa0) throw malformed('response', 'a successful response must carry responseBytes');
  const [responseBytes, more] = readChildren(bytesNode, M);
  const [typeNode, octets, rest] = readChildren(expectTag(responseBytes, TAG.SEQUENCE, 'ResponseBytes', M), M);
  const responseType = decodeOid(expectTag(typeNode, TAG.OID, 'responseType', M).content, M);
  if (responseType !== OID.ocspBasic) throw malformed('response', `responseType ${responseType} is not id-pkix-ocsp-basic`);
  if (more !== undefined || rest !== undefined) throw malformed('response', 'extra fields in ResponseBytes');

  const basic = readWhole(expectTag(octets, TAG.OCTET_STRING, 'response OCTET STRING', M).content, M);
  const [tbs, algorithm, signatureNode, certsNode, tail] = readChildren(expectTag(basic, TAG.SEQUENCE, 'BasicOCSPResponse', M), M);
  expectTag(tbs, TAG.SEQUENCE, 'tbsResponseData', M);
  const algorithmOid = decodeOid(expectTag(readChildren(expectTag(algorithm, TAG.SEQUENCE, 'signatureAlgorithm', M), M)[0], TAG.OID, 'signature algorithm OID', M).content, M);
  const signatureBits = expectTag(signatureNode, TAG.BIT_STRING, 'signature BIT STRING', M).content;
  if (signatureBits[0] !== 0) throw malformed('response', 'signature BIT STRING has unused bits');
  let responderCertDer: Buffer | undefined;
  if (certsNode !== undefined) {
    if (certsNode.tag !== 0xa0) throw malformed('response', 'certs must be [0]');
    const [list, after] = readChildren(certsNode, M);
    const certificates = readChildren(expectTag(list, TAG.SEQUENCE, 'certs SEQUENCE', M), M);
    if (after !== undefined) throw malformed('response', 'extra data in certs');
    const first = certificates[0];
    if (first !== undefined) responderCertDer = Buffer.from(expectTag(first, TAG.SEQUENCE, 'Certificate', M).raw);
  }
  if (tail !== undefined) throw malformed('response', 'extra fields in BasicOCSPResponse');

  const tbsDer = Buffer.from(tbs!.raw);
  const data = readResponseData(tbsDer);
  const parsed: ParsedOcspResponse = {
    status,
    producedAt: data.producedAt,
    answers: data.singles.map((single) => ({
      serial: single.certId.serial,
      status: single.status,
      thisUpdate: single.thisUpdate,
      ...(single.nextUpdate === undefined ? {} : { nextUpdate: single.nextUpdate }),
    })),
    tbsDer,
    signatureOid: algorithmOid,
    signature: Buffer.from(signatureBits.subarray(1)),
  };
  if (data.nonce !== undefined) parsed.nonce = data.nonce;
  if (responderCertDer !== undefined) parsed.responderCertDer = responderCertDer;
  return parsed;
}

/**
 * Why `responder` may not sign OCSP responses for certificates issued by `issuer` (RFC 6960
 * §4.2.2.2: issued directly by that CA, with id-kp-OCSPSigning), or undefined when it may.
 * `at` also checks the validity period: with ocsp-nocheck, expiry is the only limit on a
 * responder certificate, so an expired one must never be accepted.
 */
function delegationProblem(responder: X509Certificate, issuer: X509Certificate, at: Date | undefined): string | undefined {
  if (!responder.checkIssued(issuer) || !responder.verify(issuer.publicKey)) return 'the responder certificate is not issued by the issuer';
  if (!(responder.keyUsage ?? []).includes(OID.ocspSigning)) return 'the responder certificate lacks extendedKeyUsage id-kp-OCSPSigning';
  if (at !== undefined && (at.getTime() < Date.parse(responder.validFrom) || at.getTime() > Date.parse(responder.validTo))) {
    return 'the responder certificate is not valid at this time';
  }
  return undefined;
}

/**
 * Whether a parsed successful response is authentic for certificates issued by `issuerCertDer`:
 * signed either by a delegated responder certificate (embedded, issued by that issuer, with
 * OCSPSigning, valid at `at`) or by the issuer key itself; the ResponderID must name the signer
 * and every CertID must name the issuer. Freshness (thisUpdate/nextUpdate) and the nonce are the
 * caller's to check against its own clock and request.
 */
export function verifyOcspResponse(response: ParsedOcspResponse, issuerCertDer: Buffer, at: Date = new Date()): boolean {
  if (response.status !== 'successful' || response.tbsDer === undefined || response.signatureOid === undefined || response.signature === undefined) return false;
  const issuer = new X509Certificate(issuerCertDer);
  const issuerParts = certificateParts(issuerCertDer, 'ERR_INTERNAL');
  try {
    let signer = issuer;
    let signerParts = issuerParts;
    if (response.responderCertDer !== undefined && !response.responderCertDer.equals(issuerCertDer)) {
      signer = new X509Certificate(response.responderCertDer);
      signerParts = certificateParts(response.responderCertDer, M);
      if (delegationProblem(signer, issuer, at) !== undefined) return false;
    }
    const data = readResponseData(response.tbsDer);
    const named =
      'byKey' in data.responderId
        ? data.responderId.byKey.equals(keyIdentifierOf(signerParts.spkiDer))
        : data.responderId.byName.equals(signerParts.subjectDer);
    if (!named) return false;
    const hashes = issuerHashesOf(issuerParts);
    if (!data.singles.every((single) => hashesMatch(hashes, single.certId))) return false;
    return verifyWith(response.signatureOid, signer.publicKey, response.tbsDer, response.signature);
  } catch {
    // Anything unparsable in what the network sent is simply not a valid response.
    return false;
  }
}
