/**
 * CA configuration: flags over environment over `<data-dir>/ca.yaml` over defaults. The file is
 * validated strictly (an unknown key is an error that names it); defaults are applied afterwards,
 * in one place; the result is frozen.
 */
import { readFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { TlsmeshError } from '../errors.js';
import { canonicalDnsName, canonicalIp, validateTrustDomain } from '../pki/index.js';
import { DEFAULT_LIFETIMES } from './authority.js';
import { alertsFileSchema, resolveAlertsConfig, type AlertsConfig } from './alerts/config.js';
import { DEFAULT_CRL_POLICY } from './crl-publisher.js';
import { parseDuration } from './duration.js';

export const CONFIG_FILE = 'ca.yaml';
export const DEFAULT_LISTEN = '127.0.0.1:8443';

const durationField = z.union([z.string(), z.number()]);

/** What `ca.yaml` may contain. */
export const caFileSchema = z.strictObject({
  trustDomain: z.string(),
  store: z.string().optional(),
  listen: z.string().optional(),
  publicUrl: z.string().optional(),
  serverNames: z.strictObject({ dns: z.array(z.string()).optional(), ip: z.array(z.string()).optional() }).optional(),
  lifetimes: z.strictObject({ leaf: durationField.optional(), admin: durationField.optional() }).optional(),
  bodyLimitBytes: z.number().int().min(1024).max(1024 * 1024).optional(),
  /** CRL publishing: validity (nextUpdate − thisUpdate), re-sign when less than refreshBefore is left, poll for other processes' revocations. */
  crl: z.strictObject({ validity: durationField.optional(), refreshBefore: durationField.optional(), poll: durationField.optional() }).optional(),
  adminIds: z.array(z.string()).optional(),
  /** Who may scrape GET /metrics over mTLS (default: the admin IDs). */
  metrics: z.strictObject({ allowIds: z.array(z.string()).min(1).optional() }).optional(),
  /** The web dashboard at /ui (docs/dashboard.md): admin mTLS always; a read-only token file optionally. */
  dashboard: z
    .strictObject({ enabled: z.boolean().optional(), readOnlyTokenFile: z.string().min(1).optional(), sessionLifetime: durationField.optional() })
    .optional(),
  /** SHA-256 (hex) of every root the CA may use; written by `ca init`, updated by rotation. */
  rootFingerprints: z.array(z.string().regex(/^[0-9a-f]{64}$/, 'a SHA-256 fingerprint in lowercase hex')).optional(),
  /** Alert webhooks (docs/alerts.md). */
  alerts: alertsFileSchema.optional(),
});
export type CaFileConfig = z.infer<typeof caFileSchema>;

export interface CaConfig {
  dataDir: string;
  trustDomain: string;
  /** `sqlite:PATH` or a postgres:// URL. */
  store: string;
  listen: { host: string; port: number };
  /** Base URL that goes into certificates (CRL and OCSP locations). */
  publicUrl: string;
  serverDnsNames: string[];
  serverIpAddresses: string[];
  leafSeconds: number;
  adminSeconds: number;
  bodyLimitBytes: number;
  crl: { validitySeconds: number; refreshBeforeSeconds: number; pollSeconds: number };
  adminIds: string[] | null;
  /** SPIFFE IDs that may scrape /metrics; null: the admin IDs. */
  metricsIds: string[] | null;
  /** The token file path is resolved against dataDir; the token itself is read by startCa, never kept in the config. */
  dashboard: { enabled: boolean; readOnlyTokenFile: string | null; sessionSeconds: number };
  /** Null when ca.yaml pins no roots (the CA then warns at start). */
  rootFingerprints: string[] | null;
  /** Null when no alert webhook is configured. */
  alerts: AlertsConfig | null;
}

export interface CaConfigOverrides {
  store?: string | undefined;
  listen?: string | undefined;
  publicUrl?: string | undefined;
}

export function parseListen(value: string, key = 'listen'): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(value);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) throw new TlsmeshError('ERR_CONFIG', `${key} must be HOST:PORT, e.g. 127.0.0.1:8443 (got "${value}")`);
  return { host: match[1] ?? match[2]!, port };
}

export async function readCaFile(dataDir: string): Promise<CaFileConfig> {
  const path = join(dataDir, CONFIG_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new TlsmeshError('ERR_CA_NOT_INITIALIZED', `no CA configuration at ${path}; run \`tlsmesh ca init --data-dir ${dataDir}\` first`, { cause });
  }
  const result = caFileSchema.safeParse(parseYaml(text));
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const key = [...issue.path, ...('keys' in issue ? issue.keys : [])].join('.');
    throw new TlsmeshError('ERR_CONFIG', `${path}: ${key || 'file'}: ${issue.message}`);
  }
  return result.data;
}

export function resolveCaConfig(
  dataDir: string,
  file: CaFileConfig,
  overrides: CaConfigOverrides = {},
  env: NodeJS.ProcessEnv = process.env,
): Readonly<CaConfig> {
  const listenText = overrides.listen ?? env['TLSMESH_CA_LISTEN'] ?? file.listen ?? DEFAULT_LISTEN;
  const listen = parseListen(listenText);
  const storeText = overrides.store ?? env['TLSMESH_CA_STORE'] ?? file.store ?? 'sqlite:ca.db';
  const store = storeText.startsWith('sqlite:') && !storeText.slice(7).startsWith('/') ? `sqlite:${join(dataDir, storeText.slice(7))}` : storeText;
  const urlHost = listen.host.includes(':') ? `[${listen.host}]` : listen.host;
  const publicUrl = (overrides.publicUrl ?? env['TLSMESH_CA_PUBLIC_URL'] ?? file.publicUrl ?? `https://${urlHost}:${listen.port}`).replace(/\/+$/, '');
  if (!/^https:\/\/[^/]+$/.test(publicUrl)) throw new TlsmeshError('ERR_CONFIG', `publicUrl must be https://HOST[:PORT] (got "${publicUrl}")`);
  const config: CaConfig = {
    dataDir,
    trustDomain: validateTrustDomain(file.trustDomain),
    store,
    listen,
    publicUrl,
    serverDnsNames: (file.serverNames?.dns ?? ['localhost']).map(canonicalDnsName),
    serverIpAddresses: (file.serverNames?.ip ?? ['127.0.0.1', '::1']).map(canonicalIp),
    leafSeconds: file.lifetimes?.leaf === undefined ? DEFAULT_LIFETIMES.leafSeconds : parseDuration(file.lifetimes.leaf, 'lifetimes.leaf'),
    adminSeconds: file.lifetimes?.admin === undefined ? DEFAULT_LIFETIMES.adminSeconds : parseDuration(file.lifetimes.admin, 'lifetimes.admin'),
    bodyLimitBytes: file.bodyLimitBytes ?? 64 * 1024,
    crl: crlSettings(file.crl),
    adminIds: file.adminIds ?? null,
    metricsIds: file.metrics?.allowIds ?? null,
    dashboard: dashboardSettings(dataDir, file.dashboard),
    rootFingerprints: file.rootFingerprints ?? null,
    alerts: resolveAlertsConfig(file.alerts, dataDir),
  };
  if (config.leafSeconds < 300) throw new TlsmeshError('ERR_CONFIG', 'lifetimes.leaf must be at least 5m');
  return Object.freeze(config);
}

function crlSettings(file: CaFileConfig['crl']): CaConfig['crl'] {
  const validitySeconds = file?.validity === undefined ? DEFAULT_CRL_POLICY.validityMs / 1000 : parseDuration(file.validity, 'crl.validity');
  const refreshBeforeSeconds = file?.refreshBefore === undefined ? validitySeconds / 2 : parseDuration(file.refreshBefore, 'crl.refreshBefore');
  const pollSeconds = file?.poll === undefined ? DEFAULT_CRL_POLICY.pollMs / 1000 : parseDuration(file.poll, 'crl.poll');
  // A CRL shorter-lived than an hour would be re-signed constantly and leave relying parties no
  // slack when the CA is briefly down; re-signing must happen before it expires.
  if (validitySeconds < 3600) throw new TlsmeshError('ERR_CONFIG', 'crl.validity must be at least 1h');
  if (refreshBeforeSeconds >= validitySeconds) throw new TlsmeshError('ERR_CONFIG', 'crl.refreshBefore must be shorter than crl.validity');
  if (pollSeconds > 60) throw new TlsmeshError('ERR_CONFIG', 'crl.poll must be at most 60s (other CA processes\' revocations would show that late)');
  return { validitySeconds, refreshBeforeSeconds, pollSeconds };
}

function dashboardSettings(dataDir: string, file: CaFileConfig['dashboard']): CaConfig['dashboard'] {
  const sessionSeconds = file?.sessionLifetime === undefined ? 8 * 3600 : parseDuration(file.sessionLifetime, 'dashboard.sessionLifetime');
  // A read-only session should end with the working day; a stolen cookie is good for no longer.
  if (sessionSeconds < 60 || sessionSeconds > 24 * 3600) throw new TlsmeshError('ERR_CONFIG', 'dashboard.sessionLifetime must be between 1m and 24h');
  const tokenFile = file?.readOnlyTokenFile;
  return {
    enabled: file?.enabled ?? true,
    readOnlyTokenFile: tokenFile === undefined ? null : isAbsolute(tokenFile) ? tokenFile : join(dataDir, tokenFile),
    sessionSeconds,
  };
}

/** The passphrase comes from a file or the environment, never from argv (visible in `ps`). */
export async function readPassphrase(passphraseFile: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  if (passphraseFile !== undefined) {
    try {
      return (await readFile(passphraseFile, 'utf8')).replace(/\r?\n$/, '');
    } catch (cause) {
      throw new TlsmeshError('ERR_PASSPHRASE', `cannot read the passphrase file ${passphraseFile}`, { cause });
    }
  }
  const value = env['TLSMESH_CA_PASSPHRASE'];
  if (value === undefined || value === '') {
    throw new TlsmeshError('ERR_PASSPHRASE', 'no CA key passphrase: set TLSMESH_CA_PASSPHRASE or pass --passphrase-file FILE');
  }
  return value;
}
