/**
 * Baselines: fingerprints survive line shifts, a baseline hides exactly the findings it names,
 * new findings still show, fixed ones are counted as stale, and bad baseline files are coded
 * errors.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isTlsmeshError } from '../../src/errors.js';
import { audit, createBaseline, parseBaseline, readBaseline, writeBaseline } from '../../src/audit/index.js';
import { project } from './support.js';

const SERVICE = [
  "import https from 'node:https';",
  "import http from 'node:http';",
  '',
  "export const agent = new https.Agent({ rejectUnauthorized: false });",
  'http.createServer(handler).listen(8080);',
  'http.createServer(handler).listen(8081);',
  '',
].join('\n');

const cleanups: (() => void)[] = [];
afterEach(() => {
  while (cleanups.length > 0) cleanups.pop()!();
});

function temp(files: Record<string, string>): ReturnType<typeof project> {
  const created = project(files);
  cleanups.push(created.cleanup);
  return created;
}

describe('fingerprints', () => {
  it('ok/stay the same when lines are added above and reformatted around the finding', async () => {
    const dir = temp({ 'service.ts': SERVICE });
    const before = await audit({ root: dir.dir });
    dir.write('service.ts', `// a header\n// that moves everything down\n\n${SERVICE.replace('rejectUnauthorized: false', 'rejectUnauthorized:   false')}`);
    const after = await audit({ root: dir.dir });
    expect(after.findings.map((finding) => finding.line)).toEqual(before.findings.map((finding) => finding.line + 3));
    expect(after.findings.map((finding) => finding.fingerprint)).toEqual(before.findings.map((finding) => finding.fingerprint));
  });

  it('ok/differ for identical code twice in a file (by occurrence) and across files (by path)', async () => {
    const dir = temp({ 'a.ts': SERVICE, 'b.ts': SERVICE });
    const { findings } = await audit({ root: dir.dir });
    expect(findings).toHaveLength(6);
    expect(new Set(findings.map((finding) => finding.fingerprint)).size).toBe(6);
  });

  it('fail/change when the flagged code changes', async () => {
    const dir = temp({ 'service.ts': SERVICE });
    const before = await audit({ root: dir.dir });
    dir.write('service.ts', SERVICE.replace('new https.Agent({ rejectUnauthorized: false })', 'new https.Agent({ keepAlive: true, rejectUnauthorized: 0 })'));
    const after = await audit({ root: dir.dir });
    expect(after.findings[0]!.fingerprint).not.toBe(before.findings[0]!.fingerprint);
    expect(after.findings[1]!.fingerprint).toBe(before.findings[1]!.fingerprint);
  });
});

describe('baseline', () => {
  it('hides known findings, shows new ones, counts fixed ones as stale', async () => {
    const dir = temp({ 'service.ts': SERVICE });
    const first = await audit({ root: dir.dir });
    const file = join(dir.dir, 'audit-baseline.json');
    await writeBaseline(file, first.findings);
    const baseline = await readBaseline(file);
    expect(baseline.findings).toHaveLength(3);

    // Shifted, one fixed, one new.
    dir.write('service.ts', `\n\n${SERVICE.replace('http.createServer(handler).listen(8081);', '')}\nprocess.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';\n`);
    const second = await audit({ root: dir.dir, baseline });
    expect(second.findings.map((finding) => finding.ruleId)).toEqual(['node/tls-reject-unauthorized-env']);
    expect(second.baselined.map((finding) => finding.ruleId)).toEqual(['node/reject-unauthorized-false', 'node/plaintext-server']);
    expect(second.staleBaselineEntries).toBe(1);
  });

  it('is sorted, versioned JSON without line-dependent keys', async () => {
    const dir = temp({ 'b.ts': SERVICE, 'a.ts': SERVICE });
    const { findings } = await audit({ root: dir.dir });
    const file = join(dir.dir, 'baseline.json');
    await writeBaseline(file, findings);
    const stored = JSON.parse(readFileSync(file, 'utf8')) as { version: number; tool: string; findings: { path: string; fingerprint: string }[] };
    expect(stored.version).toBe(1);
    expect(stored.tool).toBe('tlsmesh audit');
    expect(stored.findings.map((entry) => entry.path)).toEqual(['a.ts', 'a.ts', 'a.ts', 'b.ts', 'b.ts', 'b.ts']);
    expect(createBaseline(findings)).toEqual(stored);
  });

  it.each([
    ['fail/not JSON', '{'],
    ['fail/another tool', JSON.stringify({ version: 1, tool: 'eslint', findings: [] })],
    ['fail/a future version', JSON.stringify({ version: 2, tool: 'tlsmesh audit', findings: [] })],
    ['fail/a bad fingerprint', JSON.stringify({ version: 1, tool: 'tlsmesh audit', findings: [{ fingerprint: 'x', ruleId: 'a', path: 'b', line: 1, message: 'm' }] })],
    ['fail/an unknown key', JSON.stringify({ version: 1, tool: 'tlsmesh audit', findings: [], extra: true })],
  ])('%s is ERR_CONFIG', (_name, text) => {
    let caught: unknown;
    try {
      parseBaseline(text, 'baseline.json');
    } catch (error) {
      caught = error;
    }
    expect(isTlsmeshError(caught, 'ERR_CONFIG')).toBe(true);
  });

  it('fail/a missing file is ERR_CONFIG', async () => {
    await expect(readBaseline('/nonexistent/baseline.json')).rejects.toMatchObject({ code: 'ERR_CONFIG' });
  });
});
