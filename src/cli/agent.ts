/** `tlsmesh agent`: keep a workload's key, certificate, bundle and CRLs fresh on disk, and tell it to reload. */
import { AgentMetrics } from '../observe/metrics.js';
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import {
  AGENT_ENV,
  AGENT_EXIT_CODES,
  exitCodeFor,
  readAgentConfigFile,
  resolveAgentConfig,
  runAgentOnce,
  startAgent,
  startHealthServer,
  tokenFromFile,
  tokenFromValue,
  type Agent,
  type AgentConfig,
  type AgentFlags,
  type AgentOptions,
  type HealthServer,
} from '../agent/index.js';
import { TlsmeshError } from '../errors.js';
import { createLogger } from '../observe/logger.js';
import { examples, reportError } from './output.js';

/** Commander's camelCase keys of the options that map onto AgentFlags. */
const FLAG_KEYS: readonly (keyof AgentFlags)[] = [
  'ca', 'bundle', 'out', 'tokenFile', 'spiffeId', 'keyType', 'keyMode', 'exec', 'execTimeout', 'signal', 'pidFile', 'reloadUrl', 'reloadTimeout',
  'healthListen', 'healthListenAny', 'watch', 'pollInterval', 'crl', 'clockSkewTolerance', 'backoffInitial', 'backoffMax', 'once', 'onceTimeout', 'logLevel',
];

/** Only what was typed: commander's defaults (`--no-crl` implies crl: true) must not beat the env or the file. */
function typedFlags(command: Command): AgentFlags {
  const values = command.opts<Record<string, unknown>>();
  const flags: Record<string, unknown> = {};
  for (const key of FLAG_KEYS) if (command.getOptionValueSource(key) === 'cli') flags[key] = values[key];
  return flags;
}

async function readBundle(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (cause) {
    throw new TlsmeshError('ERR_CONFIG', `cannot read the CA trust bundle at ${path} (${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message})`, { cause });
  }
}

function agentOptions(config: AgentConfig, bundlePem: string): AgentOptions {
  const token = config.token === null ? undefined : 'file' in config.token ? tokenFromFile(config.token.file) : tokenFromValue(process.env[AGENT_ENV.token]);
  const tokenHint = config.token === null ? `--token-file FILE or ${AGENT_ENV.token}` : 'file' in config.token ? `the token file ${config.token.file}` : AGENT_ENV.token;
  return {
    caUrl: config.caUrl,
    bundlePem,
    outDir: config.outDir,
    token,
    tokenHint,
    spiffeId: config.spiffeId ?? undefined,
    keyType: config.keyType,
    keyMode: config.keyMode,
    reload: config.reload,
    watch: config.watch,
    pollMs: config.pollMs,
    crl: config.crl,
    clockSkewToleranceMs: config.clockSkewToleranceMs,
    backoff: config.backoff,
    // JSON logs on stderr: stdout stays for the one-line result of --once.
    logger: createLogger({ component: 'tlsmesh-agent', level: config.logLevel, destination: process.stderr }),
  };
}

/** Runs until SIGTERM/SIGINT, or until the agent cannot go on without the operator. */
async function runDaemon(config: AgentConfig, options: AgentOptions): Promise<unknown> {
  const started: { agent?: Agent } = {};
  // Before the agent starts, so that a bad address costs no token; requests are served only after
  // this function's next line has run (the continuation of an await precedes any I/O callback).
  // One registry for the process: the agent's renewals and certificate, and Node's own figures.
  const metrics = new AgentMetrics();
  metrics.collectProcessMetrics();
  const health: HealthServer | undefined = config.health ? await startHealthServer({ status: () => started.agent!.status() }, { ...config.health, metrics }) : undefined;
  const agent = startAgent({ ...options, metrics });
  started.agent = agent;
  if (health) options.logger?.info({ event: 'agent.health_listening', url: `${health.url}/healthz` }, `health endpoint: GET ${health.url}/healthz, metrics: GET ${health.url}/metrics`);
  // The agent's timers do not hold the process open (many agents can share one); this does.
  const keepAlive = setInterval(() => undefined, 1 << 30);
  const stopSignals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];
  let onSignal: (() => void) | undefined;
  const outcome = await new Promise<{ error?: unknown }>((resolve) => {
    onSignal = () => resolve({});
    for (const signal of stopSignals) process.once(signal, onSignal);
    agent.ready().then(
      () => undefined,
      (error: unknown) => resolve({ error }),
    );
  });
  for (const signal of stopSignals) process.removeListener(signal, onSignal!);
  clearInterval(keepAlive);
  await health?.close();
  await agent.stop();
  return outcome.error;
}

export function registerAgentCommand(program: Command): void {
  program
    .command('agent')
    .description("keep a workload's key, certificate, trust bundle and CRLs fresh in a directory, and tell it to reload")
    .option('--config <file>', `agent.yaml holding the same settings as these flags (or ${AGENT_ENV.config}); flags win`)
    .option('--ca <url>', `CA URL (or ${AGENT_ENV.caUrl})`)
    .option('--bundle <file>', `the CA's trust bundle, obtained out of band (or ${AGENT_ENV.bundle})`)
    .option('--out <dir>', `directory for cert.pem, key.pem, bundle.pem, crl.pem (or ${AGENT_ENV.out})`)
    .option('--token-file <file>', `file holding the one-time token (or ${AGENT_ENV.token}, ${AGENT_ENV.tokenFile}; never on the command line)`)
    .option('--spiffe-id <id>', 'the identity the files must have (default: the one the token names)')
    .option('--key-type <type>', 'key type: p256 (default), p384, ed25519, rsa2048, rsa3072, rsa4096')
    .option('--key-mode <mode>', "key.pem's mode: 0600 (default) or 0640")
    .option('--exec <command>', 'after each write, run this command with /bin/sh -c')
    .option('--exec-timeout <duration>', 'kill the --exec command after this long (default 30s)')
    .option('--signal <signal>', 'after each write, send this signal (e.g. HUP) to the process in --pid-file')
    .option('--pid-file <file>', 'file holding the pid to signal')
    .option('--reload-url <url>', 'after each write, POST to this URL')
    .option('--reload-timeout <duration>', 'timeout of the --reload-url call (default 10s)')
    .option('--health-listen <host:port>', `serve GET /healthz and /metrics here (loopback only unless --health-listen-any; or ${AGENT_ENV.healthListen})`)
    .option('--health-listen-any', 'allow --health-listen on a non-loopback address (plain HTTP: firewall it)')
    .option('--no-watch', "poll the CA's bundle and CRLs (with ETags) instead of following its streams")
    .option('--poll-interval <duration>', 'bundle and CRL poll interval (default 30s)')
    .option('--no-crl', 'do not write crl.pem (workloads then cannot check revocation)')
    .option('--clock-skew-tolerance <duration>', 'how far this host clock may be off without a warning (default 5m)')
    .option('--backoff-initial <duration>', 'first retry delay while the CA is unreachable (default 1s)')
    .option('--backoff-max <duration>', 'longest retry delay (default 5m)')
    .option('--once', 'make sure a valid set is on disk (enrol, renew if due, repair), then exit: for init containers and cron')
    .option('--once-timeout <duration>', 'with --once: give up after this long (default 2m)')
    .option('--log-level <level>', 'fatal, error, warn, info (default), debug, trace')
    .addHelpText(
      'after',
      `
FILES
  <out>/cert.pem, key.pem, bundle.pem, crl.pem are links into <out>/..data, which points at the
  version directory in use; each write makes a new version and swaps ..data with one rename.

EXIT CODES
  0 a valid set is on disk   1 error   2 usage or configuration   3 a new enrolment token is needed
  4 --once: the CA could not be reached and no valid set is on disk
${examples([
  'tlsmesh agent --ca https://ca.internal:8443 --bundle /etc/tlsmesh/bundle.pem --token-file /run/secrets/tlsmesh-token --out /var/run/tlsmesh --signal HUP --pid-file /run/nginx.pid',
  'TLSMESH_TOKEN=… tlsmesh agent --once --ca https://ca.internal:8443 --bundle bundle.pem --out /var/run/tlsmesh',
  'tlsmesh agent --config /etc/tlsmesh/agent.yaml --health-listen 127.0.0.1:9180',
  'tlsmesh agent --config agent.yaml --exec "systemctl reload billing"',
])}`,
    )
    .action(async (_options: unknown, command: Command) => {
      const debug = command.optsWithGlobals<{ debug?: boolean }>().debug === true;
      let error: unknown;
      try {
        const flags = typedFlags(command);
        const configPath = command.opts<{ config?: string }>().config ?? process.env[AGENT_ENV.config];
        const file = configPath !== undefined && configPath !== '' ? await readAgentConfigFile(configPath) : {};
        const config = resolveAgentConfig(flags, process.env, file);
        const options = agentOptions(config, await readBundle(config.bundleFile));
        if (config.once) {
          const result = await runAgentOnce({ ...options, timeoutMs: config.onceTimeoutMs });
          if (result.exitCode === AGENT_EXIT_CODES.ok) {
            const { spiffeId, serial, notAfter } = result.status;
            process.stdout.write(`certificate for ${spiffeId} (serial ${serial}, valid until ${notAfter}) in ${config.outDir}\n`);
            if (result.status.status !== 'ok' && result.error !== null) {
              // Due for renewal and not renewed: the files still serve, but not for long.
              process.stderr.write(`warning: the certificate is due for renewal and could not be renewed (${result.error.message}); it stays valid until ${notAfter}\n`);
            }
            return;
          }
          reportError(result.error ?? new TlsmeshError('ERR_CA_UNREACHABLE', `no valid credentials in ${config.outDir} within ${config.onceTimeoutMs} ms`), debug);
          process.exitCode = result.exitCode;
          return;
        }
        error = await runDaemon(config, options);
      } catch (caught) {
        error = caught;
      }
      if (error !== undefined) {
        reportError(error, debug);
        process.exitCode = exitCodeFor(error);
      }
    });
}
