/**
 * The agent's configuration: flags over environment over a YAML file (`--config agent.yaml`) over
 * defaults. The file is validated strictly (an unknown key is an error that names it), defaults
 * are applied afterwards in one place, and the result is frozen.
 *
 * The token itself is never a setting: only where to read it (`tokenFile`, or the TLSMESH_TOKEN
 * variable), because flags are visible to every user in `ps` and config files get copied around.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { TlsmeshError } from '../errors.js';
import { isKeyType, KEY_TYPES, parseSpiffeId, type KeyType } from '../pki/index.js';
import { DEFAULT_BACKOFF, type BackoffPolicy } from '../sdk/sources/renew-schedule.js';
import { DEFAULT_ONCE_TIMEOUT_MS } from './agent.js';
import { parseHealthListen, type HealthListen } from './health.js';
import { DEFAULT_EXEC_TIMEOUT_MS, DEFAULT_HTTP_TIMEOUT_MS, parseSignal, type ReloadHook } from './reload.js';
import { DEFAULT_CLOCK_SKEW_TOLERANCE_MS } from './schedule.js';

const duration = z.union([z.string(), z.number()]);

/** What `agent.yaml` may contain (the same settings as the flags). */
export const agentFileSchema = z.strictObject({
  /** https://host:port of the CA. */
  ca: z.string().optional(),
  /** The CA's trust bundle obtained out of band. */
  bundle: z.string().optional(),
  out: z.string().optional(),
  tokenFile: z.string().optional(),
  spiffeId: z.string().optional(),
  keyType: z.string().optional(),
  keyMode: z.union([z.string(), z.number()]).optional(),
  reload: z
    .strictObject({
      exec: z.string().optional(),
      execTimeout: duration.optional(),
      signal: z.string().optional(),
      pidFile: z.string().optional(),
      url: z.string().optional(),
      urlTimeout: duration.optional(),
    })
    .optional(),
  health: z.strictObject({ listen: z.string().optional(), listenAny: z.boolean().optional() }).optional(),
  watch: z.boolean().optional(),
  pollInterval: duration.optional(),
  crl: z.boolean().optional(),
  clockSkewTolerance: duration.optional(),
  backoff: z.strictObject({ initial: duration.optional(), max: duration.optional() }).optional(),
  onceTimeout: duration.optional(),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).optional(),
});
export type AgentFileConfig = z.infer<typeof agentFileSchema>;

/** The flags, as given on the command line (undefined when not given). */
export interface AgentFlags {
  ca?: string | undefined;
  bundle?: string | undefined;
  out?: string | undefined;
  tokenFile?: string | undefined;
  spiffeId?: string | undefined;
  keyType?: string | undefined;
  keyMode?: string | undefined;
  exec?: string | undefined;
  execTimeout?: string | undefined;
  signal?: string | undefined;
  pidFile?: string | undefined;
  reloadUrl?: string | undefined;
  reloadTimeout?: string | undefined;
  healthListen?: string | undefined;
  healthListenAny?: boolean | undefined;
  watch?: boolean | undefined;
  pollInterval?: string | undefined;
  crl?: boolean | undefined;
  clockSkewTolerance?: string | undefined;
  backoffInitial?: string | undefined;
  backoffMax?: string | undefined;
  once?: boolean | undefined;
  onceTimeout?: string | undefined;
  logLevel?: string | undefined;
}

/** Where the token is read from: a file, or the TLSMESH_TOKEN variable; null when none is configured. */
export type TokenSetting = { file: string } | { env: 'TLSMESH_TOKEN' } | null;

export interface AgentConfig {
  caUrl: string;
  bundleFile: string;
  outDir: string;
  token: TokenSetting;
  spiffeId: string | null;
  keyType: KeyType;
  keyMode: number;
  reload: ReloadHook[];
  health: (HealthListen & { allowNonLoopback: boolean }) | null;
  watch: boolean;
  pollMs: number;
  crl: boolean;
  clockSkewToleranceMs: number;
  backoff: BackoffPolicy;
  once: boolean;
  onceTimeoutMs: number;
  logLevel: string;
}

/** The environment variables the agent reads (besides TLSMESH_LOG_LEVEL, read by the logger). */
export const AGENT_ENV = {
  caUrl: 'TLSMESH_CA_URL',
  bundle: 'TLSMESH_AGENT_BUNDLE',
  out: 'TLSMESH_AGENT_OUT',
  token: 'TLSMESH_TOKEN',
  tokenFile: 'TLSMESH_TOKEN_FILE',
  spiffeId: 'TLSMESH_AGENT_SPIFFE_ID',
  healthListen: 'TLSMESH_AGENT_HEALTH_LISTEN',
  config: 'TLSMESH_AGENT_CONFIG',
} as const;

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `500ms`, `90s`, `15m`, `24h`, `1d`, or a bare number of seconds; throws ERR_CONFIG naming `key`. */
export function parseDurationMs(value: string | number, key: string): number {
  const match = typeof value === 'number' ? (Number.isInteger(value) ? [String(value), String(value), 's'] : null) : /^(\d+)(ms|s|m|h|d)?$/.exec(value.trim());
  const ms = match ? Number(match[1]) * UNIT_MS[match[2] || 's']! : NaN;
  if (!Number.isSafeInteger(ms) || ms <= 0) throw new TlsmeshError('ERR_CONFIG', `${key} must be a duration like 500ms, 90s, 15m or 24h (got ${JSON.stringify(value)})`);
  return ms;
}

/** `0600` or `0640` (a YAML number 600 is read as the octal it looks like). */
export function parseKeyMode(value: string | number, key = 'keyMode'): number {
  const text = String(value).trim();
  const mode = /^0?[0-7]{3}$/.test(text) ? parseInt(text, 8) : NaN;
  if (mode !== 0o600 && mode !== 0o640) throw new TlsmeshError('ERR_CONFIG', `${key} must be 0600 or 0640 (got ${JSON.stringify(value)})`);
  return mode;
}

/** Reads and validates `agent.yaml`; ERR_CONFIG names the file and the key at fault. */
export async function readAgentConfigFile(path: string): Promise<AgentFileConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new TlsmeshError('ERR_CONFIG', `cannot read the agent configuration ${path} (${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message})`, { cause });
  }
  return parseAgentConfigText(text, path);
}

export function parseAgentConfigText(text: string, path = 'agent.yaml'): AgentFileConfig {
  let parsed: unknown;
  try {
    parsed = parseYaml(text) ?? {};
  } catch (cause) {
    throw new TlsmeshError('ERR_CONFIG', `${path}: not valid YAML (${(cause as Error).message.split('\n')[0]})`, { cause });
  }
  if (parsed !== null && typeof parsed === 'object' && 'token' in parsed) {
    throw new TlsmeshError('ERR_CONFIG', `${path}: token: the token itself never goes in a config file; name the file that holds it (tokenFile) or set TLSMESH_TOKEN`);
  }
  const result = agentFileSchema.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const key = [...issue.path, ...('keys' in issue ? issue.keys : [])].join('.');
    throw new TlsmeshError('ERR_CONFIG', `${path}: ${key || 'file'}: ${issue.message}`);
  }
  return result.data;
}

const nonEmpty = (value: string | undefined): string | undefined => (value === undefined || value.trim() === '' ? undefined : value);

/**
 * Merges flags, environment and file (in that order of precedence) over the defaults, checks
 * every value, and freezes the result. Throws ERR_CONFIG naming the setting.
 */
export function resolveAgentConfig(flags: AgentFlags, env: NodeJS.ProcessEnv, file: AgentFileConfig = {}): Readonly<AgentConfig> {
  const required = (value: string | undefined, what: string): string => {
    if (value === undefined) throw new TlsmeshError('ERR_CONFIG', `${what} must be configured`);
    return value;
  };
  const caUrl = required(flags.ca ?? nonEmpty(env[AGENT_ENV.caUrl]) ?? file.ca, `the CA URL (--ca, ${AGENT_ENV.caUrl} or ca: in the config file)`);
  let url: URL;
  try {
    url = new URL(caUrl);
  } catch {
    throw new TlsmeshError('ERR_CONFIG', `the CA URL must be https://HOST:PORT (got "${caUrl}")`);
  }
  if (url.protocol !== 'https:') throw new TlsmeshError('ERR_CONFIG', `the CA URL must be https:// (got "${caUrl}")`);

  const token: TokenSetting =
    flags.tokenFile !== undefined
      ? { file: flags.tokenFile }
      : nonEmpty(env[AGENT_ENV.token]) !== undefined
        ? { env: 'TLSMESH_TOKEN' }
        : nonEmpty(env[AGENT_ENV.tokenFile]) !== undefined
          ? { file: env[AGENT_ENV.tokenFile]! }
          : file.tokenFile !== undefined
            ? { file: file.tokenFile }
            : null;

  const spiffeId = flags.spiffeId ?? nonEmpty(env[AGENT_ENV.spiffeId]) ?? file.spiffeId ?? null;
  if (spiffeId !== null) {
    try {
      parseSpiffeId(spiffeId);
    } catch (cause) {
      throw new TlsmeshError('ERR_CONFIG', `spiffeId: ${(cause as Error).message}`, { cause });
    }
  }
  const keyType = flags.keyType ?? file.keyType ?? 'p256';
  if (!isKeyType(keyType)) throw new TlsmeshError('ERR_CONFIG', `keyType must be one of ${KEY_TYPES.join(', ')} (got "${keyType}")`);

  const reload: ReloadHook[] = [];
  const exec = flags.exec ?? file.reload?.exec;
  if (exec !== undefined) {
    if (exec.trim() === '') throw new TlsmeshError('ERR_CONFIG', 'reload.exec must not be empty');
    const timeout = flags.execTimeout ?? file.reload?.execTimeout;
    reload.push({ kind: 'exec', command: exec, timeoutMs: timeout === undefined ? DEFAULT_EXEC_TIMEOUT_MS : parseDurationMs(timeout, 'reload.execTimeout') });
  }
  const signal = flags.signal ?? file.reload?.signal;
  const pidFile = flags.pidFile ?? file.reload?.pidFile;
  if ((signal === undefined) !== (pidFile === undefined)) throw new TlsmeshError('ERR_CONFIG', 'reload.signal and reload.pidFile go together (--signal HUP --pid-file /run/app.pid)');
  if (signal !== undefined && pidFile !== undefined) reload.push({ kind: 'signal', signal: parseSignal(signal), pidFile });
  const reloadUrl = flags.reloadUrl ?? file.reload?.url;
  if (reloadUrl !== undefined) {
    if (!/^https?:\/\/[^/]/.test(reloadUrl)) throw new TlsmeshError('ERR_CONFIG', `reload.url must be an http:// or https:// URL (got "${reloadUrl}")`);
    const timeout = flags.reloadTimeout ?? file.reload?.urlTimeout;
    reload.push({ kind: 'http', url: reloadUrl, timeoutMs: timeout === undefined ? DEFAULT_HTTP_TIMEOUT_MS : parseDurationMs(timeout, 'reload.urlTimeout') });
  }

  const healthText = flags.healthListen ?? nonEmpty(env[AGENT_ENV.healthListen]) ?? file.health?.listen;
  const health = healthText === undefined ? null : { ...parseHealthListen(healthText, 'health.listen'), allowNonLoopback: flags.healthListenAny ?? file.health?.listenAny ?? false };

  const backoffInitial = flags.backoffInitial ?? file.backoff?.initial;
  const backoffMax = flags.backoffMax ?? file.backoff?.max;
  const backoff: BackoffPolicy = {
    baseMs: backoffInitial === undefined ? DEFAULT_BACKOFF.baseMs : parseDurationMs(backoffInitial, 'backoff.initial'),
    maxMs: backoffMax === undefined ? DEFAULT_BACKOFF.maxMs : parseDurationMs(backoffMax, 'backoff.max'),
  };
  if (backoff.maxMs < backoff.baseMs) throw new TlsmeshError('ERR_CONFIG', 'backoff.max must not be shorter than backoff.initial');

  const poll = flags.pollInterval ?? file.pollInterval;
  const skew = flags.clockSkewTolerance ?? file.clockSkewTolerance;
  const onceTimeout = flags.onceTimeout ?? file.onceTimeout;
  const logLevel = flags.logLevel ?? nonEmpty(env['TLSMESH_LOG_LEVEL']) ?? file.logLevel ?? 'info';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace'].includes(logLevel)) throw new TlsmeshError('ERR_CONFIG', `logLevel must be fatal, error, warn, info, debug or trace (got "${logLevel}")`);

  const config: AgentConfig = {
    caUrl: caUrl.replace(/\/+$/, ''),
    bundleFile: required(flags.bundle ?? nonEmpty(env[AGENT_ENV.bundle]) ?? file.bundle, `the CA trust bundle (--bundle, ${AGENT_ENV.bundle} or bundle: in the config file)`),
    outDir: required(flags.out ?? nonEmpty(env[AGENT_ENV.out]) ?? file.out, `the output directory (--out, ${AGENT_ENV.out} or out: in the config file)`),
    token,
    spiffeId,
    keyType,
    keyMode: flags.keyMode !== undefined ? parseKeyMode(flags.keyMode, '--key-mode') : file.keyMode !== undefined ? parseKeyMode(file.keyMode) : 0o600,
    reload,
    health,
    watch: flags.watch ?? file.watch ?? true,
    pollMs: poll === undefined ? 30_000 : parseDurationMs(poll, 'pollInterval'),
    crl: flags.crl ?? file.crl ?? true,
    clockSkewToleranceMs: skew === undefined ? DEFAULT_CLOCK_SKEW_TOLERANCE_MS : parseDurationMs(skew, 'clockSkewTolerance'),
    backoff,
    once: flags.once ?? false,
    onceTimeoutMs: onceTimeout === undefined ? DEFAULT_ONCE_TIMEOUT_MS : parseDurationMs(onceTimeout, 'onceTimeout'),
    logLevel,
  };
  for (const hook of config.reload) Object.freeze(hook);
  Object.freeze(config.reload);
  Object.freeze(config.backoff);
  if (config.health) Object.freeze(config.health);
  return Object.freeze(config);
}
