/**
 * Getting and renewing a workload certificate from the CA: the key is generated here and never
 * leaves this process; only the CSR is sent.
 */
import { TlsmeshError } from '../errors.js';
import { createCsr, generateKeyPair, parseSpiffeId, type KeyType } from '../pki/index.js';
import { credentialPathsIn } from './paths.js';
import { writeFileAtomic, ensurePrivateDir } from '../fsutil/write-private.js';
import { CaClient, type IssuedResponse } from './ca-client.js';
import { decodeJwt } from 'jose';

export interface Credentials {
  certPem: string;
  keyPem: string;
  bundlePem: string;
}

/** The claims a token carries, read without verifying (the CA verifies): to build the right CSR. */
export function tokenRequest(token: string): { spiffeId: string; dnsNames: string[]; ipAddresses: string[]; trustDomain: string } {
  let payload: Record<string, unknown>;
  try {
    payload = decodeJwt(token.trim());
  } catch (cause) {
    throw new TlsmeshError('ERR_TOKEN_MALFORMED', 'the token is not a well-formed JWT', { cause });
  }
  const spiffeId = parseSpiffeId(String(payload['sub'])).uri;
  const strings = (value: unknown): string[] => (Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : []);
  return { spiffeId, dnsNames: strings(payload['dns']), ipAddresses: strings(payload['ip']), trustDomain: parseSpiffeId(spiffeId).trustDomain };
}

async function newKeyAndCsr(keyType: KeyType, names: { spiffeId: string; dnsNames: string[]; ipAddresses: string[] }): Promise<{ keyPem: string; csr: string }> {
  const key = generateKeyPair(keyType);
  const csr = await createCsr({ privateKey: key.privateKey, publicKey: key.publicKey, ...names });
  return { keyPem: key.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, csr };
}

const credentialsOf = (issued: IssuedResponse, keyPem: string): Credentials => ({ certPem: issued.certificatePem, keyPem, bundlePem: issued.bundlePem });

/** Enrols with a one-time token. `bundlePem` is the CA's root, obtained out of band. */
export async function enrollWithToken(options: { url: string; bundlePem: string; token: string; keyType?: KeyType }): Promise<Credentials & { issued: IssuedResponse }> {
  const token = options.token.trim();
  const request = tokenRequest(token);
  const { keyPem, csr } = await newKeyAndCsr(options.keyType ?? 'p256', request);
  const client = new CaClient({ url: options.url, bundlePem: options.bundlePem, trustDomain: request.trustDomain });
  try {
    const issued = await client.enroll(token, csr);
    return { ...credentialsOf(issued, keyPem), issued };
  } finally {
    client.close();
  }
}

/** Renews over mTLS with the current credentials, with a new key; the same names are asked for. */
export async function renewCredentials(options: { url: string; current: Credentials; spiffeId: string; dnsNames: string[]; ipAddresses: string[]; keyType?: KeyType }): Promise<Credentials & { issued: IssuedResponse }> {
  const { trustDomain } = parseSpiffeId(options.spiffeId);
  const { keyPem, csr } = await newKeyAndCsr(options.keyType ?? 'p256', options);
  const client = new CaClient({ url: options.url, bundlePem: options.current.bundlePem, trustDomain, certPem: options.current.certPem, keyPem: options.current.keyPem });
  try {
    const issued = await client.renew(csr);
    return { ...credentialsOf(issued, keyPem), issued };
  } finally {
    client.close();
  }
}

/** Writes cert.pem, key.pem (0600) and bundle.pem atomically; the key first, so a reader never pairs a new cert with an old key for long. */
export async function writeCredentials(dir: string, credentials: Credentials): Promise<void> {
  await ensurePrivateDir(dir);
  const paths = credentialPathsIn(dir);
  await writeFileAtomic(paths.bundle, credentials.bundlePem, 0o644);
  await writeFileAtomic(paths.key, credentials.keyPem, 0o600);
  await writeFileAtomic(paths.cert, credentials.certPem, 0o644);
}
