/**
 * `tlsmesh audit` end to end: a Commander program with registerAuditCommand (cli-harness.ts,
 * wired like src/cli/main.ts) run as a child process, so exit codes, stdout and stderr are real.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Command } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import { registerAuditCommand } from '../../src/cli/audit.js';
import { RULES } from '../../src/audit/index.js';
import { project } from './support.js';

const HARNESS = join(dirname(fileURLToPath(import.meta.url)), 'cli-harness.ts');
// By URL: the child runs in throwaway directories where `--import tsx` would not resolve.
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

function tlsmesh(args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', TSX, HARNESS, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ status: code ?? -1, stdout, stderr }));
  });
}

const files = {
  'src/client.ts': "import https from 'node:https';\nexport const agent = new https.Agent({ rejectUnauthorized: false });\n",
  'src/health.ts': "import http from 'node:http';\nhttp.createServer(handler).listen(9090);\n",
  'src/clean.ts': "export const answer = 42;\n",
  'deploy/values.yaml': 'redis:\n  tls: true\n',
  'test/fixtures/bad.go': 'package main\n\nimport "crypto/tls"\n\nvar c = &tls.Config{InsecureSkipVerify: true}\n',
  'notes/server.ts': "import { createPermissiveHttpsServer } from 'tlsmesh/sdk';\ncreatePermissiveHttpsServer(source);\n",
};
const repo = project(files);
afterAll(() => repo.cleanup());

const errorLine = (run: Run): string => run.stderr.split('\n')[0] ?? '';

describe('tlsmesh audit', () => {
  it('exits 1 on findings at or above --fail-on (default warning) and prints them with a fix', async () => {
    const run = await tlsmesh(['audit', '.'], repo.dir);
    expect(run.status, run.stderr).toBe(1);
    expect(run.stdout).toContain('src/client.ts:2:40  error  node/reject-unauthorized-false');
    expect(run.stdout).toContain('src/health.ts:2:1  warning  node/plaintext-server');
    expect(run.stdout).toContain('test/fixtures/bad.go:5:21  error  go/insecure-skip-verify');
    expect(run.stdout).toContain('notes/server.ts:2:1  note  tlsmesh/permissive-server');
    expect(run.stdout).toMatch(/fix: Remove it and give the client the CA/);
    expect(run.stdout).toMatch(/tlsmesh audit: 4 findings \(2 errors, 1 warning, 1 note\) in 6 files/);
  });

  it('exits 0 when nothing reaches --fail-on', async () => {
    const [warningOnly, noteOnly, failOnNote, none, clean] = await Promise.all([
      tlsmesh(['audit', 'src/health.ts', 'notes', '--fail-on', 'error'], repo.dir),
      tlsmesh(['audit', 'notes'], repo.dir), // a note, under the default threshold
      tlsmesh(['audit', 'notes', '--fail-on', 'note'], repo.dir),
      tlsmesh(['audit', '.', '--fail-on', 'none'], repo.dir),
      tlsmesh(['audit', 'src/clean.ts', 'deploy'], repo.dir),
    ]);
    expect([warningOnly.status, noteOnly.status, failOnNote.status, none.status, clean.status]).toEqual([0, 0, 1, 0, 0]);
    expect(clean.stdout).toMatch(/^tlsmesh audit: no findings in 2 files/m);
  });

  it('--exclude skips matching paths (a bare name matches at any depth)', async () => {
    const run = await tlsmesh(['audit', '.', '--exclude', 'fixtures', '--exclude', 'notes/**', '--exclude', 'src/client.ts', '--fail-on', 'error'], repo.dir);
    expect(run.status, run.stdout).toBe(0);
    expect(run.stdout).toMatch(/1 finding \(1 warning\) in 3 files/);
  });

  it('--format json is one JSON document on stdout; the summary goes to stderr', async () => {
    const run = await tlsmesh(['audit', 'src', '--format', 'json'], repo.dir);
    expect(run.status).toBe(1);
    const report = JSON.parse(run.stdout) as { root: string; summary: { findings: number; errors: number; warnings: number }; findings: { path: string; ruleId: string; fingerprint: string }[] };
    expect(report.summary).toMatchObject({ findings: 2, errors: 1, warnings: 1 });
    expect(report.findings.map((finding) => `${finding.path} ${finding.ruleId}`)).toEqual(['client.ts node/reject-unauthorized-false', 'health.ts node/plaintext-server']);
    expect(run.stderr).toMatch(/^tlsmesh audit: 2 findings/);
  });

  it('--format sarif --output writes the log to a file', async () => {
    const run = await tlsmesh(['audit', '.', '--format', 'sarif', '--output', 'audit.sarif', '--exclude', '*.sarif'], repo.dir);
    expect(run.status).toBe(1);
    expect(run.stdout).toBe('');
    const log = JSON.parse(readFileSync(join(repo.dir, 'audit.sarif'), 'utf8')) as { version: string; runs: { results: { locations: { physicalLocation: { artifactLocation: { uri: string } } }[] }[] }[] };
    expect(log.version).toBe('2.1.0');
    expect(log.runs[0]!.results.map((result) => result.locations[0]!.physicalLocation.artifactLocation.uri).sort()).toEqual(['notes/server.ts', 'src/client.ts', 'src/health.ts', 'test/fixtures/bad.go']);
  });

  it('--write-baseline records today; --baseline then fails only on new findings', async () => {
    const dir = project(files);
    try {
      const written = await tlsmesh(['audit', '.', '--write-baseline', 'audit-baseline.json'], dir.dir);
      expect(written.status).toBe(0);
      expect(written.stderr).toMatch(/wrote 4 finding\(s\) to baseline audit-baseline\.json/);

      const known = await tlsmesh(['audit', '.', '--baseline', 'audit-baseline.json', '--exclude', 'audit-baseline.json'], dir.dir);
      expect(known.status, known.stdout).toBe(0);
      expect(known.stdout).toMatch(/no findings in 6 files; 4 hidden by the baseline/);

      dir.write('src/client.ts', `// moved down\n${files['src/client.ts']}process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';\n`);
      const fresh = await tlsmesh(['audit', '.', '--baseline', 'audit-baseline.json', '--exclude', 'audit-baseline.json'], dir.dir);
      expect(fresh.status).toBe(1);
      expect(fresh.stdout).toContain('src/client.ts:4:1  error  node/tls-reject-unauthorized-env');
      expect(fresh.stdout).not.toContain('node/reject-unauthorized-false');
      expect(fresh.stdout).toMatch(/1 finding \(1 error\) in 6 files; 4 hidden by the baseline/);
    } finally {
      dir.cleanup();
    }
  });

  it.each([
    [['audit', '--format', 'xml'], /^error ERR_CONFIG: --format must be one of text, json, sarif/],
    [['audit', '--fail-on', 'critical'], /^error ERR_CONFIG: --fail-on must be one of error, warning, note, none/],
    [['audit', 'no/such/dir'], /^error ERR_CONFIG: cannot read no\/such\/dir: ENOENT/],
    [['audit', '--baseline', 'missing.json'], /^error ERR_CONFIG: cannot read baseline missing\.json: ENOENT/],
    [['audit', '--baseline', 'deploy/values.yaml'], /^error ERR_CONFIG: baseline deploy\/values\.yaml is not JSON/],
    [['audit', '--root', 'src/clean.ts'], /^error ERR_CONFIG: --root src\/clean\.ts is not a directory/],
  ])('exits 2 with a coded error for %j', async (args, message) => {
    const run = await tlsmesh(args, repo.dir);
    expect(run.status).toBe(2);
    expect(errorLine(run)).toMatch(message);
    expect(run.stderr).toMatch(/hint: re-run with --debug/);
    expect(run.stdout).toBe('');
  });

  it('exits 2 for an unknown flag (Commander usage error)', async () => {
    const run = await tlsmesh(['audit', '--no-such-flag'], repo.dir);
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/unknown option '--no-such-flag'/);
  });

  it('--list-rules prints every rule with its severity', async () => {
    const run = await tlsmesh(['audit', '--list-rules'], repo.dir);
    expect(run.status).toBe(0);
    for (const rule of RULES) expect(run.stdout).toMatch(new RegExp(`^${rule.id}\\s+${rule.severity}\\s`, 'm'));
  });

  it('help ends with EXAMPLES of tlsmesh audit', () => {
    const program = new Command('tlsmesh');
    registerAuditCommand(program);
    const command = program.commands.find((candidate) => candidate.name() === 'audit')!;
    let text = '';
    command.configureOutput({ writeOut: (chunk) => (text += chunk) });
    command.outputHelp();
    const examples = text.split(/^EXAMPLES$/m)[1] ?? '';
    expect(examples).toMatch(/^ {2}tlsmesh audit \.$/m);
    expect(text).toMatch(/--fail-on <severity>/);
    expect(text).toMatch(/--write-baseline <file>/);
  });
});
