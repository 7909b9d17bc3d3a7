/**
 * X.509 v2 certificate revocation lists (RFC 5280 §5): an encoder written directly as DER, a
 * strict parser and signature verification.
 *
 * Hand-written for the same reason as the leaf encoder: @peculiar/x509 spends most of its time in
 * ASN.1 encoding, and a CRL with 100,000 entries must be encoded and signed in well under a second.
 * Everything fixed per issuer (issuer Name, AKI, AlgorithmIdentifier, the eight reasonCode
 * extensions) is encoded once; each CRL is measured in one pass and written into one buffer in a
 * second. The parser walks the revoked list by offsets without a node object per field, since
 * allocation, not checking, is what a 100,000-entry CRL costs to read.
 * The tests compare both against @peculiar/x509 (as the oracle, and as a second encoder), OpenSSL
 * (`crl`, `verify -crl_check_all`) and GnuTLS (`certtool --crl-info`, `--verify-crl`).
 *
 * Profile: v2; AKI keyIdentifier and cRLNumber, both non-critical; nextUpdate always present;
 * revokedCertificates absent when empty; per entry a reasonCode unless the reason is unspecified
 * (RFC 5280 §5.3.1: SHOULD be absent then). No delta CRLs, no partitions, no indirect CRLs: the
 * parser refuses CRLs that carry the critical extensions those need, rather than misread them.
 */
import { X509Certificate, type KeyObject } from 'node:crypto';
import { TlsmeshError } from '../errors.js';
import { bitString, booleanTrue, decodeOid, explicit, octetString, oid, readWhole, sequence, smallInteger, TAG, time, tlv, unsignedInteger } from './der.js';
import { readIssuerFields } from './certificate-fields.js';
import { OID } from './oids.js';
import { parsePem, toPem } from './pem.js';
import { isAcceptedSignatureOid, signatureAlgorithmFor, signWith, verifyWith, type SignatureAlgorithm } from './signing.js';

// ---------------------------------------------------------------------------------------------
// Reasons

/** RFC 5280 §5.3.1 reasons; removeFromCRL (8) only has a meaning in delta CRLs, which are not made. */
export const REVOCATION_REASONS = [
  'unspecified',
  'keyCompromise',
  'cACompromise',
  'affiliationChanged',
  'superseded',
  'cessationOfOperation',
  'certificateHold',
  'privilegeWithdrawn',
  'aACompromise',
] as const;
export type RevocationReason = (typeof REVOCATION_REASONS)[number];

const REASON_CODE: ReadonlyMap<RevocationReason, number> = new Map([
  ['unspecified', 0],
  ['keyCompromise', 1],
  ['cACompromise', 2],
  ['affiliationChanged', 3],
  ['superseded', 4],
  ['cessationOfOperation', 5],
  ['certificateHold', 6],
  ['privilegeWithdrawn', 9],
  ['aACompromise', 10],
]);
const REASON_BY_CODE: readonly (RevocationReason | undefined)[] = Array.from({ length: 11 }, (_, code) =>
  REVOCATION_REASONS.find((reason) => REASON_CODE.get(reason) === code),
);

// A Map, not `in`: 'toString' must not pass as a reason.
export const isRevocationReason = (value: string): value is RevocationReason => REASON_CODE.has(value as RevocationReason);

/** The RFC 5280 CRLReason code of a reason (shared with OCSP, which carries the same ENUMERATED). */
export const revocationReasonCode = (reason: RevocationReason): number => REASON_CODE.get(reason)!;

/** The reason a CRLReason code stands for, or undefined (8, removeFromCRL, belongs to delta CRLs only). */
export const revocationReasonOf = (code: number): RevocationReason | undefined => REASON_BY_CODE[code];

// ---------------------------------------------------------------------------------------------
// Encoding

export interface RevokedEntry {
  /** Positive INTEGER magnitude, as randomSerial() returns (leading zero octets are stripped). */
  serial: Buffer;
  revokedAt: Date;
  reason: RevocationReason;
}

export interface CrlIssuerOptions {
  /** DER of the CA certificate whose key signs the CRL (the CRL covers what it issued). */
  issuerCertDer: Buffer;
  issuerPrivateKey: KeyObject;
}

export interface CrlRequest {
  /** cRLNumber (RFC 5280 §5.2.3): 0..2^159-1, so it fits the 20 octets verifiers must handle. */
  crlNumber: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  /** Written in this order; serials must be distinct. */
  entries: readonly RevokedEntry[];
}

const VERSION_2 = smallInteger(1);
/** RFC 5280 §4.1.2.2 / §5.2.3: INTEGER content of at most 20 octets. */
const MAX_INTEGER_OCTETS = 20;

function extension(extnOid: string, critical: boolean, value: Buffer): Buffer {
  return critical ? sequence(oid(extnOid), booleanTrue(), octetString(value)) : sequence(oid(extnOid), octetString(value));
}

/** Per reason code, the whole crlEntryExtensions SEQUENCE; an empty buffer for unspecified. */
const ENTRY_EXTENSIONS: ReadonlyMap<RevocationReason, Buffer> = new Map(
  REVOCATION_REASONS.map((reason) => {
    const code = REASON_CODE.get(reason)!;
    return [reason, code === 0 ? Buffer.alloc(0) : sequence(extension(OID.reasonCode, false, tlv(0x0a, Buffer.from([code]))))];
  }),
);

const headerLength = (length: number): number => (length < 0x80 ? 2 : length < 0x100 ? 3 : length < 0x10000 ? 4 : length < 0x1000000 ? 5 : 6);

function writeHeader(out: Buffer, at: number, tag: number, length: number): number {
  out[at] = tag;
  if (length < 0x80) {
    out[at + 1] = length;
    return at + 2;
  }
  const count = headerLength(length) - 2;
  out[at + 1] = 0x80 | count;
  for (let i = count, rest = length; i > 0; i--, rest = Math.floor(rest / 256)) out[at + 1 + i] = rest & 0xff;
  return at + 2 + count;
}

function checkDate(date: Date, what: string): number {
  const year = date instanceof Date ? date.getUTCFullYear() : NaN;
  if (!(year >= 0 && year <= 9999)) throw new TypeError(`CRL ${what} is not a date in years 0000-9999`);
  return year;
}

/** Time TLV length for a year: RFC 5280 §4.1.2.5 UTCTime 1950-2049, GeneralizedTime otherwise. */
const timeLength = (year: number): number => (year >= 1950 && year < 2050 ? 15 : 17);

const DIGIT_0 = 0x30;
function writeTwoDigits(out: Buffer, at: number, value: number): void {
  out[at] = DIGIT_0 + Math.floor(value / 10);
  out[at + 1] = DIGIT_0 + (value % 10);
}

/** Same bytes as der.time(), written in place: der.time() builds strings and buffers per call. */
function writeTime(out: Buffer, at: number, date: Date, year: number): number {
  let p = at;
  if (year >= 1950 && year < 2050) {
    out[p] = TAG.UTC_TIME;
    out[p + 1] = 13;
    writeTwoDigits(out, p + 2, year % 100);
    p += 4;
  } else {
    out[p] = TAG.GENERALIZED_TIME;
    out[p + 1] = 15;
    writeTwoDigits(out, p + 2, Math.floor(year / 100));
    writeTwoDigits(out, p + 4, year % 100);
    p += 6;
  }
  writeTwoDigits(out, p, date.getUTCMonth() + 1);
  writeTwoDigits(out, p + 2, date.getUTCDate());
  writeTwoDigits(out, p + 4, date.getUTCHours());
  writeTwoDigits(out, p + 6, date.getUTCMinutes());
  writeTwoDigits(out, p + 8, date.getUTCSeconds());
  out[p + 10] = 0x5a; // 'Z'
  return p + 11;
}

function firstNonZero(serial: Buffer): number {
  let start = 0;
  while (start < serial.length && serial[start] === 0) start++;
  return start;
}

function crlNumberInteger(crlNumber: bigint): Buffer {
  if (typeof crlNumber !== 'bigint' || crlNumber < 0n) throw new TypeError('cRLNumber must be a non-negative bigint');
  const hex = crlNumber.toString(16);
  const encoded = unsignedInteger(Buffer.from(hex.length % 2 === 0 ? hex : `0${hex}`, 'hex'));
  if (encoded.length - 2 > MAX_INTEGER_OCTETS) throw new TypeError('cRLNumber does not fit in 20 octets');
  return encoded;
}

/** Makes CRLs for one CA key; build it once per key, not per CRL. */
export class CrlIssuer {
  private readonly issuerName: Buffer;
  private readonly algorithm: SignatureAlgorithm;
  private readonly privateKey: KeyObject;
  private readonly authorityKeyId: Buffer;

  constructor(options: CrlIssuerOptions) {
    // readIssuerFields wants the issuer's notAfter for leaves; a CRL has no use for it.
    const issuer = readIssuerFields(options.issuerCertDer, new Date(0));
    this.issuerName = issuer.subjectDer;
    this.privateKey = options.issuerPrivateKey;
    this.algorithm = signatureAlgorithmFor(options.issuerPrivateKey);
    this.authorityKeyId = extension(OID.authorityKeyIdentifier, false, sequence(tlv(0x80, issuer.keyIdentifier)));
  }

  /** The DER TBSCertList for a request (exposed for the oracle tests). */
  encodeTbs(request: CrlRequest): Buffer {
    checkDate(request.thisUpdate, 'thisUpdate');
    checkDate(request.nextUpdate, 'nextUpdate');
    if (request.nextUpdate.getTime() < request.thisUpdate.getTime()) throw new TypeError('CRL nextUpdate is before thisUpdate');
    const head = Buffer.concat([VERSION_2, this.algorithm.identifier, this.issuerName, time(request.thisUpdate), time(request.nextUpdate)]);
    const extensions = explicit(0, sequence(this.authorityKeyId, extension(OID.cRLNumber, false, crlNumberInteger(request.crlNumber))));

    // Pass 1 measures (and validates) every entry, so pass 2 can write into one buffer.
    const entries = request.entries;
    const seen = new Set<string>();
    const contentLengths = new Uint32Array(entries.length);
    let listLength = 0;
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!;
      const serial = entry.serial;
      const start = firstNonZero(serial);
      if (start === serial.length) throw new TypeError(`revoked entry ${i}: serial is zero or empty`);
      const serialOctets = serial.length - start + (serial[start]! & 0x80 ? 1 : 0);
      if (serialOctets > MAX_INTEGER_OCTETS) throw new TypeError(`revoked entry ${i}: serial is longer than 20 octets`);
      // parseCrl refuses a CRL that lists a serial twice, so every SDK would refuse this one.
      const key = serial.toString('hex', start);
      if (seen.has(key)) throw new TypeError(`revoked entry ${i}: serial ${key} is listed twice`);
      seen.add(key);
      const reasonExtensions = ENTRY_EXTENSIONS.get(entry.reason);
      if (reasonExtensions === undefined) throw new TypeError(`revoked entry ${i}: unknown reason ${String(entry.reason)}`);
      const length = 2 + serialOctets + timeLength(checkDate(entry.revokedAt, `revoked entry ${i} date`)) + reasonExtensions.length;
      contentLengths[i] = length;
      listLength += headerLength(length) + length;
    }

    const listTotal = entries.length === 0 ? 0 : headerLength(listLength) + listLength;
    const tbsLength = head.length + listTotal + extensions.length;
    const out = Buffer.allocUnsafe(headerLength(tbsLength) + tbsLength);
    let at = writeHeader(out, 0, TAG.SEQUENCE, tbsLength);
    at += head.copy(out, at);
    if (entries.length > 0) {
      at = writeHeader(out, at, TAG.SEQUENCE, listLength);
      for (let i = 0; i < entries.length; i++) {
        const entry = entries[i]!;
        const serial = entry.serial;
        const start = firstNonZero(serial);
        const pad = serial[start]! & 0x80 ? 1 : 0;
        at = writeHeader(out, at, TAG.SEQUENCE, contentLengths[i]!);
        out[at] = TAG.INTEGER;
        out[at + 1] = serial.length - start + pad;
        at += 2;
        if (pad) out[at++] = 0;
        at += serial.copy(out, at, start);
        at = writeTime(out, at, entry.revokedAt, entry.revokedAt.getUTCFullYear());
        at += ENTRY_EXTENSIONS.get(entry.reason)!.copy(out, at);
      }
    }
    at += extensions.copy(out, at);
    if (at !== out.length) throw new Error(`CRL encoder wrote ${at} of ${out.length} octets`);
    return out;
  }

  /** Encodes and signs; returns the CertificateList DER. */
  issue(request: CrlRequest): Buffer {
    const tbs = this.encodeTbs(request);
    return sequence(tbs, this.algorithm.identifier, bitString(signWith(this.privateKey, this.algorithm, tbs)));
  }
}

/** PEM with the 'X509 CRL' label: the only one OpenSSL reads. */
export const crlToPem = (der: Buffer): string => toPem(der, 'X509 CRL');

// ---------------------------------------------------------------------------------------------
// Parsing

export interface CrlEntry {
  revokedAt: Date;
  /** 'unspecified' also when the entry has no reasonCode. */
  reason: RevocationReason;
}

export interface ParsedCrl {
  der: Buffer;
  tbsDer: Buffer;
  signatureOid: string;
  signature: Buffer;
  /** The issuer Name, DER, as it is in the CRL (compared byte for byte with the CA's subject). */
  issuerDer: Buffer;
  authorityKeyId: Buffer | undefined;
  crlNumber: bigint | undefined;
  thisUpdate: Date;
  nextUpdate: Date;
  /** Keyed by serialKey(). */
  revoked: ReadonlyMap<string, CrlEntry>;
}

const M = 'ERR_CRL_MALFORMED' as const;
const malformed = (why: string): TlsmeshError => new TlsmeshError(M, `malformed CRL: ${why}`);

/** DER from a Buffer (DER, or PEM text as bytes) or PEM text; exactly one CRL block. */
function crlDer(input: Buffer | string): Buffer {
  let text: string;
  if (typeof input === 'string') {
    text = input;
  } else if (!Buffer.isBuffer(input)) {
    throw new TypeError('parseCrl takes a DER Buffer or PEM text');
  } else if (input.subarray(0, 11).toString('latin1') === '-----BEGIN ') {
    text = input.toString('latin1');
  } else {
    // A copy: the parsed CRL keeps views into it, and the caller may reuse its buffer.
    return Buffer.from(input);
  }
  const blocks = parsePem(text);
  if (blocks.length !== 1) throw malformed(`expected exactly one PEM block, found ${blocks.length}`);
  const block = blocks[0]!;
  if (block.label !== 'X509 CRL' && block.label !== 'CRL') throw malformed(`PEM label is "${block.label}", not "X509 CRL"`);
  return block.der;
}

/*
 * The TLV walk. der.readNode returns two Buffer views per node, and a 100,000-entry CRL has some
 * 800,000 nodes: those allocations were most of the parse time. So the parser reads headers into
 * two module variables instead, with the same DER rules as readNode (which still reads the
 * top-level CertificateList, so the whole input is checked by the shared reader first).
 */
let contentStart = 0;
let contentEnd = 0;

/** Reads the TLV at `at`, which must carry `tag` and end by `end`; sets contentStart/contentEnd; returns its end. */
function enter(input: Buffer, at: number, end: number, tag: number, what: string): number {
  if (at >= end) throw malformed(`${what} is missing`);
  if (input[at] !== tag) throw malformed(`expected ${what} but found tag 0x${input[at]!.toString(16)}`);
  if (at + 2 > end) throw malformed(`${what}: truncated header`);
  let length = input[at + 1]!;
  let start = at + 2;
  if (length >= 0x80) {
    const count = length & 0x7f;
    if (count === 0) throw malformed(`${what}: indefinite length is not DER`);
    if (count > 4) throw malformed(`${what}: length too large`);
    if (start + count > end) throw malformed(`${what}: truncated length`);
    if (input[start] === 0) throw malformed(`${what}: non-minimal length`);
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + input[start + i]!;
    if (length < 0x80) throw malformed(`${what}: non-minimal length`);
    start += count;
  }
  if (start + length > end) throw malformed(`${what} runs past its enclosing value`);
  contentStart = start;
  contentEnd = start + length;
  return contentEnd;
}

const tagAt = (input: Buffer, at: number, end: number): number => (at < end ? input[at]! : -1);

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * RFC 5280 §4.1.2.5 Time: UTCTime YYMMDDHHMMSSZ for 1950-2049, GeneralizedTime YYYYMMDDHHMMSSZ
 * from 2050; no fractions, no offsets. Other forms are refused, not guessed at. Returns its end.
 */
let timeValue = new Date(0);
function readTime(input: Buffer, at: number, end: number, what: string): number {
  const tag = tagAt(input, at, end);
  if (tag !== TAG.UTC_TIME && tag !== TAG.GENERALIZED_TIME) throw malformed(`expected ${what} (UTCTime or GeneralizedTime)`);
  const next = enter(input, at, end, tag, what);
  const start = contentStart;
  const digits = tag === TAG.UTC_TIME ? 12 : 14;
  if (next - start !== digits + 1 || input[next - 1] !== 0x5a) {
    throw malformed(`${what} is not in the form ${tag === TAG.UTC_TIME ? 'YYMMDDHHMMSSZ' : 'YYYYMMDDHHMMSSZ'}`);
  }
  for (let i = start; i < start + digits; i++) {
    const byte = input[i]!;
    if (byte < 0x30 || byte > 0x39) throw malformed(`${what} has a non-digit`);
  }
  let p = start;
  let year = (input[p]! - DIGIT_0) * 10 + input[p + 1]! - DIGIT_0;
  if (tag === TAG.UTC_TIME) {
    year += year >= 50 ? 1900 : 2000;
    p += 2;
  } else {
    year = year * 100 + (input[p + 2]! - DIGIT_0) * 10 + input[p + 3]! - DIGIT_0;
    if (year < 2050) throw malformed(`${what} is a GeneralizedTime before 2050 (RFC 5280 requires UTCTime)`);
    p += 4;
  }
  const month = (input[p]! - DIGIT_0) * 10 + input[p + 1]! - DIGIT_0;
  const day = (input[p + 2]! - DIGIT_0) * 10 + input[p + 3]! - DIGIT_0;
  const hour = (input[p + 4]! - DIGIT_0) * 10 + input[p + 5]! - DIGIT_0;
  const minute = (input[p + 6]! - DIGIT_0) * 10 + input[p + 7]! - DIGIT_0;
  const second = (input[p + 8]! - DIGIT_0) * 10 + input[p + 9]! - DIGIT_0;
  const leap = month === 2 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 1 : 0;
  if (month < 1 || month > 12 || day < 1 || day > DAYS_IN_MONTH[month - 1]! + leap || hour > 23 || minute > 59 || second > 59) {
    throw malformed(`${what} is not a valid date and time`);
  }
  timeValue = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  return next;
}

/** Checks a positive (or, with allowZero, non-negative) minimal INTEGER content; returns where its magnitude starts. */
function magnitudeStart(input: Buffer, start: number, end: number, what: string, allowZero: boolean): number {
  if (end === start) throw malformed(`${what} is an empty INTEGER`);
  const first = input[start]!;
  if (first & 0x80) throw malformed(`${what} is negative`);
  if (first === 0 && end - start > 1) {
    if ((input[start + 1]! & 0x80) === 0) throw malformed(`${what} is not minimally encoded`);
    return start + 1;
  }
  if (first === 0 && !allowZero) throw malformed(`${what} is zero`);
  return start;
}

interface ExtensionSpan {
  oid: string;
  critical: boolean;
  /** extnValue OCTET STRING content. */
  start: number;
  end: number;
}

/** Reads `Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension`, given its content bounds. */
function readExtensions(input: Buffer, start: number, end: number, what: string): ExtensionSpan[] {
  if (start === end) throw malformed(`${what} is empty (SIZE (1..MAX))`);
  const out: ExtensionSpan[] = [];
  for (let at = start; at < end; ) {
    const next = enter(input, at, end, TAG.SEQUENCE, `${what} Extension`);
    let p = enter(input, contentStart, next, TAG.OID, `${what} extnID`);
    const extnOid = decodeOid(input.subarray(contentStart, contentEnd), M);
    if (out.some((seen) => seen.oid === extnOid)) throw malformed(`${what} has ${extnOid} twice`);
    let critical = false;
    if (tagAt(input, p, next) === TAG.BOOLEAN) {
      p = enter(input, p, next, TAG.BOOLEAN, `${what} critical`);
      // DER: a BOOLEAN is 0x00 or 0xff, and DEFAULT FALSE is never written out.
      if (contentEnd - contentStart !== 1 || input[contentStart] !== 0xff) throw malformed(`${what} ${extnOid}: critical must be absent or TRUE (0xff)`);
      critical = true;
    }
    if (enter(input, p, next, TAG.OCTET_STRING, `${what} ${extnOid} extnValue`) !== next) throw malformed(`${what} ${extnOid} has fields after extnValue`);
    out.push({ oid: extnOid, critical, start: contentStart, end: contentEnd });
    at = next;
  }
  return out;
}

/** Enters the single TLV that must fill [start, end) (an extnValue, say). */
function enterWhole(input: Buffer, start: number, end: number, tag: number, what: string): void {
  if (enter(input, start, end, tag, what) !== end) throw malformed(`${what} has trailing bytes`);
}

/**
 * The crlEntryExtensions this module writes differ only in their last octet (the reason code), so
 * most entries are recognised by this prefix; a plain loop, as Buffer#compare with offsets costs
 * more in argument checks than the 13 octets do.
 */
const REASON_PREFIX = ENTRY_EXTENSIONS.get('keyCompromise')!.subarray(0, -1);

/** crlEntryExtensions at [at, end): the reason, 'unspecified' without a reasonCode. */
function readEntryReason(input: Buffer, at: number, end: number): RevocationReason {
  if (end - at === REASON_PREFIX.length + 1) {
    let i = 0;
    while (i < REASON_PREFIX.length && input[at + i] === REASON_PREFIX[i]) i++;
    const known = i === REASON_PREFIX.length ? REASON_BY_CODE[input[end - 1]!] : undefined;
    if (known !== undefined) return known;
  }
  if (enter(input, at, end, TAG.SEQUENCE, 'crlEntryExtensions') !== end) throw malformed('fields after crlEntryExtensions');
  // Empty breaks SIZE (1..MAX), but @peculiar/x509's X509CrlGenerator writes it for every entry
  // without a reason, OpenSSL accepts it, and it cannot be read two ways.
  if (contentStart === contentEnd) return 'unspecified';
  let reason: RevocationReason = 'unspecified';
  for (const extension of readExtensions(input, contentStart, contentEnd, 'crlEntryExtensions')) {
    if (extension.oid === OID.reasonCode) {
      enterWhole(input, extension.start, extension.end, 0x0a, 'reasonCode ENUMERATED');
      const known = contentEnd - contentStart === 1 ? REASON_BY_CODE[input[contentStart]!] : undefined;
      if (known === undefined) throw malformed(`reasonCode ${input.toString('hex', contentStart, contentEnd)} is not a supported reason`);
      reason = known;
    } else if (extension.critical) {
      // e.g. certificateIssuer (indirect CRLs): ignoring it would misattribute the entry.
      throw malformed(`unknown critical entry extension ${extension.oid}`);
    }
  }
  return reason;
}

function readRevoked(input: Buffer, start: number, end: number): Map<string, CrlEntry> {
  const revoked = new Map<string, CrlEntry>();
  for (let at = start; at < end; ) {
    const next = enter(input, at, end, TAG.SEQUENCE, 'revoked certificate entry');
    const serialEnd = enter(input, contentStart, next, TAG.INTEGER, 'userCertificate serial');
    const key = input.toString('hex', magnitudeStart(input, contentStart, serialEnd, 'userCertificate serial', false), serialEnd);
    const timeEnd = readTime(input, serialEnd, next, 'revocationDate');
    const revokedAt = timeValue;
    const reason = timeEnd < next ? readEntryReason(input, timeEnd, next) : 'unspecified';
    if (revoked.has(key)) throw malformed(`serial ${key} is listed twice`);
    revoked.set(key, { revokedAt, reason });
    at = next;
  }
  return revoked;
}

/** AlgorithmIdentifier content at [start, end): the OID, after checking it is accepted. */
function readAlgorithm(input: Buffer, start: number, end: number): string {
  const oidEnd = enter(input, start, end, TAG.OID, 'signature algorithm OID');
  const algorithmOid = decodeOid(input.subarray(contentStart, contentEnd), M);
  // Parameters: absent (ECDSA, Ed25519) or NULL (RSA PKCS#1 v1.5); nothing else is accepted.
  if (oidEnd !== end && (end - oidEnd !== 2 || input[oidEnd] !== TAG.NULL || input[oidEnd + 1] !== 0)) {
    throw malformed(`signature algorithm ${algorithmOid} has unexpected parameters`);
  }
  if (!isAcceptedSignatureOid(algorithmOid)) throw malformed(`signature algorithm ${algorithmOid} is not accepted (SHA-2 ECDSA/RSA or Ed25519 only)`);
  return algorithmOid;
}

/** AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] OPTIONAL, authorityCertIssuer [1] OPTIONAL, authorityCertSerialNumber [2] OPTIONAL } */
function readAuthorityKeyId(input: Buffer, start: number, end: number): Buffer | undefined {
  enterWhole(input, start, end, TAG.SEQUENCE, 'authorityKeyIdentifier');
  const fieldsEnd = contentEnd;
  let keyId: Buffer | undefined;
  let lastField = -1;
  for (let at = contentStart; at < fieldsEnd; ) {
    const tag = input[at]!;
    const field = [0x80, 0xa1, 0x82].indexOf(tag);
    if (field <= lastField) throw malformed(`authorityKeyIdentifier has an unexpected or repeated field (tag 0x${tag.toString(16)})`);
    lastField = field;
    at = enter(input, at, fieldsEnd, tag, 'authorityKeyIdentifier field');
    if (tag === 0x80) keyId = Buffer.from(input.subarray(contentStart, contentEnd));
  }
  return keyId;
}

function readCrlNumber(input: Buffer, start: number, end: number): bigint {
  enterWhole(input, start, end, TAG.INTEGER, 'cRLNumber INTEGER');
  if (contentEnd - contentStart > MAX_INTEGER_OCTETS) throw malformed('cRLNumber is longer than 20 octets');
  return BigInt(`0x${input.toString('hex', magnitudeStart(input, contentStart, contentEnd, 'cRLNumber', true), contentEnd)}`);
}

/**
 * Parses a CRL (DER, or PEM labelled 'X509 CRL' or 'CRL') without checking its signature (see
 * verifyCrlSignature). Throws ERR_CRL_MALFORMED naming the first problem.
 */
export function parseCrl(input: Buffer | string): ParsedCrl {
  const der = crlDer(input);
  if (der.length === 0) throw malformed('empty input');
  if (readWhole(der, M).tag !== TAG.SEQUENCE) throw malformed('not a SEQUENCE (CertificateList)');
  const listEnd = enter(der, 0, der.length, TAG.SEQUENCE, 'CertificateList');
  const tbsStart = contentStart;
  const tbsEnd = enter(der, tbsStart, listEnd, TAG.SEQUENCE, 'TBSCertList');
  const tbsContent = contentStart;
  const outerAlgorithmEnd = enter(der, tbsEnd, listEnd, TAG.SEQUENCE, 'signatureAlgorithm');
  const signatureEnd = enter(der, outerAlgorithmEnd, listEnd, TAG.BIT_STRING, 'signature BIT STRING');
  const signatureStart = contentStart;
  if (signatureEnd !== listEnd) throw malformed('fields after the signature');
  if (signatureEnd === signatureStart || der[signatureStart] !== 0) throw malformed('signature BIT STRING has unused bits');

  let at = tbsContent;
  if (tagAt(der, at, tbsEnd) !== TAG.INTEGER) throw malformed('version is missing: v1 CRLs are not accepted');
  at = enter(der, at, tbsEnd, TAG.INTEGER, 'version');
  if (contentEnd - contentStart !== 1 || der[contentStart] !== 1) throw malformed('version must be 1 (v2)');

  const innerAlgorithmStart = at;
  at = enter(der, at, tbsEnd, TAG.SEQUENCE, 'signature AlgorithmIdentifier');
  if (der.compare(der, tbsEnd, outerAlgorithmEnd, innerAlgorithmStart, at) !== 0) {
    throw malformed('TBSCertList.signature differs from CertificateList.signatureAlgorithm');
  }
  const signatureOid = readAlgorithm(der, contentStart, contentEnd);

  const issuerStart = at;
  at = enter(der, at, tbsEnd, TAG.SEQUENCE, 'issuer Name');
  const issuerDer = der.subarray(issuerStart, at);
  at = readTime(der, at, tbsEnd, 'thisUpdate');
  const thisUpdate = timeValue;
  const nextTag = tagAt(der, at, tbsEnd);
  if (nextTag !== TAG.UTC_TIME && nextTag !== TAG.GENERALIZED_TIME) throw malformed('nextUpdate is missing (required here)');
  at = readTime(der, at, tbsEnd, 'nextUpdate');
  const nextUpdate = timeValue;

  // An empty SEQUENCE here is legal ASN.1 (RFC 5280 only asks issuers to omit it): accepted.
  let revoked = new Map<string, CrlEntry>();
  if (tagAt(der, at, tbsEnd) === TAG.SEQUENCE) {
    at = enter(der, at, tbsEnd, TAG.SEQUENCE, 'revokedCertificates');
    revoked = readRevoked(der, contentStart, contentEnd);
  }

  let authorityKeyId: Buffer | undefined;
  let crlNumber: bigint | undefined;
  if (tagAt(der, at, tbsEnd) === 0xa0) {
    at = enter(der, at, tbsEnd, 0xa0, 'crlExtensions [0]');
    enterWhole(der, contentStart, contentEnd, TAG.SEQUENCE, 'crlExtensions');
    for (const extension of readExtensions(der, contentStart, contentEnd, 'crlExtensions')) {
      if (extension.oid === OID.authorityKeyIdentifier) {
        authorityKeyId = readAuthorityKeyId(der, extension.start, extension.end);
      } else if (extension.oid === OID.cRLNumber) {
        crlNumber = readCrlNumber(der, extension.start, extension.end);
      } else if (extension.critical) {
        // issuingDistributionPoint, deltaCRLIndicator, ...: each narrows what the CRL covers.
        throw malformed(`unknown critical CRL extension ${extension.oid}`);
      }
    }
  }
  if (at !== tbsEnd) throw malformed('unexpected fields at the end of TBSCertList');

  return {
    der,
    tbsDer: der.subarray(tbsStart, tbsEnd),
    signatureOid,
    signature: der.subarray(signatureStart + 1, signatureEnd),
    issuerDer,
    authorityKeyId,
    crlNumber,
    thisUpdate,
    nextUpdate,
    revoked,
  };
}

/**
 * True when the CRL names this certificate's subject as its issuer (byte for byte) and its
 * signature verifies with the certificate's key. False on any mismatch or bad signature; throws
 * only when the certificate itself does not parse.
 */
export function verifyCrlSignature(crl: ParsedCrl, issuerCertDer: Buffer): boolean {
  const subjectDer = readIssuerFields(issuerCertDer, new Date(0)).subjectDer;
  if (!subjectDer.equals(crl.issuerDer)) return false;
  return verifyWith(crl.signatureOid, new X509Certificate(issuerCertDer).publicKey, crl.tbsDer, crl.signature);
}

// ---------------------------------------------------------------------------------------------
// Serials

/**
 * The one form a serial is looked up by: lowercase hex of the minimal magnitude (leading zero
 * octets stripped, one octet kept for zero), even length. Takes magnitude bytes, or hex text in
 * any case with optional ':' separators and odd length, as node:crypto and OpenSSL print serials.
 * For serials from randomSerial() it equals serialHex().
 */
export function serialKey(serial: Buffer | string): string {
  let hex: string;
  if (typeof serial === 'string') {
    hex = serial.replaceAll(':', '').toLowerCase();
    if (!/^[0-9a-f]+$/.test(hex)) throw new TypeError(`serialKey: not a hex serial: ${JSON.stringify(serial.slice(0, 80))}`);
    if (hex.length % 2 === 1) hex = `0${hex}`;
  } else {
    if (serial.length === 0) throw new TypeError('serialKey: empty serial');
    hex = serial.toString('hex');
  }
  let start = 0;
  while (start < hex.length - 2 && hex.charCodeAt(start) === DIGIT_0 && hex.charCodeAt(start + 1) === DIGIT_0) start += 2;
  return start === 0 ? hex : hex.slice(start);
}
