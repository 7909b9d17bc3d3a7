/**
 * tlsmesh/agent: keeps a workload's key, certificate chain, trust bundle and CRLs fresh in a
 * directory, for any runtime (Go, nginx, Python, Java, and tlsmesh's own `fileIdentity`), and
 * tells the workload to reload. `tlsmesh agent` is this API behind flags and a config file.
 *
 * @example
 * const agent = startAgent({ caUrl: 'https://ca.internal:8443', bundlePem, outDir: '/var/run/tlsmesh', token: tokenFromFile('/run/secrets/tlsmesh-token') });
 * await agent.ready();
 */

// ---- Running an agent ---------------------------------------------------------------------------

/**
 * Starts an agent: reuses a valid set on disk or enrols with the token, renews at 2/3 of the
 * lifetime over mTLS, follows the bundle and CRLs, writes atomically, runs the reload hooks.
 * @example const agent = startAgent({ caUrl, bundlePem, outDir, token: tokenFromValue(process.env.TLSMESH_TOKEN) }); await agent.ready();
 */
export { startAgent } from './agent.js';
/**
 * For init containers and cron jobs: a valid set on disk, then stop; the result carries the exit code.
 * @example const { exitCode } = await runAgentOnce({ caUrl, bundlePem, outDir, token, timeoutMs: 60_000 });
 */
export { DEFAULT_ONCE_TIMEOUT_MS, runAgentOnce } from './agent.js';
/** Options, status (the health JSON), events and the handle. @example agent.status().nextRenewalAt */
export type { Agent, AgentCounters, AgentEvent, AgentOptions, AgentStatus, AgentStep, OnceOptions, OnceResult } from './agent.js';
/**
 * Where the one-time token comes from: a file read on each use, or a value (TLSMESH_TOKEN).
 * @example startAgent({ ...options, token: tokenFromFile('/run/secrets/tlsmesh-token') })
 */
export { tokenFromFile, tokenFromValue } from './token.js';
export type { TokenSource } from './token.js';
/** Exit codes: 0 ok, 1 error, 2 usage/config, 3 needs a new token, 4 CA unreachable (--once). @example process.exitCode = exitCodeFor(error) */
export { AGENT_EXIT_CODES, exitCodeFor } from './exit-codes.js';

// ---- Decisions (pure) ---------------------------------------------------------------------------

/**
 * When to renew and how to read a certificate's dates on a host whose clock is off.
 * @example shouldRenew(Date.now(), identity, 0); validityProblem(Date.now(), identity, 5 * 60_000)
 */
export { clockBehindMs, DEFAULT_CLOCK_SKEW_TOLERANCE_MS, healthHttpStatus, healthState, isExpired, shouldRenew, validityProblem } from './schedule.js';
export type { HealthState, Validity } from './schedule.js';

// ---- Files --------------------------------------------------------------------------------------

/**
 * The atomic directory layout: a version directory per write, a `..data` symlink swapped with one rename.
 * @example await writeCredentialSet('/var/run/tlsmesh', { certPem, keyPem, bundlePem, crlPem });
 */
export { CREDENTIAL_FILES, DATA_LINK, NODE_FS, prepareOutputDir, readCredentialFiles, removeLeftovers, writeCredentialSet } from './output-dir.js';
export type { CredentialFile, DirectoryFs, WriteOptions } from './output-dir.js';
/**
 * Checking a set: key fits the leaf, chain leads to the bundle, what to do with files found at start.
 * @example chainProblem(certPem, bundlePem) === null
 */
export { chainProblem, checkSet, inspectFiles } from './credential-set.js';
export type { CredentialSet, FileRead, FoundFiles, InspectOptions, Inspection } from './credential-set.js';

// ---- Reload hooks and health --------------------------------------------------------------------

/**
 * Telling the workload: run a command, signal the pid in a pid file, or POST to a URL.
 * @example startAgent({ ...options, reload: [{ kind: 'exec', command: 'nginx -s reload' }] })
 */
export { DEFAULT_EXEC_TIMEOUT_MS, DEFAULT_HTTP_TIMEOUT_MS, parseSignal, readPidFile, runReloadHook } from './reload.js';
export type { ReloadContext, ReloadHook, ReloadOutcome } from './reload.js';
/**
 * `GET /healthz` on loopback: the status as JSON, 200 or 503.
 * @example const health = await startHealthServer(agent, { host: '127.0.0.1', port: 9180 });
 */
export { isLoopbackHost, parseHealthListen, startHealthServer } from './health.js';
export type { HealthListen, HealthServer, HealthServerOptions } from './health.js';

// ---- Configuration ------------------------------------------------------------------------------

/**
 * agent.yaml and flags: strict, flags over environment over file over defaults, frozen.
 * @example const config = resolveAgentConfig(flags, process.env, await readAgentConfigFile('agent.yaml'));
 */
export { AGENT_ENV, agentFileSchema, parseAgentConfigText, parseDurationMs, parseKeyMode, readAgentConfigFile, resolveAgentConfig } from './config.js';
export type { AgentConfig, AgentFileConfig, AgentFlags, TokenSetting } from './config.js';
