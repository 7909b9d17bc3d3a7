/**
 * `tlsmesh audit [PATH…]`: the static auditor for insecure TLS, as a CI gate.
 *
 * Exit codes: 0 when no finding reaches --fail-on, 1 when one does, 2 for a usage or I/O error
 * (bad flag value, missing path, unreadable baseline). The auditor itself (and the TypeScript
 * compiler it uses) is loaded only when the command runs.
 */
import { stat, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { isTlsmeshError, TlsmeshError } from '../errors.js';
import type { AuditReport, ReportFormat, Severity } from '../audit/index.js';
import { examples } from './output.js';

interface AuditFlags {
  format: string;
  output?: string;
  root?: string;
  baseline?: string;
  writeBaseline?: string;
  failOn: string;
  exclude: string[];
  defaultExcludes: boolean;
  listRules?: boolean;
}

/** Exit status for findings at or above --fail-on. */
export const EXIT_FINDINGS = 1;
/** Exit status for a usage or I/O error: CI must not read it as "findings". */
export const EXIT_USAGE = 2;

const FORMATS = ['text', 'json', 'sarif'] as const;
const FAIL_ON = ['error', 'warning', 'note', 'none'] as const;

const collect = (value: string, previous: string[]): string[] => [...previous, value];

function choice<T extends string>(flag: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) throw new TlsmeshError('ERR_CONFIG', `${flag} must be one of ${allowed.join(', ')} (got "${value}")`);
  return value as T;
}

/** --root, or the single directory given, or the current directory: what report paths are relative to. */
async function scanRoot(paths: string[], root: string | undefined): Promise<string> {
  if (root !== undefined) {
    const isDirectory = await stat(root).then((info) => info.isDirectory(), () => false);
    if (!isDirectory) throw new TlsmeshError('ERR_CONFIG', `--root ${root} is not a directory`);
    return resolve(root);
  }
  if (paths.length === 1) {
    const isDirectory = await stat(paths[0]!).then((info) => info.isDirectory(), () => false);
    if (isDirectory) return resolve(paths[0]!);
  }
  return resolve('.');
}

function printRules(rules: readonly { id: string; severity: Severity; title: string }[]): void {
  const width = Math.max(...rules.map((rule) => rule.id.length));
  for (const rule of rules) process.stdout.write(`${rule.id.padEnd(width)}  ${rule.severity.padEnd(7)}  ${rule.title}\n`);
}

async function run(paths: string[], flags: AuditFlags): Promise<number> {
  const format = choice<ReportFormat>('--format', flags.format, FORMATS);
  const failOn = choice('--fail-on', flags.failOn, FAIL_ON);
  const auditor = await import('../audit/index.js');
  if (flags.listRules) {
    printRules(auditor.RULES);
    return 0;
  }
  const root = await scanRoot(paths, flags.root);
  const targets = paths.map((path) => resolve(path));
  const baseline = flags.baseline !== undefined ? await auditor.readBaseline(flags.baseline) : undefined;
  const report: AuditReport = await auditor.audit({
    root,
    paths: targets,
    exclude: flags.exclude,
    defaultExcludes: flags.defaultExcludes,
    ...(baseline ? { baseline } : {}),
  });

  if (flags.writeBaseline !== undefined) {
    const written = await auditor.writeBaseline(flags.writeBaseline, [...report.findings, ...report.baselined]);
    process.stderr.write(`wrote ${written.findings.length} finding(s) to baseline ${flags.writeBaseline}\n`);
    return 0;
  }

  const rendered = auditor.formatReport(report, format);
  if (flags.output !== undefined) {
    try {
      await writeFile(flags.output, rendered);
    } catch (error) {
      throw new TlsmeshError('ERR_CONFIG', `cannot write --output ${flags.output}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { cause: error });
    }
  } else {
    process.stdout.write(rendered);
  }
  // Machine-readable output keeps stdout clean; the one-line summary goes to stderr.
  if (format !== 'text' || flags.output !== undefined) process.stderr.write(`${auditor.summaryLine(report)}\n`);
  return auditor.shouldFail(report, failOn) ? EXIT_FINDINGS : 0;
}

export function registerAuditCommand(program: Command): void {
  program
    .command('audit')
    .description('find insecure TLS in TS/JS, Go and config files, and committed private keys (exit 1 on findings, 2 on usage or I/O errors)')
    .argument('[paths...]', 'files or directories to scan', ['.'])
    .option('--format <format>', `report format: ${FORMATS.join(', ')}`, 'text')
    .option('--output <file>', 'write the report to a file instead of stdout (the summary still goes to stderr)')
    .option('--root <dir>', 'directory report paths are relative to (default: the PATH when it is one directory, else the current directory)')
    .option('--baseline <file>', 'hide the findings recorded in this baseline; only new findings are reported and fail the run')
    .option('--write-baseline <file>', 'record every current finding (suppressed ones excepted) in a baseline file and exit 0')
    .option('--fail-on <severity>', `lowest severity that makes the exit code 1: ${FAIL_ON.join(', ')}`, 'warning')
    .option('--exclude <glob>', 'skip paths matching the glob (repeatable; a glob without "/" matches a name at any depth)', collect, [])
    .option('--no-default-excludes', 'also scan .git, node_modules, dist and vendor')
    .option('--list-rules', 'print the rules (id, severity, what they find) and exit')
    .addHelpText(
      'after',
      examples([
        'tlsmesh audit .',
        'tlsmesh audit services/ --exclude "test/**/fixtures" --fail-on error',
        'tlsmesh audit . --format sarif --output tlsmesh-audit.sarif',
        'tlsmesh audit . --write-baseline .tlsmesh-audit-baseline.json',
        'tlsmesh audit . --baseline .tlsmesh-audit-baseline.json   # fails only on new findings',
        'tlsmesh audit --list-rules',
      ]),
    )
    .action(async (paths: string[], flags: AuditFlags, command: Command) => {
      try {
        process.exitCode = await run(paths, flags);
      } catch (error) {
        const debug = command.optsWithGlobals<{ debug?: boolean }>().debug === true;
        const code = isTlsmeshError(error) ? error.code : 'ERR_INTERNAL';
        process.stderr.write(`error ${code}: ${error instanceof Error ? error.message : String(error)}\n`);
        process.stderr.write(debug && error instanceof Error ? `${error.stack ?? ''}\n` : 'hint: re-run with --debug for details\n');
        process.exitCode = EXIT_USAGE;
      }
    });
}
