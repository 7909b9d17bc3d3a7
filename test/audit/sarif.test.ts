/**
 * SARIF 2.1.0 output, validated against the SARIF 2.1.0 JSON schema with ajv.
 *
 * The schema comes from npm: @microsoft/jest-sarif ships `lib/schemas/sarif-2.1.0-rtm.5.json`,
 * the schema the SARIF TC published with the 2.1.0 release (schemastore's sarif-2.1.0-rtm.5). It
 * is written in JSON Schema draft-04, hence ajv-draft-04. Compared with the OASIS copy in the
 * sarif-spec repository (draft-07, `sarif-schema-2.1.0.json`), its definitions, properties,
 * `required` lists and enums are identical; the one difference is the `language` pattern, where
 * the OASIS errata fixed a stray `]`. Its sha256 is pinned below so that a change of the package
 * is noticed.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import AjvDraft04 from 'ajv-draft-04';
import addFormats from 'ajv-formats';
import { beforeAll, describe, expect, it } from 'vitest';
import { audit, FINGERPRINT_KEY, formatSarif, RULES, type AuditReport } from '../../src/audit/index.js';
import { FIXTURES } from './support.js';

const require = createRequire(import.meta.url);
const SCHEMA_PATH = require.resolve('@microsoft/jest-sarif/lib/schemas/sarif-2.1.0-rtm.5.json');
const SCHEMA_SHA256 = '2d99159ae54a3eea97f81781cff48780548657c35949f4b7f25e99a2ba4de4f8';

interface SarifLog {
  version: string;
  runs: {
    tool: { driver: { name: string; rules: { id: string; defaultConfiguration: { level: string }; shortDescription: { text: string }; help: { text: string } }[] } };
    originalUriBaseIds: Record<string, { uri: string }>;
    results: {
      ruleId: string;
      ruleIndex: number;
      level: string;
      message: { text: string };
      locations: { physicalLocation: { artifactLocation: { uri: string; uriBaseId: string }; region: { startLine: number; startColumn: number } } }[];
      partialFingerprints: Record<string, string>;
      suppressions?: { kind: string; justification: string }[];
    }[];
  }[];
}

function validator(): (value: unknown) => { valid: boolean; errors: string } {
  const schemaText = readFileSync(SCHEMA_PATH, 'utf8');
  const Ajv = AjvDraft04.default;
  // unicodeRegExp: false — the schema's `language` pattern has a stray `]` (fixed in the OASIS
  // errata) that is a literal without the `u` flag and a syntax error with it.
  const ajv = new Ajv({ allErrors: true, strict: false, unicodeRegExp: false });
  addFormats.default(ajv);
  const validate = ajv.compile(JSON.parse(schemaText) as object);
  return (value) => {
    const valid = validate(value);
    return { valid, errors: ajv.errorsText(validate.errors) };
  };
}

let report: AuditReport;
let log: SarifLog;

beforeAll(async () => {
  report = await audit({ root: FIXTURES });
  log = JSON.parse(formatSarif(report)) as SarifLog;
});

describe('SARIF output', () => {
  it('uses the pinned SARIF 2.1.0 schema', () => {
    const text = readFileSync(SCHEMA_PATH, 'utf8');
    expect(createHash('sha256').update(text).digest('hex')).toBe(SCHEMA_SHA256);
    const schema = JSON.parse(text) as { $schema: string; title: string; properties: { version: { enum: string[] } }; required: string[] };
    expect(schema.$schema).toBe('http://json-schema.org/draft-04/schema#');
    expect(schema.title).toMatch(/^Static Analysis Results Format \(SARIF\) Version 2\.1\.0/);
    expect(schema.properties.version.enum).toEqual(['2.1.0']);
    expect(schema.required).toEqual(['version', 'runs']);
  });

  it('is valid against the SARIF 2.1.0 schema', () => {
    expect(report.findings.length).toBeGreaterThan(100);
    expect(report.suppressed.length).toBeGreaterThan(0);
    const result = validator()(log);
    expect(result.errors).toBe('No errors');
    expect(result.valid).toBe(true);
  });

  it('is valid for a clean scan too', async () => {
    const clean = JSON.parse(formatSarif(await audit({ root: FIXTURES, paths: ['node/plaintext-server/negative.js'] }))) as SarifLog;
    expect(clean.runs[0]!.results).toEqual([]);
    expect(validator()(clean).valid).toBe(true);
  });

  it('rejects a log the schema forbids (the validator is really checking)', () => {
    const broken = structuredClone(log);
    broken.runs[0]!.results[0]!.level = 'fatal';
    expect(validator()(broken).valid).toBe(false);
    const noVersion: Partial<SarifLog> = structuredClone(log);
    delete noVersion.version;
    expect(validator()(noVersion).valid).toBe(false);
  });

  it('describes every rule in tool.driver.rules', () => {
    const driver = log.runs[0]!.tool.driver;
    expect(driver.name).toBe('tlsmesh audit');
    expect(driver.rules.map((rule) => rule.id)).toEqual(RULES.map((rule) => rule.id));
    for (const [index, rule] of driver.rules.entries()) {
      expect(rule.defaultConfiguration.level).toBe(RULES[index]!.severity);
      expect(rule.shortDescription.text).toBe(RULES[index]!.title);
      expect(rule.help.text).toContain(RULES[index]!.fix);
    }
  });

  it('gives each result its rule, level, relative location and baseline fingerprint', () => {
    const run = log.runs[0]!;
    expect(run.originalUriBaseIds['SRCROOT']!.uri).toBe(`file://${FIXTURES}/`);
    const results = run.results.filter((result) => !result.suppressions);
    expect(results).toHaveLength(report.findings.length);
    for (const [index, result] of results.entries()) {
      const finding = report.findings[index]!;
      expect(result.ruleId).toBe(finding.ruleId);
      expect(run.tool.driver.rules[result.ruleIndex]!.id).toBe(finding.ruleId);
      expect(result.level).toBe(finding.severity);
      const location = result.locations[0]!.physicalLocation;
      expect(location.artifactLocation).toEqual({ uri: finding.path, uriBaseId: 'SRCROOT' });
      expect(location.region.startLine).toBe(finding.line);
      expect(location.region.startColumn).toBe(finding.column);
      expect(result.partialFingerprints[FINGERPRINT_KEY]).toBe(finding.fingerprint);
    }
  });

  it('carries in-source suppressions as SARIF suppressions with their justification', () => {
    const suppressed = log.runs[0]!.results.filter((result) => result.suppressions);
    expect(suppressed).toHaveLength(report.suppressed.length);
    expect(suppressed.map((result) => result.suppressions![0]!)).toContainEqual({ kind: 'inSource', justification: '/healthz and /metrics only, bound to 127.0.0.1 for the kubelet' });
  });
});
