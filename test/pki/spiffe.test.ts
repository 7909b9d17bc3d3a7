/**
 * SPIFFE IDs per the SPIFFE ID specification (spiffe/spiffe standards/SPIFFE-ID.md): scheme
 * `spiffe` in lowercase, a non-empty trust domain of lowercase letters, digits, `.`, `-`, `_` (at
 * most 255 bytes, §2.3), no userinfo, port, query or fragment, path segments of letters, digits,
 * `.`, `-`, `_` that are never empty, `.` or `..`, and at most 2048 bytes in all. The table
 * follows the shape of go-spiffe's spiffeid tests.
 */
import { describe, expect, it } from 'vitest';
import { parseSpiffeId, parseWorkloadId, spiffeIdOf, validateTrustDomain } from '../../src/pki/spiffe.js';
import { expectCode } from './support.js';

const label63 = 'a'.repeat(63);
/** A trust domain of exactly `bytes` bytes: 63-char labels joined by dots, then a tail. */
function trustDomainOf(bytes: number): string {
  let td = '';
  while (td.length + 64 <= bytes) td += `${label63}.`;
  td += 'b'.repeat(bytes - td.length);
  return td;
}
/** A SPIFFE ID of exactly `bytes` bytes. */
function idOf(bytes: number): string {
  const head = 'spiffe://example.org';
  let path = '';
  while (head.length + path.length + 101 <= bytes) path += `/${'p'.repeat(100)}`;
  const rest = bytes - head.length - path.length;
  return head + path + (rest > 0 ? `/${'q'.repeat(rest - 1)}` : '');
}

describe('parseSpiffeId', () => {
  const ok: { name: string; id: string; trustDomain: string; path: string }[] = [
    { name: 'ok/trust domain ID, no path', id: 'spiffe://example.org', trustDomain: 'example.org', path: '' },
    { name: 'ok/workload path', id: 'spiffe://example.org/ns/prod/sa/api', trustDomain: 'example.org', path: '/ns/prod/sa/api' },
    { name: 'ok/spec example', id: 'spiffe://k8s-west.example.com/ns/staging/sa/default', trustDomain: 'k8s-west.example.com', path: '/ns/staging/sa/default' },
    { name: 'ok/opaque path', id: 'spiffe://example.com/9eebccd2-12bf-40a6-b262-65fe0487d453', trustDomain: 'example.com', path: '/9eebccd2-12bf-40a6-b262-65fe0487d453' },
    { name: 'ok/all trust domain characters', id: 'spiffe://a-b_c.0-9/x', trustDomain: 'a-b_c.0-9', path: '/x' },
    { name: 'ok/all path characters', id: 'spiffe://example.org/AZaz09.-_', trustDomain: 'example.org', path: '/AZaz09.-_' },
    { name: 'ok/single-character trust domain', id: 'spiffe://a/b', trustDomain: 'a', path: '/b' },
    { name: 'ok/segments that only contain dots are fine beyond . and ..', id: 'spiffe://example.org/.a/a./.../..b', trustDomain: 'example.org', path: '/.a/a./.../..b' },
    { name: 'ok/path that looks like a SPIFFE ID scheme word', id: 'spiffe://example.org/spiffe', trustDomain: 'example.org', path: '/spiffe' },
    { name: 'ok/trust domain of exactly 255 bytes', id: `spiffe://${trustDomainOf(255)}/a`, trustDomain: trustDomainOf(255), path: '/a' },
  ];
  it.each(ok)('$name', ({ id, trustDomain, path }) => {
    expect(parseSpiffeId(id)).toEqual({ trustDomain, path, uri: id });
  });

  it('ok/an ID of exactly 2048 bytes', () => {
    const id = idOf(2048);
    expect(Buffer.byteLength(id)).toBe(2048);
    expect(parseSpiffeId(id).uri).toBe(id);
  });

  const fail: { name: string; id: string }[] = [
    { name: 'fail/empty', id: '' },
    { name: 'fail/no scheme', id: 'example.org/a' },
    { name: 'fail/other scheme', id: 'https://example.org/a' },
    { name: 'fail/uppercase scheme', id: 'SPIFFE://example.org/a' },
    { name: 'fail/mixed-case scheme', id: 'Spiffe://example.org/a' },
    { name: 'fail/missing double slash', id: 'spiffe:example.org/a' },
    { name: 'fail/single slash', id: 'spiffe:/example.org/a' },
    { name: 'fail/scheme only', id: 'spiffe://' },
    { name: 'fail/empty trust domain with a path', id: 'spiffe:///a' },
    { name: 'fail/uppercase trust domain', id: 'spiffe://Example.org/a' },
    { name: 'fail/all-uppercase trust domain', id: 'spiffe://EXAMPLE.ORG' },
    { name: 'fail/port', id: 'spiffe://example.org:8443/a' },
    { name: 'fail/empty port', id: 'spiffe://example.org:/a' },
    { name: 'fail/userinfo', id: 'spiffe://user@example.org/a' },
    { name: 'fail/userinfo with password', id: 'spiffe://user:password@example.org/a' },
    { name: 'fail/query', id: 'spiffe://example.org/a?x=1' },
    { name: 'fail/empty query', id: 'spiffe://example.org/a?' },
    { name: 'fail/query on the trust domain', id: 'spiffe://example.org?x=1' },
    { name: 'fail/fragment', id: 'spiffe://example.org/a#f' },
    { name: 'fail/fragment on the trust domain', id: 'spiffe://example.org#f' },
    { name: 'fail/double slash at the start of the path', id: 'spiffe://example.org//a' },
    { name: 'fail/double slash inside the path', id: 'spiffe://example.org/a//b' },
    { name: 'fail/trailing slash after the trust domain', id: 'spiffe://example.org/' },
    { name: 'fail/trailing slash after a segment', id: 'spiffe://example.org/a/' },
    { name: 'fail/dot segment', id: 'spiffe://example.org/./a' },
    { name: 'fail/dot-dot segment', id: 'spiffe://example.org/a/../b' },
    { name: 'fail/final dot-dot segment', id: 'spiffe://example.org/a/..' },
    { name: 'fail/percent-encoding in the path', id: 'spiffe://example.org/a%41' },
    { name: 'fail/percent-encoding in the trust domain', id: 'spiffe://exa%6Dple.org/a' },
    { name: 'fail/space in the path', id: 'spiffe://example.org/a b' },
    { name: 'fail/colon in the path', id: 'spiffe://example.org/a:b' },
    { name: 'fail/at sign in the path', id: 'spiffe://example.org/a@b' },
    { name: 'fail/sub-delims in the path', id: "spiffe://example.org/p!a$t&h'(e)*+,;=" },
    { name: 'fail/tilde in the path', id: 'spiffe://example.org/~a' },
    { name: 'fail/backslash in the path', id: 'spiffe://example.org/a\\b' },
    { name: 'fail/non-ASCII in the path', id: 'spiffe://example.org/café' },
    { name: 'fail/non-ASCII in the trust domain', id: 'spiffe://exämple.org/a' },
    { name: 'fail/bang in the trust domain', id: 'spiffe://exam!ple.org/a' },
    { name: 'fail/IPv6 literal trust domain', id: 'spiffe://[::1]/a' },
    { name: 'fail/leading space', id: ' spiffe://example.org/a' },
    { name: 'fail/trailing newline', id: 'spiffe://example.org/a\n' },
    { name: 'fail/NUL in the path', id: 'spiffe://example.org/a\u0000' },
    { name: 'fail/longer than 2048 bytes', id: idOf(2049) },
    { name: 'fail/longer than 2048 bytes only when counted in UTF-8 bytes', id: `${idOf(2046)}é` },
    { name: 'fail/trust domain longer than 255 bytes', id: `spiffe://${trustDomainOf(256)}/a` },
    { name: 'fail/trust domain longer than 255 bytes, no path', id: `spiffe://${trustDomainOf(300)}` },
  ];
  it.each(fail)('$name', ({ id }) => expectCode(() => parseSpiffeId(id), 'ERR_SPIFFE_ID_INVALID'));

  it('fail/not a string is a TypeError (API misuse, not bad data)', () => {
    expect(() => parseSpiffeId(42 as unknown as string)).toThrow(TypeError);
  });
});

describe('validateTrustDomain', () => {
  const ok = ['example.org', 'a', 'my_td-1.test', '0', trustDomainOf(255)];
  it.each(ok.map((td) => ({ name: `ok/${td.length > 40 ? `${td.length} bytes` : td}`, td })))('$name', ({ td }) => {
    expect(validateTrustDomain(td)).toBe(td);
  });

  const fail: { name: string; td: string }[] = [
    { name: 'fail/empty', td: '' },
    { name: 'fail/uppercase', td: 'Example.org' },
    { name: 'fail/port', td: 'example.org:8443' },
    { name: 'fail/with scheme', td: 'spiffe://example.org' },
    { name: 'fail/with a path', td: 'example.org/a' },
    { name: 'fail/space', td: 'exa mple.org' },
    { name: 'fail/percent-encoded', td: 'exa%6dple.org' },
    { name: 'fail/non-ASCII', td: 'exämple.org' },
    { name: 'fail/256 bytes', td: trustDomainOf(256) },
  ];
  it.each(fail)('$name', ({ td }) => expectCode(() => validateTrustDomain(td), 'ERR_SPIFFE_ID_INVALID'));

  it('ok/parseSpiffeId and validateTrustDomain agree on trust domains of 1 to 300 bytes', () => {
    for (let bytes = 1; bytes <= 300; bytes++) {
      const td = trustDomainOf(bytes);
      const alone = (() => {
        try {
          validateTrustDomain(td);
          return true;
        } catch {
          return false;
        }
      })();
      const inId = (() => {
        try {
          parseSpiffeId(`spiffe://${td}/a`);
          return true;
        } catch {
          return false;
        }
      })();
      expect({ bytes, inId }).toEqual({ bytes, inId: alone });
    }
  });
});

describe('parseWorkloadId', () => {
  it('ok/workload in the trust domain', () => {
    expect(parseWorkloadId('spiffe://example.org/ns/prod/sa/api', 'example.org')).toEqual({
      trustDomain: 'example.org',
      path: '/ns/prod/sa/api',
      uri: 'spiffe://example.org/ns/prod/sa/api',
    });
  });

  const fail: { name: string; id: string; code: 'ERR_SPIFFE_ID_INVALID' | 'ERR_SPIFFE_ID_FOREIGN' }[] = [
    { name: 'fail/empty path (the trust domain ID itself)', id: 'spiffe://example.org', code: 'ERR_SPIFFE_ID_INVALID' },
    { name: 'fail/other trust domain', id: 'spiffe://other.org/a', code: 'ERR_SPIFFE_ID_FOREIGN' },
    { name: 'fail/subdomain of the trust domain', id: 'spiffe://sub.example.org/a', code: 'ERR_SPIFFE_ID_FOREIGN' },
    { name: 'fail/parent of the trust domain', id: 'spiffe://org/a', code: 'ERR_SPIFFE_ID_FOREIGN' },
    { name: 'fail/trust domain as a prefix', id: 'spiffe://example.organisation/a', code: 'ERR_SPIFFE_ID_FOREIGN' },
    { name: 'fail/invalid ID in another trust domain is invalid first', id: 'spiffe://other.org/a/', code: 'ERR_SPIFFE_ID_INVALID' },
    { name: 'fail/uppercase variant of the trust domain', id: 'spiffe://EXAMPLE.org/a', code: 'ERR_SPIFFE_ID_INVALID' },
  ];
  it.each(fail)('$name', ({ id, code }) => expectCode(() => parseWorkloadId(id, 'example.org'), code));
});

describe('spiffeIdOf', () => {
  it('ok/joins trust domain and path', () => {
    expect(spiffeIdOf('example.org', '/ns/a')).toBe('spiffe://example.org/ns/a');
    expect(spiffeIdOf('example.org', '')).toBe('spiffe://example.org');
  });
  it.each([
    { name: 'fail/trailing slash', path: '/a/' },
    { name: 'fail/dot-dot', path: '/a/../b' },
  ])('$name', ({ path }) => expectCode(() => spiffeIdOf('example.org', path), 'ERR_SPIFFE_ID_INVALID'));
});

describe('spiffeIdOf', () => {
  it('ok/joins a trust domain and a path', () => {
    expect(spiffeIdOf('example.org', '/a/b')).toBe('spiffe://example.org/a/b');
  });
  it.each([
    ['fail/path without a leading slash would change the trust domain', 'example.org', 'a'],
    ['fail/invalid trust domain', 'Example.org', '/a'],
  ])('%s', (_name, trustDomain, path) => {
    expect(() => spiffeIdOf(trustDomain, path)).toThrow(expect.objectContaining({ code: 'ERR_SPIFFE_ID_INVALID' }));
  });
});
