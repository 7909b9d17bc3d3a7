/**
 * tlsmesh audit: a static auditor for insecure TLS in TypeScript/JavaScript (TypeScript compiler
 * AST), Go (tree-sitter) and configuration files (YAML, JSON, .env), plus committed private keys.
 * The CLI is `tlsmesh audit` (src/cli/audit.ts); docs/audit.md has the rule table.
 *
 * @example
 * const report = await audit({ root: '.', exclude: ['test/**\/fixtures'] });
 * process.stdout.write(formatReport(report, 'text'));
 * if (shouldFail(report, 'warning')) process.exitCode = 1;
 */

/** Scan files and decide whether CI fails. @example const report = await audit({ root: 'services/api' }); */
export { atLeast, audit, shouldFail } from './audit.js';
export type { AuditOptions, AuditReport } from './audit.js';

/** The rules. @example RULES.filter((rule) => rule.severity === 'error').map((rule) => rule.id) */
export { isRuleId, ruleById, RULES } from './rules.js';
export { SEVERITIES } from './types.js';
export type { AuditRule, Finding, RuleLanguage, Severity, SuppressedFinding } from './types.js';

/** Baselines: accept today's findings, fail only on new ones. @example await writeBaseline('audit-baseline.json', report.findings); */
export { applyBaseline, createBaseline, FINGERPRINT_KEY, fingerprint, parseBaseline, readBaseline, writeBaseline } from './baseline.js';
export type { Baseline } from './baseline.js';

/** Reports. @example writeFileSync('audit.sarif', formatSarif(report)); */
export { formatJson, formatReport, formatSarif, formatText, REPORT_FORMATS, summaryLine, TOOL_NAME, toolVersion } from './report.js';
export type { ReportFormat } from './report.js';

/** File selection. @example new ExcludeMatcher(['fixtures', 'test/**\/*.pem']).matches('test/a/key.pem') */
export { DEFAULT_EXCLUDES, ExcludeMatcher, globToRegExp } from './files.js';
