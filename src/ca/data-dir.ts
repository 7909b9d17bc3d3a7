/**
 * `tlsmesh ca init`: a data directory with the configuration, the SQLite store (unless another
 * store is named), the trust bundle and the admin client credentials; optionally the root key
 * written elsewhere to be kept offline. Directories 0700, files 0600.
 */
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { TlsmeshError } from '../errors.js';
import { certificatesToPem, createCsr, fingerprintOf, generateKeyPair, toPem, type KeyType } from '../pki/index.js';
import { ensurePrivateDir, writeFileAtomic } from '../fsutil/write-private.js';
import { openStore, type Store } from '../store/index.js';
import { credentialPathsIn } from '../client/paths.js';
import { Authority } from './authority.js';
import { CONFIG_FILE, readCaFile, resolveCaConfig, type CaFileConfig } from './config.js';
import { adminSpiffeId } from './identities.js';
import { initCa } from './init.js';
import { Keyring } from './keyring.js';

export const caPaths = (dataDir: string) =>
  ({
    config: join(dataDir, CONFIG_FILE),
    bundle: join(dataDir, 'bundle.pem'),
    adminDir: join(dataDir, 'admin'),
  }) as const;


export interface InitDataDirOptions {
  dataDir: string;
  trustDomain: string;
  passphrase: string;
  store?: string | undefined;
  listen?: string | undefined;
  publicUrl?: string | undefined;
  keyType?: KeyType | undefined;
  /** Write the root certificate and sealed root key here and keep the key out of the store. */
  offlineRootDir?: string | undefined;
  now?: Date;
}

export interface InitDataDirResult {
  trustDomain: string;
  configPath: string;
  bundlePath: string;
  adminDir: string;
  offlineRootFiles: { cert: string; key: string } | null;
  rootFingerprint: string;
}

const exists = (path: string): Promise<boolean> => access(path).then(() => true, () => false);

export async function initDataDir(options: InitDataDirOptions): Promise<InitDataDirResult> {
  const paths = caPaths(options.dataDir);
  if (await exists(paths.config)) {
    throw new TlsmeshError('ERR_CA_ALREADY_INITIALIZED', `${paths.config} already exists; this data directory holds a CA`);
  }
  if (options.offlineRootDir !== undefined) {
    // Before any key exists: a root key that could not be written out would be lost for good.
    try {
      await ensurePrivateDir(options.offlineRootDir);
      await access(options.offlineRootDir, constants.W_OK);
    } catch (cause) {
      throw new TlsmeshError('ERR_CONFIG', `cannot write the offline root into ${options.offlineRootDir}`, { cause });
    }
  }
  await ensurePrivateDir(options.dataDir);
  const file: CaFileConfig = {
    trustDomain: options.trustDomain,
    ...(options.store !== undefined ? { store: options.store } : {}),
    ...(options.listen !== undefined ? { listen: options.listen } : {}),
    ...(options.publicUrl !== undefined ? { publicUrl: options.publicUrl } : {}),
  };
  const config = resolveCaConfig(options.dataDir, file, {}, {});
  const store = await openStore(config.store);
  try {
    await store.migrate();
    const created = await initCa({
      store,
      trustDomain: config.trustDomain,
      passphrase: options.passphrase,
      keyType: options.keyType ?? 'p256',
      offlineRoot: options.offlineRootDir !== undefined,
      ...(options.now ? { now: options.now } : {}),
    });
    await writeFileAtomic(paths.config, toYaml({ ...file, rootFingerprints: [fingerprintOf(created.rootCertDer)] }));
    await writeFileAtomic(paths.bundle, toPem(created.rootCertDer, 'CERTIFICATE'));

    let offlineRootFiles: InitDataDirResult['offlineRootFiles'] = null;
    if (options.offlineRootDir !== undefined && created.offlineRootKey !== null) {
      await ensurePrivateDir(options.offlineRootDir);
      offlineRootFiles = { cert: join(options.offlineRootDir, 'root-cert.pem'), key: join(options.offlineRootDir, 'root-key.sealed.json') };
      await writeFileAtomic(offlineRootFiles.cert, toPem(created.rootCertDer, 'CERTIFICATE'));
      await writeFileAtomic(offlineRootFiles.key, created.offlineRootKey);
    }

    // The admin client certificate: its key is made here and never stored by the CA.
    const keyring = await Keyring.load(store, options.passphrase, { pinnedRoots: [fingerprintOf(created.rootCertDer)] });
    const authority = new Authority({ store, keyring, lifetimes: { leafSeconds: config.leafSeconds, adminSeconds: config.adminSeconds } });
    const adminKey = generateKeyPair('p256');
    const adminId = adminSpiffeId(config.trustDomain);
    const issued = await authority.issueDirect(await createCsr({ privateKey: adminKey.privateKey, spiffeId: adminId }), { spiffeId: adminId, dnsNames: [], ipAddresses: [] }, 'admin', 'init');
    await ensurePrivateDir(paths.adminDir);
    const admin = credentialPathsIn(paths.adminDir);
    await writeFileAtomic(admin.key, adminKey.privateKey.export({ format: 'pem', type: 'pkcs8' }));
    await writeFileAtomic(admin.cert, issued.certificatePem);
    await writeFileAtomic(admin.bundle, certificatesToPem(keyring.roots));

    return {
      trustDomain: config.trustDomain,
      configPath: paths.config,
      bundlePath: paths.bundle,
      adminDir: paths.adminDir,
      offlineRootFiles,
      rootFingerprint: fingerprintOf(created.rootCertDer),
    };
  } finally {
    await store.close();
  }
}

/**
 * After a rotation step: pins added or dropped in ca.yaml's rootFingerprints (the CA refuses a
 * root it does not pin), and the data directory's bundle.pem (and the admin's) rewritten with
 * every root the store still uses. Other CA hosts need the same pins: the CLI says so.
 */
export async function updateDataDirTrust(dataDir: string, store: Store, pins: { add?: readonly string[]; remove?: readonly string[] }): Promise<{ bundlePem: string; rootFingerprints: string[] }> {
  const paths = caPaths(dataDir);
  const file = await readCaFile(dataDir);
  const current = file.rootFingerprints ?? [];
  const rootFingerprints = [...new Set([...current, ...(pins.add ?? [])])].filter((fingerprint) => !(pins.remove ?? []).includes(fingerprint));
  await writeFileAtomic(paths.config, toYaml({ ...file, rootFingerprints }));
  const roots = (await store.listCaKeys()).filter((record) => record.kind === 'root' && record.state !== 'retired' && record.certDer !== null).map((record) => record.certDer!);
  const bundlePem = certificatesToPem(roots);
  await writeFileAtomic(paths.bundle, bundlePem);
  if (await exists(paths.adminDir)) await writeFileAtomic(credentialPathsIn(paths.adminDir).bundle, bundlePem);
  return { bundlePem, rootFingerprints };
}
