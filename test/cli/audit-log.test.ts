/**
 * `tlsmesh ca audit-log` as a user runs it, after real CA activity through the CLI (enrol, a
 * reused token refused, renew, revoke, a renewal refused after revocation), on SQLite and on
 * PostgreSQL: the chain verifies, the head the CA logged works as an anchor, an export verifies
 * off the box (and in Python, a second implementation); then rows changed with the database's own
 * tools (the sqlite3 shell, psql) make verify exit 1 with ERR_AUDIT_CHAIN_BROKEN.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliCommand, REPO_ROOT, startBackground, type BackgroundCli } from '../helpers/cli.js';
import { createTestDatabase, requirePgInSuite, type TestDatabase } from '../helpers/pg.js';
import { clearCliEnvironment, expectCodedError, expectSuccess, modeOf, recordingCli } from './support.js';

const exec = promisify(execFile);
const PASSPHRASE = 'audit-log passphrase: correct horse battery staple';
const TD = 'audit.example';
const PYTHON_CHECK = join(REPO_ROOT, 'test', 'helpers', 'audit_chain_check.py');
/** Eight CLI processes in a row; on the shared 2-core machine each can take seconds. */
const SCENARIO_TIMEOUT_MS = 300_000;

interface Report {
  ok: boolean;
  count: number;
  head: { seq: number; hash: string } | null;
  anchorsMatched: number;
  break?: { fault: string; seq: number | null };
}

interface Scenario {
  root: string;
  dataDir: string;
  /** The head `ca serve` logged at start. */
  startAnchor: string;
  run: ReturnType<typeof recordingCli>['run'];
}

/** ca init + ca serve, then enrol, reuse, renew, revoke, renew-after-revoke through the CLI; the CA is stopped at the end. */
async function caWithActivity(store: string | undefined): Promise<Scenario> {
  clearCliEnvironment();
  const { run } = recordingCli();
  const withPassphrase = { TLSMESH_CA_PASSPHRASE: PASSPHRASE };
  const root = mkdtempSync(join(tmpdir(), 'tlsmesh-audit-log-'));
  const dataDir = join(root, 'ca');
  expectSuccess(await run(['ca', 'init', '--data-dir', dataDir, '--trust-domain', TD, '--listen', '127.0.0.1:0', ...(store ? ['--store', store] : [])], withPassphrase));
  let server: BackgroundCli | undefined = startBackground(cliCommand(['ca', 'serve', '--data-dir', dataDir]), { env: withPassphrase });
  try {
    const url = (await server.waitFor(/serving at (https:\/\/\S+)/))[1]!;
    const startAnchor = (await server.waitFor(/"anchor":"(\d+:[0-9a-f]{64})"/))[1]!;
    const connection = ['--ca', url, '--data-dir', dataDir];
    const bundle = join(dataDir, 'bundle.pem');
    const web = join(root, 'web');
    expectSuccess(await run(['token', 'create', ...connection, '--id', `spiffe://${TD}/web`, '--out', join(root, 'web.token')]));
    expectSuccess(await run(['cert', 'request', '--ca', url, '--bundle', bundle, '--token-file', join(root, 'web.token'), '--out', web]));
    expectCodedError(await run(['cert', 'request', '--ca', url, '--bundle', bundle, '--token-file', join(root, 'web.token'), '--out', join(root, 'again')]), 'ERR_TOKEN_REUSED');
    expectSuccess(await run(['cert', 'renew', '--ca', url, '--dir', web]));
    const serial = (await exec('openssl', ['x509', '-in', join(web, 'cert.pem'), '-noout', '-serial'])).stdout.trim().split('=')[1]!.toLowerCase();
    expectSuccess(await run(['cert', 'revoke', ...connection, '--serial', serial, '--reason', 'keyCompromise']));
    expectCodedError(await run(['cert', 'renew', '--ca', url, '--dir', web]), 'ERR_CERT_REVOKED');
    await server.stop();
    server = undefined;
    return { root, dataDir, startAnchor, run };
  } finally {
    await server?.stop();
  }
}

const verifyJson = (result: { stdout: string }): Report => JSON.parse(result.stdout) as Report;

// Each step starts up to four CLI processes at once: generous time on a busy 2-core machine.
describe('tlsmesh ca audit-log on SQLite', { timeout: 180_000 }, () => {
  let scenario: Scenario;
  let head: string;
  const copies: string[] = [];

  beforeAll(async () => {
    scenario = await caWithActivity(undefined);
  }, SCENARIO_TIMEOUT_MS);
  afterAll(() => {
    if (scenario) rmSync(scenario.root, { recursive: true, force: true });
  });

  /** A consistent copy of the store file (the sqlite3 shell's online backup), for one tampering each. */
  const copyOfStore = async (name: string): Promise<string> => {
    const path = join(scenario.root, `${name}.db`);
    await exec('sqlite3', [join(scenario.dataDir, 'ca.db'), `.backup ${path}`]);
    copies.push(path);
    return path;
  };

  it('1. verify: OK with the count and head, the same head `audit-log head` prints; the CA start anchor matches', async () => {
    const { run, dataDir, startAnchor } = scenario;
    const [text, json, printed, anchored] = await Promise.all([
      run(['ca', 'audit-log', 'verify', '--data-dir', dataDir]),
      run(['ca', 'audit-log', 'verify', '--data-dir', dataDir, '--json']),
      run(['ca', 'audit-log', 'head', '--data-dir', dataDir]),
      run(['ca', 'audit-log', 'verify', '--data-dir', dataDir, '--expect-head', startAnchor]),
    ]);
    for (const result of [text, json, printed, anchored]) expectSuccess(result);
    const report = verifyJson(json);
    // init (root, intermediate, admin…), serve (CA server cert), token, enrol, refused reuse, renew, revoke, refused renew.
    expect(report.ok).toBe(true);
    expect(report.count).toBeGreaterThanOrEqual(7);
    head = `${report.head!.seq}:${report.head!.hash}`;
    expect(report.head!.seq).toBe(report.count);
    expect(printed.stdout.trim()).toBe(head);
    expect(text.stdout).toContain(`audit chain OK: ${report.count} entries, seq 1 to ${report.count}`);
    expect(text.stdout).toContain(`head ${head}`);
    expect(anchored.stdout).toContain('anchors matched: 1');
    expect(Number(startAnchor.split(':')[0])).toBeLessThan(report.head!.seq);
    // The refusals are in the chain.
    const { stdout } = await exec('sqlite3', [join(dataDir, 'ca.db'), "SELECT count(*) FROM audit_log WHERE outcome = 'refused' AND hash IS NOT NULL"]);
    expect(Number(stdout.trim())).toBe(2);
  });

  it('2. export --out writes a 0600 file that verify --file accepts, and that Python verifies independently', async () => {
    const { run, dataDir, root } = scenario;
    const file = join(root, 'audit.jsonl');
    const exported = await run(['ca', 'audit-log', 'export', '--data-dir', dataDir, '--out', file]);
    expectSuccess(exported);
    expect(exported.stderr).toContain(`(head ${head})`);
    expect(modeOf(file)).toBe(0o600);
    const verified = await run(['ca', 'audit-log', 'verify', '--file', file, '--expect-head', head, '--json']);
    expectSuccess(verified);
    expect(verifyJson(verified)).toMatchObject({ ok: true, anchorsMatched: 1 });
    expect((await exec('python3', [PYTHON_CHECK, 'jsonl', file])).stdout.trim()).toBe(`ok ${head.split(':')[0]} ${head}`);
    expect((await exec('python3', [PYTHON_CHECK, 'sqlite', join(dataDir, 'ca.db')])).stdout.trim()).toBe(`ok ${head.split(':')[0]} ${head}`);
  });

  it('3. export --since gives the rest of the chain, which verifies with --partial only; stdout export equals the file', async () => {
    const { run, dataDir, root } = scenario;
    const [since, all] = await Promise.all([run(['ca', 'audit-log', 'export', '--data-dir', dataDir, '--since', '3']), run(['ca', 'audit-log', 'export', '--data-dir', dataDir])]);
    expectSuccess(since);
    expectSuccess(all);
    expect(all.stdout).toBe(readFileSync(join(root, 'audit.jsonl'), 'utf8'));
    const lines = since.stdout.trimEnd().split('\n');
    expect((JSON.parse(lines[0]!) as { seq: number }).seq).toBe(4);
    const file = join(root, 'since-3.jsonl');
    writeFileSync(file, since.stdout);
    const [partial, strict] = await Promise.all([run(['ca', 'audit-log', 'verify', '--file', file, '--partial', '--expect-head', head]), run(['ca', 'audit-log', 'verify', '--file', file])]);
    expectSuccess(partial);
    expectCodedError(strict, 'ERR_AUDIT_CHAIN_BROKEN');
    expect(strict.stderr).toMatch(/\(missing\) at seq 4/);
  });

  it('4. an exported file edited, with a line dropped, or not JSON fails with a coded error naming the spot', async () => {
    const { run, root } = scenario;
    const lines = readFileSync(join(root, 'audit.jsonl'), 'utf8').trimEnd().split('\n');
    const edited = lines.map((line, i) => (i === 2 ? line.replace('"outcome":"ok"', '"outcome":"refused"') : line));
    expect(edited[2]).not.toBe(lines[2]);
    const files = {
      edited: edited.join('\n'),
      dropped: lines.filter((_, i) => i !== 4).join('\n'),
      garbage: [...lines.slice(0, 3), 'not json', ...lines.slice(3)].join('\n'),
    };
    for (const [name, text] of Object.entries(files)) writeFileSync(join(root, `${name}.jsonl`), `${text}\n`);
    const [e, d, g] = await Promise.all(Object.keys(files).map((name) => run(['ca', 'audit-log', 'verify', '--file', join(root, `${name}.jsonl`)])));
    expectCodedError(e!, 'ERR_AUDIT_CHAIN_BROKEN');
    expect(e!.stderr).toMatch(/\(edited\) at seq 3/);
    expectCodedError(d!, 'ERR_AUDIT_CHAIN_BROKEN');
    expect(d!.stderr).toMatch(/\(missing\) at seq 6/);
    expectCodedError(g!, 'ERR_AUDIT_EXPORT_MALFORMED');
    expect(g!.stderr).toMatch(/line 4/);
  });

  it('5. the store edited, a middle row deleted, a row inserted (sqlite3 shell): verify exits 1 naming the row', async () => {
    const { run } = scenario;
    const [edited, deleted, inserted] = await Promise.all([copyOfStore('edited'), copyOfStore('deleted'), copyOfStore('inserted')]);
    await exec('sqlite3', [edited, "UPDATE audit_log SET detail = '{\"serial\":\"00\"}' WHERE seq = 5"]);
    await exec('sqlite3', [deleted, 'DELETE FROM audit_log WHERE seq = 3']);
    await exec('sqlite3', [inserted, "INSERT INTO audit_log (at, actor, action, outcome, detail) VALUES (0, 'cli:local', 'revoke', 'ok', '{}')"]);
    const results = await Promise.all([edited, deleted, inserted].map((path) => run(['ca', 'audit-log', 'verify', '--data-dir', scenario.dataDir, '--store', `sqlite:${path}`, '--json'])));
    for (const result of results) expectCodedError(result, 'ERR_AUDIT_CHAIN_BROKEN');
    expect(results.map((result) => verifyJson(result).break)).toMatchObject([
      { fault: 'edited', seq: 5 },
      { fault: 'missing', seq: 4 },
      { fault: 'inserted', seq: null },
    ]);
  });

  it('6. the tail truncated verifies alone, but not against the head recorded before', async () => {
    const { run } = scenario;
    const truncated = await copyOfStore('truncated');
    await exec('sqlite3', [truncated, `DELETE FROM audit_log WHERE seq > ${Number(head.split(':')[0]) - 2}`]);
    const args = ['ca', 'audit-log', 'verify', '--data-dir', scenario.dataDir, '--store', `sqlite:${truncated}`];
    const [alone, anchored] = await Promise.all([run(args), run([...args, '--expect-head', head])]);
    expectSuccess(alone);
    expectCodedError(anchored, 'ERR_AUDIT_CHAIN_BROKEN');
    expect(anchored.stderr).toMatch(/\(truncated\)/);
  });

  it('8. a store whose schema is behind this version is refused by verify, export and head, and left byte for byte as it was', async () => {
    const { run } = scenario;
    const older = await copyOfStore('older-schema');
    // What a store written by a tlsmesh without the newest migration looks like to this one.
    await exec('sqlite3', [older, "DELETE FROM kysely_migration WHERE name = '0003_audit_chain'"]);
    const digest = (): string => createHash('sha256').update(readFileSync(older)).digest('hex');
    const before = digest();
    const store = ['--data-dir', scenario.dataDir, '--store', `sqlite:${older}`];
    const results = await Promise.all([
      run(['ca', 'audit-log', 'verify', ...store]),
      run(['ca', 'audit-log', 'export', ...store, '--out', join(scenario.root, 'older.jsonl')]),
      run(['ca', 'audit-log', 'head', ...store]),
    ]);
    for (const result of results) {
      expectCodedError(result, 'ERR_STORE');
      expect(result.stderr).toMatch(/1 migration\(s\) behind this tlsmesh \(0003_audit_chain\)/);
    }
    expect(digest()).toBe(before);
    expect((await exec('sqlite3', [older, 'SELECT count(*) FROM kysely_migration'])).stdout.trim()).toBe('2');
  });

  it('9. a store upgraded by a newer tlsmesh, and a store path with no file, are refused; no file is created', async () => {
    const { run } = scenario;
    const newer = await copyOfStore('newer-schema');
    await exec('sqlite3', [newer, "INSERT INTO kysely_migration (name, timestamp) VALUES ('9999_from_a_newer_tlsmesh', '2030-01-01T00:00:00.000Z')"]);
    const missing = join(scenario.root, 'no-such-store.db');
    const [upgraded, absent] = await Promise.all([
      run(['ca', 'audit-log', 'verify', '--data-dir', scenario.dataDir, '--store', `sqlite:${newer}`]),
      run(['ca', 'audit-log', 'verify', '--data-dir', scenario.dataDir, '--store', `sqlite:${missing}`]),
    ]);
    expectCodedError(upgraded, 'ERR_STORE');
    expect(upgraded.stderr).toMatch(/upgraded by a newer tlsmesh \(migrations 9999_from_a_newer_tlsmesh are unknown/);
    expectCodedError(absent, 'ERR_STORE');
    expect(absent.stderr).toMatch(/no SQLite store file at/);
    expect(existsSync(missing)).toBe(false);
  });

  it('7. a malformed --expect-head, two that disagree, a bad --since, --partial without --file, a missing file: ERR_CONFIG', async () => {
    const { run, dataDir } = scenario;
    const results = await Promise.all([
      run(['ca', 'audit-log', 'verify', '--data-dir', dataDir, '--expect-head', '12:xyz']),
      run(['ca', 'audit-log', 'export', '--data-dir', dataDir, '--since', '-1']),
      run(['ca', 'audit-log', 'verify', '--data-dir', dataDir, '--partial']),
      run(['ca', 'audit-log', 'verify', '--file', join(scenario.root, 'no-such.jsonl')]),
      run(['ca', 'audit-log', 'verify', '--data-dir', dataDir, '--expect-head', `1:${'a'.repeat(64)}`, '--expect-head', `1:${'b'.repeat(64)}`]),
    ]);
    for (const result of results) expectCodedError(result, 'ERR_CONFIG');
  });
});

describe('tlsmesh ca audit-log on PostgreSQL', async () => {
  if (!(await requirePgInSuite())) return;
  let database: TestDatabase;
  let scenario: Scenario;

  beforeAll(async () => {
    database = await createTestDatabase();
    scenario = await caWithActivity(database.url);
  }, SCENARIO_TIMEOUT_MS);
  afterAll(async () => {
    if (scenario) rmSync(scenario.root, { recursive: true, force: true });
    await database?.drop();
  });

  const psql = async (sql: string): Promise<string> => (await exec('psql', [database.url, '-At', '-v', 'ON_ERROR_STOP=1', '-c', sql])).stdout.trim();
  const verify = (extra: string[] = []) => scenario.run(['ca', 'audit-log', 'verify', '--data-dir', scenario.dataDir, '--json', ...extra]);

  it('1. verifies after real activity, export checked by Python; an SQL UPDATE breaks it, undoing it mends it, a DELETE breaks it for good', async () => {
    const ok = await verify([`--expect-head`, scenario.startAnchor]);
    expectSuccess(ok);
    const report = verifyJson(ok);
    expect(report).toMatchObject({ ok: true, anchorsMatched: 1 });
    expect(report.count).toBeGreaterThanOrEqual(7);
    const file = join(scenario.root, 'pg.jsonl');
    expectSuccess(await scenario.run(['ca', 'audit-log', 'export', '--data-dir', scenario.dataDir, '--out', file]));
    expect((await exec('python3', [PYTHON_CHECK, 'jsonl', file])).stdout.trim()).toBe(`ok ${report.count} ${report.head!.seq}:${report.head!.hash}`);
    expect(Number(await psql("SELECT count(*) FROM audit_log WHERE outcome = 'refused'"))).toBe(2);

    const actor = await psql('SELECT actor FROM audit_log WHERE seq = 4');
    await psql("UPDATE audit_log SET actor = 'spiffe://audit.example/innocent' WHERE seq = 4");
    const edited = await verify();
    expectCodedError(edited, 'ERR_AUDIT_CHAIN_BROKEN');
    expect(verifyJson(edited).break).toMatchObject({ fault: 'edited', seq: 4 });
    await psql(`UPDATE audit_log SET actor = '${actor.replace(/'/g, "''")}' WHERE seq = 4`);
    expectSuccess(await verify());

    await psql('DELETE FROM audit_log WHERE seq = 2');
    const deleted = await verify();
    expectCodedError(deleted, 'ERR_AUDIT_CHAIN_BROKEN');
    expect(verifyJson(deleted).break).toMatchObject({ fault: 'missing', seq: 3 });
  }, SCENARIO_TIMEOUT_MS);
});
