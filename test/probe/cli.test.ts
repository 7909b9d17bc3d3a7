/**
 * `tlsmesh probe` as a command: the real CLI in a child process (a Commander program built with
 * registerProbeCommand, as main.ts will be), with its output and exit codes 0, 1 and 2; then the
 * flag handling in process, through probeCommand and the same program.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Command } from 'commander';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { probeCommand, type ProbeFlags } from '../../src/cli/probe.js';
import { CHECK_IDS, type ProbeReport } from '../../src/probe/index.js';
import { createMtlsHttpsServer, staticIdentity } from '../../src/sdk/index.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { buildProbeProgram, runProbeProgram } from './support/probe-cli.js';
import { SERVER_ID, startProbePki, type ProbePki } from './support/pki.js';
import { freePort } from './support/tools.js';

const SCRIPT = join(REPO_ROOT, 'test', 'probe', 'support', 'probe-cli.ts');

let pki: ProbePki;
let correct: { port: number; server: Server };
let withoutCrl: { port: number; server: Server };

async function serve(withCrl: boolean): Promise<{ port: number; server: Server }> {
  const source = staticIdentity({ ...pki.server, bundlePem: pki.bundlePem, ...(withCrl ? { crlPem: pki.crlPem } : {}) });
  const server = createMtlsHttpsServer(source, {}, (_request, response) => response.end('ok'));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as AddressInfo).port, server };
}

beforeAll(async () => {
  pki = await startProbePki();
  correct = await serve(true);
  withoutCrl = await serve(false);
});
afterAll(async () => {
  for (const { server } of [correct, withoutCrl]) {
    server?.closeAllConnections();
    server?.close();
  }
  await pki?.close();
});

/** Every input flag, pointing at the PKI's files. */
const inputs = (): string[] => [
  '--ca', pki.files.bundle,
  '--cert', pki.files.clientCert,
  '--key', pki.files.clientKey,
  '--expect-id', SERVER_ID,
  '--issuer-cert', pki.files.issuerCert,
  '--issuer-key', pki.files.issuerKey,
  '--revoked-cert', pki.files.revokedCert,
  '--revoked-key', pki.files.revokedKey,
  '--timeout', '3s',
];

function runCli(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ status: code ?? -1, stdout, stderr });
    });
  });
}

describe('the real CLI (child process)', () => {
  it('exit 0 and one JSON document when every check passes', async () => {
    const result = await runCli(['probe', `127.0.0.1:${correct.port}`, ...inputs(), '--http', '--json']);
    expect(result.status, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout) as ProbeReport;
    expect(report.target).toBe(`127.0.0.1:${correct.port}`);
    expect(report.checks.map((check) => check.id)).toEqual(CHECK_IDS);
    for (const check of report.checks) {
      expect(Object.keys(check).sort()).toEqual(['evidence', 'id', 'ms', 'result', 'title']);
      expect(check.result, `${check.id}: ${check.evidence}`).toBe('pass');
      expect(typeof check.ms).toBe('number');
    }
    expect(report.summary).toEqual({ pass: CHECK_IDS.length, fail: 0, skip: 0 });
    // Nothing of the keys is ever printed.
    expect(result.stdout).not.toMatch(/PRIVATE KEY/);
  });

  it('exit 1 with a FAIL line naming the problem when a check fails', async () => {
    const result = await runCli(['probe', `127.0.0.1:${withoutCrl.port}`, ...inputs(), '--http']);
    expect(result.status, result.stderr).toBe(1);
    expect(result.stdout).toMatch(/^FAIL {2}revoked-cert-refused +\(accepted: TLSv1\.3 handshake completed, then answered "HTTP\/1\.1 200 OK"/m);
    expect(result.stdout).toMatch(/^PASS {2}no-client-cert-refused /m);
    expect(result.stdout).toMatch(new RegExp(`^127\\.0\\.0\\.1:${withoutCrl.port}: 12 passed, 1 failed, 0 skipped$`, 'm'));
  });

  it('exit 2 with a coded error when the target cannot be reached', async () => {
    const port = await freePort();
    const result = await runCli(['probe', `127.0.0.1:${port}`, ...inputs()]);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(new RegExp(`^error ERR_CONFIG: cannot reach 127\\.0\\.0\\.1:${port}: ECONNREFUSED$`, 'm'));
    expect(result.stdout).toBe('');
  });
});

describe('flags (in process)', () => {
  let stdout = '';
  let stderr = '';
  beforeAll(() => {
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((stdout += String(chunk)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => ((stderr += String(chunk)), true));
  });
  afterEach(() => {
    stdout = '';
    stderr = '';
  });
  afterAll(() => vi.restoreAllMocks());

  const flags = (extra: Partial<ProbeFlags> = {}): ProbeFlags => ({
    ca: pki.files.bundle,
    cert: pki.files.clientCert,
    key: pki.files.clientKey,
    expectId: [SERVER_ID],
    timeout: '3s',
    wait: '300ms',
    http: true,
    ...extra,
  });

  it('skips do not fail the probe, unless --strict', async () => {
    expect(await probeCommand(`127.0.0.1:${correct.port}`, flags())).toBe(0);
    expect(stdout).toMatch(/^SKIP {2}expired-cert-refused +\(needs --issuer-cert and --issuer-key/m);
    expect(stdout).toMatch(/4 skipped \(skips do not fail the probe; --strict makes them\)$/m);
    expect(await probeCommand(`127.0.0.1:${correct.port}`, flags({ strict: true }))).toBe(1);
  });

  it('--expect-id spiffe://<trust-domain> accepts any ID in it; another ID fails server-id-matches', async () => {
    expect(await probeCommand(`127.0.0.1:${correct.port}`, flags({ expectId: ['spiffe://example.org'] }))).toBe(0);
    expect(await probeCommand(`127.0.0.1:${correct.port}`, flags({ expectId: ['spiffe://example.org/someone/else'] }))).toBe(1);
    expect(stdout).toMatch(/^FAIL {2}server-id-matches +\(the server is spiffe:\/\/example\.org\/probe\/server, expected spiffe:\/\/example\.org\/someone\/else\)$/m);
  });

  it.each([
    ['a key that does not match', { key: 'issuerKey' }, /^error ERR_CONFIG: --key is not the key of the first certificate in --cert$/m],
    ['a missing file', { ca: '/nonexistent/bundle.pem' }, /^error ERR_CONFIG: cannot read the trust bundle \(--ca\) at \/nonexistent\/bundle\.pem$/m],
    ['--issuer-cert without --issuer-key', { issuerCert: 'issuerCert' }, /^error ERR_CONFIG: --issuer-cert and --issuer-key go together$/m],
    ['an invalid --expect-id', { expectId: ['example.org'] }, /^error ERR_SPIFFE_ID_INVALID: /m],
    ['no --expect-id', { expectId: [] }, /^error ERR_CONFIG: --expect-id is required/m],
    ['a bad --timeout', { timeout: 'soon' }, /^error ERR_CONFIG: --timeout must be a duration/m],
    ['a bad --http path', { http: 'no-slash' }, /^error ERR_CONFIG: --http takes a path starting with "\/"/m],
    ['a bad target', { target: 'no-port' }, /^error ERR_CONFIG: the target must be HOST:PORT/m],
  ] as const)('%s: exit 2 and a coded error', async (_name, change, message) => {
    const files = pki.files as Record<string, string>;
    const resolved = Object.fromEntries(Object.entries(change).filter(([key]) => key !== 'target').map(([key, value]) => [key, typeof value === 'string' && files[value] !== undefined ? files[value] : value]));
    const target = 'target' in change ? change.target : `127.0.0.1:${correct.port}`;
    expect(await probeCommand(target, flags(resolved as Partial<ProbeFlags>))).toBe(2);
    expect(stderr).toMatch(message);
    expect(stderr).toMatch(/^hint: re-run with --debug for details$/m);
    expect(stderr).not.toMatch(/PRIVATE KEY/);
    expect(stdout).toBe('');
  });

  it('Commander refuses --http with --grpc, and a missing --ca: exit 2', async () => {
    expect(await runProbeProgram(['probe', `127.0.0.1:${correct.port}`, ...inputs(), '--http', '--grpc'])).toBe(2);
    expect(stderr).toMatch(/option '--http \[path\]' cannot be used with option '--grpc'/);
    expect(await runProbeProgram(['probe', `127.0.0.1:${correct.port}`, '--cert', pki.files.clientCert, '--key', pki.files.clientKey])).toBe(2);
    expect(stderr).toMatch(/required option '--ca <file>' not specified/);
  });

  it('--help explains results and exit codes, and ends with EXAMPLES of `tlsmesh probe`', () => {
    const probe = buildProbeProgram().commands.find((command: Command) => command.name() === 'probe')!;
    let page = '';
    probe.configureOutput({ writeOut: (text) => (page += text) });
    probe.outputHelp();
    expect(page).toMatch(/^EXIT CODES$/m);
    expect(page).toMatch(/^ {2}2 {2}bad input or unreachable target/m);
    const examples = page.split(/^EXAMPLES$/m)[1]!.trim().split('\n').map((line) => line.trim());
    expect(examples.length).toBeGreaterThan(0);
    expect(examples.every((line) => line.startsWith('tlsmesh probe '))).toBe(true);
    expect(page.trimEnd().endsWith(examples.at(-1)!)).toBe(true);
    for (const id of CHECK_IDS) expect(page).toContain(id);
  });
});
