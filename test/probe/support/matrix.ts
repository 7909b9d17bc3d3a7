/** Running a probe from a test, and asserting the (check → result) matrix with the report as the message. */
import { expect } from 'vitest';
import { CHECK_IDS, expectedId, formatProbeReport, parseTarget, runProbe, type ApplicationRequest, type CheckId, type CheckOutcome, type ProbeReport } from '../../../src/probe/index.js';
import { SERVER_ID, type ProbePki } from './pki.js';

export type Matrix = Partial<Record<CheckId, CheckOutcome>>;

/** Every check passes: what a correctly configured server must show. */
export const ALL_PASS: Record<CheckId, CheckOutcome> = Object.fromEntries(CHECK_IDS.map((id) => [id, 'pass'])) as Record<CheckId, CheckOutcome>;

/** Short waits: loopback answers in milliseconds, and the suite must stay fast. */
export const TEST_TIMEOUT_MS = 3000;
export const TEST_SETTLE_MS = 400;

export interface ProbeRun {
  application?: ApplicationRequest;
  issuer?: boolean;
  revoked?: boolean;
  expect?: string[];
}

export function probe(pki: ProbePki, port: number, run: ProbeRun = {}): Promise<ProbeReport> {
  return runProbe({
    target: parseTarget(`127.0.0.1:${port}`),
    material: pki.material({ issuer: run.issuer ?? true, revoked: run.revoked ?? true }),
    expect: (run.expect ?? [SERVER_ID]).map(expectedId),
    application: run.application ?? { kind: 'tls' },
    timeoutMs: TEST_TIMEOUT_MS,
    settleMs: TEST_SETTLE_MS,
  });
}

export const resultsOf = (report: ProbeReport): Record<CheckId, CheckOutcome> =>
  Object.fromEntries(report.checks.map((check) => [check.id, check.result])) as Record<CheckId, CheckOutcome>;

/** Asserts the listed checks (all of them with ALL_PASS); the failure message is the whole report. */
export function expectMatrix(report: ProbeReport, expected: Matrix): void {
  const actual = resultsOf(report);
  const subset = Object.fromEntries(Object.keys(expected).map((id) => [id, actual[id as CheckId]]));
  expect(subset, formatProbeReport(report, { strict: false })).toEqual(expected);
}

export const evidenceOf = (report: ProbeReport, id: CheckId): string => report.checks.find((check) => check.id === id)!.evidence;
