/**
 * Key types tlsmesh issues for and accepts, and the policy that refuses everything else.
 * ECDSA P-256 is the default everywhere: small, fast, supported by every TLS stack we target.
 */
import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
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

/** Public key from SubjectPublicKeyInfo DER; ERR_KEY_UNSUPPORTED if OpenSSL cannot read it. */
export function publicKeyFromSpki(spki: Buffer): KeyObject {
  try {
    return createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch (cause) {
    throw new TlsmeshError('ERR_KEY_UNSUPPORTED', 'the public key cannot be read (unknown algorithm or bad encoding)', { cause });
  }
}

export function spkiOf(key: KeyObject): Buffer {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  return publicKey.export({ format: 'der', type: 'spki' });
}
