/**
 * One-time enrolment tokens: ES256 JWTs signed by a CA-held key, bound to one SPIFFE ID and the
 * DNS/IP SANs it may carry, valid for at most an hour, recorded in the store so each `jti` is
 * redeemed once across every CA process sharing the store.
 */
import { randomBytes, type KeyObject } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { TlsmeshError } from '../errors.js';
import { enrollAudience, caSpiffeId } from './identities.js';

export const MAX_TOKEN_TTL_SECONDS = 3600;
export const DEFAULT_TOKEN_TTL_SECONDS = 900;
/** A token is a few hundred bytes; anything much longer is not one of ours. */
export const MAX_TOKEN_LENGTH = 4096;
const ALGORITHM = 'ES256';

export interface TokenClaims {
  jti: string;
  spiffeId: string;
  dnsNames: string[];
  ipAddresses: string[];
  issuedAt: Date;
  expiresAt: Date;
}

export interface TokenSigningKey {
  id: string;
  privateKey: KeyObject;
}

export async function mintToken(
  key: TokenSigningKey,
  trustDomain: string,
  claims: Omit<TokenClaims, 'jti'> & { jti?: string },
  audience = enrollAudience(trustDomain),
): Promise<{ token: string; jti: string }> {
  const jti = claims.jti ?? randomBytes(16).toString('base64url');
  const token = await new SignJWT({ dns: claims.dnsNames, ip: claims.ipAddresses })
    .setProtectedHeader({ alg: ALGORITHM, kid: key.id, typ: 'tlsmesh-enroll+jwt' })
    .setIssuer(caSpiffeId(trustDomain))
    .setAudience(audience)
    .setSubject(claims.spiffeId)
    .setJti(jti)
    .setIssuedAt(Math.floor(claims.issuedAt.getTime() / 1000))
    .setExpirationTime(Math.floor(claims.expiresAt.getTime() / 1000))
    .sign(key.privateKey);
  return { token, jti };
}

const stringArray = (value: unknown): string[] | null =>
  Array.isArray(value) && value.every((item) => typeof item === 'string') ? value : null;

/**
 * Verifies signature, issuer, audience, expiry and shape. Does not consume the token (the store
 * does that atomically with issuing the certificate). Errors: ERR_TOKEN_MALFORMED, _INVALID,
 * _EXPIRED, _AUDIENCE.
 */
export async function verifyToken(
  token: string,
  options: { trustDomain: string; now: Date; keyFor: (kid: string) => KeyObject | undefined },
): Promise<TokenClaims> {
  if (token.length > MAX_TOKEN_LENGTH) throw new TlsmeshError('ERR_TOKEN_MALFORMED', `token is longer than ${MAX_TOKEN_LENGTH} characters`);
  let kid: string | undefined;
  try {
    kid = decodeProtectedHeader(token).kid;
  } catch (cause) {
    throw new TlsmeshError('ERR_TOKEN_MALFORMED', 'token is not a compact JWS (three base64url parts)', { cause });
  }
  const key = kid === undefined ? undefined : options.keyFor(kid);
  if (key === undefined) throw new TlsmeshError('ERR_TOKEN_INVALID', 'token is not signed by a token key of this CA (unknown key id)');
  try {
    const { payload } = await jwtVerify(token, key, {
      algorithms: [ALGORITHM],
      issuer: caSpiffeId(options.trustDomain),
      audience: enrollAudience(options.trustDomain),
      currentDate: options.now,
      requiredClaims: ['jti', 'sub', 'iat', 'exp'],
      maxTokenAge: MAX_TOKEN_TTL_SECONDS + 60,
      typ: 'tlsmesh-enroll+jwt',
    });
    const dnsNames = stringArray(payload['dns'] ?? []);
    const ipAddresses = stringArray(payload['ip'] ?? []);
    if (dnsNames === null || ipAddresses === null || typeof payload.jti !== 'string' || typeof payload.sub !== 'string') {
      throw new TlsmeshError('ERR_TOKEN_MALFORMED', 'token claims have the wrong types');
    }
    return {
      jti: payload.jti,
      spiffeId: payload.sub,
      dnsNames,
      ipAddresses,
      issuedAt: new Date(payload.iat! * 1000),
      expiresAt: new Date(payload.exp! * 1000),
    };
  } catch (error) {
    throw mapJoseError(error);
  }
}

function mapJoseError(error: unknown): TlsmeshError {
  if (error instanceof TlsmeshError) return error;
  if (error instanceof joseErrors.JWTExpired) return new TlsmeshError('ERR_TOKEN_EXPIRED', 'token has expired', { cause: error });
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    if (error.claim === 'aud' || error.claim === 'iss' || error.claim === 'typ') {
      return new TlsmeshError('ERR_TOKEN_AUDIENCE', `token "${error.claim}" claim is not for this CA's enrolment`, { cause: error });
    }
    if (error.claim === 'iat' || error.claim === 'nbf') {
      return new TlsmeshError('ERR_TOKEN_EXPIRED', `token is outside its validity window ("${error.claim}")`, { cause: error });
    }
    return new TlsmeshError('ERR_TOKEN_MALFORMED', `token claim "${error.claim}" is missing or invalid`, { cause: error });
  }
  if (error instanceof joseErrors.JWSSignatureVerificationFailed || error instanceof joseErrors.JOSEAlgNotAllowed || error instanceof joseErrors.JOSENotSupported) {
    return new TlsmeshError('ERR_TOKEN_INVALID', 'token signature does not verify with this CA\'s token key', { cause: error });
  }
  return new TlsmeshError('ERR_TOKEN_MALFORMED', 'token is not a well-formed JWT', { cause: error });
}

/** Reads claims without verifying: only for a client that wants to know what to ask for. */
export function peekTokenClaims(token: string): { spiffeId: string; dnsNames: string[]; ipAddresses: string[]; issuer: string } {
  try {
    const payload = decodeJwt(token);
    return {
      spiffeId: String(payload.sub),
      dnsNames: stringArray(payload['dns'] ?? []) ?? [],
      ipAddresses: stringArray(payload['ip'] ?? []) ?? [],
      issuer: String(payload.iss),
    };
  } catch (cause) {
    throw new TlsmeshError('ERR_TOKEN_MALFORMED', 'token is not a well-formed JWT', { cause });
  }
}
