/**
 * The enrolment-token check (src/ca/tokens.ts) against jose as the oracle: for every case the
 * hand-written verifier and `jose.jwtVerify` (same key, issuer, audience, type, clock) must both
 * accept or both refuse, and ours must say why with the expected code.
 */
import { createHmac, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { CompactSign, jwtVerify, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { mintToken, verifyToken } from '../../src/ca/tokens.js';
import { isTlsmeshError } from '../../src/errors.js';

const TD = 'example.org';
const KID = 'token-signing-0011223344556677';
const key = createSecretKey(randomBytes(32));
const otherKey = createSecretKey(randomBytes(32));
const now = new Date('2026-11-22T10:00:00Z');
const nowSeconds = Math.floor(now.getTime() / 1000);
const goodClaims = {
  iss: `spiffe://${TD}/tlsmesh/ca`,
  aud: `tlsmesh:enroll:${TD}`,
  sub: `spiffe://${TD}/api`,
  jti: 'abc123',
  iat: nowSeconds - 10,
  exp: nowSeconds + 600,
  dns: ['api.internal'],
  ip: [],
};
const goodHeader = { alg: 'HS256', kid: KID, typ: 'tlsmesh-enroll+jwt' };

async function signed(header: Record<string, unknown>, claims: Record<string, unknown>, signingKey: KeyObject = key): Promise<string> {
  return new CompactSign(Buffer.from(JSON.stringify(claims))).setProtectedHeader(header as { alg: string }).sign(signingKey);
}

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

interface Case {
  name: string;
  token: () => Promise<string>;
  code: string | null;
  /** A rule of ours that jose does not have (it must then accept the token: we are stricter). */
  oursOnly?: boolean;
}

/** Signs any header with HMAC-SHA256 by hand (jose refuses to sign some of the headers tested). */
function handSigned(header: Record<string, unknown>, claims: Record<string, unknown>): Promise<string> {
  const input = `${b64(header)}.${b64(claims)}`;
  return Promise.resolve(`${input}.${createHmac('sha256', key).update(input).digest('base64url')}`);
}

const cases: Case[] = [
  { name: 'ok/well-formed token', token: () => signed(goodHeader, goodClaims), code: null },
  { name: 'ok/audience as an array', token: () => signed(goodHeader, { ...goodClaims, aud: ['x', `tlsmesh:enroll:${TD}`] }), code: null },
  { name: 'fail/signed with another key', token: () => signed(goodHeader, goodClaims, otherKey), code: 'ERR_TOKEN_INVALID' },
  {
    name: 'fail/payload changed after signing',
    token: async () => {
      const [h, , s] = (await signed(goodHeader, goodClaims)).split('.');
      return `${h}.${b64({ ...goodClaims, sub: `spiffe://${TD}/admin` })}.${s}`;
    },
    code: 'ERR_TOKEN_INVALID',
  },
  {
    name: 'fail/signature truncated',
    token: async () => (await signed(goodHeader, goodClaims)).slice(0, -4),
    code: 'ERR_TOKEN_INVALID',
  },
  { name: 'fail/alg none', token: () => Promise.resolve(`${b64({ ...goodHeader, alg: 'none' })}.${b64(goodClaims)}.`), code: 'ERR_TOKEN_INVALID' },
  { name: 'fail/alg HS384', token: () => signed({ ...goodHeader, alg: 'HS384' }, goodClaims), code: 'ERR_TOKEN_INVALID' },
  { name: 'fail/unknown key id', token: () => signed({ ...goodHeader, kid: 'token-signing-ffff' }, goodClaims), code: 'ERR_TOKEN_INVALID' },
  { name: 'fail/no key id', token: () => signed({ alg: 'HS256', typ: 'tlsmesh-enroll+jwt' }, goodClaims), code: 'ERR_TOKEN_INVALID' },
  { name: 'fail/wrong type', token: () => signed({ ...goodHeader, typ: 'JWT' }, goodClaims), code: 'ERR_TOKEN_AUDIENCE' },
  { name: 'fail/wrong issuer', token: () => signed(goodHeader, { ...goodClaims, iss: 'spiffe://other.org/tlsmesh/ca' }), code: 'ERR_TOKEN_AUDIENCE' },
  { name: 'fail/wrong audience', token: () => signed(goodHeader, { ...goodClaims, aud: 'tlsmesh:enroll:other.org' }), code: 'ERR_TOKEN_AUDIENCE' },
  { name: 'fail/expired', token: () => signed(goodHeader, { ...goodClaims, iat: nowSeconds - 1000, exp: nowSeconds - 1 }), code: 'ERR_TOKEN_EXPIRED' },
  { name: 'fail/expires exactly now', token: () => signed(goodHeader, { ...goodClaims, exp: nowSeconds }), code: 'ERR_TOKEN_EXPIRED' },
  { name: 'fail/issued in the future', token: () => signed(goodHeader, { ...goodClaims, iat: nowSeconds + 600, exp: nowSeconds + 900 }), code: 'ERR_TOKEN_EXPIRED' },
  { name: 'fail/missing jti', token: () => signed(goodHeader, { ...goodClaims, jti: undefined }), code: 'ERR_TOKEN_MALFORMED' },
  { name: 'fail/missing exp', token: () => signed(goodHeader, { ...goodClaims, exp: undefined }), code: 'ERR_TOKEN_MALFORMED' },
  { name: 'fail/dns is not an array', token: () => signed(goodHeader, { ...goodClaims, dns: 'evil.example' }), code: 'ERR_TOKEN_MALFORMED', oursOnly: true },
  { name: 'fail/lifetime over an hour', token: () => signed(goodHeader, { ...goodClaims, exp: goodClaims.iat + 7200 }), code: 'ERR_TOKEN_MALFORMED', oursOnly: true },
  { name: 'fail/crit header', token: () => handSigned({ ...goodHeader, crit: ['x-unknown'], 'x-unknown': 1 }, goodClaims), code: 'ERR_TOKEN_MALFORMED' },
  { name: 'fail/four parts', token: async () => `${await signed(goodHeader, goodClaims)}.x`, code: 'ERR_TOKEN_MALFORMED' },
  { name: 'fail/header not JSON', token: () => Promise.resolve(`${Buffer.from('nope').toString('base64url')}.${b64(goodClaims)}.AAAA`), code: 'ERR_TOKEN_MALFORMED' },
  {
    name: 'fail/payload is a JSON array',
    token: () => new CompactSign(Buffer.from('[1,2]')).setProtectedHeader(goodHeader).sign(key),
    code: 'ERR_TOKEN_MALFORMED',
  },
  { name: 'fail/not base64url', token: () => Promise.resolve(`${b64(goodHeader)}.${b64(goodClaims)}.a+b/c=`), code: 'ERR_TOKEN_MALFORMED' },
  { name: 'fail/oversized', token: () => signed(goodHeader, { ...goodClaims, pad: 'x'.repeat(5000) }), code: 'ERR_TOKEN_MALFORMED', oursOnly: true },
];

async function joseAccepts(token: string): Promise<boolean> {
  try {
    await jwtVerify(token, (header) => (header.kid === KID ? key : otherKey.export().fill(0)), {
      algorithms: ['HS256'],
      issuer: goodClaims.iss,
      audience: goodClaims.aud,
      typ: 'tlsmesh-enroll+jwt',
      currentDate: now,
      requiredClaims: ['jti', 'sub', 'iat', 'exp'],
      maxTokenAge: 3600,
      clockTolerance: 0,
    });
    return true;
  } catch {
    return false;
  }
}

function oursVerdict(token: string): string | null {
  try {
    verifyToken(token, { trustDomain: TD, now, keyFor: (kid) => (kid === KID ? key : undefined) });
    return null;
  } catch (error) {
    if (!isTlsmeshError(error)) throw error;
    return error.code;
  }
}

describe('enrolment token verification', () => {
  it.each(cases)('$name', async ({ token, code, oursOnly }) => {
    const value = await token();
    expect(oursVerdict(value)).toBe(code);
    expect(await joseAccepts(value)).toBe(oursOnly === true || code === null);
  });

  it('ok/a token from mintToken verifies and round-trips its claims', async () => {
    const { token, jti } = await mintToken({ id: KID, key }, TD, {
      spiffeId: `spiffe://${TD}/billing`,
      dnsNames: ['billing.internal'],
      ipAddresses: ['10.0.0.1'],
      issuedAt: new Date(now.getTime() - 5000),
      expiresAt: new Date(now.getTime() + 600_000),
    });
    expect(await joseAccepts(token)).toBe(true);
    const claims = verifyToken(token, { trustDomain: TD, now, keyFor: (kid) => (kid === KID ? key : undefined) });
    expect(claims).toMatchObject({ jti, spiffeId: `spiffe://${TD}/billing`, dnsNames: ['billing.internal'], ipAddresses: ['10.0.0.1'] });
  });

  it('ok/jose itself can mint what we verify with the CA key (SignJWT, HS256)', async () => {
    const token = await new SignJWT({ dns: [], ip: [] })
      .setProtectedHeader(goodHeader)
      .setIssuer(goodClaims.iss)
      .setAudience(goodClaims.aud)
      .setSubject(goodClaims.sub)
      .setJti('j1')
      .setIssuedAt(goodClaims.iat)
      .setExpirationTime(goodClaims.exp)
      .sign(key);
    expect(oursVerdict(token)).toBeNull();
  });
});
