/**
 * `tlsmesh ca rotate prepare|activate|retire|status`: staged rotation of the CA's own keys, run
 * on a CA host against the store (src/ca/rotation.ts). Running CA processes pick each step up
 * within a second; nothing restarts. The runbook is docs/rotation-and-revocation.md.
 */
import { join } from 'node:path';
import type { Command } from 'commander';
import { readPassphrase } from '../ca/config.js';
import { updateDataDirTrust } from '../ca/data-dir.js';
import { activateRotation, prepareRotation, retireRotation, rotationStatus } from '../ca/rotation.js';
import { ensurePrivateDir, writeFileAtomic } from '../fsutil/write-private.js';
import { toPem } from '../pki/index.js';
import { readText } from './context.js';
import { examples, printJson } from './output.js';
import { storeOptions, withStore, type StoreFlags } from './store-access.js';

export function registerRotateCommands(ca: Command): void {
  const rotate = ca
    .command('rotate')
    .description('rotate the CA keys in stages, with no restart: prepare, activate, retire')
    .addHelpText('after', examples(['tlsmesh ca rotate prepare', 'tlsmesh ca rotate status', 'tlsmesh ca rotate activate', 'tlsmesh ca rotate retire']));

  storeOptions(rotate.command('prepare'))
    .description('make a new intermediate (and with --root a new root, published in the bundle at once); nothing signs with it yet')
    .option('--root', 'also make a new root, which signs the new intermediate')
    .option('--root-key <file>', 'the sealed root key file when the root is kept offline (as `ca init --offline-root` wrote it)')
    .option('--offline-root <dir>', 'with --root: write the new root key here instead of the store')
    .option('--passphrase-file <file>', 'file holding the CA key passphrase (or set TLSMESH_CA_PASSPHRASE)')
    .addHelpText('after', examples(['tlsmesh ca rotate prepare', 'tlsmesh ca rotate prepare --root --offline-root /mnt/usb/root-2027', 'tlsmesh ca rotate prepare --root-key /mnt/usb/root/root-key.sealed.json']))
    .action(async (flags: StoreFlags & { root?: boolean; rootKey?: string; offlineRoot?: string; passphraseFile?: string }) => {
      const passphrase = await readPassphrase(flags.passphraseFile);
      const rootKey = flags.rootKey === undefined ? undefined : await readText(flags.rootKey, 'the sealed root key');
      if (flags.offlineRoot !== undefined) await ensurePrivateDir(flags.offlineRoot);
      await withStore(flags, async (store, dataDir) => {
        const result = await prepareRotation({
          store,
          passphrase,
          newRoot: flags.root === true,
          offlineRootKey: rootKey,
          offlineNewRoot: flags.offlineRoot !== undefined,
        });
        const lines = [`prepared intermediate ${result.intermediateId} (until ${result.intermediateNotAfter.toISOString()})`];
        if (result.root) {
          if (flags.offlineRoot !== undefined && result.root.sealedKey !== null) {
            await writeFileAtomic(join(flags.offlineRoot, 'root-cert.pem'), toPem(result.root.certDer, 'CERTIFICATE'));
            await writeFileAtomic(join(flags.offlineRoot, 'root-key.sealed.json'), result.root.sealedKey);
            lines.push(`  new root key        ${join(flags.offlineRoot, 'root-key.sealed.json')} — move it off this machine`);
          }
          const { rootFingerprints } = await updateDataDirTrust(dataDir, store, { add: [result.root.fingerprint] });
          lines.push(
            `prepared root ${result.root.id}, sha256:${result.root.fingerprint}; it is in the trust bundle now`,
            `  pinned in ${join(dataDir, 'ca.yaml')} (rootFingerprints: ${rootFingerprints.length}); add it to ca.yaml on every other CA host too`,
          );
        }
        lines.push('next: wait until every workload has the new bundle (agents and SDKs follow it live), then: tlsmesh ca rotate activate', '');
        process.stdout.write(lines.join('\n'));
      });
    });

  storeOptions(rotate.command('activate'))
    .description('sign new certificates with the prepared intermediate; the previous one keeps publishing CRLs and OCSP for its leaves')
    .addHelpText('after', examples(['tlsmesh ca rotate activate', 'tlsmesh ca rotate activate --data-dir /var/lib/tlsmesh']))
    .action(async (flags: StoreFlags) => {
      await withStore(flags, async (store) => {
        const result = await activateRotation({ store });
        process.stdout.write(
          [
            `active intermediate ${result.intermediateId}; ${result.supersededIntermediate} is superseded${result.rootId ? `; root ${result.rootId} active` : ''}`,
            'workloads move to it as they renew (at 2/3 of their lifetime); watch: tlsmesh ca rotate status',
            'next: tlsmesh ca rotate retire, once no certificate of the superseded intermediate is still valid',
            '',
          ].join('\n'),
        );
      });
    });

  storeOptions(rotate.command('retire'))
    .description('drop superseded keys (and their roots from the bundle) once nothing they signed is still valid')
    .option('--force', 'retire even though certificates they signed are still valid (after a compromise)')
    .addHelpText('after', examples(['tlsmesh ca rotate retire', 'tlsmesh ca rotate retire --force   # after a compromise: certificates of the old keys stop verifying']))
    .action(async (flags: StoreFlags & { force?: boolean }) => {
      await withStore(flags, async (store, dataDir) => {
        const result = await retireRotation({ store, force: flags.force === true });
        if (result.retiredRootFingerprints.length > 0) await updateDataDirTrust(dataDir, store, { remove: result.retiredRootFingerprints });
        process.stdout.write(`retired ${result.retired.join(', ')}${result.retiredRootFingerprints.length > 0 ? '; the trust bundle no longer carries the retired root(s)' : ''}\n`);
      });
    });

  storeOptions(rotate.command('status'))
    .description('CA keys, their state, how many valid certificates each intermediate still has, and the next step')
    .option('--json', 'print JSON')
    .addHelpText('after', examples(['tlsmesh ca rotate status', 'tlsmesh ca rotate status --json']))
    .action(async (flags: StoreFlags & { json?: boolean }) => {
      await withStore(flags, async (store) => {
        const status = await rotationStatus({ store });
        if (flags.json) return printJson(status);
        process.stdout.write(
          [
            ...status.keys.map(
              (key) =>
                `${key.id.padEnd(34)} ${key.kind.padEnd(13)} ${key.state.padEnd(10)} until ${key.notAfter}${key.offline ? '  (offline)' : ''}${key.validCertificates !== undefined ? `  ${key.validCertificates} valid` : ''}`,
            ),
            `next: ${status.next}`,
            '',
          ].join('\n'),
        );
      });
    });
}
