/** The text report: one line per check, then a summary. */
import type { ProbeReport } from './run.js';

const LABELS = { pass: 'PASS', fail: 'FAIL', skip: 'SKIP' } as const;

/**
 * @example
 * PASS  no-client-cert-refused  (TLSv1.3 handshake completed, then alert "certificate required" before any data)
 */
export function formatProbeReport(report: ProbeReport, options: { strict: boolean }): string {
  const width = Math.max(...report.checks.map((check) => check.id.length));
  const lines = report.checks.map((check) => `${LABELS[check.result]}  ${check.id.padEnd(width)}  (${check.evidence})`);
  const { pass, fail, skip } = report.summary;
  const skipNote = skip > 0 ? (options.strict ? ' (--strict: skips fail the probe)' : ' (skips do not fail the probe; --strict makes them)') : '';
  lines.push(`${report.target}: ${pass} passed, ${fail} failed, ${skip} skipped${skipNote}`);
  return `${lines.join('\n')}\n`;
}
