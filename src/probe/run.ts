/**
 * Runs every check against one server, one connection at a time (a whole probe is a few dozen
 * short connections), and collects PASS / FAIL / SKIP with evidence.
 *
 * The valid client certificate goes first: it is the control that makes every refusal mean
 * something. A fresh certificate from --issuer-cert is a second control, for the certificates
 * minted from that issuer. The plaintext check goes last, once the probe knows whether the port
 * completes TLS handshakes.
 */
import { CHECK_RUNS } from './check-runs.js';
import { CHECKS, type CheckId } from './checks.js';
import { DEFAULT_TIMEOUT_MS, type ProbeOptions } from './options.js';
import { ensureReachable } from './reachability.js';
import { ProbeSession } from './session.js';
import { withoutControlCharacters } from './signals.js';
import type { CheckOutcome } from './verdicts.js';

export interface CheckResult {
  id: CheckId;
  title: string;
  result: CheckOutcome;
  evidence: string;
  ms: number;
}

export interface ProbeReport {
  target: string;
  checks: CheckResult[];
  summary: { pass: number; fail: number; skip: number };
}

/** Controls first (they give refusals their meaning), plaintext last (it needs to know the port speaks TLS). */
const EXECUTION_ORDER: readonly CheckId[] = [
  'valid-client-cert-accepted',
  'server-chain-trusted',
  'server-id-matches',
  'no-client-cert-refused',
  'unknown-ca-refused',
  'expired-cert-refused',
  'not-yet-valid-cert-refused',
  'server-auth-only-cert-refused',
  'revoked-cert-refused',
  'tls10-refused',
  'tls11-refused',
  'weak-ciphers-refused',
  'plaintext-refused',
];

/**
 * Probes one server with every check. Throws ERR_CONFIG only when the target cannot be reached at
 * all; whatever the server does after that is a check's result.
 *
 * @example
 * const report = await runProbe({ target: parseTarget('127.0.0.1:8443'), material: checkMaterial({ bundlePem, client: { certPem, keyPem } }),
 *   expect: [expectedId('spiffe://example.org/api')], application: { kind: 'http', path: '/' } });
 * probeExitCode(report, { strict: false }); // 0 when nothing failed
 */
export async function runProbe(options: ProbeOptions): Promise<ProbeReport> {
  await ensureReachable(options.target, options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  const session = new ProbeSession(options);
  const results = new Map<CheckId, CheckResult>();
  for (const id of EXECUTION_ORDER) {
    const started = performance.now();
    const verdict = await CHECK_RUNS[id](session);
    const title = CHECKS.find((check) => check.id === id)!.title;
    results.set(id, { id, title, result: verdict.result, evidence: withoutControlCharacters(verdict.evidence), ms: Math.round(performance.now() - started) });
  }
  const checks = CHECKS.map((check) => results.get(check.id)!);
  const count = (result: CheckOutcome): number => checks.filter((check) => check.result === result).length;
  return { target: options.target.label, checks, summary: { pass: count('pass'), fail: count('fail'), skip: count('skip') } };
}

/** 0 when every check passed (skips allowed unless `strict`), 1 otherwise. */
export function probeExitCode(report: ProbeReport, options: { strict: boolean }): 0 | 1 {
  if (report.summary.fail > 0) return 1;
  return options.strict && report.summary.skip > 0 ? 1 : 0;
}
