/**
 * `tlsmesh agent` as a process: its help page, `--once` with the token in a file or the
 * environment (never argv), the exit codes (0 ok, 2 configuration, 3 needs a new token), a
 * config file under the flags, and the daemon with its health endpoint stopping on SIGTERM.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, startBackground, type CliResult } from '../helpers/cli.js';
import { startTestCa, type TestCa } from '../helpers/ca.js';
import { buildProgram } from '../../src/cli/main.js';
import { getHealth, ID, serialOnDisk, tempRoot, tokenFile, tokenFor } from './support.js';

const ENTRY = join(REPO_ROOT, 'src', 'cli', 'run.ts');

/** Runs `tlsmesh agent ARGS…` to completion (secrets through `env`, never argv). */
function spawnEntry(args: string[], env: Record<string, string>): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    // The test process's own TLSMESH_* settings must not leak in.
    const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, 'agent', ...args], { cwd: REPO_ROOT, env: { ...process.env, TLSMESH_TOKEN: '', TLSMESH_CA_URL: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ status: code ?? -1, stdout, stderr });
    });
  });
}

let ca: TestCa;
let temp: ReturnType<typeof tempRoot>;
let bundle: string;

beforeAll(async () => {
  ca = await startTestCa();
  temp = tempRoot();
  bundle = temp.dir('bundle.pem');
  writeFileSync(bundle, ca.bundlePem);
});
afterAll(async () => {
  temp.cleanup();
  await ca.close();
});

describe('help', () => {
  it('ends with EXAMPLES of `tlsmesh agent`, documents the exit codes, and takes no secret on argv', () => {
    const command = buildProgram().commands.find((candidate) => candidate.name() === 'agent')!;
    let page = '';
    command.configureOutput({ writeOut: (chunk) => (page += chunk), writeErr: (chunk) => (page += chunk) });
    command.outputHelp();
    const examples = page.split(/^EXAMPLES$/m)[1]!.split('\n').filter((line) => line.startsWith('  ')).map((line) => line.trim());
    expect(examples.length).toBeGreaterThan(2);
    expect(examples.every((line) => line.includes('tlsmesh agent'))).toBe(true);
    expect(page.trimEnd().endsWith(examples.at(-1)!)).toBe(true);
    expect(page).toMatch(/EXIT CODES[\s\S]*3 a new enrolment token is needed/);
    for (const option of command.options) expect(option.long).not.toMatch(/^--(token|passphrase|password|secret)$/);
    for (const line of examples) expect(line).not.toMatch(/--token(=|\s)/);
  });
});

describe('--once', () => {
  it('ok/with --token-file: exit 0, one line on stdout, JSON logs on stderr', async () => {
    const out = temp.dir('once-file');
    const token = tokenFile(temp.dir('once-file.token'), await tokenFor(ca, ID('cli-once')));
    const result = await spawnEntry(['--once', '--ca', ca.url, '--bundle', bundle, '--out', out, '--token-file', token], {});
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^certificate for ${ID('cli-once')} \\(serial [0-9a-f]+, valid until .*\\) in ${out}\\n$`));
    expect(result.stdout).toContain(serialOnDisk(out));
    expect(result.stderr.split('\n').filter(Boolean).every((line) => JSON.parse(line) !== null)).toBe(true);
  });

  it('ok/with TLSMESH_TOKEN and TLSMESH_CA_URL from the environment', async () => {
    const out = temp.dir('once-env');
    const result = await spawnEntry(['--once', '--bundle', bundle, '--out', out], { TLSMESH_TOKEN: await tokenFor(ca, ID('cli-env')), TLSMESH_CA_URL: ca.url });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toContain(ID('cli-env'));
  });

  it('fail/a token already used: exit 3, `error ERR_TOKEN_REUSED: …` and a hint', async () => {
    const token = await tokenFor(ca, ID('cli-reused'));
    expect((await spawnEntry(['--once', '--ca', ca.url, '--bundle', bundle, '--out', temp.dir('reused-1')], { TLSMESH_TOKEN: token })).status).toBe(0);
    const result = await spawnEntry(['--once', '--ca', ca.url, '--bundle', bundle, '--out', temp.dir('reused-2')], { TLSMESH_TOKEN: token });
    expect(result.status).toBe(3);
    expect(result.stderr).toMatch(/^error ERR_TOKEN_REUSED: the CA refused the enrolment token from TLSMESH_TOKEN: .*already been used/m);
    expect(result.stderr).toMatch(/^hint: re-run with --debug/m);
    expect(result.stdout).toBe('');
  });

  it('fail/no token and nothing on disk: exit 3', async () => {
    const result = await spawnEntry(['--once', '--ca', ca.url, '--bundle', bundle, '--out', temp.dir('no-token')], {});
    expect(result.status).toBe(3);
    expect(result.stderr).toMatch(/error ERR_TOKEN_MALFORMED: .*no enrolment token: a new one is needed; put one in --token-file FILE or TLSMESH_TOKEN/);
  });

  it('fail/a config file with an unknown key: exit 2 naming it; an unreadable bundle: exit 2', async () => {
    const config = temp.dir('bad.yaml');
    writeFileSync(config, `ca: ${ca.url}\nbundle: ${bundle}\nout: ${temp.dir('x')}\nhealthListen: 127.0.0.1:1\n`);
    const unknown = await spawnEntry(['--once', '--config', config], {});
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(new RegExp(`error ERR_CONFIG: ${config}: healthListen: `));
    const noBundle = await spawnEntry(['--once', '--ca', ca.url, '--bundle', temp.dir('missing.pem'), '--out', temp.dir('y')], {});
    expect(noBundle.status).toBe(2);
    expect(noBundle.stderr).toMatch(/cannot read the CA trust bundle/);
  });

  it('ok/a config file, with a flag over it', async () => {
    const config = temp.dir('agent.yaml');
    const token = tokenFile(temp.dir('config.token'), await tokenFor(ca, ID('cli-config')));
    writeFileSync(config, `ca: ${ca.url}\nbundle: ${bundle}\nout: ${temp.dir('from-file')}\ntokenFile: ${token}\nkeyMode: "0640"\n`);
    const result = await spawnEntry(['--once', '--config', config, '--out', temp.dir('from-flag')], {});
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toContain(temp.dir('from-flag'));
    expect(serialOnDisk(temp.dir('from-flag'))).toMatch(/^[0-9a-f]+$/);
  });
});

describe('daemon', () => {
  it('ok/serves /healthz while running, stops on SIGTERM with exit 0', async () => {
    const out = temp.dir('daemon');
    const token = tokenFile(temp.dir('daemon.token'), await tokenFor(ca, ID('cli-daemon')));
    const daemon = startBackground(['--import', 'tsx', ENTRY, 'agent', '--ca', ca.url, '--bundle', bundle, '--out', out, '--token-file', token, '--health-listen', '127.0.0.1:0'], { env: { TLSMESH_TOKEN: '' } });
    try {
      const [, url] = (await daemon.waitFor(/"url":"(http:\/\/127\.0\.0\.1:\d+\/healthz)"/)) as unknown as [string, string];
      await daemon.waitFor(/"event":"agent\.ready"/);
      const health = await getHealth(url.replace(/\/healthz$/, ''));
      expect(health).toMatchObject({ status: 200, body: { status: 'ok', spiffeId: ID('cli-daemon'), serial: serialOnDisk(out) } });
    } finally {
      expect(await daemon.stop('SIGTERM')).toBe(0);
    }
  });
});
