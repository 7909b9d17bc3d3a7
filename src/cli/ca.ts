/** `tlsmesh ca init|serve|status|rotate|audit-log` */
import { CaMetrics } from '../observe/metrics.js';
import type { Command } from 'commander';
import { readCaFile, readPassphrase, resolveCaConfig } from '../ca/config.js';
import { initDataDir } from '../ca/data-dir.js';
import { startCa } from '../ca/server.js';
import { TlsmeshError } from '../errors.js';
import { isKeyType, KEY_TYPES } from '../pki/index.js';
import { registerAuditLogCommands } from './audit-log.js';
import { adminClient, dataDirOf, type ConnectionFlags } from './context.js';
import { examples, printJson } from './output.js';
import { registerRotateCommands } from './rotate.js';

interface InitFlags {
  dataDir?: string;
  trustDomain: string;
  store?: string;
  listen?: string;
  publicUrl?: string;
  keyType: string;
  offlineRoot?: string;
  passphraseFile?: string;
}

interface ServeFlags {
  dataDir?: string;
  store?: string;
  listen?: string;
  publicUrl?: string;
  passphraseFile?: string;
}

export function registerCaCommands(program: Command): void {
  const ca = program
    .command('ca')
    .description('run and manage the certificate authority')
    .addHelpText('after', examples(['tlsmesh ca init --trust-domain example.org', 'tlsmesh ca serve', 'tlsmesh ca status --json']));

  ca.command('init')
    .description('create a CA: root, intermediate, token key (sealed with a passphrase) and admin credentials')
    .option('--data-dir <dir>', 'where the CA keeps its configuration, store and admin credentials (default ./tlsmesh-ca)')
    .requiredOption('--trust-domain <domain>', 'the SPIFFE trust domain, e.g. example.org')
    .option('--store <url>', 'postgres://… to keep state in PostgreSQL (default: SQLite file in the data dir)')
    .option('--listen <host:port>', 'address `ca serve` listens on', '127.0.0.1:8443')
    .option('--public-url <url>', 'https URL clients reach the CA at (goes into certificates)')
    .option('--key-type <type>', `CA key type: ${KEY_TYPES.join(', ')}`, 'p256')
    .option('--offline-root <dir>', 'write the root key here instead of the store, to keep it offline')
    .option('--passphrase-file <file>', 'file holding the CA key passphrase (or set TLSMESH_CA_PASSPHRASE)')
    .addHelpText(
      'after',
      examples([
        'TLSMESH_CA_PASSPHRASE="$(cat /run/secrets/ca-pass)" tlsmesh ca init --trust-domain example.org',
        'tlsmesh ca init --data-dir /var/lib/tlsmesh --trust-domain prod.example.com --passphrase-file /etc/tlsmesh/pass',
        'tlsmesh ca init --trust-domain example.org --store postgres://tlsmesh@db:5432/tlsmesh --offline-root /mnt/usb/root',
      ]),
    )
    .action(async (flags: InitFlags) => {
      if (!isKeyType(flags.keyType)) throw new TlsmeshError('ERR_CONFIG', `--key-type must be one of ${KEY_TYPES.join(', ')}`);
      const dataDir = dataDirOf(flags);
      const result = await initDataDir({
        dataDir,
        trustDomain: flags.trustDomain,
        passphrase: await readPassphrase(flags.passphraseFile),
        store: flags.store,
        listen: flags.listen,
        publicUrl: flags.publicUrl,
        keyType: flags.keyType,
        offlineRootDir: flags.offlineRoot,
      });
      process.stdout.write(
        [
          `CA for trust domain ${result.trustDomain} created in ${dataDir}`,
          `  configuration      ${result.configPath}`,
          `  trust bundle       ${result.bundlePath}   (give this to workloads)`,
          `  admin credentials  ${result.adminDir}/`,
          `  root fingerprint   sha256:${result.rootFingerprint}`,
          ...(result.offlineRootFiles
            ? [`  offline root       ${result.offlineRootFiles.key} — move it off this machine`]
            : []),
          `next: tlsmesh ca serve --data-dir ${dataDir}`,
          '',
        ].join('\n'),
      );
    });

  ca.command('serve')
    .description('serve the CA API over HTTPS until interrupted')
    .option('--data-dir <dir>', 'the directory `ca init` created (default ./tlsmesh-ca)')
    .option('--store <url>', 'override the configured store (e.g. postgres://…)')
    .option('--listen <host:port>', 'override the configured listen address')
    .option('--public-url <url>', 'override the configured public URL')
    .option('--passphrase-file <file>', 'file holding the CA key passphrase (or set TLSMESH_CA_PASSPHRASE)')
    .addHelpText(
      'after',
      examples([
        'TLSMESH_CA_PASSPHRASE=… tlsmesh ca serve',
        'tlsmesh ca serve --data-dir /var/lib/tlsmesh --passphrase-file /etc/tlsmesh/pass --listen 0.0.0.0:8443',
        '# a second CA process on the same PostgreSQL:',
        'tlsmesh ca serve --data-dir ./ca2 --store postgres://tlsmesh@db/tlsmesh --listen 0.0.0.0:9443',
      ]),
    )
    .action(async (flags: ServeFlags) => {
      const dataDir = dataDirOf(flags);
      const config = resolveCaConfig(dataDir, await readCaFile(dataDir), { store: flags.store, listen: flags.listen, publicUrl: flags.publicUrl });
      // The whole process is the CA: its /metrics also carries Node's own (CPU, memory, event loop).
      const metrics = new CaMetrics();
      metrics.collectProcessMetrics();
      const running = await startCa({ config, passphrase: await readPassphrase(flags.passphraseFile), metrics });
      process.stderr.write(`tlsmesh CA for ${config.trustDomain} serving at ${running.url} (Ctrl-C to stop)\n`);
      await new Promise<void>((resolve) => {
        const stop = (): void => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await running.close();
    });

  ca.command('status')
    .description('show the CA trust domain, keys and their state (admin)')
    .option('--ca <url>', 'CA URL (default: TLSMESH_CA_URL or the data dir configuration)')
    .option('--data-dir <dir>', 'the CA data directory (for the URL and admin credentials)')
    .option('--admin-dir <dir>', 'directory holding admin cert.pem, key.pem, bundle.pem')
    .option('--json', 'print JSON')
    .addHelpText('after', examples(['tlsmesh ca status', 'tlsmesh ca status --ca https://ca.internal:8443 --admin-dir ~/.tlsmesh/admin --json']))
    .action(async (flags: ConnectionFlags & { json?: boolean }) => {
      const client = await adminClient(flags);
      try {
        const status = await client.status();
        if (flags.json) return printJson(status);
        const keys = status['keys'] as { id: string; kind: string; state: string; notAfter: string; offline: boolean }[];
        process.stdout.write(
          [
            `trust domain  ${String(status['trustDomain'])}`,
            `store         ${String(status['store'])}`,
            `issuing key   ${String(status['activeIntermediate'])}`,
            'keys:',
            ...keys.map((key) => `  ${key.id.padEnd(34)} ${key.kind.padEnd(14)} ${key.state.padEnd(9)} until ${key.notAfter}${key.offline ? '  (offline)' : ''}`),
            '',
          ].join('\n'),
        );
      } finally {
        client.close();
      }
    });

  registerRotateCommands(ca);
  registerAuditLogCommands(ca);
}
