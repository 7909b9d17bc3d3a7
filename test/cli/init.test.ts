/**
 * `tlsmesh ca init` options and refusals, as numbered steps over a second CA: the passphrase from a
 * file, an offline root, a P-384 root; then the refusals (no passphrase, a short one, a bad trust
 * domain) and `ca serve` with a wrong passphrase, none of which may print the passphrase.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliCommand, startBackground, type BackgroundCli } from '../helpers/cli.js';
import { clearCliEnvironment, expectCodedError, expectSuccess, modeOf, recordingCli } from './support.js';

const PASSPHRASE = 'offline-root passphrase, from a file';
const WRONG_PASSPHRASE = 'a wrong passphrase that is long enough';
const SHORT_PASSPHRASE = 'Sh0rt-Pw';
const TD = 'offline.example';

describe('tlsmesh ca init options and refusals', () => {
  const { run, runs } = recordingCli();
  let root: string;
  let dataDir: string;
  let offlineDir: string;
  let passphraseFile: string;
  let server: BackgroundCli | undefined;
  let url: string;

  beforeAll(() => {
    clearCliEnvironment();
    root = mkdtempSync(join(tmpdir(), 'tlsmesh-cli-init-'));
    dataDir = join(root, 'ca');
    offlineDir = join(root, 'usb', 'root');
    passphraseFile = join(root, 'passphrase');
    // As `echo "$PASS" > file` writes it: with a trailing newline, which is not part of the passphrase.
    writeFileSync(passphraseFile, `${PASSPHRASE}\n`, { mode: 0o600 });
  });

  afterAll(async () => {
    await server?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('1. ca init --passphrase-file --offline-root --key-type p384 writes the root cert and sealed key to the offline dir', async () => {
    const result = await run([
      'ca', 'init', '--data-dir', dataDir, '--trust-domain', TD, '--listen', '127.0.0.1:0',
      '--passphrase-file', passphraseFile, '--offline-root', offlineDir, '--key-type', 'p384',
    ]);
    expectSuccess(result);
    expect(modeOf(offlineDir)).toBe(0o700);
    for (const file of ['root-cert.pem', 'root-key.sealed.json']) expect(modeOf(join(offlineDir, file)), file).toBe(0o600);
    expect(readFileSync(join(offlineDir, 'root-cert.pem'), 'utf8')).toBe(readFileSync(join(dataDir, 'bundle.pem'), 'utf8'));
    const sealed = readFileSync(join(offlineDir, 'root-key.sealed.json'), 'utf8');
    expect(() => JSON.parse(sealed) as unknown).not.toThrow();
    expect(sealed).not.toContain('PRIVATE KEY');
    expect(sealed).not.toContain(PASSPHRASE);
    expect(result.stdout).toContain(join(offlineDir, 'root-key.sealed.json'));
  });

  it('2. the root is a P-384 key (as OpenSSL reads it)', () => {
    const text = execFileSync('openssl', ['x509', '-in', join(dataDir, 'bundle.pem'), '-noout', '-text'], { encoding: 'utf8' });
    expect(text).toMatch(/NIST CURVE: P-384|ASN1 OID: secp384r1/);
    expect(text).toMatch(/Public-Key: \(384 bit\)/);
  });

  it('3. ca serve opens the keys with the same passphrase from the environment; ca status --json shows the root key offline', async () => {
    server = startBackground(cliCommand(['ca', 'serve', '--data-dir', dataDir]), { env: { TLSMESH_CA_PASSPHRASE: PASSPHRASE } });
    url = (await server.waitFor(/serving at (https:\/\/\S+)/))[1]!;
    const result = await run(['ca', 'status', '--ca', url, '--data-dir', dataDir, '--json']);
    expectSuccess(result);
    const status = JSON.parse(result.stdout) as { trustDomain: string; keys: { kind: string; state: string; offline: boolean }[] };
    expect(status.trustDomain).toBe(TD);
    const roots = status.keys.filter((key) => key.kind === 'root');
    expect(roots).toHaveLength(1);
    expect(roots[0]!.offline).toBe(true);
    expect(status.keys.filter((key) => key.kind !== 'root').every((key) => !key.offline)).toBe(true);
  });

  it('4. ca serve with a wrong passphrase (from a file) is ERR_PASSPHRASE and never echoes it, not even with --debug', async () => {
    const wrongFile = join(root, 'wrong-passphrase');
    writeFileSync(wrongFile, WRONG_PASSPHRASE, { mode: 0o600 });
    const result = await run(['ca', 'serve', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--passphrase-file', wrongFile, '--debug']);
    expect(result.status).toBe(1);
    expect(result.stderr.split('\n')[0]).toMatch(/^error ERR_PASSPHRASE: /);
    expect(result.stderr).toMatch(/^\s+at /m);
    expect(`${result.stdout}${result.stderr}`).not.toContain(WRONG_PASSPHRASE);
    expect(result.stdout).not.toMatch(/serving at/);
  });

  it('5. ca init refuses: no passphrase, a short one, an uppercase trust domain — and writes no ca.yaml', async () => {
    const dirs = { none: join(root, 'none'), short: join(root, 'short'), upper: join(root, 'upper') };
    const [none, short, upper] = await Promise.all([
      run(['ca', 'init', '--data-dir', dirs.none, '--trust-domain', TD], { TLSMESH_CA_PASSPHRASE: '' }),
      run(['ca', 'init', '--data-dir', dirs.short, '--trust-domain', TD], { TLSMESH_CA_PASSPHRASE: SHORT_PASSPHRASE }),
      run(['ca', 'init', '--data-dir', dirs.upper, '--trust-domain', 'Example.ORG'], { TLSMESH_CA_PASSPHRASE: PASSPHRASE }),
    ]);
    expectCodedError(none, 'ERR_PASSPHRASE');
    expectCodedError(short, 'ERR_PASSPHRASE');
    expectCodedError(upper, 'ERR_SPIFFE_ID_INVALID');
    for (const dir of Object.values(dirs)) expect(existsSync(join(dir, 'ca.yaml')), dir).toBe(false);
    expect(short.stderr).not.toContain(SHORT_PASSPHRASE);
  });

  it('6. an --offline-root it cannot write is ERR_CONFIG before any key is made: the root key is never lost', async () => {
    const notADirectory = passphraseFile; // a file: nothing, not even root, can create a directory under it
    const result = await run(['ca', 'init', '--data-dir', join(root, 'lost-root'), '--trust-domain', TD, '--offline-root', join(notADirectory, 'root')], { TLSMESH_CA_PASSPHRASE: PASSPHRASE });
    expectCodedError(result, 'ERR_CONFIG');
    expect(existsSync(join(root, 'lost-root', 'ca.yaml'))).toBe(false);
  });

  it('7. data dirs whose init was refused can be initialised afterwards', async () => {
    const [short, lostRoot] = await Promise.all([
      run(['ca', 'init', '--data-dir', join(root, 'short'), '--trust-domain', TD], { TLSMESH_CA_PASSPHRASE: PASSPHRASE }),
      run(['ca', 'init', '--data-dir', join(root, 'lost-root'), '--trust-domain', TD, '--offline-root', join(root, 'usb2')], { TLSMESH_CA_PASSPHRASE: PASSPHRASE }),
    ]);
    expectSuccess(short);
    expect(modeOf(join(root, 'short', 'ca.yaml'))).toBe(0o600);
    expectSuccess(lostRoot);
    expect(modeOf(join(root, 'usb2', 'root-key.sealed.json'))).toBe(0o600);
    expect(modeOf(join(root, 'lost-root', 'admin', 'key.pem'))).toBe(0o600);
  });

  it('8. no output carried the passphrase', () => {
    expect(runs.length).toBeGreaterThanOrEqual(6);
    for (const result of runs) expect(`${result.stdout}${result.stderr}`, result.args.join(' ')).not.toContain(PASSPHRASE);
    expect(server!.output()).not.toContain(PASSPHRASE);
  });
});
