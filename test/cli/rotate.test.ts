/**
 * `tlsmesh ca rotate …` as an operator runs it on a CA host: the data directory's ca.yaml pins
 * and bundle.pem follow the steps, wrong steps exit non-zero with the code and what to do.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { initDataDir } from '../../src/ca/data-dir.js';
import { pemBlocks } from '../../src/pki/index.js';
import { PASSPHRASE, TRUST_DOMAIN } from '../helpers/ca.js';
import { runCli } from '../helpers/cli.js';

let dataDir: string;
const env = { TLSMESH_CA_PASSPHRASE: PASSPHRASE };
const pins = (): string[] => (parseYaml(readFileSync(join(dataDir, 'ca.yaml'), 'utf8')) as { rootFingerprints: string[] }).rootFingerprints;
const bundleRoots = (): number => pemBlocks(readFileSync(join(dataDir, 'bundle.pem'), 'utf8'), 'CERTIFICATE').length;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tlsmesh-rotate-cli-'));
  await initDataDir({ dataDir, trustDomain: TRUST_DOMAIN, passphrase: PASSPHRASE, listen: '127.0.0.1:0' });
});
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

it('prepare --root, activate, retire: pins and bundle.pem follow; refusals name the problem', async () => {
  const early = await runCli(['ca', 'rotate', 'activate', '--data-dir', dataDir], { env });
  expect(early.status).not.toBe(0);
  expect(early.stderr).toContain('ERR_ROTATION_STATE');
  expect(early.stderr).toContain('prepare a new intermediate first');

  const prepared = await runCli(['ca', 'rotate', 'prepare', '--root', '--data-dir', dataDir], { env });
  expect(prepared.status, prepared.stderr).toBe(0);
  expect(prepared.stdout).toMatch(/prepared root root-[0-9a-f]{16}, sha256:[0-9a-f]{64}/);
  expect(pins()).toHaveLength(2);
  expect(bundleRoots()).toBe(2);

  const status = await runCli(['ca', 'rotate', 'status', '--data-dir', dataDir, '--json'], { env });
  const parsed = JSON.parse(status.stdout) as { keys: { kind: string; state: string }[]; next: string };
  expect(parsed.keys.filter((key) => key.state === 'prepared').map((key) => key.kind).sort()).toEqual(['intermediate', 'root']);
  expect(parsed.next).toMatch(/^activate/);

  expect((await runCli(['ca', 'rotate', 'activate', '--data-dir', dataDir], { env })).status).toBe(0);
  // The admin certificate from init is signed by the superseded intermediate and still valid.
  const busy = await runCli(['ca', 'rotate', 'retire', '--data-dir', dataDir], { env });
  expect(busy.status).not.toBe(0);
  expect(busy.stderr).toContain('ERR_ROTATION_IN_USE');
  expect(bundleRoots()).toBe(2);

  const forced = await runCli(['ca', 'rotate', 'retire', '--force', '--data-dir', dataDir], { env });
  expect(forced.status, forced.stderr).toBe(0);
  expect(pins()).toHaveLength(1);
  expect(bundleRoots()).toBe(1);
  expect((await runCli(['ca', 'rotate', 'status', '--data-dir', dataDir], { env })).stdout).toContain('next: nothing in progress');
}, 120_000);
