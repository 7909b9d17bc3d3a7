/**
 * IP and DNS SANs (src/pki/ip.ts). The WHATWG URL serializer in Node (IPv6 hosts: lowercase,
 * first longest run of two or more zero groups compressed, as RFC 5952 §4.2) is the second
 * implementation for canonical IPv6 text.
 */
import { describe, expect, it } from 'vitest';
import { bytesToIp, canonicalDnsName, canonicalIp, ipToBytes } from '../../src/pki/ip.js';
import { expectCode } from './support.js';

/** RFC 5952 text by the WHATWG URL serializer. */
const whatwg = (text: string): string => new URL(`http://[${text}]/`).hostname.slice(1, -1);

describe('IPv4', () => {
  it.each([
    { text: '0.0.0.0', bytes: '00000000' },
    { text: '10.1.2.3', bytes: '0a010203' },
    { text: '192.0.2.255', bytes: 'c00002ff' },
    { text: '255.255.255.255', bytes: 'ffffffff' },
  ])('ok/$text ⇄ $bytes', ({ text, bytes }) => {
    expect(ipToBytes(text).toString('hex')).toBe(bytes);
    expect(bytesToIp(Buffer.from(bytes, 'hex'))).toBe(text);
    expect(canonicalIp(text)).toBe(text);
  });
});

describe('IPv6 canonical text (RFC 5952)', () => {
  const cases = [
    { name: 'ok/one zero run compressed', input: '2001:db8::1', canonical: '2001:db8::1' },
    { name: 'ok/full form with leading zeros', input: '2001:0db8:0000:0000:0000:0000:0000:0001', canonical: '2001:db8::1' },
    { name: 'ok/uppercase lowered', input: '2001:DB8::ABCD', canonical: '2001:db8::abcd' },
    { name: 'ok/unspecified address', input: '::', canonical: '::' },
    { name: 'ok/all zeros written out', input: '0:0:0:0:0:0:0:0', canonical: '::' },
    { name: 'ok/loopback', input: '::1', canonical: '::1' },
    { name: 'ok/trailing run', input: '1::', canonical: '1::' },
    { name: 'ok/first of two equal runs is compressed', input: '2001:db8:0:0:1:0:0:1', canonical: '2001:db8::1:0:0:1' },
    { name: 'ok/longest run wins over an earlier shorter one', input: '2001:0:0:1:0:0:0:1', canonical: '2001:0:0:1::1' },
    { name: 'ok/single zero group is not compressed', input: '2001:db8:0:1:1:1:1:1', canonical: '2001:db8:0:1:1:1:1:1' },
    { name: 'ok/single zero group at the end is not compressed', input: '1:2:3:4:5:6:7::', canonical: '1:2:3:4:5:6:7:0' },
    { name: 'ok/single zero group at the start is not compressed', input: '::2:3:4:5:6:7:8', canonical: '0:2:3:4:5:6:7:8' },
    { name: 'ok/no zeros', input: '1:2:3:4:5:6:7:8', canonical: '1:2:3:4:5:6:7:8' },
    { name: 'ok/link-local', input: 'FE80:0:0:0:0202:B3FF:FE1E:8329', canonical: 'fe80::202:b3ff:fe1e:8329' },
    // RFC 5952 §5 RECOMMENDS ::ffff:1.2.3.4 for IPv4-mapped addresses; tlsmesh keeps hex groups
    // because createCsr hands this text to @peculiar/x509, whose IPv6 parser does not read a dotted
    // tail (it would encode ::ffff:1.2.3.4 as ::ffff:1:2). The bytes are what matter and they are
    // checked below; the text only has to be one stable form.
    { name: 'ok/IPv4-mapped address (hex groups)', input: '::ffff:1.2.3.4', canonical: '::ffff:102:304' },
    { name: 'ok/IPv4-mapped address written in hex', input: '::ffff:102:304', canonical: '::ffff:102:304' },
    { name: 'ok/IPv4 tail after other groups', input: '64:ff9b::192.0.2.33', canonical: '64:ff9b::c000:221' },
  ];
  it.each(cases)('$name: $input → $canonical', ({ input, canonical }) => {
    expect(canonicalIp(input)).toBe(canonical);
    expect(canonicalIp(input)).toBe(whatwg(input));
  });

  it('ok/::ffff:1.2.3.4 is the 16 octets of the IPv4-mapped address', () => {
    expect(ipToBytes('::ffff:1.2.3.4').toString('hex')).toBe('00000000000000000000ffff01020304');
  });

  it('ok/2001:db8::1 bytes', () => {
    expect(ipToBytes('2001:db8::1').toString('hex')).toBe('20010db8000000000000000000000001');
  });

  it('ok/bytes → text → bytes round trip, and text agrees with WHATWG, for 2000 addresses with zero runs', () => {
    // Deterministic pseudo-random groups, zero-heavy so every compression case comes up.
    let seed = 0x2545f491;
    const next = (): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed >>> 8;
    };
    for (let n = 0; n < 2000; n++) {
      const bytes = Buffer.alloc(16);
      for (let group = 0; group < 8; group++) {
        const roll = next() % 4;
        bytes.writeUInt16BE(roll < 2 ? 0 : roll === 2 ? next() & 0xff : next() & 0xffff, group * 2);
      }
      const text = bytesToIp(bytes);
      expect(ipToBytes(text).equals(bytes), text).toBe(true);
      expect(text).toBe(whatwg(text));
      expect(canonicalIp(text)).toBe(text);
    }
  });
});

describe('invalid addresses', () => {
  const bad = [
    { name: 'fail/empty', text: '' },
    { name: 'fail/three IPv4 parts', text: '1.2.3' },
    { name: 'fail/IPv4 part over 255', text: '256.1.1.1' },
    { name: 'fail/IPv4 leading zero (octal ambiguity)', text: '01.2.3.4' },
    { name: 'fail/IPv4 with a prefix length', text: '10.0.0.0/8' },
    { name: 'fail/IPv4 with surrounding space', text: ' 10.0.0.1' },
    { name: 'fail/two "::"', text: '1::2::3' },
    { name: 'fail/nine groups', text: '1:2:3:4:5:6:7:8:9' },
    { name: 'fail/group of five hex digits', text: '2001:db8::12345' },
    { name: 'fail/non-hex group', text: '2001:db8::g' },
    { name: 'fail/bracketed IPv6', text: '[::1]' },
    { name: 'fail/IPv6 with a prefix length', text: '2001:db8::/32' },
    { name: 'fail/bad IPv4 tail', text: '::ffff:1.2.3.256' },
    // A zone (scope) ID names an interface on one host: it has no place in a certificate, and
    // dropping it silently would issue for an address nobody asked for.
    { name: 'fail/IPv6 zone ID', text: 'fe80::1%eth0' },
    { name: 'fail/IPv6 numeric zone ID', text: '::1%1' },
    { name: 'fail/IPv4-mapped with a zone ID', text: '::ffff:1.2.3.4%x' },
    { name: 'fail/a DNS name', text: 'example.org' },
  ];
  it.each(bad)('$name', ({ text }) => {
    expectCode(() => ipToBytes(text), 'ERR_SAN_INVALID');
    expectCode(() => canonicalIp(text), 'ERR_SAN_INVALID');
  });

  it.each([0, 3, 5, 15, 17])('fail/bytesToIp of %i octets', (length) => {
    expectCode(() => bytesToIp(Buffer.alloc(length)), 'ERR_SAN_INVALID');
  });
});

describe('canonicalDnsName', () => {
  const label63 = 'a'.repeat(63);
  const name253 = [label63, label63, label63, 'b'.repeat(61)].join('.');
  const ok = [
    { name: 'ok/lowercased', input: 'API.Example.ORG', canonical: 'api.example.org' },
    { name: 'ok/single label', input: 'localhost', canonical: 'localhost' },
    { name: 'ok/trailing root dot removed', input: 'example.org.', canonical: 'example.org' },
    { name: 'ok/hyphens inside labels', input: 'my-service.ns-1.svc', canonical: 'my-service.ns-1.svc' },
    { name: 'ok/punycode label', input: 'xn--bcher-kva.example', canonical: 'xn--bcher-kva.example' },
    { name: 'ok/digits', input: '0day.1a.example', canonical: '0day.1a.example' },
    { name: 'ok/63-character label', input: `${label63}.example`, canonical: `${label63}.example` },
    { name: 'ok/253 characters', input: name253, canonical: name253 },
  ];
  it.each(ok)('$name', ({ input, canonical }) => {
    expect(canonicalDnsName(input)).toBe(canonical);
  });

  const bad = [
    { name: 'fail/empty', input: '' },
    { name: 'fail/root only', input: '.' },
    { name: 'fail/wildcard', input: '*.example.org' },
    { name: 'fail/wildcard inside a label', input: 'a*.example.org' },
    { name: 'fail/empty label', input: 'a..example.org' },
    { name: 'fail/two trailing dots', input: 'example.org..' },
    { name: 'fail/leading dot', input: '.example.org' },
    { name: 'fail/leading hyphen', input: '-a.example.org' },
    { name: 'fail/trailing hyphen', input: 'a-.example.org' },
    { name: 'fail/underscore', input: '_srv.example.org' },
    { name: 'fail/space', input: 'exa mple.org' },
    { name: 'fail/non-ASCII', input: 'bücher.example' },
    { name: 'fail/64-character label', input: `${'a'.repeat(64)}.example` },
    { name: 'fail/254 characters', input: `${name253}b` },
    { name: 'fail/URI instead of a name', input: 'spiffe://example.org/a' },
    { name: 'fail/port', input: 'example.org:443' },
    { name: 'fail/email', input: 'a@example.org' },
  ];
  it.each(bad)('$name', ({ input }) => expectCode(() => canonicalDnsName(input), 'ERR_SAN_INVALID'));
});

describe('DNS names that only look valid', () => {
  it.each([
    ['fail/Kelvin sign folds to k', '\u212Aube.internal'],
    ['fail/all-numeric name is an address', '10.0.0.1'],
    ['fail/all-numeric with trailing dot', '127.0.0.1.'],
  ])('%s', (_name, value) => {
    expect(() => canonicalDnsName(value)).toThrow(expect.objectContaining({ code: 'ERR_SAN_INVALID' }));
  });
});
