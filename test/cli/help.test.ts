/**
 * The CLI's help and its edges: every command's help page ends with EXAMPLES of that command (read
 * in-process from `buildProgram()`, no spawn), no option takes a secret on argv, an unknown command
 * exits 2, and the built `bin/tlsmesh.js` runs.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/main.js';
import { REPO_ROOT, runCli } from '../helpers/cli.js';

const packageJson = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string> };

/** Every command under `command`, keyed by its path without the program name ('' for the root). */
function walk(command: Command, prefix: string[] = []): Map<string, Command> {
  const found = new Map<string, Command>([[prefix.join(' '), command]]);
  for (const sub of command.commands) for (const [path, found2] of walk(sub, [...prefix, sub.name()])) found.set(path, found2);
  return found;
}

/** The full help page as `--help` prints it, including the text added after it. */
function helpPage(command: Command): string {
  let text = '';
  command.configureOutput({ writeOut: (chunk) => (text += chunk), writeErr: (chunk) => (text += chunk) });
  command.outputHelp();
  return text;
}

/** The indented lines after the EXAMPLES heading. */
function examplesOf(page: string): string[] {
  const section = page.split(/^EXAMPLES$/m)[1];
  if (section === undefined) return [];
  const lines: string[] = [];
  for (const line of section.split('\n').slice(1)) {
    if (!line.startsWith('  ')) break;
    lines.push(line.trim());
  }
  return lines;
}

const EXPECTED = ['', 'ca', 'ca init', 'ca serve', 'ca status', 'token', 'token create', 'cert', 'cert request', 'cert renew', 'cert inspect', 'cert list', 'cert revoke', 'ca rotate', 'ca rotate prepare', 'ca rotate activate', 'ca rotate retire', 'ca rotate status', 'probe', 'audit', 'agent'];

describe('help pages', () => {
  const commands = walk(buildProgram());

  it('the program has every documented command', () => {
    for (const path of EXPECTED) expect(commands.has(path), `tlsmesh ${path}`).toBe(true);
  });

  it.each([...new Set([...EXPECTED, ...commands.keys()])])('tlsmesh %s --help ends with EXAMPLES of that command', (path) => {
    const command = commands.get(path);
    expect(command, `tlsmesh ${path}`).toBeDefined();
    const page = helpPage(command!);
    expect(page).toMatch(/^Usage: tlsmesh/m);
    const examples = examplesOf(page);
    expect(examples.length, page).toBeGreaterThan(0);
    const invocation = `tlsmesh ${path}`.trim();
    expect(examples.some((line) => line.includes(invocation)), `an example runs "${invocation}":\n${examples.join('\n')}`).toBe(true);
    // The EXAMPLES section is the last thing on the page.
    expect(page.trimEnd().endsWith(examples.at(-1)!)).toBe(true);
  });

  it('no option and no example puts a passphrase or a token on the command line', () => {
    for (const [path, command] of commands) {
      for (const option of command.options) {
        expect(option.long, `tlsmesh ${path} ${option.flags}`).not.toMatch(/^--(passphrase|token|password|secret)$/);
      }
      for (const line of examplesOf(helpPage(command))) {
        expect(line, `tlsmesh ${path}`).not.toMatch(/--(passphrase|token|password|secret)(=|\s)/);
      }
    }
  });

  it('the program version is the package version', () => {
    expect(buildProgram().version()).toBe(packageJson.version);
  });

  it('an unknown command exits 2 and points at --help', async () => {
    const result = await runCli(['no-such-command']);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/--help/);
    expect(result.stdout).toBe('');
  });
});

describe('the built bin', () => {
  let build: { status: number | null; output: string } = { status: null, output: '' };
  const runJs = join(REPO_ROOT, 'dist', 'cli', 'run.js');
  const bin = join(REPO_ROOT, packageJson.bin['tlsmesh']!);

  beforeAll(() => {
    const result = spawnSync('npm', ['run', 'build'], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 55_000 });
    build = { status: result.status, output: `${result.stdout}${result.stderr}` };
  });

  const skipUnlessBuilt = (context: { skip: (note?: string) => void }): void => {
    if (!existsSync(runJs)) context.skip(`dist/cli/run.js missing after npm run build (exit ${build.status}):\n${build.output}`);
  };

  it('bin/tlsmesh.js --version prints the package version', (context) => {
    skipUnlessBuilt(context);
    const result = spawnSync(process.execPath, [bin, '--version'], { cwd: REPO_ROOT, encoding: 'utf8' });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout.trim()).toBe('0.1.0');
    expect(result.stdout.trim()).toBe(packageJson.version);
  });

  it('bin/tlsmesh.js --help prints the usage and the examples', (context) => {
    skipUnlessBuilt(context);
    const result = spawnSync(process.execPath, [bin, '--help'], { cwd: REPO_ROOT, encoding: 'utf8' });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^Usage: tlsmesh/m);
    expect(result.stdout).toMatch(/^EXAMPLES$/m);
    for (const noun of ['ca', 'token', 'cert']) expect(result.stdout).toMatch(new RegExp(`^  ${noun}\\b`, 'm'));
  });
});
