/**
 * One-time enrolment tokens: JWTs (HS256) bound to one SPIFFE ID and the DNS/IP SANs it may
 * carry, valid for at most an hour, recorded in the store so each `jti` is redeemed once across
 * every CA process sharing the store.
 *
 * HS256, not ES256: the CA is the only party that mints and the only party that verifies, so a
 * 256-bit secret (sealed in the store like the other CA keys) is as unforgeable as a signature
 * key, and checking it costs ~7 µs instead of ~90 µs (sync ECDSA) or ~230 µs (jose over
 * WebCrypto) — a fifth of an issuance. jose mints the tokens and is the oracle in the tests; the
 * check below accepts exactly one algorithm and one header shape, nothing negotiable.
 */
import { createHmac, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import { TlsmeshError } from '../errors.js';
import { caSpiffeId, enrollAudience } from './identities.js';

export const MAX_TOKEN_TTL_SECONDS = 3600;
export const DEFAULT_TOKEN_TTL_SECONDS = 900;
/** A token is a few hundred bytes; anything much longer is not one of ours. */
export const MAX_TOKEN_LENGTH = 4096;
export const TOKEN_ALGORITHM = 'HS256';
export const TOKEN_TYPE = 'tlsmesh-enroll+jwt';
/** Clock difference tolerated between CA processes for `iat`. */
const CLOCK_TOLERANCE_SECONDS = 60;

export interface TokenClaims {
  jti: string;
  spiffeId: string;
  dnsNames: string[];
  ipAddresses: string[];
  issuedAt: Date;
  expiresAt: Date;
}

export interface TokenKey {
  id: string;
  /** A secret KeyObject of 32 random bytes. */
  key: KeyObject;
}

export async function mintToken(
  signer: TokenKey,
  trustDomain: string,
  claims: Omit<TokenClaims, 'jti'> & { jti?: string },
  audience = enrollAudience(trustDomain),
): Promise<{ token: string; jti: string }> {
  const jti = claims.jti ?? randomBytes(16).toString('base64url');
  const token = await new SignJWT({ dns: claims.dnsNames, ip: claims.ipAddresses })
    .setProtectedHeader({ alg: TOKEN_ALGORITHM, kid: signer.id, typ: TOKEN_TYPE })
    .setIssuer(caSpiffeId(trustDomain))
    .setAudience(audience)
    .setSubject(claims.spiffeId)
    .setJti(jti)
    .setIssuedAt(Math.floor(claims.issuedAt.getTime() / 1000))
    .setExpirationTime(Math.floor(claims.expiresAt.getTime() / 1000))
    .sign(signer.key);
  return { token, jti };
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;
const malformed = (why: string): TlsmeshError => new TlsmeshError('ERR_TOKEN_MALFORMED', `token is malformed: ${why}`);

function decodeJsonPart(part: string, what: string): Record<string, unknown> {
  if (!BASE64URL.test(part)) throw malformed(`${what} is not base64url`);
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    throw malformed(`${what} is not JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw malformed(`${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

const stringArray = (value: unknown): string[] | null =>
  Array.isArray(value) && value.every((item) => typeof item === 'string') ? value : null;

/**
 * Verifies header, MAC, issuer, audience, lifetime and shape, in that order. Does not consume the
 * token (the store does that atomically with issuing the certificate). Errors: ERR_TOKEN_MALFORMED,
 * _INVALID (MAC, algorithm, key), _EXPIRED (also not yet valid), _AUDIENCE (issuer, audience, type).
 */
export function verifyToken(token: string, options: { trustDomain: string; now: Date; keyFor: (kid: string) => KeyObject | undefined }): TokenClaims {
  if (token.length > MAX_TOKEN_LENGTH) throw malformed(`longer than ${MAX_TOKEN_LENGTH} characters`);
  const parts = token.split('.');
  if (parts.length !== 3) throw malformed('a compact JWS has three dot-separated parts');
  const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];

  const header = decodeJsonPart(headerPart, 'header');
  if (header['alg'] !== TOKEN_ALGORITHM) {
    throw new TlsmeshError('ERR_TOKEN_INVALID', `token algorithm ${JSON.stringify(header['alg'])} is not accepted (only ${TOKEN_ALGORITHM})`);
  }
  if (header['crit'] !== undefined || header['b64'] !== undefined) throw malformed('critical header parameters are not supported');
  const key = typeof header['kid'] === 'string' ? options.keyFor(header['kid']) : undefined;
  if (key === undefined) throw new TlsmeshError('ERR_TOKEN_INVALID', 'token is not signed by a token key of this CA (unknown key id)');

  if (!BASE64URL.test(signaturePart)) throw malformed('signature is not base64url');
  const signature = Buffer.from(signaturePart, 'base64url');
  const expected = createHmac('sha256', key).update(`${headerPart}.${payloadPart}`).digest();
  if (signature.length !== expected.length || !timingSafeEqual(signature, expected)) {
    throw new TlsmeshError('ERR_TOKEN_INVALID', "token signature does not verify with this CA's token key");
  }

  // Authentic from here on: what follows is about whether it is meant for this use, now.
  if (header['typ'] !== TOKEN_TYPE) throw new TlsmeshError('ERR_TOKEN_AUDIENCE', `token type is not ${TOKEN_TYPE}`);
  const payload = decodeJsonPart(payloadPart, 'payload');
  if (payload['iss'] !== caSpiffeId(options.trustDomain)) throw new TlsmeshError('ERR_TOKEN_AUDIENCE', "token issuer is not this CA");
  const audience = enrollAudience(options.trustDomain);
  const aud = payload['aud'];
  if (aud !== audience && !(Array.isArray(aud) && aud.includes(audience))) {
    throw new TlsmeshError('ERR_TOKEN_AUDIENCE', "token audience is not this CA's enrolment");
  }
  const { jti, sub, iat, exp } = payload;
  if (typeof jti !== 'string' || jti === '' || typeof sub !== 'string' || typeof iat !== 'number' || typeof exp !== 'number') {
    throw malformed('claims jti, sub, iat and exp are required');
  }
  const dnsNames = stringArray(payload['dns'] ?? []);
  const ipAddresses = stringArray(payload['ip'] ?? []);
  if (dnsNames === null || ipAddresses === null) throw malformed('claims dns and ip must be arrays of strings');
  if (exp - iat > MAX_TOKEN_TTL_SECONDS) throw malformed(`lifetime longer than ${MAX_TOKEN_TTL_SECONDS} seconds`);
  const now = options.now.getTime() / 1000;
  if (now >= exp) throw new TlsmeshError('ERR_TOKEN_EXPIRED', 'token has expired');
  if (iat > now + CLOCK_TOLERANCE_SECONDS) throw new TlsmeshError('ERR_TOKEN_EXPIRED', 'token is not valid yet (issued in the future)');
  return { jti, spiffeId: sub, dnsNames, ipAddresses, issuedAt: new Date(iat * 1000), expiresAt: new Date(exp * 1000) };
}
