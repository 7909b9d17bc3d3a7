/**
 * The `alerts` section of ca.yaml: the schema (strict: an unknown key is an error naming it) and
 * its resolution into settings (defaults applied here, once; checks that name the key).
 */
import { z } from 'zod';
import { TlsmeshError } from '../../errors.js';
import { parseDuration } from '../duration.js';
import { DEFAULT_ALERT_POLICY, type AlertPolicy } from './evaluate.js';
import { isLoopbackHost } from './webhook.js';

const durationField = z.union([z.string(), z.number()]);
const fraction = z.number().gt(0).max(1);

/**
 * How long an identity whose newest certificate expired is still reported (alerts and the expiry
 * gauge) before it is taken for decommissioned: long enough to page someone, short enough that
 * retired services do not fire forever.
 */
export const DEFAULT_EXPIRED_LOOKBACK_MS = 24 * 3_600_000;

export const alertsFileSchema = z.strictObject({
  /** How often the CA evaluates (default 1m). */
  evaluationInterval: durationField.optional(),
  /** Send a still-firing alert again after this long (default 4h). */
  repeatInterval: durationField.optional(),
  /** Keep alerting about an identity whose newest certificate expired for this long (default 24h). */
  expiredLookback: durationField.optional(),
  runbookBaseUrl: z.string().optional(),
  webhooks: z
    .array(
      z.strictObject({
        url: z.string(),
        /** PEM file of the CA(s) that sign an https receiver's certificate (default: the system's). */
        caFile: z.string().optional(),
        timeout: durationField.optional(),
        maxAttempts: z.number().int().min(1).max(10).optional(),
        /** Plain http to a host other than loopback: alerts (SPIFFE IDs, serials) travel unencrypted. */
        allowInsecureHttp: z.boolean().optional(),
      }),
    )
    .optional(),
  thresholds: z
    .strictObject({
      renewalOverdue: fraction.optional(),
      expiringWarning: fraction.optional(),
      expiringCritical: fraction.optional(),
      crlWarning: fraction.optional(),
      crlCritical: fraction.optional(),
      refusalFloorPerSecond: z.number().min(0).optional(),
      refusalFactor: z.number().min(1).optional(),
      spikeWindow: durationField.optional(),
      baselineWindow: durationField.optional(),
      plaintextWindow: durationField.optional(),
      storeErrorWindow: durationField.optional(),
    })
    .optional(),
});
export type AlertsFileConfig = z.infer<typeof alertsFileSchema>;

export interface WebhookConfig {
  url: string;
  /** Absolute path (relative ones are resolved against the data directory). */
  caFile: string | null;
  timeoutMs: number;
  maxAttempts: number;
  /** http:// to a non-loopback host, explicitly allowed (the CA warns at start). */
  insecureHttp: boolean;
}

export interface AlertsConfig {
  evaluationIntervalMs: number;
  repeatIntervalMs: number;
  expiredLookbackMs: number;
  policy: AlertPolicy;
  webhooks: WebhookConfig[];
}

/** Null when there is no webhook to send to (the CA then evaluates nothing). */
export function resolveAlertsConfig(file: AlertsFileConfig | undefined, dataDir: string): AlertsConfig | null {
  if (file === undefined || file.webhooks === undefined || file.webhooks.length === 0) return null;
  const ms = (value: string | number | undefined, key: string, fallbackMs: number): number => (value === undefined ? fallbackMs : parseDuration(value, `alerts.${key}`) * 1000);
  const t = file.thresholds ?? {};
  const d = DEFAULT_ALERT_POLICY;
  const policy: AlertPolicy = {
    renewalOverdueAfter: t.renewalOverdue ?? d.renewalOverdueAfter,
    expiringWarningAfter: t.expiringWarning ?? d.expiringWarningAfter,
    expiringCriticalAfter: t.expiringCritical ?? d.expiringCriticalAfter,
    crlWarningAfter: t.crlWarning ?? d.crlWarningAfter,
    crlCriticalAfter: t.crlCritical ?? d.crlCriticalAfter,
    refusalFloorPerSecond: t.refusalFloorPerSecond ?? d.refusalFloorPerSecond,
    refusalFactor: t.refusalFactor ?? d.refusalFactor,
    spikeWindowMs: ms(t.spikeWindow, 'thresholds.spikeWindow', d.spikeWindowMs),
    baselineWindowMs: ms(t.baselineWindow, 'thresholds.baselineWindow', d.baselineWindowMs),
    plaintextWindowMs: ms(t.plaintextWindow, 'thresholds.plaintextWindow', d.plaintextWindowMs),
    storeErrorWindowMs: ms(t.storeErrorWindow, 'thresholds.storeErrorWindow', d.storeErrorWindowMs),
    runbookBaseUrl: file.runbookBaseUrl ?? d.runbookBaseUrl,
  };
  if (policy.expiringWarningAfter > policy.expiringCriticalAfter) throw new TlsmeshError('ERR_CONFIG', 'alerts.thresholds.expiringWarning must not be above alerts.thresholds.expiringCritical');
  if (policy.crlWarningAfter > policy.crlCriticalAfter) throw new TlsmeshError('ERR_CONFIG', 'alerts.thresholds.crlWarning must not be above alerts.thresholds.crlCritical');
  if (!/^https?:\/\/[^\s#]+$/.test(policy.runbookBaseUrl)) throw new TlsmeshError('ERR_CONFIG', 'alerts.runbookBaseUrl must be an http(s) URL without a #fragment');
  const config: AlertsConfig = {
    evaluationIntervalMs: ms(file.evaluationInterval, 'evaluationInterval', 60_000),
    repeatIntervalMs: ms(file.repeatInterval, 'repeatInterval', 4 * 3_600_000),
    expiredLookbackMs: ms(file.expiredLookback, 'expiredLookback', DEFAULT_EXPIRED_LOOKBACK_MS),
    policy,
    webhooks: file.webhooks.map((webhook, index) => resolveWebhook(webhook, `alerts.webhooks.${index}`, dataDir)),
  };
  if (config.evaluationIntervalMs < 10_000) throw new TlsmeshError('ERR_CONFIG', 'alerts.evaluationInterval must be at least 10s (each evaluation reads every identity from the store)');
  if (config.evaluationIntervalMs >= policy.spikeWindowMs) {
    throw new TlsmeshError('ERR_CONFIG', 'alerts.evaluationInterval must be shorter than alerts.thresholds.spikeWindow (a rate needs two samples in the window)');
  }
  return config;
}

function resolveWebhook(webhook: NonNullable<AlertsFileConfig['webhooks']>[number], key: string, dataDir: string): WebhookConfig {
  let url: URL;
  try {
    url = new URL(webhook.url);
  } catch {
    throw new TlsmeshError('ERR_CONFIG', `${key}.url must be an http(s) URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new TlsmeshError('ERR_CONFIG', `${key}.url must be an http(s) URL (got ${url.protocol})`);
  const plain = url.protocol === 'http:';
  const insecureHttp = plain && !isLoopbackHost(url.hostname);
  if (insecureHttp && webhook.allowInsecureHttp !== true) {
    throw new TlsmeshError('ERR_CONFIG', `${key}.url is plain http to ${url.hostname}, which is not loopback: use https, or set ${key}.allowInsecureHttp: true if that network is trusted`);
  }
  if (plain && webhook.caFile !== undefined) throw new TlsmeshError('ERR_CONFIG', `${key}.caFile applies only to an https url`);
  const timeoutMs = webhook.timeout === undefined ? 10_000 : parseDuration(webhook.timeout, `${key}.timeout`) * 1000;
  if (timeoutMs > 60_000) throw new TlsmeshError('ERR_CONFIG', `${key}.timeout must be at most 60s`);
  const caFile = webhook.caFile === undefined ? null : webhook.caFile.startsWith('/') ? webhook.caFile : `${dataDir}/${webhook.caFile}`;
  return { url: url.href, caFile, timeoutMs, maxAttempts: webhook.maxAttempts ?? 5, insecureHttp };
}
