/** SPIFFE ID matching: exact, trust domain, path prefix by whole segments; validation up front. */
import { describe, expect, it } from 'vitest';
import { checkServerSpiffeId, spiffeMatcher, type SpiffeMatchers } from '../../src/sdk/spiffe-matcher.js';
import { expectCode } from '../pki/support.js';
import type { PeerCertificate } from 'node:tls';

const table: [string, SpiffeMatchers, string, boolean][] = [
  ['ok/exact string', 'spiffe://example.org/api', 'spiffe://example.org/api', true],
  ['ok/exact { id }', { id: 'spiffe://example.org/api' }, 'spiffe://example.org/api', true],
  ['fail/exact: other path', 'spiffe://example.org/api', 'spiffe://example.org/api2', false],
  ['fail/exact: below it', 'spiffe://example.org/api', 'spiffe://example.org/api/x', false],
  ['fail/exact: other trust domain', 'spiffe://example.org/api', 'spiffe://example.com/api', false],
  ['ok/trust domain', { trustDomain: 'example.org' }, 'spiffe://example.org/anything/at/all', true],
  ['ok/trust domain: its own ID', { trustDomain: 'example.org' }, 'spiffe://example.org', true],
  ['fail/trust domain: another', { trustDomain: 'example.org' }, 'spiffe://example.org.evil/api', false],
  ['ok/prefix: itself', { pathPrefix: 'spiffe://example.org/billing' }, 'spiffe://example.org/billing', true],
  ['ok/prefix: below', { pathPrefix: 'spiffe://example.org/billing' }, 'spiffe://example.org/billing/api/v2', true],
  ['fail/prefix: a longer segment', { pathPrefix: 'spiffe://example.org/billing' }, 'spiffe://example.org/billing-old', false],
  ['fail/prefix: above', { pathPrefix: 'spiffe://example.org/billing/api' }, 'spiffe://example.org/billing', false],
  ['fail/prefix: other trust domain', { pathPrefix: 'spiffe://example.org/billing' }, 'spiffe://example.com/billing/api', false],
  ['ok/list: second rule', ['spiffe://example.org/a', { pathPrefix: 'spiffe://example.org/b' }], 'spiffe://example.org/b/c', true],
  ['fail/list: none', ['spiffe://example.org/a', { trustDomain: 'example.com' }], 'spiffe://example.org/b', false],
  ['fail/peer ID with ..', { trustDomain: 'example.org' }, 'spiffe://example.org/billing/../admin', false],
  ['fail/peer ID not SPIFFE', { trustDomain: 'example.org' }, 'https://example.org/api', false],
  ['fail/peer ID upper-case scheme', { trustDomain: 'example.org' }, 'SPIFFE://example.org/api', false],
];

describe('spiffeMatcher', () => {
  for (const [name, rules, id, expected] of table) {
    it(`${name}: ${id}`, () => {
      expect(spiffeMatcher(rules)(id)).toBe(expected);
    });
  }

  it('fail/invalid rules are refused when compiled', () => {
    expectCode(() => spiffeMatcher('spiffe://Example.org/api'), 'ERR_SPIFFE_ID_INVALID');
    expectCode(() => spiffeMatcher({ trustDomain: 'bad domain' }), 'ERR_SPIFFE_ID_INVALID');
    expectCode(() => spiffeMatcher({ pathPrefix: 'spiffe://example.org/a/' }), 'ERR_SPIFFE_ID_INVALID');
    expectCode(() => spiffeMatcher([]), 'ERR_CONFIG');
    expect(() => spiffeMatcher({} as unknown as SpiffeMatchers)).toThrow(TypeError);
    expect(() => spiffeMatcher({ id: 'spiffe://example.org/a', trustDomain: 'example.org' })).toThrow(TypeError);
  });

  it('equal rule sets share a key; different ones do not', () => {
    expect(spiffeMatcher(['spiffe://example.org/a', { trustDomain: 'b.org' }]).key).toBe(spiffeMatcher([{ trustDomain: 'b.org' }, { id: 'spiffe://example.org/a' }]).key);
    expect(spiffeMatcher('spiffe://example.org/a').key).not.toBe(spiffeMatcher('spiffe://example.org/b').key);
  });
});

describe('checkServerSpiffeId', () => {
  const check = checkServerSpiffeId(spiffeMatcher('spiffe://example.org/api'));
  const cert = (subjectaltname: string | undefined) => ({ subjectaltname }) as PeerCertificate;

  it('ok/the expected ID, whatever the host name (URI-only certificates work)', () => {
    expect(check('127.0.0.1', cert('URI:spiffe://example.org/api'))).toBeUndefined();
    expect(check('wrong.host', cert('DNS:api.internal, URI:spiffe://example.org/api'))).toBeUndefined();
  });

  it('fail/another ID, none, or two → ERR_SERVER_IDENTITY_MISMATCH naming what was seen', () => {
    expect(check('h', cert('URI:spiffe://example.org/other'))).toMatchObject({ code: 'ERR_SERVER_IDENTITY_MISMATCH', message: expect.stringContaining('spiffe://example.org/other') as unknown });
    expect(check('h', cert(undefined))).toMatchObject({ code: 'ERR_SERVER_IDENTITY_MISMATCH' });
    expect(check('h', cert('URI:spiffe://example.org/api, URI:spiffe://example.org/x'))).toMatchObject({ code: 'ERR_SERVER_IDENTITY_MISMATCH' });
  });
});
