/**
 * Private keys sealed with a passphrase for storage at rest: scrypt (N=2^15, r=8, p=1) derives an
 * AES-256-GCM key; the key's purpose label is authenticated data, so a sealed intermediate key
 * cannot be passed off as the token-signing key. The envelope is a small JSON document.
 *
 * Why not encrypted PKCS#8 PEM: OpenSSL's default PBKDF2 with 2048 iterations is cheap to brute
 * force, and it authenticates nothing but the key itself.
 */
import { createCipheriv, createDecipheriv, createPrivateKey, createSecretKey, randomBytes, scrypt, type KeyObject } from 'node:crypto';
import { TlsmeshError } from '../errors.js';

export const MIN_PASSPHRASE_LENGTH = 12;
const SCRYPT = { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const;

interface Envelope {
  v: 1;
  kdf: 'scrypt';
  N: number;
  r: number;
  p: number;
  salt: string;
  iv: string;
  tag: string;
  data: string;
  /** Absent for PKCS#8 private keys. */
  form?: 'secret';
}

function deriveKey(passphrase: string, salt: Buffer, params: { N: number; r: number; p: number }): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(passphrase, salt, 32, { ...params, maxmem: SCRYPT.maxmem }, (error, key) => (error ? reject(error) : resolve(key)));
  });
}

/**
 * Parameters node's scrypt accepts within our memory cap, and p small enough to bound CPU. Checked
 * before calling it: node's own check of bad parameters leaves an OpenSSL error queued that makes
 * the next, valid, key operation fail.
 */
function scryptParamsOk({ N, r, p }: Envelope): boolean {
  return [N, r, p].every(Number.isSafeInteger) && N > 1 && (N & (N - 1)) === 0 && r >= 1 && p >= 1 && p <= 16 && 128 * N * r <= SCRYPT.maxmem;
}

export function checkPassphrase(passphrase: string | undefined): string {
  if (passphrase === undefined || passphrase.length === 0) {
    throw new TlsmeshError('ERR_PASSPHRASE', 'no CA key passphrase given: set TLSMESH_CA_PASSPHRASE or pass --passphrase-file');
  }
  if (passphrase.length < MIN_PASSPHRASE_LENGTH) {
    throw new TlsmeshError('ERR_PASSPHRASE', `the CA key passphrase must be at least ${MIN_PASSPHRASE_LENGTH} characters`);
  }
  return passphrase;
}

/**
 * The authenticated data: the purpose label, plus a marker for secret (symmetric) keys, so an
 * envelope cannot be opened as the other kind of key.
 */
const additionalData = (label: string, secret: boolean): Buffer => Buffer.from(secret ? `${label}#secret` : label);

/**
 * Seals a private key (as PKCS#8) or a secret key (raw bytes); `label` names its purpose and must
 * be given again to open it.
 */
export async function sealPrivateKey(key: KeyObject, passphrase: string, label: string): Promise<string> {
  checkPassphrase(passphrase);
  const salt = randomBytes(16);
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', await deriveKey(passphrase, salt, SCRYPT), iv);
  const secret = key.type === 'secret';
  cipher.setAAD(additionalData(label, secret));
  const plain = secret ? key.export() : key.export({ format: 'der', type: 'pkcs8' });
  const data = Buffer.concat([cipher.update(plain), cipher.final()]);
  const envelope: Envelope = {
    v: 1,
    kdf: 'scrypt',
    N: SCRYPT.N,
    r: SCRYPT.r,
    p: SCRYPT.p,
    salt: salt.toString('base64'),
    iv: iv.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
    data: data.toString('base64'),
    ...(secret ? { form: 'secret' as const } : {}),
  };
  return JSON.stringify(envelope);
}

/** Opens a sealed private or secret key; a wrong passphrase or label is ERR_PASSPHRASE. */
export async function openPrivateKey(sealed: string, passphrase: string, label: string): Promise<KeyObject> {
  let envelope: Envelope;
  try {
    envelope = JSON.parse(sealed) as Envelope;
  } catch (cause) {
    throw new TlsmeshError('ERR_PASSPHRASE', `sealed key "${label}" is not a tlsmesh key envelope`, { cause });
  }
  if (envelope?.v !== 1 || envelope.kdf !== 'scrypt' || !scryptParamsOk(envelope)) {
    throw new TlsmeshError('ERR_PASSPHRASE', `sealed key "${label}" uses an unknown envelope version or parameters`);
  }
  try {
    // Inside the try: a damaged envelope (a field missing or not a string) is ERR_PASSPHRASE too.
    const key = await deriveKey(passphrase, Buffer.from(envelope.salt, 'base64'), envelope);
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(envelope.iv, 'base64'), { authTagLength: 16 });
    const secret = envelope.form === 'secret';
    decipher.setAAD(additionalData(label, secret));
    decipher.setAuthTag(Buffer.from(envelope.tag, 'base64'));
    const plain = Buffer.concat([decipher.update(Buffer.from(envelope.data, 'base64')), decipher.final()]);
    return secret ? createSecretKey(plain) : createPrivateKey({ key: plain, format: 'der', type: 'pkcs8' });
  } catch (cause) {
    throw new TlsmeshError('ERR_PASSPHRASE', `cannot open CA key "${label}": wrong passphrase, or the key was altered`, { cause });
  }
}
