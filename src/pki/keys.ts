/**
 * Key types tlsmesh issues for and accepts, and the policy that refuses everything else.
 * ECDSA P-256 is the default everywhere: small, fast, supported by every TLS stack we target.
 */
import { createPublicKey, generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto';
import { expectTag, readChildren, readWhole, TAG } from './der.js';
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

/**
 * The only AlgorithmIdentifier encodings accepted in a workload's SubjectPublicKeyInfo, byte for
 * byte: named curves (no explicit parameters, which strict validators and Go refuse), Ed25519
 * without parameters, rsaEncryption with NULL. An SPKI the CA accepts is copied verbatim into the
 * certificate, so anything another parser could read differently is refused here.
 */
const SPKI_ALGORITHMS: readonly { der: Buffer; kind: 'ec' | 'ed25519' | 'rsa'; crv?: 'P-256' | 'P-384'; size?: number }[] = [
  { der: Buffer.from('301306072a8648ce3d020106082a8648ce3d030107', 'hex'), kind: 'ec', crv: 'P-256', size: 32 },
  { der: Buffer.from('301006072a8648ce3d020106052b81040022', 'hex'), kind: 'ec', crv: 'P-384', size: 48 },
  { der: Buffer.from('300506032b6570', 'hex'), kind: 'ed25519' },
  { der: Buffer.from('300d06092a864886f70d0101010500', 'hex'), kind: 'rsa' },
];

/** p = 2^255 - 19, little-endian: Ed25519 y coordinates at or above it are non-canonical. */
const ED25519_P = Buffer.from('edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', 'hex');

/**
 * The y coordinates (sign bit cleared) of Ed25519's small-order points: the identity (y = 1),
 * order 2 (y = -1), order 4 (y = 0) and order 8 (two values). With such a key the signature
 * (R = identity, S = 0) verifies for every message in OpenSSL: accepting one would let a CSR
 * "prove" possession of a key nobody holds. Same list as libsodium's small-order check.
 */
const ED25519_SMALL_ORDER_Y = [
  '0100000000000000000000000000000000000000000000000000000000000000',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  '0000000000000000000000000000000000000000000000000000000000000000',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
].map((hex) => Buffer.from(hex, 'hex'));

function checkEd25519Point(point: Buffer): void {
  const y = Buffer.from(point);
  y[31]! &= 0x7f;
  // Little-endian comparison with p: compare from the most significant byte.
  let nonCanonical = true;
  for (let i = 31; i >= 0; i--) {
    if (y[i]! !== ED25519_P[i]!) {
      nonCanonical = y[i]! > ED25519_P[i]!;
      break;
    }
  }
  if (nonCanonical) throw new TlsmeshError('ERR_KEY_WEAK', 'the Ed25519 public key is not canonically encoded');
  if (ED25519_SMALL_ORDER_Y.some((small) => small.equals(y))) {
    throw new TlsmeshError('ERR_KEY_WEAK', 'the Ed25519 public key is a small-order point (anyone could sign for it)');
  }
}

/**
 * Public key from SubjectPublicKeyInfo DER, refusing non-canonical encodings (ERR_KEY_UNSUPPORTED)
 * and degenerate Ed25519 points (ERR_KEY_WEAK). EC and Ed25519 keys are imported through JWK,
 * ~2x faster than OpenSSL's DER decoder (whose setup costs about as much as the CSR's signature
 * check); OpenSSL still validates them (a point off its curve is refused on import).
 */
export function publicKeyFromSpki(spki: Buffer): KeyObject {
  const E = 'ERR_KEY_UNSUPPORTED' as const;
  const [algorithm, key, extra] = readChildren(expectTag(readWhole(spki, E), TAG.SEQUENCE, 'SubjectPublicKeyInfo', E), E);
  const bits = expectTag(key, TAG.BIT_STRING, 'subjectPublicKey', E).content;
  if (extra !== undefined || bits[0] !== 0) throw new TlsmeshError(E, 'the SubjectPublicKeyInfo is malformed');
  const known = SPKI_ALGORITHMS.find((candidate) => candidate.der.equals(expectTag(algorithm, TAG.SEQUENCE, 'AlgorithmIdentifier', E).raw));
  if (known === undefined) {
    throw new TlsmeshError(E, 'the key algorithm is not ECDSA P-256/P-384 (named curve), Ed25519 or RSA, or its parameters are not in canonical form');
  }
  const point = bits.subarray(1);
  let jwk: JsonWebKey | null = null;
  if (known.kind === 'ec') {
    if (point.length !== 1 + 2 * known.size! || point[0] !== 0x04) {
      throw new TlsmeshError(E, 'EC public keys must be uncompressed points (compressed points cannot be read by Go and others)');
    }
    jwk = { kty: 'EC', crv: known.crv!, x: point.subarray(1, 1 + known.size!).toString('base64url'), y: point.subarray(1 + known.size!).toString('base64url') };
  } else if (known.kind === 'ed25519') {
    if (point.length !== 32) throw new TlsmeshError(E, 'an Ed25519 public key is 32 octets');
    checkEd25519Point(point);
    jwk = { kty: 'OKP', crv: 'Ed25519', x: point.toString('base64url') };
  }
  try {
    return jwk === null ? createPublicKey({ key: spki, format: 'der', type: 'spki' }) : createPublicKey({ key: jwk, format: 'jwk' });
  } catch (cause) {
    throw new TlsmeshError(E, 'the public key cannot be read (bad encoding, or a point not on its curve)', { cause });
  }
}

export function spkiOf(key: KeyObject): Buffer {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  return publicKey.export({ format: 'der', type: 'spki' });
}
