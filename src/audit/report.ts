/** The three report formats: text for people, JSON for scripts, SARIF 2.1.0 for code scanning. */
import { readFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { AuditReport } from './audit.js';
import { FINGERPRINT_KEY } from './baseline.js';
import { RULES } from './rules.js';
import type { Finding, Severity, SuppressedFinding } from './types.js';

export type ReportFormat = 'text' | 'json' | 'sarif';
export const REPORT_FORMATS: readonly ReportFormat[] = ['text', 'json', 'sarif'];

export const TOOL_NAME = 'tlsmesh audit';

let version: string | undefined;
/** The package version (package.json sits two levels up from both src/audit and dist/audit). */
export function toolVersion(): string {
  if (version === undefined) {
    try {
      const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
      version = typeof manifest.version === 'string' ? manifest.version : '0.0.0';
    } catch {
      version = '0.0.0';
    }
  }
  return version;
}

const plural = (count: number, word: string): string => `${count} ${word}${count === 1 ? '' : 's'}`;

function counts(findings: readonly Finding[]): string {
  const by = (severity: Severity): number => findings.filter((finding) => finding.severity === severity).length;
  const parts = [plural(by('error'), 'error'), plural(by('warning'), 'warning'), plural(by('note'), 'note')].filter((part) => !part.startsWith('0 '));
  return parts.join(', ');
}

/** The closing line of every format: what was found, what was hidden and why, and how long it took. */
export function summaryLine(report: AuditReport): string {
  const found = report.findings.length === 0 ? 'no findings' : `${plural(report.findings.length, 'finding')} (${counts(report.findings)})`;
  const extras = [
    report.suppressed.length > 0 ? `${report.suppressed.length} suppressed in the source` : '',
    report.baselined.length > 0 ? `${report.baselined.length} hidden by the baseline` : '',
    report.staleBaselineEntries > 0 ? `${plural(report.staleBaselineEntries, 'baseline entry')} no longer found`.replace('entrys', 'entries') : '',
    report.skipped.length > 0 ? `${plural(report.skipped.length, 'file')} skipped (binary or too large)` : '',
  ].filter((part) => part !== '');
  const seconds = (report.durationMs / 1000).toFixed(1);
  return `${TOOL_NAME}: ${found} in ${plural(report.filesScanned, 'file')}${extras.length > 0 ? `; ${extras.join('; ')}` : ''} (${seconds} s)`;
}

export function formatText(report: AuditReport): string {
  const lines: string[] = [];
  for (const finding of report.findings) {
    lines.push(`${finding.path}:${finding.line}:${finding.column}  ${finding.severity}  ${finding.ruleId}`);
    lines.push(`    ${finding.message}`);
    lines.push(`    | ${finding.snippet}`);
    lines.push(`    fix: ${finding.fix}`);
    lines.push('');
  }
  lines.push(summaryLine(report));
  return `${lines.join('\n')}\n`;
}

const jsonFinding = (finding: Finding): Record<string, unknown> => ({
  ruleId: finding.ruleId,
  severity: finding.severity,
  path: finding.path,
  line: finding.line,
  column: finding.column,
  endLine: finding.endLine,
  endColumn: finding.endColumn,
  message: finding.message,
  fix: finding.fix,
  snippet: finding.snippet,
  fingerprint: finding.fingerprint,
});

export function formatJson(report: AuditReport): string {
  const document = {
    tool: { name: TOOL_NAME, version: toolVersion() },
    root: report.root,
    summary: {
      files: report.filesScanned,
      findings: report.findings.length,
      errors: report.findings.filter((finding) => finding.severity === 'error').length,
      warnings: report.findings.filter((finding) => finding.severity === 'warning').length,
      notes: report.findings.filter((finding) => finding.severity === 'note').length,
      suppressed: report.suppressed.length,
      baselined: report.baselined.length,
      staleBaselineEntries: report.staleBaselineEntries,
      durationMs: report.durationMs,
    },
    findings: report.findings.map(jsonFinding),
    suppressed: report.suppressed.map((finding) => ({ ...jsonFinding(finding), suppression: finding.suppression })),
    skipped: report.skipped,
  };
  return `${JSON.stringify(document, null, 2)}\n`;
}

const SECURITY_SEVERITY: Record<Severity, string> = { error: '8.0', warning: '5.0', note: '2.0' };

function artifactUri(path: string): { uri: string; uriBaseId?: string } {
  if (isAbsolute(path)) return { uri: pathToFileURL(path).href };
  return { uri: path.split('/').map(encodeURIComponent).join('/'), uriBaseId: 'SRCROOT' };
}

function sarifResult(finding: Finding | SuppressedFinding, ruleIndex: number): Record<string, unknown> {
  return {
    ruleId: finding.ruleId,
    ruleIndex,
    level: finding.severity,
    message: { text: `${finding.message}. Fix: ${finding.fix}` },
    locations: [
      {
        physicalLocation: {
          artifactLocation: artifactUri(finding.path),
          region: {
            startLine: finding.line,
            startColumn: finding.column,
            endLine: finding.endLine,
            endColumn: finding.endColumn,
            snippet: { text: finding.snippet },
          },
        },
      },
    ],
    partialFingerprints: { [FINGERPRINT_KEY]: finding.fingerprint },
    ...('suppression' in finding ? { suppressions: [{ kind: 'inSource', justification: finding.suppression.reason }] } : {}),
  };
}

/** A SARIF 2.1.0 log with one run; results carry the baseline fingerprint as a partial fingerprint. */
export function formatSarif(report: AuditReport): string {
  const index = new Map(RULES.map((rule, position) => [rule.id, position]));
  const log = {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: TOOL_NAME,
            version: toolVersion(),
            rules: RULES.map((rule) => ({
              id: rule.id,
              name: rule.id.replace(/[^A-Za-z0-9]+(.)/g, (_match, next: string) => next.toUpperCase()),
              shortDescription: { text: rule.title },
              fullDescription: { text: rule.description },
              help: { text: `${rule.description}\nFix: ${rule.fix}` },
              defaultConfiguration: { level: rule.severity },
              properties: { tags: ['security', rule.language === 'secret' ? 'secrets' : 'tls'], precision: 'high', 'security-severity': SECURITY_SEVERITY[rule.severity] },
            })),
          },
        },
        originalUriBaseIds: { SRCROOT: { uri: pathToFileURL(report.root.endsWith('/') ? report.root : `${report.root}/`).href } },
        columnKind: 'utf16CodeUnits',
        invocations: [{ executionSuccessful: true }],
        results: [...report.findings, ...report.suppressed].map((finding) => sarifResult(finding, index.get(finding.ruleId) ?? -1)),
      },
    ],
  };
  return `${JSON.stringify(log, null, 2)}\n`;
}

export function formatReport(report: AuditReport, format: ReportFormat): string {
  switch (format) {
    case 'text':
      return formatText(report);
    case 'json':
      return formatJson(report);
    case 'sarif':
      return formatSarif(report);
  }
}
