/**
 * The fixture corpus: per rule, positive and negative samples (TS and JS for the Node rules, Go
 * for the Go rules, YAML/JSON/.env for configs, PEM and source files for keys). The findings on
 * the whole corpus must equal the expectations exactly: nothing missing, nothing extra, no
 * duplicate.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { audit, RULES, type AuditReport } from '../../src/audit/index.js';
import { expectedFindings, FIXTURES } from './support.js';

let report: AuditReport;

beforeAll(async () => {
  report = await audit({ root: FIXTURES });
});

const keyOf = (finding: { path: string; line: number; ruleId: string }): string => `${finding.path}:${finding.line}:${finding.ruleId}`;

describe('fixture corpus', () => {
  it('finds exactly the expected findings', () => {
    const found = report.findings.map(keyOf).sort();
    const expected = expectedFindings();
    const missing = expected.filter((key) => !found.includes(key));
    const extra = found.filter((key) => !expected.includes(key));
    expect({ missing, extra }).toEqual({ missing: [], extra: [] });
    expect(found).toEqual(expected); // duplicates too
  });

  it('reports nothing in any negative sample', () => {
    const inNegatives = report.findings.filter((finding) => /(?:^|\/)negative[^/]*$/.test(finding.path));
    expect(inNegatives).toEqual([]);
  });

  it('honours the suppressions (with reasons) in the negative samples', () => {
    const suppressed = report.suppressed.map((finding) => `${keyOf(finding)} (${finding.suppression.reason})`).sort();
    expect(suppressed).toEqual([
      'audit/suppression-unknown-rule/negative.ts:5:node/plaintext-server (health port)',
      'audit/suppression-without-reason/negative.go:7:go/insecure-skip-verify (the prober inspects whatever certificate is presented)',
      'audit/suppression-without-reason/negative.ts:13:grpc-js/insecure-server-credentials (the benchmark\'s plaintext baseline, on loopback only)',
      'audit/suppression-without-reason/negative.ts:16:node/reject-unauthorized-false (inspection only, reports the verdict)',
      'audit/suppression-without-reason/negative.ts:17:node/check-server-identity-noop (the prober checks the SPIFFE ID itself)',
      'audit/suppression-without-reason/negative.ts:7:node/plaintext-server (readiness probe only, bound to 127.0.0.1)',
      'audit/suppression-without-reason/negative.ts:8:node/plaintext-server (Prometheus scrape on localhost)',
      'audit/suppression-without-reason/negative.yaml:3:config/tls-disabled (local development cache, no network exposure)',
      'audit/unused-suppression/negative.ts:6:node/plaintext-server (health port)',
      'go/http-plaintext-listener/negative.go:13:go/http-plaintext-listener (/healthz for the kubelet only, bound to localhost)',
      'node/plaintext-server/negative.ts:14:node/plaintext-server (/healthz and /metrics only, bound to 127.0.0.1 for the kubelet)',
    ]);
  });

  it.each(RULES.map((rule) => [rule.id, rule.language]))('%s has positive and negative samples', (id, language) => {
    const dir = join(FIXTURES, id);
    expect(existsSync(dir), dir).toBe(true);
    const names = readdirSync(dir);
    const expectations = expectedFindings().filter((key) => key.startsWith(`${id}/`) && key.endsWith(`:${id}`));
    expect(expectations.length, `no positive sample reports ${id}`).toBeGreaterThan(0);
    expect(names.some((name) => name.startsWith('negative')), `no negative sample for ${id}`).toBe(true);
    if (language === 'ts') {
      // TypeScript and JavaScript, both ways.
      expect(names.some((name) => /^positive.*\.tsx?$/.test(name))).toBe(true);
      expect(names.some((name) => /^positive.*\.(?:[cm]?js|jsx)$/.test(name))).toBe(true);
      expect(names.some((name) => /^negative.*\.tsx?$/.test(name))).toBe(true);
      expect(names.some((name) => /^negative.*\.(?:[cm]?js|jsx)$/.test(name))).toBe(true);
    }
    if (language === 'go') {
      expect(names).toContain('positive.go');
      expect(names).toContain('negative.go');
    }
  });

  it('gives every finding a location, a message, a fix and a fingerprint', () => {
    for (const finding of report.findings) {
      expect(finding.line).toBeGreaterThan(0);
      expect(finding.column).toBeGreaterThan(0);
      expect(finding.endLine * 100_000 + finding.endColumn).toBeGreaterThanOrEqual(finding.line * 100_000 + finding.column);
      expect(finding.message.length).toBeGreaterThan(10);
      expect(finding.fix.length).toBeGreaterThan(10);
      expect(finding.fingerprint).toMatch(/^[0-9a-f]{32}$/);
    }
    const prints = report.findings.map((finding) => finding.fingerprint);
    expect(new Set(prints).size).toBe(prints.length);
  });

  it('never prints key material or a password from a connection URL', () => {
    const text = JSON.stringify(report);
    expect(text).not.toContain('dGxzbWVzaCBhdWRpdCBmaXh0dXJl'); // the fake key bodies' first base64 bytes
    expect(text).not.toContain('s3cr3t-password');
  });
});
