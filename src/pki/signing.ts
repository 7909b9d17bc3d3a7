/**
 * Signature algorithms: which AlgorithmIdentifier and digest go with a CA key, and verification of
 * a signature given its AlgorithmIdentifier OID. SHA-1 and RSA-PSS are not accepted.
 */
import { sign, verify, type KeyObject } from 'node:crypto';
import { nullValue, oid, sequence } from './der.js';
import { OID } from './oids.js';

export interface SignatureAlgorithm {
  /** DER AlgorithmIdentifier to put in TBSCertificate.signature and Certificate.signatureAlgorithm. */
  identifier: Buffer;
  /** node:crypto digest name, or null for Ed25519. */
  hash: 'sha256' | 'sha384' | null;
}

/** The algorithm a CA key signs with: ECDSA with the curve's matching SHA-2, RSA PKCS#1 v1.5 SHA-256, Ed25519. */
export function signatureAlgorithmFor(privateKey: KeyObject): SignatureAlgorithm {
  switch (privateKey.asymmetricKeyType) {
    case 'ec':
      return privateKey.asymmetricKeyDetails?.namedCurve === 'secp384r1'
        ? { identifier: sequence(oid(OID.ecdsaWithSha384)), hash: 'sha384' }
        : { identifier: sequence(oid(OID.ecdsaWithSha256)), hash: 'sha256' };
    case 'rsa':
      return { identifier: sequence(oid(OID.sha256WithRsa), nullValue()), hash: 'sha256' };
    case 'ed25519':
      return { identifier: sequence(oid(OID.ed25519)), hash: null };
    default:
      throw new TypeError(`unsupported CA key type ${privateKey.asymmetricKeyType ?? 'unknown'}`);
  }
}

export function signWith(privateKey: KeyObject, algorithm: SignatureAlgorithm, data: Buffer): Buffer {
  return sign(algorithm.hash, data, privateKey);
}

/**
 * signWith on libuv's thread pool: the CA's event loop goes on serving other requests meanwhile
 * (bench/README.md measures what that is worth to issuance).
 */
export function signWithAsync(privateKey: KeyObject, algorithm: SignatureAlgorithm, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    sign(algorithm.hash, data, privateKey, (error, signature) => (error ? reject(error) : resolve(signature)));
  });
}

/** Per accepted OID: the key type it signs with and its digest. */
const VERIFY: Readonly<Record<string, { keyType: 'ec' | 'rsa' | 'ed25519'; hash: 'sha256' | 'sha384' | 'sha512' | null }>> = {
  [OID.ecdsaWithSha256]: { keyType: 'ec', hash: 'sha256' },
  [OID.ecdsaWithSha384]: { keyType: 'ec', hash: 'sha384' },
  [OID.ecdsaWithSha512]: { keyType: 'ec', hash: 'sha512' },
  [OID.sha256WithRsa]: { keyType: 'rsa', hash: 'sha256' },
  [OID.sha384WithRsa]: { keyType: 'rsa', hash: 'sha384' },
  [OID.sha512WithRsa]: { keyType: 'rsa', hash: 'sha512' },
  [OID.ed25519]: { keyType: 'ed25519', hash: null },
};

export function isAcceptedSignatureOid(algorithmOid: string): boolean {
  return algorithmOid in VERIFY;
}

/**
 * The digest to verify `algorithmOid` with, or undefined when the OID is not accepted or names
 * another key type than `publicKey`'s: node:crypto takes the scheme from the key and only the
 * digest from us, so an OID naming RSA over an EC key would otherwise verify as ECDSA.
 */
function verifyDigest(algorithmOid: string, publicKey: KeyObject): { hash: string | null } | undefined {
  const algorithm = VERIFY[algorithmOid];
  return algorithm === undefined || algorithm.keyType !== publicKey.asymmetricKeyType ? undefined : algorithm;
}

/** Verifies a signature made with the algorithm named by `algorithmOid`; false on any mismatch. */
export function verifyWith(algorithmOid: string, publicKey: KeyObject, data: Buffer, signature: Buffer): boolean {
  const algorithm = verifyDigest(algorithmOid, publicKey);
  if (algorithm === undefined) return false;
  try {
    return verify(algorithm.hash, data, publicKey, signature);
  } catch {
    // OpenSSL throws on some malformed signatures (or a digest given for Ed25519): a bad signature.
    return false;
  }
}

/** verifyWith on libuv's thread pool; resolves false on any mismatch, never rejects. */
export function verifyWithAsync(algorithmOid: string, publicKey: KeyObject, data: Buffer, signature: Buffer): Promise<boolean> {
  const algorithm = verifyDigest(algorithmOid, publicKey);
  if (algorithm === undefined) return Promise.resolve(false);
  return new Promise((resolve) => {
    try {
      verify(algorithm.hash, data, publicKey, signature, (error, valid) => resolve(error === null && valid));
    } catch {
      // Argument errors are thrown before the job is queued (same cases as verifyWith's catch).
      resolve(false);
    }
  });
}
