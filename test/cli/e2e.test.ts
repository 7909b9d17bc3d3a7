/**
 * The `tlsmesh` CLI end to end, as a user runs it: numbered steps over one CA (init, serve, token,
 * request, renew, inspect, list, revoke, status), each a real child process, with a teardown that
 * always runs. Secrets travel the way users are told: the passphrase in TLSMESH_CA_PASSPHRASE, tokens
 * in a file or TLSMESH_TOKEN — never argv. A last step checks no output carried either.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createPublicKey, X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliCommand, startBackground, type BackgroundCli } from '../helpers/cli.js';
import {
  clearCliEnvironment,
  expectCodedError,
  expectSuccess,
  JWT,
  modeOf,
  normalizeHex,
  pemCertificates,
  recordingCli,
  serialOfPem,
  spiffeIdsOfPem,
} from './support.js';

const PASSPHRASE = 'e2e passphrase: correct horse battery staple';
const TD = 'e2e.example';
const WEB_ID = `spiffe://${TD}/web`;
const BATCH_ID = `spiffe://${TD}/batch`;

interface ListedCertificate {
  serial: string;
  spiffeId: string;
  status: string;
  kind: string;
}

describe('tlsmesh CLI end to end', () => {
  const { run, runs } = recordingCli();
  const withPassphrase = { TLSMESH_CA_PASSPHRASE: PASSPHRASE };
  const tokens: string[] = [];
  let root: string;
  let dataDir: string;
  let adminDir: string;
  let webDir: string;
  let batchDir: string;
  let server: BackgroundCli | undefined;
  let url: string;
  let hostPort: string;
  const serials: { web: string[]; batch: string[]; admin: string[] } = { web: [], batch: [], admin: [] };

  // 0. setup
  beforeAll(() => {
    clearCliEnvironment();
    root = mkdtempSync(join(tmpdir(), 'tlsmesh-cli-e2e-'));
    dataDir = join(root, 'ca'); // does not exist yet: `ca init` creates it
    adminDir = join(dataDir, 'admin');
    webDir = join(root, 'web');
    batchDir = join(root, 'batch');
  });

  // teardown: always runs, whatever failed
  afterAll(async () => {
    await server?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  const connection = (): string[] => ['--ca', url, '--data-dir', dataDir];

  it('1. ca init creates a private data dir whose printed fingerprint is the root in bundle.pem', async () => {
    const result = await run(['ca', 'init', '--data-dir', dataDir, '--trust-domain', TD, '--listen', '127.0.0.1:0'], withPassphrase);
    expectSuccess(result);
    expect(modeOf(dataDir)).toBe(0o700);
    expect(modeOf(adminDir)).toBe(0o700);
    for (const file of ['ca.yaml', 'ca.db', 'bundle.pem', 'admin/cert.pem', 'admin/key.pem', 'admin/bundle.pem']) {
      expect(modeOf(join(dataDir, file)), file).toBe(0o600);
    }
    const printed = /sha256:([0-9a-fA-F:]{64,})/.exec(result.stdout)?.[1];
    expect(printed).toBeDefined();
    const openssl = execFileSync('openssl', ['x509', '-in', join(dataDir, 'bundle.pem'), '-noout', '-fingerprint', '-sha256'], { encoding: 'utf8' });
    const fromOpenssl = normalizeHex(openssl.split('=')[1] ?? '');
    expect(fromOpenssl).toHaveLength(64);
    expect(normalizeHex(printed!)).toBe(fromOpenssl);
    expect(spiffeIdsOfPem(readFileSync(join(adminDir, 'cert.pem'), 'utf8'))).toEqual([`spiffe://${TD}/tlsmesh/admin`]);
    serials.admin.push(serialOfPem(readFileSync(join(adminDir, 'cert.pem'), 'utf8')));
  });

  it('2. ca init refuses a second init of the same data dir and leaves it as it was', async () => {
    const before = readFileSync(join(dataDir, 'bundle.pem'), 'utf8');
    const result = await run(['ca', 'init', '--data-dir', dataDir, '--trust-domain', TD], withPassphrase);
    expectCodedError(result, 'ERR_CA_ALREADY_INITIALIZED');
    expect(readFileSync(join(dataDir, 'bundle.pem'), 'utf8')).toBe(before);
  });

  it('3. ca serve starts with the passphrase from the environment, never on its command line', async () => {
    server = startBackground(cliCommand(['ca', 'serve', '--data-dir', dataDir]), { env: withPassphrase });
    url = (await server.waitFor(/serving at (https:\/\/\S+)/))[1]!;
    hostPort = new URL(url).host;
    const pid = server.child.pid!;
    if (existsSync(`/proc/${pid}/cmdline`)) {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      expect(cmdline).toContain('serve'); // it is the CA process we are looking at
      expect(cmdline).not.toContain(PASSPHRASE);
      // …and it does have the passphrase: through its environment.
      expect(readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')).toContain(`TLSMESH_CA_PASSPHRASE=${PASSPHRASE}`);
    }
  });

  it('4. token create --out writes a 0600 file holding a JWT for the identity and its SANs', async () => {
    const file = join(root, 'web.token');
    const result = await run(['token', 'create', ...connection(), '--id', WEB_ID, '--dns', 'web.internal', '--ip', '10.0.0.7', '--ttl', '10m', '--out', file]);
    expectSuccess(result);
    expect(modeOf(file)).toBe(0o600);
    const token = readFileSync(file, 'utf8').trim();
    expect(token).toMatch(JWT);
    tokens.push(token);
    const claims = decodeJwt(token);
    expect(claims.sub).toBe(WEB_ID);
    expect(claims.exp! - claims.iat!).toBe(600);
    expect(result.stdout).not.toContain(token);
    expect(result.stderr).not.toContain(token);
    // An --out the CLI cannot write is refused with a coded error, before any token is made.
    const nowhere = await run(['token', 'create', ...connection(), '--id', WEB_ID, '--out', join(root, 'missing-dir', 'token')]);
    expectCodedError(nowhere, 'ERR_CONFIG');
    expect(existsSync(join(root, 'missing-dir'))).toBe(false);
  });

  it('5. token create without --out prints the token on stdout only, the expiry on stderr', async () => {
    const result = await run(['token', 'create', ...connection(), '--id', BATCH_ID]);
    expectSuccess(result);
    const token = result.stdout.trim();
    expect(token).toMatch(JWT);
    expect(result.stdout).toBe(`${token}\n`);
    tokens.push(token);
    expect(decodeJwt(token).sub).toBe(BATCH_ID);
    expect(result.stderr).not.toContain(token);
    const expiry = new Date(decodeJwt(token).exp! * 1000).toISOString().replace('.000Z', '');
    expect(result.stderr).toContain(expiry);
  });

  it('6. cert request with --token-file writes leaf+intermediate, a 0600 key and the bundle; OpenSSL verifies it as a TLS client', async () => {
    const result = await run(['cert', 'request', '--ca', url, '--bundle', join(dataDir, 'bundle.pem'), '--token-file', join(root, 'web.token'), '--out', webDir]);
    expectSuccess(result);
    const chain = pemCertificates(readFileSync(join(webDir, 'cert.pem'), 'utf8'));
    expect(chain).toHaveLength(2);
    const [leaf, intermediate] = chain as [string, string];
    expect(new X509Certificate(leaf).ca).toBe(false);
    expect(new X509Certificate(intermediate).ca).toBe(true);
    expect(spiffeIdsOfPem(leaf)).toEqual([WEB_ID]);
    expect(new X509Certificate(leaf).subjectAltName).toContain('DNS:web.internal');
    expect(new X509Certificate(leaf).subjectAltName).toContain('IP Address:10.0.0.7');
    expect(modeOf(join(webDir, 'key.pem'))).toBe(0o600);
    expect(modeOf(webDir)).toBe(0o700);
    expect(readFileSync(join(webDir, 'bundle.pem'), 'utf8').trim()).toBe(readFileSync(join(dataDir, 'bundle.pem'), 'utf8').trim());
    const publicKeyOfKeyFile = createPublicKey(readFileSync(join(webDir, 'key.pem'), 'utf8')).export({ format: 'der', type: 'spki' });
    expect(new X509Certificate(leaf).publicKey.export({ format: 'der', type: 'spki' }).equals(publicKeyOfKeyFile)).toBe(true);

    writeFileSync(join(root, 'leaf.pem'), leaf);
    writeFileSync(join(root, 'intermediate.pem'), intermediate);
    const verify = spawnSync('openssl', ['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', join(webDir, 'bundle.pem'), '-untrusted', join(root, 'intermediate.pem'), join(root, 'leaf.pem')], { encoding: 'utf8' });
    expect(verify.status, `${verify.stdout}${verify.stderr}`).toBe(0);
    expect(verify.stdout).toMatch(/: OK$/m);
    serials.web.push(serialOfPem(leaf));
    expect(result.stdout).toContain(serials.web[0]);
  });

  it('7. the same token a second time is refused with ERR_TOKEN_REUSED, one error line and a hint', async () => {
    const result = await run(['cert', 'request', '--ca', url, '--bundle', join(dataDir, 'bundle.pem'), '--token-file', join(root, 'web.token'), '--out', join(root, 'web-again')]);
    expectCodedError(result, 'ERR_TOKEN_REUSED');
    expect(existsSync(join(root, 'web-again', 'cert.pem'))).toBe(false);
  });

  it('8. cert request takes the token from TLSMESH_TOKEN; an --out it cannot write is ERR_CONFIG and does not spend the token', async () => {
    const notADirectory = join(root, 'web.token'); // a file: nothing, not even root, can create a directory under it
    const unwritable = await run(['cert', 'request', '--ca', url, '--bundle', join(dataDir, 'bundle.pem'), '--out', join(notADirectory, 'tls')], { TLSMESH_TOKEN: tokens[1]! });
    expectCodedError(unwritable, 'ERR_CONFIG');
    const result = await run(['cert', 'request', '--ca', url, '--bundle', join(dataDir, 'bundle.pem'), '--out', batchDir], { TLSMESH_TOKEN: tokens[1]! });
    expectSuccess(result);
    const leaf = pemCertificates(readFileSync(join(batchDir, 'cert.pem'), 'utf8'))[0]!;
    expect(spiffeIdsOfPem(leaf)).toEqual([BATCH_ID]);
    serials.batch.push(serialOfPem(leaf));
  });

  it('9. cert request without any token is ERR_TOKEN_MALFORMED; with --debug it prints a stack instead of the hint', async () => {
    const args = ['cert', 'request', '--ca', url, '--bundle', join(dataDir, 'bundle.pem'), '--out', join(root, 'nothing')];
    const [plain, debug] = await Promise.all([run(args, { TLSMESH_TOKEN: '' }), run([...args, '--debug'], { TLSMESH_TOKEN: '' })]);
    expectCodedError(plain, 'ERR_TOKEN_MALFORMED');
    expect(plain.stderr).not.toMatch(/^\s+at /m);
    expect(debug.status).toBe(1);
    expect(debug.stderr.split('\n')[0]).toMatch(/^error ERR_TOKEN_MALFORMED: /);
    expect(debug.stderr).toMatch(/^\s+at .+:\d+:\d+\)?$/m);
    expect(debug.stderr).not.toContain('hint: re-run with --debug');
    expect(existsSync(join(root, 'nothing'))).toBe(false);
  });

  it('10. cert renew replaces the workload files: new serial, new key, same SPIFFE ID', async () => {
    const keyBefore = readFileSync(join(webDir, 'key.pem'), 'utf8');
    const result = await run(['cert', 'renew', '--ca', url, '--dir', webDir]);
    expectSuccess(result);
    const leaf = pemCertificates(readFileSync(join(webDir, 'cert.pem'), 'utf8'))[0]!;
    const keyAfter = readFileSync(join(webDir, 'key.pem'), 'utf8');
    expect(keyAfter).not.toBe(keyBefore);
    expect(modeOf(join(webDir, 'key.pem'))).toBe(0o600);
    expect(serialOfPem(leaf)).not.toBe(serials.web[0]);
    expect(spiffeIdsOfPem(leaf)).toEqual([WEB_ID]);
    expect(new X509Certificate(leaf).subjectAltName).toContain('DNS:web.internal');
    const publicKeyOfKeyFile = createPublicKey(keyAfter).export({ format: 'der', type: 'spki' });
    expect(new X509Certificate(leaf).publicKey.export({ format: 'der', type: 'spki' }).equals(publicKeyOfKeyFile)).toBe(true);
    serials.web.push(serialOfPem(leaf));
  });

  it('11. cert renew works on the admin credentials too', async () => {
    const keyBefore = readFileSync(join(adminDir, 'key.pem'), 'utf8');
    const result = await run(['cert', 'renew', '--ca', url, '--dir', adminDir]);
    expectSuccess(result);
    const leaf = pemCertificates(readFileSync(join(adminDir, 'cert.pem'), 'utf8'))[0]!;
    expect(readFileSync(join(adminDir, 'key.pem'), 'utf8')).not.toBe(keyBefore);
    expect(modeOf(join(adminDir, 'key.pem'))).toBe(0o600);
    expect(serialOfPem(leaf)).not.toBe(serials.admin[0]);
    expect(spiffeIdsOfPem(leaf)).toEqual([`spiffe://${TD}/tlsmesh/admin`]);
    serials.admin.push(serialOfPem(leaf));
  });

  it('12. cert inspect FILE says who the certificate names and that the chain verifies; against a stranger CA it fails', async () => {
    const stranger = join(root, 'stranger.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/O=stranger',
      '-keyout', join(root, 'stranger-key.pem'), '-out', stranger], { stdio: 'pipe' });
    const [good, bad] = await Promise.all([
      run(['cert', 'inspect', join(webDir, 'cert.pem'), '--bundle', join(webDir, 'bundle.pem')]),
      run(['cert', 'inspect', join(webDir, 'cert.pem'), '--bundle', stranger]),
    ]);
    expectSuccess(good);
    expect(good.stdout).toContain(WEB_ID);
    expect(good.stdout).toContain(serials.web[1]);
    expect(good.stdout).toMatch(/chain verifies/);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toMatch(/does not verify/i);
    expect(bad.stdout).not.toMatch(/chain verifies/);
  });

  it('13. cert inspect HOST:PORT --json shows the CA server certificate, verified', async () => {
    const result = await run(['cert', 'inspect', hostPort, '--bundle', join(dataDir, 'bundle.pem'), '--json']);
    expectSuccess(result);
    const report = JSON.parse(result.stdout) as { certificates: { spiffeIds: string[]; isCa: boolean }[]; verifies: boolean | null; problem: string | null };
    expect(report.certificates[0]!.spiffeIds).toEqual([`spiffe://${TD}/tlsmesh/ca`]);
    expect(report.certificates[0]!.isCa).toBe(false);
    expect(report.verifies).toBe(true);
    expect(report.problem).toBeNull();
  });

  it('14. cert list shows the issued serials; --json --id filters to one identity', async () => {
    const [text, json] = await Promise.all([run(['cert', 'list', ...connection()]), run(['cert', 'list', ...connection(), '--json', '--id', WEB_ID])]);
    expectSuccess(text);
    for (const serial of [...serials.web, ...serials.batch, ...serials.admin]) expect(text.stdout).toContain(serial);
    expectSuccess(json);
    const listed = JSON.parse(json.stdout) as ListedCertificate[];
    expect(new Set(listed.map((c) => c.serial))).toEqual(new Set(serials.web));
    expect(listed.every((c) => c.spiffeId === WEB_ID && c.kind === 'workload')).toBe(true);
  });

  it('15. cert revoke --serial revokes one certificate; cert list --status revoked --json shows it; it can no longer renew', async () => {
    const revokedSerial = serials.web[1]!;
    const revoke = await run(['cert', 'revoke', ...connection(), '--serial', revokedSerial, '--reason', 'keyCompromise']);
    expectSuccess(revoke);
    expect(revoke.stdout).toContain(revokedSerial);
    const list = await run(['cert', 'list', ...connection(), '--status', 'revoked', '--json']);
    expectSuccess(list);
    const listed = JSON.parse(list.stdout) as ListedCertificate[];
    expect(listed.map((c) => c.serial)).toEqual([revokedSerial]);
    expect(listed[0]!.status).toBe('revoked');
    expectCodedError(await run(['cert', 'renew', '--ca', url, '--dir', webDir]), 'ERR_CERT_REVOKED');
  });

  it('16. a workload using its own credentials for an admin command is ERR_FORBIDDEN', async () => {
    const result = await run(['cert', 'list', '--ca', url, '--admin-dir', batchDir]);
    expectCodedError(result, 'ERR_FORBIDDEN');
    expect(result.stdout).toBe('');
  });

  it('17. ca status (--json and text) shows the trust domain and the active intermediate', async () => {
    const [json, text] = await Promise.all([run(['ca', 'status', ...connection(), '--json']), run(['ca', 'status', ...connection()])]);
    expectSuccess(json);
    const status = JSON.parse(json.stdout) as { trustDomain: string; activeIntermediate: string; keys: { id: string; kind: string; state: string; offline: boolean }[] };
    expect(status.trustDomain).toBe(TD);
    const active = status.keys.find((key) => key.id === status.activeIntermediate);
    expect(active).toMatchObject({ kind: 'intermediate', state: 'active', offline: false });
    expect(status.keys.find((key) => key.kind === 'root')?.offline).toBe(false);
    expectSuccess(text);
    expect(text.stdout).toContain(TD);
    expect(text.stdout).toContain(status.activeIntermediate);
  });

  it('18. no output of the CLI or the CA carried the passphrase, and tokens appeared only where asked for', async () => {
    expect(tokens).toHaveLength(2);
    expect(runs.length).toBeGreaterThan(15);
    for (const result of runs) {
      const where = result.args.slice(0, 2).join(' ');
      expect(`${result.stdout}${result.stderr}`, where).not.toContain(PASSPHRASE);
      for (const token of tokens) {
        expect(result.stderr, where).not.toContain(token);
        // The one place a token may appear: stdout of `token create` without --out.
        if (where !== 'token create' || result.args.includes('--out')) expect(result.stdout, where).not.toContain(token);
      }
    }
    // The CA itself, after serving every request above; Ctrl-C stops it cleanly.
    expect(await server!.stop('SIGINT')).toBe(0);
    const caOutput = server!.output();
    expect(caOutput).toMatch(/serving at/);
    expect(caOutput).not.toContain(PASSPHRASE);
    for (const token of tokens) expect(caOutput).not.toContain(token);
  });
});
