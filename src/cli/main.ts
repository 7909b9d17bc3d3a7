/** The `tlsmesh` command: `noun verb`, one file per noun. */
import { Command, CommanderError } from 'commander';
import { registerCaCommands } from './ca.js';
import { registerCertCommands } from './cert.js';
import { examples, reportError } from './output.js';
import { registerAgentCommand } from './agent.js';
import { registerAuditCommand } from './audit.js';
import { registerProbeCommand } from './probe.js';
import { registerTokenCommands } from './token.js';

export function buildProgram(): Command {
  const program = new Command('tlsmesh')
    .description('mutual TLS between services: a CA, certificates by SPIFFE ID, and the tools around them')
    .version('0.1.0')
    .option('--debug', 'print stack traces and causes on error')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .addHelpText(
      'after',
      examples([
        'TLSMESH_CA_PASSPHRASE=… tlsmesh ca init --trust-domain example.org && tlsmesh ca serve',
        'tlsmesh token create --id spiffe://example.org/api --out token',
        'tlsmesh cert request --ca https://127.0.0.1:8443 --bundle tlsmesh-ca/bundle.pem --token-file token --out ./tls',
        'tlsmesh cert inspect ./tls/cert.pem --bundle ./tls/bundle.pem',
        'TLSMESH_TOKEN=… tlsmesh agent --ca https://ca.internal:8443 --bundle bundle.pem --out /var/run/tlsmesh --signal HUP --pid-file /run/nginx.pid',
        'tlsmesh audit . --format sarif --output tlsmesh-audit.sarif',
        'tlsmesh probe api.internal:8443 --ca bundle.pem --cert tls/cert.pem --key tls/key.pem --expect-id spiffe://example.org/api',
      ]),
    );
  registerCaCommands(program);
  registerTokenCommands(program);
  registerCertCommands(program);
  registerAgentCommand(program);
  registerProbeCommand(program);
  registerAuditCommand(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    return reportError(error, argv.includes('--debug'));
  }
}
