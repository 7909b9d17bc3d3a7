/**
 * Opening the CA's store from the CLI: the `--data-dir`/`--store` options and `withStore`, shared
 * by the commands that work on the store directly (`ca rotate`, `ca audit-log`).
 */
import type { Command } from 'commander';
import { readCaFile, resolveCaConfig } from '../ca/config.js';
import { TlsmeshError } from '../errors.js';
import { openStore, type Store } from '../store/index.js';
import { dataDirOf } from './context.js';

export interface StoreFlags {
  dataDir?: string;
  store?: string;
}

/**
 * Opens the store the data directory configures, runs `body`, closes it. It is migrated first,
 * unless `readOnly`: then it is opened read-only, and a store whose schema is behind or ahead of
 * this version is refused, never changed (the audit-log commands check evidence, which must not
 * be rewritten by the check).
 */
export async function withStore<T>(flags: StoreFlags, body: (store: Store, dataDir: string) => Promise<T>, options: { readOnly?: boolean } = {}): Promise<T> {
  const dataDir = dataDirOf(flags);
  const config = resolveCaConfig(dataDir, await readCaFile(dataDir), { store: flags.store });
  const store = await openStore(config.store, { readOnly: options.readOnly === true });
  try {
    if (options.readOnly) await refuseOtherSchema(store);
    else await store.migrate();
    return await body(store, dataDir);
  } finally {
    await store.close();
  }
}

/** A store read as it is must have exactly this version's schema: older or newer is refused. */
async function refuseOtherSchema(store: Store): Promise<void> {
  const { pending, unknown } = await store.migrationStatus();
  const hint = 'this command reads the store as it is and never upgrades it: run it with the tlsmesh version that wrote the store';
  if (unknown.length > 0) {
    throw new TlsmeshError('ERR_STORE', `the store was upgraded by a newer tlsmesh (migrations ${unknown.join(', ')} are unknown to this one); ${hint}`);
  }
  if (pending.length > 0) {
    throw new TlsmeshError(
      'ERR_STORE',
      `the store's schema is ${pending.length} migration(s) behind this tlsmesh (${pending.join(', ')}); ${hint}, or on a copy that \`tlsmesh ca serve\` has upgraded`,
    );
  }
}

export const storeOptions = (command: Command): Command =>
  command
    .option('--data-dir <dir>', 'the CA data directory (default ./tlsmesh-ca)')
    .option('--store <url>', 'override the configured store (e.g. postgres://…)');
