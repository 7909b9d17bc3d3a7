/**
 * Shared bits of the CLI end-to-end tests: a recording wrapper around runCli (so a final step can
 * check that no output ever carried a secret), coded-error assertions, file modes, PEM splitting.
 */
import { X509Certificate } from 'node:crypto';
import { statSync } from 'node:fs';
import { expect } from 'vitest';
import { runCli, type CliResult } from '../helpers/cli.js';

/** Variables the CLI reads; cleared so the developer's shell cannot change what a test means. */
const CLI_ENV = [
  'TLSMESH_CA_PASSPHRASE',
  'TLSMESH_TOKEN',
  'TLSMESH_CA_URL',
  'TLSMESH_DATA_DIR',
  'TLSMESH_ADMIN_DIR',
  'TLSMESH_CA_LISTEN',
  'TLSMESH_CA_STORE',
  'TLSMESH_CA_PUBLIC_URL',
];

export function clearCliEnvironment(): void {
  for (const name of CLI_ENV) delete process.env[name];
}

export interface RecordedRun extends CliResult {
  args: string[];
}

/** runCli that keeps every result, for checks across the whole suite. */
export function recordingCli(): { run: (args: string[], env?: Record<string, string>) => Promise<RecordedRun>; runs: RecordedRun[] } {
  const runs: RecordedRun[] = [];
  return {
    runs,
    async run(args, env = {}) {
      const result = { args, ...(await runCli(args, { env })) };
      runs.push(result);
      return result;
    },
  };
}

/** Exit 0; on failure the message shows what the CLI said. */
export function expectSuccess(result: CliResult): void {
  expect(result.status, `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`).toBe(0);
}

/**
 * Exit 1 with a one-line coded error and the --debug hint: exactly two lines on stderr, the first
 * `error ERR_CODE: …`.
 */
export function expectCodedError(result: CliResult, code: string): void {
  expect(result.status, `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`).toBe(1);
  const lines = result.stderr.split('\n').filter((line) => line !== '');
  expect(lines[0]).toMatch(new RegExp(`^error ${code}: \\S`));
  expect(lines).toHaveLength(2);
  expect(lines[1]).toMatch(/^hint: re-run with --debug/);
}

export const modeOf = (path: string): number => statSync(path).mode & 0o777;

export const pemCertificates = (text: string): string[] =>
  [...text.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g)].map((match) => match[0].endsWith('\n') ? match[0] : `${match[0]}\n`);

/** Lower-case hex without separators: `AB:CD` and `abcd` compare equal. */
export const normalizeHex = (text: string): string => text.replace(/[^0-9a-f]/gi, '').toLowerCase();

export const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

export function spiffeIdsOfPem(pem: string): string[] {
  const san = new X509Certificate(pem).subjectAltName ?? '';
  return san
    .split(', ')
    .filter((entry) => entry.startsWith('URI:spiffe://'))
    .map((entry) => entry.slice(4));
}

export const serialOfPem = (pem: string): string => new X509Certificate(pem).serialNumber.toLowerCase();
