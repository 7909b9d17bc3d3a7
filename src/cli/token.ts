/** `tlsmesh token create` */
import { dirname } from 'node:path';
import type { Command } from 'commander';
import { parseDuration } from '../ca/duration.js';
import { writeFileAtomic } from '../fsutil/write-private.js';
import { adminClient, ensureWritableDir, type ConnectionFlags } from './context.js';
import { examples, printJson } from './output.js';

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

interface CreateFlags extends ConnectionFlags {
  id: string;
  dns?: string[];
  ip?: string[];
  ttl: string;
  out?: string;
  json?: boolean;
}

export function registerTokenCommands(program: Command): void {
  const token = program
    .command('token')
    .description('one-time enrolment tokens')
    .addHelpText('after', examples(['tlsmesh token create --id spiffe://example.org/billing/api --out /run/billing/token']));
  token
    .command('create')
    .description('create a one-time token that enrols one SPIFFE ID (admin)')
    .requiredOption('--id <spiffe-id>', 'the SPIFFE ID the token enrols, e.g. spiffe://example.org/billing/api')
    .option('--dns <name>', 'a DNS SAN the certificate may carry (repeatable)', collect)
    .option('--ip <address>', 'an IP SAN the certificate may carry (repeatable)', collect)
    .option('--ttl <duration>', 'how long the token is valid (at most 1h)', '15m')
    .option('--out <file>', 'write the token to this file (mode 0600) instead of stdout')
    .option('--json', 'print JSON with the token, its id and expiry')
    .option('--ca <url>', 'CA URL (default: TLSMESH_CA_URL or the data dir configuration)')
    .option('--data-dir <dir>', 'the CA data directory (for the URL and admin credentials)')
    .option('--admin-dir <dir>', 'directory holding admin cert.pem, key.pem, bundle.pem')
    .addHelpText(
      'after',
      examples([
        'tlsmesh token create --id spiffe://example.org/billing/api --out /run/billing/token',
        'tlsmesh token create --id spiffe://example.org/web --dns web.internal --ip 10.0.0.7 --ttl 10m',
      ]),
    )
    .action(async (flags: CreateFlags) => {
      if (flags.out !== undefined) await ensureWritableDir(dirname(flags.out), 'the token', false); // before the token is made
      const client = await adminClient(flags);
      try {
        const created = await client.createToken({
          spiffeId: flags.id,
          dnsNames: flags.dns ?? [],
          ipAddresses: flags.ip ?? [],
          ttlSeconds: parseDuration(flags.ttl, '--ttl'),
        });
        if (flags.out !== undefined) {
          await writeFileAtomic(flags.out, `${created.token}\n`, 0o600);
          process.stderr.write(`token for ${created.spiffeId} written to ${flags.out} (expires ${created.expiresAt})\n`);
        } else if (flags.json) {
          printJson(created);
        } else {
          process.stdout.write(`${created.token}\n`);
          process.stderr.write(`token for ${created.spiffeId}, id ${created.jti}, expires ${created.expiresAt}\n`);
        }
      } finally {
        client.close();
      }
    });
}
