/**
 * A `tlsmesh` program with only the audit command, run as a child process by cli.test.ts: the
 * same wiring as src/cli/main.ts (exitOverride, --debug, CommanderError → 2), real exit codes.
 */
import { Command, CommanderError } from 'commander';
import { registerAuditCommand } from '../../src/cli/audit.js';

const program = new Command('tlsmesh').option('--debug', 'print stack traces').exitOverride();
registerAuditCommand(program);
program.parseAsync(process.argv).then(
  () => {
    process.exitCode = typeof process.exitCode === 'number' ? process.exitCode : 0;
  },
  (error: unknown) => {
    process.exitCode = error instanceof CommanderError ? (error.exitCode === 0 ? 0 : 2) : 1;
  },
);
