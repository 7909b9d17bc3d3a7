/**
 * `tlsmesh` with the agent command, run the way src/cli/main.ts runs the program (usage errors
 * exit 2, coded errors print one line and exit 1, commands set process.exitCode). The CLI tests
 * spawn this until main.ts registers `agent` itself; then they can use test/helpers/cli.ts.
 */
import { Command, CommanderError } from 'commander';
import { registerAgentCommand } from '../../src/cli/agent.js';
import { reportError } from '../../src/cli/output.js';

export function agentProgram(): Command {
  const program = new Command('tlsmesh').option('--debug', 'print stack traces and causes on error').showHelpAfterError('(run with --help for usage)').exitOverride();
  registerAgentCommand(program);
  return program;
}

if (process.argv[1]?.endsWith('cli-entry.ts')) {
  try {
    await agentProgram().parseAsync(process.argv);
  } catch (error) {
    process.exitCode = error instanceof CommanderError ? (error.exitCode === 0 ? 0 : 2) : reportError(error, process.argv.includes('--debug'));
  }
}
