/** `tlsmesh probe HOST:PORT`: try to get into an mTLS endpoint the wrong way, and say what happened. */
import { Option, type Command } from 'commander';
import { TlsmeshError } from '../errors.js';
import {
  CHECK_IDS,
  checkMaterial,
  DEFAULT_SETTLE_MS,
  DEFAULT_TIMEOUT_MS,
  expectedId,
  formatProbeReport,
  parseTarget,
  probeExitCode,
  runProbe,
  type ApplicationRequest,
  type Credential,
} from '../probe/index.js';
import { readText } from './context.js';
import { examples, printJson, reportError } from './output.js';

export interface ProbeFlags {
  ca: string;
  cert: string;
  key: string;
  expectId: string[];
  issuerCert?: string;
  issuerKey?: string;
  revokedCert?: string;
  revokedKey?: string;
  /** `--http` alone is true (path /); `--http /healthz` gives the path. */
  http?: string | true;
  grpc?: boolean;
  timeout: string;
  wait: string;
  strict?: boolean;
  json?: boolean;
}

/** Exit codes: documented in --help and docs/probe.md. */
export const PROBE_EXIT = { ok: 0, failed: 1, error: 2 } as const;

/** `5`, `5s`, `2.5s` or `500ms`, between 1 ms and 10 minutes; bare numbers are seconds. */
export function parseDurationMs(value: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(value.trim());
  const ms = match ? Number(match[1]) * (match[2] === 'ms' ? 1 : 1000) : Number.NaN;
  if (!(ms >= 1 && ms <= 600_000)) throw new TlsmeshError('ERR_CONFIG', `${flag} must be a duration like 5s, 2.5s or 500ms, at most 10 minutes (got ${JSON.stringify(value)})`);
  return Math.round(ms);
}

function applicationOf(flags: Pick<ProbeFlags, 'http' | 'grpc'>): ApplicationRequest {
  if (flags.grpc === true) return { kind: 'grpc' };
  if (flags.http === undefined) return { kind: 'tls' };
  const path = flags.http === true ? '/' : flags.http;
  // The path goes into the request line verbatim: no spaces or control characters.
  if (!/^\/[\x21-\x7e]*$/.test(path)) throw new TlsmeshError('ERR_CONFIG', `--http takes a path starting with "/" and without spaces (got ${JSON.stringify(path.slice(0, 100))})`);
  return { kind: 'http', path };
}

async function optionalCredential(certPath: string | undefined, keyPath: string | undefined, certFlag: string, keyFlag: string): Promise<Credential | undefined> {
  if (certPath === undefined && keyPath === undefined) return undefined;
  if (certPath === undefined || keyPath === undefined) throw new TlsmeshError('ERR_CONFIG', `${certFlag} and ${keyFlag} go together`);
  return { certPem: await readText(certPath, `${certFlag}`), keyPem: await readText(keyPath, `${keyFlag}`) };
}

/**
 * The command's work, for the action and for tests: prints the report (text or JSON) and returns
 * the exit code. Bad input and an unreachable target print a coded error and return 2.
 */
export async function probeCommand(targetText: string, flags: ProbeFlags, options: { debug?: boolean } = {}): Promise<number> {
  try {
    const target = parseTarget(targetText);
    const expect = flags.expectId.map(expectedId);
    if (expect.length === 0) throw new TlsmeshError('ERR_CONFIG', '--expect-id is required: the SPIFFE ID (or spiffe://<trust-domain>) the server must have');
    const application = applicationOf(flags);
    const timeoutMs = parseDurationMs(flags.timeout, '--timeout');
    const settleMs = parseDurationMs(flags.wait, '--wait');
    const material = checkMaterial({
      bundlePem: await readText(flags.ca, 'the trust bundle (--ca)'),
      client: { certPem: await readText(flags.cert, 'the client certificate (--cert)'), keyPem: await readText(flags.key, 'the client key (--key)') },
      issuer: await optionalCredential(flags.issuerCert, flags.issuerKey, '--issuer-cert', '--issuer-key'),
      revoked: await optionalCredential(flags.revokedCert, flags.revokedKey, '--revoked-cert', '--revoked-key'),
    });
    const report = await runProbe({ target, material, expect, application, timeoutMs, settleMs });
    const strict = flags.strict === true;
    if (flags.json === true) printJson(report);
    else process.stdout.write(formatProbeReport(report, { strict }));
    return probeExitCode(report, { strict });
  } catch (error) {
    reportError(error, options.debug === true);
    return PROBE_EXIT.error;
  }
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

const EXIT_CODES = `
RESULTS
  Each check prints PASS, FAIL or SKIP with its evidence (the alert, error or first bytes seen).
  SKIP: the check could not run (no --issuer-cert/--issuer-key, no --revoked-cert/--revoked-key,
  an old protocol this machine cannot offer) or proved nothing (the server refused the control
  certificate too). Checks: ${CHECK_IDS.join(', ')}.

EXIT CODES
  0  every check passed (SKIPs allowed, unless --strict)
  1  at least one check failed (or, with --strict, was skipped)
  2  bad input or unreachable target (a coded error on stderr)
`;

export function registerProbeCommand(program: Command): void {
  program
    .command('probe')
    .description('try to get into an mTLS endpoint the wrong way (plaintext, no or bad client certificates, old TLS, weak suites) and check its identity')
    .argument('<target>', 'HOST:PORT (or [IPv6]:PORT) of the TLS server')
    .requiredOption('--ca <file>', "trust bundle: the roots the server's chain must reach")
    .requiredOption('--cert <file>', 'a valid client certificate chain (leaf first) the server should accept')
    .requiredOption('--key <file>', 'the key of --cert (unencrypted PEM; never printed)')
    .option('--expect-id <spiffe-id>', 'SPIFFE ID the server must have; spiffe://<trust-domain> accepts any ID in it; repeat for alternatives', collect, [])
    .option('--issuer-cert <file>', 'a CA certificate the server trusts (followed by its chain, if any): mints expired, not yet valid and serverAuth-only client certificates')
    .option('--issuer-key <file>', 'the key of --issuer-cert (used in memory only)')
    .option('--revoked-cert <file>', 'a client certificate chain the CA has revoked (the server must have the CRL)')
    .option('--revoked-key <file>', 'the key of --revoked-cert')
    .addOption(new Option('--http [path]', 'after the handshake, send GET <path> (default /) and read the status').conflicts('grpc'))
    .addOption(new Option('--grpc', 'after the handshake, call grpc.health.v1.Health/Check over HTTP/2').conflicts('http'))
    .option('--timeout <duration>', 'per connection: TCP + handshake, and waiting for an answer', `${DEFAULT_TIMEOUT_MS / 1000}s`)
    .option('--wait <duration>', 'plain TLS (no --http/--grpc): how long a connection must stay open unrefused to count as accepted', `${DEFAULT_SETTLE_MS / 1000}s`)
    .option('--strict', 'SKIPs fail the probe (exit 1)')
    .option('--json', 'print one JSON document: { target, checks: [{ id, title, result, evidence, ms }], summary }')
    .addHelpText(
      'after',
      EXIT_CODES +
        examples([
          'tlsmesh probe 127.0.0.1:8443 --ca bundle.pem --cert tls/cert.pem --key tls/key.pem --expect-id spiffe://example.org/api',
          'tlsmesh probe api.internal:443 --ca bundle.pem --cert tls/cert.pem --key tls/key.pem --expect-id spiffe://example.org --http /healthz',
          'tlsmesh probe 10.0.0.7:50051 --ca bundle.pem --cert tls/cert.pem --key tls/key.pem --expect-id spiffe://example.org/payments --grpc --json',
          'tlsmesh probe nginx.internal:443 --ca bundle.pem --cert tls/cert.pem --key tls/key.pem --expect-id spiffe://example.org/web --http --issuer-cert issuer.pem --issuer-key issuer.key --revoked-cert old/cert.pem --revoked-key old/key.pem --strict',
        ]),
    )
    .action(async (target: string, flags: ProbeFlags, command: Command) => {
      const debug = command.optsWithGlobals<{ debug?: boolean }>().debug === true;
      process.exitCode = await probeCommand(target, flags, { debug });
    });
}
