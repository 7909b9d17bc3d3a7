/**
 * The DER reader and writer (src/pki/der.ts). OpenSSL's `asn1parse -genstr` / `-genconf` and
 * `req -addext keyUsage=…` are the second implementation for OIDs, INTEGERs, lengths and named
 * bit strings; the reader's refusals are checked by the error code the caller chose.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ErrorCode } from '../../src/errors.js';
import {
  bitString,
  booleanTrue,
  decodeOid,
  expectTag,
  explicit,
  namedBits,
  nullValue,
  octetString,
  oid,
  readChildren,
  readNode,
  readWhole,
  sequence,
  smallInteger,
  TAG,
  time,
  tlv,
  unsignedInteger,
} from '../../src/pki/der.js';
import { expectCode, openssl, oracle, scratchDir, type Scratch } from './support.js';

let scratch: Scratch;
beforeAll(() => {
  scratch = scratchDir();
});
afterAll(() => scratch?.remove());

let generated = 0;
/** DER that `openssl asn1parse -genstr <spec>` produces. */
function opensslGenstr(spec: string): Buffer {
  const out = `genstr-${generated++}.der`;
  openssl(['asn1parse', '-genstr', spec, '-out', out, '-noout'], scratch.dir);
  return scratch.read(out);
}

const hex = (buffer: Buffer): string => buffer.toString('hex');

describe('OBJECT IDENTIFIER', () => {
  const oids = [
    { name: 'ok/sha256WithRSAEncryption', dotted: '1.2.840.113549.1.1.11' },
    { name: 'ok/subjectAltName', dotted: '2.5.29.17' },
    { name: 'ok/Ed25519', dotted: '1.3.101.112' },
    { name: 'ok/arc 0.0', dotted: '0.0' },
    { name: 'ok/arc 0.39 (largest second arc under 0)', dotted: '0.39' },
    { name: 'ok/arc 1.39', dotted: '1.39' },
    { name: 'ok/arc 2.40 (second arc past 39 under 2)', dotted: '2.40' },
    { name: 'ok/arc 2.999.3 (first subidentifier takes two octets)', dotted: '2.999.3' },
    { name: 'ok/arcs at every 7-bit boundary', dotted: '1.2.127.128.16383.16384.2097151.2097152' },
    { name: 'ok/arc 2^32 - 1', dotted: '1.2.4294967295' },
    { name: 'ok/arc 2^32', dotted: '1.2.4294967296' },
    { name: 'ok/arc 2^53 - 1 (largest safe integer)', dotted: '1.2.9007199254740991' },
    { name: 'ok/a long OID', dotted: '1.3.6.1.4.1.311.21.20.1.2.3.4.5.6.7.8.9.10' },
  ];
  it.each(oids)('$name: same DER as openssl, decodes back', ({ dotted }) => {
    const ours = oid(dotted);
    expect(hex(ours)).toBe(hex(opensslGenstr(`OID:${dotted}`)));
    expect(ours[0]).toBe(TAG.OID);
    expect(decodeOid(readWhole(ours, 'ERR_INTERNAL').content)).toBe(dotted);
  });

  it('ok/known encoding of subjectAltName', () => {
    expect(hex(oid('2.5.29.17'))).toBe('0603551d11');
  });

  // X.690 §8.19.4: the first arc is 0, 1 or 2, and the second is below 40 under 0 and 1 (otherwise
  // the encoding is ambiguous: 0.40 would read back as 1.0). Empty or non-decimal arcs are typos.
  it.each(['1', '', '1.a', '1.-2', '1.2.9007199254740992', '1..2', '1.2.', ' 1.2', '1.0x10', '1.1e3', '3.1', '0.40', '1.40'])(
    'fail/oid(%j) is a TypeError',
    (dotted) => {
      expect(() => oid(dotted)).toThrow(TypeError);
    },
  );
});

describe('INTEGER', () => {
  const unsigned = [
    { name: 'ok/single small octet', magnitude: '01', der: '020101' },
    { name: 'ok/zero', magnitude: '00', der: '020100' },
    { name: 'ok/zero in two octets', magnitude: '0000', der: '020100' },
    { name: 'ok/leading zeros stripped', magnitude: '00000001', der: '020101' },
    { name: 'ok/0x00 pad when the high bit is set', magnitude: '80', der: '02020080' },
    { name: 'ok/existing pad kept once', magnitude: '0080', der: '02020080' },
    { name: 'ok/extra zeros before a high bit reduced to one pad', magnitude: '000000ff01', der: '020300ff01' },
    { name: 'ok/no pad below 0x80', magnitude: '7fff', der: '02027fff' },
    { name: 'ok/20 octets of 0xff (largest RFC 5280 serial plus pad)', magnitude: 'ff'.repeat(20), der: `021500${'ff'.repeat(20)}` },
  ];
  it.each(unsigned)('$name', ({ magnitude, der }) => {
    const ours = unsignedInteger(Buffer.from(magnitude, 'hex'));
    expect(hex(ours)).toBe(der);
    expect(hex(ours)).toBe(hex(opensslGenstr(`INTEGER:0x${magnitude}`)));
  });

  const small = [
    { value: 0, der: '020100' },
    { value: 1, der: '020101' },
    { value: 127, der: '02017f' },
    { value: 128, der: '02020080' },
    { value: 255, der: '020200ff' },
    { value: 256, der: '02020100' },
    { value: 32768, der: '0203008000' },
    { value: 0x7fffffff, der: '02047fffffff' },
  ];
  it.each(small)('ok/smallInteger($value)', ({ value, der }) => {
    expect(hex(smallInteger(value))).toBe(der);
    expect(hex(smallInteger(value))).toBe(hex(opensslGenstr(`INTEGER:${value}`)));
  });

  it.each([-1, 1.5, 2 ** 31, Number.NaN])('fail/smallInteger(%s) is a TypeError', (value) => {
    expect(() => smallInteger(value)).toThrow(TypeError);
  });
});

describe('lengths', () => {
  const sizes = [
    { size: 0, header: '0400' },
    { size: 1, header: '0401' },
    { size: 127, header: '047f' },
    { size: 128, header: '048180' },
    { size: 255, header: '0481ff' },
    { size: 256, header: '04820100' },
    { size: 65535, header: '0482ffff' },
    { size: 65536, header: '0483010000' },
    { size: 70000, header: '0483011170' },
  ];
  it.each(sizes)('ok/$size content octets: header $header, read back, openssl agrees', ({ size, header }) => {
    const content = Buffer.alloc(size, 0x5a);
    const der = octetString(content);
    expect(hex(der.subarray(0, header.length / 2))).toBe(header);
    expect(der.length).toBe(header.length / 2 + size);
    const node = readWhole(der, 'ERR_INTERNAL');
    expect(node.tag).toBe(TAG.OCTET_STRING);
    expect(node.content.equals(content)).toBe(true);
    expect(node.raw.equals(der)).toBe(true);
    const file = `length-${size}.der`;
    scratch.write(file, der);
    const parsed = openssl(['asn1parse', '-inform', 'DER', '-in', file, '-noout'], scratch.dir);
    expect(parsed).toBe('');
    const shown = openssl(['asn1parse', '-inform', 'DER', '-in', file], scratch.dir).split('\n')[0];
    expect(shown).toMatch(new RegExp(`^\\s*0:d=0\\s+hl=${header.length / 2}\\s+l=\\s*${size}\\s+prim: OCTET STRING`));
  });

  it('ok/a 16 MiB length uses four length octets', () => {
    expect(hex(tlv(TAG.OCTET_STRING, Buffer.alloc(2 ** 24)).subarray(0, 6))).toBe('048401000000');
  });
});

describe('reader refusals, reported with the caller’s code', () => {
  const bad: { name: string; der: string }[] = [
    { name: 'fail/empty input', der: '' },
    { name: 'fail/truncated header (tag only)', der: '04' },
    { name: 'fail/non-minimal length: long form for a length below 128', der: `048105${'00'.repeat(5)}` },
    { name: 'fail/non-minimal length: leading zero length octet', der: `04820080${'00'.repeat(128)}` },
    { name: 'fail/non-minimal length: long form of zero', der: '048100' },
    { name: 'fail/indefinite length', der: '308005000000' },
    { name: 'fail/length past end of input', der: '040501' },
    { name: 'fail/long length past end of input', der: '0484ffffffff00' },
    { name: 'fail/truncated long length', der: '0482ff' },
    { name: 'fail/more than four length octets', der: `0485000000000100` },
    { name: 'fail/multi-byte tag (universal)', der: '1f220100' },
    { name: 'fail/multi-byte tag (context, constructed)', der: 'bf220100' },
    { name: 'fail/trailing bytes after the value', der: '050000' },
    { name: 'fail/two values', der: '05000500' },
  ];
  it.each(bad)('$name', ({ der }) => {
    const input = Buffer.from(der, 'hex');
    expectCode(() => readWhole(input, 'ERR_CSR_MALFORMED'), 'ERR_CSR_MALFORMED');
    expectCode(() => readWhole(input, 'ERR_INTERNAL'), 'ERR_INTERNAL');
  });

  it('fail/a child running past its parent', () => {
    const parent = readWhole(Buffer.from('3003040500', 'hex'), 'ERR_CSR_MALFORMED');
    expectCode(() => readChildren(parent, 'ERR_CSR_MALFORMED'), 'ERR_CSR_MALFORMED');
  });

  it('ok/children of a constructed value, in order', () => {
    const node = readWhole(sequence(nullValue(), booleanTrue(), octetString(Buffer.from('hi'))), 'ERR_INTERNAL');
    expect(readChildren(node, 'ERR_INTERNAL').map((child) => hex(child.raw))).toEqual(['0500', '0101ff', '04026869']);
  });

  it('ok/readNode at an offset', () => {
    const node = readNode(Buffer.from('ffff0500', 'hex'), 2, 'ERR_INTERNAL');
    expect(hex(node.raw)).toBe('0500');
  });

  it.each([
    { name: 'fail/expectTag with another tag', node: () => readWhole(Buffer.from('0500', 'hex'), 'ERR_INTERNAL') },
    { name: 'fail/expectTag with nothing', node: () => undefined },
  ])('$name', ({ node }) => {
    const code: ErrorCode = 'ERR_CSR_MALFORMED';
    expectCode(() => expectTag(node(), TAG.SEQUENCE, 'a SEQUENCE', code), code);
  });
});

describe('time() (RFC 5280 §4.1.2.5)', () => {
  const times = [
    { name: 'ok/last UTCTime second', date: '2049-12-31T23:59:59Z', tag: TAG.UTC_TIME, text: '491231235959Z' },
    { name: 'ok/first GeneralizedTime second', date: '2050-01-01T00:00:00Z', tag: TAG.GENERALIZED_TIME, text: '20500101000000Z' },
    { name: 'ok/2051 is GeneralizedTime', date: '2051-06-30T12:34:56Z', tag: TAG.GENERALIZED_TIME, text: '20510630123456Z' },
    { name: 'ok/first UTCTime year, 1950', date: '1950-01-01T00:00:00Z', tag: TAG.UTC_TIME, text: '500101000000Z' },
    { name: 'ok/before 1950 is GeneralizedTime', date: '1949-12-31T23:59:59Z', tag: TAG.GENERALIZED_TIME, text: '19491231235959Z' },
    { name: 'ok/2000 is UTCTime 00', date: '2000-02-29T12:00:00Z', tag: TAG.UTC_TIME, text: '000229120000Z' },
    { name: 'ok/milliseconds dropped, not rounded', date: '2026-03-01T10:00:00.999Z', tag: TAG.UTC_TIME, text: '260301100000Z' },
    { name: 'ok/99991231235959Z (no well-defined expiration)', date: '9999-12-31T23:59:59Z', tag: TAG.GENERALIZED_TIME, text: '99991231235959Z' },
  ];
  it.each(times)('$name', ({ date, tag, text }) => {
    const der = time(new Date(date));
    expect(der[0]).toBe(tag);
    expect(readWhole(der, 'ERR_INTERNAL').content.toString('ascii')).toBe(text);
    const kind = tag === TAG.UTC_TIME ? 'UTCTIME' : 'GENERALIZEDTIME';
    expect(hex(der)).toBe(hex(opensslGenstr(`${kind}:${text}`)));
  });
});

describe('namedBits vs OpenSSL keyUsage', () => {
  const NAMES = ['digitalSignature', 'nonRepudiation', 'keyEncipherment', 'dataEncipherment', 'keyAgreement', 'keyCertSign', 'cRLSign', 'encipherOnly', 'decipherOnly'];
  const sets = [[0], [0, 2], [5, 6], [1], [4], [0, 8], [8], [4, 7], [2, 3], [0, 1, 2, 3, 4, 5, 6, 7, 8]];

  it.each(sets.map((bits) => ({ bits, label: bits.map((bit) => NAMES[bit]).join(',') })))('ok/$label', ({ bits, label }) => {
    const key = 'ku.key.pem';
    openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key], scratch.dir);
    const out = `ku-${bits.join('-')}.der`;
    openssl(['req', '-new', '-key', key, '-subj', '/O=ku', '-addext', `keyUsage=critical,${label}`, '-outform', 'DER', '-out', out], scratch.dir);
    const csr = new (oracle().Pkcs10CertificateRequest)(new Uint8Array(scratch.read(out)));
    const extension = csr.getExtension('2.5.29.15');
    expect(extension).not.toBeNull();
    expect(hex(namedBits(bits))).toBe(hex(Buffer.from(extension!.value)));
  });

  it('ok/known encodings', () => {
    expect(hex(namedBits([0]))).toBe('03020780');
    expect(hex(namedBits([0, 2]))).toBe('030205a0');
    expect(hex(namedBits([5, 6]))).toBe('03020106');
    expect(hex(namedBits([0, 8]))).toBe('0303078080');
  });
});

describe('small writers', () => {
  it.each([
    { name: 'ok/empty SEQUENCE', der: () => sequence(), hex: '3000' },
    { name: 'ok/NULL', der: () => nullValue(), hex: '0500' },
    { name: 'ok/BOOLEAN TRUE is 0xff', der: () => booleanTrue(), hex: '0101ff' },
    { name: 'ok/BIT STRING of whole octets', der: () => bitString(Buffer.from('abcd', 'hex')), hex: '030300abcd' },
    { name: 'ok/[3] EXPLICIT', der: () => explicit(3, nullValue()), hex: 'a3020500' },
    { name: 'ok/tlv joins several contents', der: () => tlv(TAG.SET, nullValue(), nullValue()), hex: '310405000500' },
  ])('$name', ({ der, hex: expected }) => {
    expect(hex(der())).toBe(expected);
  });
});

describe('decodeOid is strict', () => {
  it.each([
    ['fail/non-minimal subidentifier (leading 0x80)', '2a8648ce3d028001'],
    ['fail/truncated last subidentifier', '2a8648ce3d0281'],
    ['fail/empty', ''],
  ])('%s', (_name, hex) => {
    expectCode(() => decodeOid(Buffer.from(hex, 'hex')), 'ERR_CSR_MALFORMED');
  });
  it('ok/the code can be chosen by the caller', () => {
    expectCode(() => decodeOid(Buffer.from('2a80', 'hex'), 'ERR_KEY_UNSUPPORTED'), 'ERR_KEY_UNSUPPORTED');
  });
});
