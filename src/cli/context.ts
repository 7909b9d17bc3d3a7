/**
 * Where the CLI finds the CA and the admin credentials: flags over environment over the data
 * directory (`--data-dir`, TLSMESH_DATA_DIR, default ./tlsmesh-ca).
 */
import { constants } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import { TlsmeshError } from '../errors.js';
import { caPaths } from '../ca/data-dir.js';
import { credentialPathsIn } from '../client/paths.js';
import { readCaFile, resolveCaConfig } from '../ca/config.js';
import { CaClient } from '../client/ca-client.js';
import { ensurePrivateDir } from '../fsutil/write-private.js';
import { parseSpiffeId, spiffeIdsOf } from '../pki/index.js';

export const DEFAULT_DATA_DIR = 'tlsmesh-ca';

export interface ConnectionFlags {
  ca?: string;
  dataDir?: string;
  adminDir?: string;
}

export const dataDirOf = (flags: ConnectionFlags): string => flags.dataDir ?? process.env['TLSMESH_DATA_DIR'] ?? DEFAULT_DATA_DIR;

export async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (cause) {
    throw new TlsmeshError('ERR_CONFIG', `cannot read ${what} at ${path}`, { cause });
  }
}

/**
 * Refuses (ERR_CONFIG) a directory the CLI cannot write into, before anything is spent at the CA: a
 * one-time token redeemed, or a token made, whose result could then not be saved. With `create`,
 * makes it (0700) as the credential writer would.
 */
export async function ensureWritableDir(dir: string, what: string, create: boolean): Promise<void> {
  try {
    if (create) await ensurePrivateDir(dir);
    await access(dir, constants.W_OK);
  } catch (cause) {
    throw new TlsmeshError('ERR_CONFIG', `cannot write ${what} into ${dir}`, { cause });
  }
}

/** The CA URL: --ca, TLSMESH_CA_URL, or the data directory's configured public URL. */
export async function caUrlOf(flags: ConnectionFlags): Promise<string> {
  const explicit = flags.ca ?? process.env['TLSMESH_CA_URL'];
  if (explicit !== undefined) return explicit;
  const dataDir = dataDirOf(flags);
  return resolveCaConfig(dataDir, await readCaFile(dataDir)).publicUrl;
}

/** The single SPIFFE ID a PEM chain's leaf names. */
export function spiffeIdOfChain(certPem: string): string {
  const leaf = new X509Certificate(certPem);
  const ids = spiffeIdsOf(leaf.subjectAltName);
  if (ids.length !== 1) throw new TlsmeshError('ERR_CONFIG', `the certificate names ${ids.length} SPIFFE IDs; expected exactly one`);
  return ids[0]!;
}

/** A client authenticated with the credentials in `dir` (cert.pem, key.pem, bundle.pem). */
export async function clientWithCredentials(url: string, dir: string): Promise<{ client: CaClient; spiffeId: string }> {
  const files = credentialPathsIn(dir);
  const [certPem, keyPem, bundlePem] = await Promise.all([
    readText(files.cert, 'the certificate'),
    readText(files.key, 'the private key'),
    readText(files.bundle, 'the trust bundle'),
  ]);
  const spiffeId = spiffeIdOfChain(certPem);
  const { trustDomain } = parseSpiffeId(spiffeId);
  return { client: new CaClient({ url, bundlePem, trustDomain, certPem, keyPem }), spiffeId };
}

export async function adminClient(flags: ConnectionFlags): Promise<CaClient> {
  const adminDir = flags.adminDir ?? process.env['TLSMESH_ADMIN_DIR'] ?? caPaths(dataDirOf(flags)).adminDir;
  return (await clientWithCredentials(await caUrlOf(flags), adminDir)).client;
}

