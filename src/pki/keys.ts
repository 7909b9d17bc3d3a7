/**
 * Key types tlsmesh issues for and accepts, and the policy that refuses everything else.
 * ECDSA P-256 is the default everywhere: small, fast, supported by every TLS stack we target.
 */
import { createPublicKey, generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto';
import { decodeOid, expectTag, readChildren, readWhole, TAG } from './der.js';
import { OID } from './oids.js';
import { TlsmeshError } from '../errors.js';

export const KEY_TYPES = ['p256', 'p384', 'ed25519', 'rsa2048', 'rsa3072', 'rsa4096'] as const;
export type KeyType = (typeof KEY_TYPES)[number];
export const DEFAULT_KEY_TYPE: KeyType = 'p256';

export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export function isKeyType(value: string): value is KeyType {
  return (KEY_TYPES as readonly string[]).includes(value);
}

/** Generates a key pair of the given type with node:crypto (OpenSSL). */
export function generateKeyPair(type: KeyType = DEFAULT_KEY_TYPE): KeyPair {
  switch (type) {
    case 'p256':
      return generateKeyPairSync('ec', { namedCurve: 'P-256' });
    case 'p384':
      return generateKeyPairSync('ec', { namedCurve: 'P-384' });
    case 'ed25519':
      return generateKeyPairSync('ed25519');
    case 'rsa2048':
    case 'rsa3072':
    case 'rsa4096':
      return generateKeyPairSync('rsa', { modulusLength: Number(type.slice(3)), publicExponent: 0x10001 });
  }
}

export type KeyAlgorithm = 'ecdsa-p256' | 'ecdsa-p384' | 'ed25519' | 'rsa';

export interface KeyDescription {
  algorithm: KeyAlgorithm;
  /** Modulus length for RSA, curve size otherwise. */
  bits: number;
}

const MIN_RSA_BITS = 2048;
const MAX_RSA_BITS = 8192;

/**
 * Describes a public key and enforces the policy: ECDSA P-256/P-384, Ed25519, RSA 2048–8192 with
 * e = 65537. Throws ERR_KEY_WEAK or ERR_KEY_UNSUPPORTED naming what was found.
 */
export function checkPublicKey(key: KeyObject): KeyDescription {
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'ec':
      if (details.namedCurve === 'prime256v1') return { algorithm: 'ecdsa-p256', bits: 256 };
      if (details.namedCurve === 'secp384r1') return { algorithm: 'ecdsa-p384', bits: 384 };
      throw new TlsmeshError(
        'ERR_KEY_UNSUPPORTED',
        `ECDSA curve ${details.namedCurve ?? 'unknown'} is not supported; use P-256 or P-384`,
      );
    case 'ed25519':
      return { algorithm: 'ed25519', bits: 256 };
    case 'rsa': {
      const bits = details.modulusLength ?? 0;
      if (bits < MIN_RSA_BITS) throw new TlsmeshError('ERR_KEY_WEAK', `RSA key of ${bits} bits is too weak; at least ${MIN_RSA_BITS} bits are required`);
      if (bits > MAX_RSA_BITS) throw new TlsmeshError('ERR_KEY_UNSUPPORTED', `RSA key of ${bits} bits is larger than ${MAX_RSA_BITS} bits`);
      if (details.publicExponent !== 65537n) {
        throw new TlsmeshError('ERR_KEY_WEAK', `RSA public exponent ${String(details.publicExponent)} is not allowed; use 65537`);
      }
      return { algorithm: 'rsa', bits };
    }
    default:
      throw new TlsmeshError(
        'ERR_KEY_UNSUPPORTED',
        `key type ${key.asymmetricKeyType ?? 'unknown'} is not supported; use ECDSA P-256/P-384, Ed25519 or RSA`,
      );
  }
}

/** Named curves whose uncompressed points can take the JWK path, by curve OID. */
const JWK_CURVES: Readonly<Record<string, { crv: 'P-256' | 'P-384'; size: number }>> = {
  '1.2.840.10045.3.1.7': { crv: 'P-256', size: 32 },
  '1.3.132.0.34': { crv: 'P-384', size: 48 },
};

/**
 * The JWK form of an SPKI that OpenSSL can import faster than DER (its DER decoder setup costs
 * ~80 µs per key, about as much as the CSR's signature check): uncompressed P-256/P-384 points
 * and Ed25519. Anything else, or anything unusual, returns null and takes the DER path. OpenSSL
 * still validates the key either way (a point not on the curve is refused on import).
 */
function spkiAsJwk(spki: Buffer): JsonWebKey | null {
  const E = 'ERR_KEY_UNSUPPORTED' as const;
  try {
    const [algorithm, key, extra] = readChildren(expectTag(readWhole(spki, E), TAG.SEQUENCE, 'SubjectPublicKeyInfo', E), E);
    const [algorithmOid, parameters, more] = readChildren(expectTag(algorithm, TAG.SEQUENCE, 'AlgorithmIdentifier', E), E);
    const bits = expectTag(key, TAG.BIT_STRING, 'subjectPublicKey', E).content;
    if (extra !== undefined || more !== undefined || bits[0] !== 0) return null;
    const point = bits.subarray(1);
    const oid = decodeOid(expectTag(algorithmOid, TAG.OID, 'algorithm', E).content);
    if (oid === OID.ed25519 && parameters === undefined && point.length === 32) {
      return { kty: 'OKP', crv: 'Ed25519', x: point.toString('base64url') };
    }
    if (oid !== OID.ecPublicKey || parameters?.tag !== TAG.OID) return null;
    const curve = JWK_CURVES[decodeOid(parameters.content)];
    if (curve === undefined || point.length !== 1 + 2 * curve.size || point[0] !== 0x04) return null;
    return {
      kty: 'EC',
      crv: curve.crv,
      x: point.subarray(1, 1 + curve.size).toString('base64url'),
      y: point.subarray(1 + curve.size).toString('base64url'),
    };
  } catch {
    return null; // let OpenSSL's DER decoder give the verdict
  }
}

/** Public key from SubjectPublicKeyInfo DER; ERR_KEY_UNSUPPORTED if OpenSSL cannot read it. */
export function publicKeyFromSpki(spki: Buffer): KeyObject {
  try {
    const jwk = spkiAsJwk(spki);
    return jwk === null ? createPublicKey({ key: spki, format: 'der', type: 'spki' }) : createPublicKey({ key: jwk, format: 'jwk' });
  } catch (cause) {
    throw new TlsmeshError('ERR_KEY_UNSUPPORTED', 'the public key cannot be read (unknown algorithm, bad encoding, or a point not on its curve)', { cause });
  }
}

export function spkiOf(key: KeyObject): Buffer {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  return publicKey.export({ format: 'der', type: 'spki' });
}
