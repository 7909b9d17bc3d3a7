/**
 * The shipped Prometheus rules, checked by Prometheus's own promtool: `check rules` (syntax and
 * lint) and `test rules` (series → expected alerts, with cases that must not fire; the files are
 * in test/observe/promtool). Without promtool the tests skip locally and fail under CI=true.
 * Also: the rules use the CA notifier's default thresholds, link runbooks that exist in
 * docs/alerts.md, and the package ships the file.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { DEFAULT_ALERT_POLICY } from '../../src/ca/alerts/evaluate.js';
import { hasCommand } from '../helpers/openssl.js';

const ROOT = join(import.meta.dirname, '..', '..');
const RULES = join(ROOT, 'alerts', 'tlsmesh-rules.yml');
const TESTS = join(ROOT, 'test', 'observe', 'promtool');

interface Rule {
  alert: string;
  expr: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}
const rules = (parseYaml(readFileSync(RULES, 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap((group) => group.rules);

const promtool = hasCommand('promtool');
if (!promtool && process.env['CI'] === 'true') throw new Error('CI requires promtool (Debian prometheus package)');

describe.skipIf(!promtool)(`promtool${promtool ? '' : ' (skipped: promtool is not installed)'}`, () => {
  it('check rules: valid and lint-clean', () => {
    const result = spawnSync('promtool', ['check', 'rules', RULES], { encoding: 'utf8' });
    expect(result.stdout + result.stderr).toContain(`SUCCESS: ${rules.length} rules found`);
    expect(result.status).toBe(0);
  });

  const files = readdirSync(TESTS).filter((name) => name.endsWith('.test.yml'));
  it('has unit-test files', () => expect(files.sort()).toEqual(['certificates.test.yml', 'crl.test.yml', 'traffic.test.yml']));
  for (const file of files) {
    it(`test rules ${file}`, () => {
      const result = spawnSync('promtool', ['test', 'rules', file], { cwd: TESTS, encoding: 'utf8' });
      expect(result.stdout + result.stderr, result.stdout + result.stderr).toContain('SUCCESS');
      expect(result.status).toBe(0);
    });
  }

  it('a wrong expectation fails (the harness can fail)', () => {
    // crl.test.yml expecting the warning 6 minutes early, against the same rules.
    const dir = mkdtempSync(join(tmpdir(), 'tlsmesh-promtool-'));
    try {
      const broken = readFileSync(join(TESTS, 'crl.test.yml'), 'utf8').replace('../../../alerts/tlsmesh-rules.yml', RULES).replace('eval_time: 1090m', 'eval_time: 1084m');
      writeFileSync(join(dir, 'broken.test.yml'), broken);
      const result = spawnSync('promtool', ['test', 'rules', 'broken.test.yml'], { cwd: dir, encoding: 'utf8' });
      expect(result.stdout + result.stderr).toContain('FAILED');
      expect(result.stdout + result.stderr).toContain('alertname: TlsmeshCrlStale, time: 18h4m');
      expect(result.status).not.toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('rules file', () => {
  const docs = readFileSync(join(ROOT, 'docs', 'alerts.md'), 'utf8');
  const anchors = new Set([...docs.matchAll(/^#{2,4} (.+)$/gm)].map((match) => match[1]!.toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-')));

  it('every alert has a severity, a summary, a description and a runbook section in docs/alerts.md', () => {
    for (const rule of rules) {
      expect(['warning', 'critical'], rule.alert).toContain(rule.labels.severity);
      expect(rule.annotations['summary'], rule.alert).toBeTruthy();
      expect(rule.annotations['description'], rule.alert).toBeTruthy();
      expect(rule.annotations['runbook_url'], rule.alert).toBe(`${DEFAULT_ALERT_POLICY.runbookBaseUrl}#${rule.alert.toLowerCase()}`);
      expect(anchors, rule.alert).toContain(rule.alert.toLowerCase());
    }
  });

  it('uses the thresholds the CA notifier defaults to', () => {
    const expr = (name: string, severity: string, signal?: string): string =>
      rules.find((rule) => rule.alert === name && rule.labels.severity === severity && (signal === undefined || rule.labels['signal'] === signal))!.expr;
    const p = DEFAULT_ALERT_POLICY;
    expect(expr('TlsmeshRenewalFailing', 'warning', 'certificate-age')).toContain(`> ${p.renewalOverdueAfter} *`);
    expect(expr('TlsmeshCertificateExpiringSoon', 'warning')).toContain(`> ${p.expiringWarningAfter} *`);
    expect(expr('TlsmeshCertificateExpiringSoon', 'critical')).toContain(`> ${p.expiringCriticalAfter} *`);
    expect(expr('TlsmeshCrlStale', 'warning')).toContain(`> ${p.crlWarningAfter} *`);
    expect(expr('TlsmeshCrlStale', 'critical')).toContain(`> ${p.crlCriticalAfter} *`);
    for (const name of ['TlsmeshRefusedHandshakeSpike', 'TlsmeshRefusedRequestSpike']) {
      expect(expr(name, 'warning')).toContain(`[${p.spikeWindowMs / 60_000}m]`);
      expect(expr(name, 'warning')).toContain(`) > ${p.refusalFloorPerSecond}\n`);
      expect(expr(name, 'warning')).toContain(`<= ${p.refusalFactor} * sum`);
      expect(expr(name, 'warning')).toContain(`[${p.baselineWindowMs / 3_600_000}h] offset ${p.spikeWindowMs / 60_000}m`);
    }
    expect(expr('TlsmeshPlaintextSeen', 'warning')).toContain(`[${p.plaintextWindowMs / 60_000}m]`);
  });

  it('is shipped in the package', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { files: string[] };
    expect(pkg.files).toContain('alerts');
  });
});
