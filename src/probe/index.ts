/**
 * The conformance prober: tries to get into a TLS endpoint the wrong way (plaintext, no client
 * certificate, a stranger's CA, expired, not yet valid, revoked or serverAuth-only certificates,
 * TLS 1.0/1.1, weak TLS 1.2 suites), checks the server's own chain and SPIFFE ID, and that a valid
 * client certificate gets in. Each check is PASS, FAIL or SKIP with evidence.
 *
 * @example
 * const material = checkMaterial({ bundlePem, client: { certPem, keyPem }, issuer: { certPem: issuerPem, keyPem: issuerKeyPem } });
 * const report = await runProbe({ target: parseTarget('api.internal:8443'), material, expect: [expectedId('spiffe://example.org/api')], application: { kind: 'http', path: '/' } });
 * process.stdout.write(formatProbeReport(report, { strict: false }));
 * process.exitCode = probeExitCode(report, { strict: false });
 */

/** Every check, with its stable id and title. @example CHECK_IDS.includes('tls10-refused') */
export { CHECK_IDS, CHECKS } from './checks.js';
export type { CheckId } from './checks.js';
/** `HOST:PORT` → host, port and SNI name. @example parseTarget('[::1]:8443').host // '::1' */
export { parseTarget } from './target.js';
export type { ProbeTarget } from './target.js';
/** Validates the PEM inputs (ERR_CONFIG naming the flag). @example checkMaterial({ bundlePem, client: { certPem, keyPem } }) */
export { checkMaterial } from './material.js';
export type { CheckedMaterial, Credential, ProbeMaterial } from './material.js';
/** What --expect-id accepts: an exact SPIFFE ID or a trust domain. @example expectedId('spiffe://example.org').matches('spiffe://example.org/api') // true */
export { expectedId } from './server-chain.js';
export type { ExpectedId } from './server-chain.js';
/** Runs the probe; the exit code a CLI should use. @example probeExitCode(await runProbe(options), { strict: true }) */
export { probeExitCode, runProbe } from './run.js';
export type { CheckResult, ProbeReport } from './run.js';
/** What runProbe takes, and its defaults. @example const options: ProbeOptions = { target, material, expect, application: { kind: 'grpc' } }; */
export { DEFAULT_SETTLE_MS, DEFAULT_TIMEOUT_MS } from './options.js';
export type { ApplicationRequest, ProbeOptions } from './options.js';
export type { CheckOutcome } from './verdicts.js';
/** The text report. @example process.stdout.write(formatProbeReport(report, { strict: false })) */
export { formatProbeReport } from './report.js';
