/**
 * The `tlsmesh` program with only the probe command, built the way src/cli/main.ts builds the real
 * one (global --debug, Commander errors exit 2), until main.ts wires `registerProbeCommand`.
 * Run as a script: `node --import tsx test/probe/support/probe-cli.ts probe HOST:PORT …`.
 */
import { Command, CommanderError } from 'commander';
import { registerProbeCommand } from '../../../src/cli/probe.js';

export function buildProbeProgram(): Command {
  const program = new Command('tlsmesh').option('--debug', 'print stack traces and causes on error').exitOverride();
  registerProbeCommand(program);
  return program;
}

/** Like main() in src/cli/main.ts: the exit code, with Commander's own errors (bad flags) as 2. */
export async function runProbeProgram(argv: string[]): Promise<number> {
  const program = buildProbeProgram();
  program.configureOutput({ writeErr: (text) => process.stderr.write(text), writeOut: (text) => process.stdout.write(text) });
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    throw error;
  }
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  runProbeProgram(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (error: unknown) => {
      process.stderr.write(`fatal: ${String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
