/**
 * A minimal, strict DER reader and writer: just what the CSR parser and the leaf encoder need.
 *
 * Hand-written because issuance speed is won in encoding (see DESIGN.md); the tests compare
 * everything built here with @peculiar/x509 and OpenSSL. The reader rejects anything that is not
 * DER: indefinite or non-minimal lengths, lengths past the end of the input, multi-byte tags.
 */
import { TlsmeshError, type ErrorCode } from '../errors.js';

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

// ---------------------------------------------------------------------------------------------
// Writing

function encodeLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One TLV with the given tag and content. */
export function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = content.length === 1 ? content[0]! : Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), encodeLength(body.length), body]);
}

export const sequence = (...items: Buffer[]): Buffer => tlv(TAG.SEQUENCE, ...items);
export const set = (...items: Buffer[]): Buffer => tlv(TAG.SET, ...items);
export const octetString = (content: Buffer): Buffer => tlv(TAG.OCTET_STRING, content);
export const nullValue = (): Buffer => Buffer.from([TAG.NULL, 0]);
export const booleanTrue = (): Buffer => Buffer.from([TAG.BOOLEAN, 1, 0xff]);
/** Context-specific constructed tag `[n]` (EXPLICIT tagging wraps a whole TLV). */
export const explicit = (n: number, ...items: Buffer[]): Buffer => tlv(0xa0 | n, ...items);

/** BIT STRING of whole octets (0 unused bits), as used for keys and signatures. */
export const bitString = (content: Buffer): Buffer => tlv(TAG.BIT_STRING, Buffer.from([0]), content);

/** A named-bit BIT STRING (KeyUsage style): trailing zero bits are dropped, as DER requires. */
export function namedBits(bits: readonly number[]): Buffer {
  const highest = Math.max(...bits);
  const bytes = Buffer.alloc(Math.floor(highest / 8) + 1);
  for (const bit of bits) bytes[bit >> 3]! |= 0x80 >> (bit & 7);
  const unused = 7 - (highest & 7);
  return tlv(TAG.BIT_STRING, Buffer.from([unused]), bytes);
}

/** INTEGER from unsigned big-endian magnitude bytes (minimal, positive). */
export function unsignedInteger(magnitude: Buffer): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const trimmed = magnitude.subarray(start);
  const needsPad = (trimmed[0]! & 0x80) !== 0;
  return tlv(TAG.INTEGER, needsPad ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

export function smallInteger(value: number): Buffer {
  if (!Number.isInteger(value) || value < 0 || value > 0x7fffffff) throw new TypeError(`smallInteger: ${value}`);
  const bytes: number[] = [];
  let rest = value;
  do {
    bytes.unshift(rest & 0xff);
    rest = Math.floor(rest / 256);
  } while (rest > 0);
  if (bytes[0]! & 0x80) bytes.unshift(0);
  return tlv(TAG.INTEGER, Buffer.from(bytes));
}

export function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  // Decimal arcs only (Number('') is 0, Number('0x10') is 16); X.690 §8.19.4 limits the first two.
  if (!/^\d+(\.\d+)+$/.test(dotted) || arcs.some((arc) => !Number.isSafeInteger(arc)) || arcs[0]! > 2 || (arcs[0]! < 2 && arcs[1]! >= 40)) {
    throw new TypeError(`bad OID ${dotted}`);
  }
  const out: number[] = [];
  const pushArc = (arc: number): void => {
    const chunk: number[] = [arc & 0x7f];
    for (let rest = Math.floor(arc / 128); rest > 0; rest = Math.floor(rest / 128)) chunk.unshift(0x80 | (rest & 0x7f));
    out.push(...chunk);
  };
  pushArc(arcs[0]! * 40 + arcs[1]!);
  for (const arc of arcs.slice(2)) pushArc(arc);
  return tlv(TAG.OID, Buffer.from(out));
}

const pad2 = (n: number): string => String(n).padStart(2, '0');

/** `MMDDHHMMSSZ`: the part UTCTime and GeneralizedTime share (whole seconds, Z). */
function monthToSecond(date: Date): string {
  return pad2(date.getUTCMonth() + 1) + pad2(date.getUTCDate()) + pad2(date.getUTCHours()) + pad2(date.getUTCMinutes()) + pad2(date.getUTCSeconds()) + 'Z';
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; always whole seconds, Z. */
export function time(date: Date): Buffer {
  const year = date.getUTCFullYear();
  if (year >= 1950 && year < 2050) return tlv(TAG.UTC_TIME, Buffer.from(pad2(year % 100) + monthToSecond(date), 'ascii'));
  return generalizedTime(date);
}

/** GeneralizedTime, whole seconds, Z, whatever the year (OCSP uses it for every date, RFC 6960 §4.2.1). */
export function generalizedTime(date: Date): Buffer {
  const year = date.getUTCFullYear();
  if (!Number.isFinite(date.getTime()) || year < 0 || year > 9999) throw new TypeError(`invalid date for GeneralizedTime: ${String(date)}`);
  return tlv(TAG.GENERALIZED_TIME, Buffer.from(String(year).padStart(4, '0') + monthToSecond(date), 'ascii'));
}

// ---------------------------------------------------------------------------------------------
// Reading

export interface DerNode {
  tag: number;
  /** The whole TLV. */
  raw: Buffer;
  /** The content octets. */
  content: Buffer;
}

// A function, not a closure inside readNode: readNode runs for every DER node of every CSR.
function malformedAt(code: ErrorCode, offset: number, why: string): never {
  throw new TlsmeshError(code, `malformed DER at byte ${offset}: ${why}`);
}

/**
 * Reads one TLV at `offset`. Errors are TlsmeshError with the code the caller chose, so a broken
 * CSR reports ERR_CSR_MALFORMED and not a generic parse error.
 */
export function readNode(input: Buffer, offset: number, code: ErrorCode): DerNode {
  if (offset + 2 > input.length) malformedAt(code, offset, 'truncated header');
  const tag = input[offset]!;
  if ((tag & 0x1f) === 0x1f) malformedAt(code, offset, 'multi-byte tags are not used here');
  let length = input[offset + 1]!;
  let header = 2;
  if (length === 0x80) malformedAt(code, offset, 'indefinite length is not DER');
  if (length > 0x80) {
    const count = length & 0x7f;
    if (count > 4) malformedAt(code, offset, 'length too large');
    if (offset + 2 + count > input.length) malformedAt(code, offset, 'truncated length');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + input[offset + 2 + i]!;
    if (length < 0x80 || input[offset + 2] === 0) malformedAt(code, offset, 'non-minimal length');
    header += count;
  }
  const end = offset + header + length;
  if (end > input.length) malformedAt(code, offset, 'length past end of input');
  return { tag, raw: input.subarray(offset, end), content: input.subarray(offset + header, end) };
}

/** The TLVs inside a constructed node, in order. */
export function readChildren(node: DerNode, code: ErrorCode): DerNode[] {
  const out: DerNode[] = [];
  let offset = 0;
  while (offset < node.content.length) {
    const child = readNode(node.content, offset, code);
    out.push(child);
    offset += child.raw.length;
  }
  return out;
}

/** Reads exactly one TLV spanning the whole input (nothing may trail it). */
export function readWhole(input: Buffer, code: ErrorCode): DerNode {
  const node = readNode(input, 0, code);
  if (node.raw.length !== input.length) throw new TlsmeshError(code, 'trailing bytes after DER value');
  return node;
}

export function expectTag(node: DerNode | undefined, tag: number, what: string, code: ErrorCode): DerNode {
  if (node?.tag !== tag) {
    const seen = node === undefined ? 'nothing' : `tag 0x${node.tag.toString(16)}`;
    throw new TlsmeshError(code, `expected ${what} but found ${seen}`);
  }
  return node;
}

/**
 * Dotted form of OID content octets. Strict (X.690 §8.19.2): a subidentifier never starts with
 * 0x80 (non-minimal) and the last octet ends one; anything else is `code`, so the same bytes
 * cannot mean one thing here and another (or nothing) to OpenSSL.
 */
export function decodeOid(content: Buffer, code: ErrorCode = 'ERR_CSR_MALFORMED'): string {
  if (content.length === 0 || (content[content.length - 1]! & 0x80) !== 0) {
    throw new TlsmeshError(code, 'malformed OBJECT IDENTIFIER: empty or truncated');
  }
  const arcs: number[] = [];
  let value = 0;
  let starting = true;
  for (const byte of content) {
    if (starting && byte === 0x80) throw new TlsmeshError(code, 'malformed OBJECT IDENTIFIER: non-minimal subidentifier');
    if (value > (Number.MAX_SAFE_INTEGER - 0x7f) / 128) throw new TlsmeshError(code, 'malformed OBJECT IDENTIFIER: subidentifier too large');
    value = value * 128 + (byte & 0x7f);
    starting = (byte & 0x80) === 0;
    if ((byte & 0x80) === 0) {
      if (arcs.length === 0) {
        const first = value < 80 ? Math.floor(value / 40) : 2;
        arcs.push(first, value - first * 40);
      } else {
        arcs.push(value);
      }
      value = 0;
    }
  }
  return arcs.join('.');
}
