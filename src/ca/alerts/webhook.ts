/**
 * The wire side of webhooks: the Alertmanager-compatible payload (webhook version 4, so receivers
 * written for Alertmanager understand it), the fingerprint, and one POST with a timeout.
 */
import { createHash } from 'node:crypto';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import type { Alert } from './evaluate.js';

export interface WebhookAlert {
  status: 'firing' | 'resolved';
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  /** Alertmanager's "zero time" while firing. */
  endsAt: string;
  generatorURL: string;
  fingerprint: string;
}

export interface WebhookMessage {
  version: '4';
  groupKey: string;
  truncatedAlerts: 0;
  status: 'firing' | 'resolved';
  receiver: string;
  groupLabels: Record<string, string>;
  commonLabels: Record<string, string>;
  commonAnnotations: Record<string, string>;
  externalURL: string;
  alerts: WebhookAlert[];
}

export const ZERO_TIME = '0001-01-01T00:00:00Z';

/** Stable per alert: a hash of its sorted labels (16 hex digits, like Alertmanager's). */
export function alertFingerprint(labels: Readonly<Record<string, string>>): string {
  const hash = createHash('sha256');
  for (const name of Object.keys(labels).sort()) hash.update(`${name}\u0000${labels[name]}\u0000`);
  return hash.digest('hex').slice(0, 16);
}

export function webhookAlert(alert: Alert, status: 'firing' | 'resolved', startsAt: Date, endsAt: Date | null, generatorURL: string): WebhookAlert {
  return {
    status,
    labels: { ...alert.labels },
    annotations: { ...alert.annotations },
    startsAt: startsAt.toISOString(),
    endsAt: endsAt === null ? ZERO_TIME : endsAt.toISOString(),
    generatorURL,
    fingerprint: alertFingerprint(alert.labels),
  };
}

export function webhookMessage(alerts: WebhookAlert[], receiver: string, externalURL: string): WebhookMessage {
  return {
    version: '4',
    groupKey: `{}:{receiver="${receiver}"}`,
    truncatedAlerts: 0,
    status: alerts.some((alert) => alert.status === 'firing') ? 'firing' : 'resolved',
    receiver,
    groupLabels: {},
    commonLabels: common(alerts.map((alert) => alert.labels)),
    commonAnnotations: common(alerts.map((alert) => alert.annotations)),
    externalURL,
    alerts,
  };
}

function common(sets: Record<string, string>[]): Record<string, string> {
  const [first, ...rest] = sets;
  if (first === undefined) return {};
  return Object.fromEntries(Object.entries(first).filter(([name, value]) => rest.every((set) => set[name] === value)));
}

/** Loopback hosts, where plain http is not exposed to the network. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

/** Only the origin: webhook URLs often carry a secret in their path or query (never logged). */
export function redactedUrl(url: URL): string {
  return `${url.protocol}//${url.host}`;
}

export interface PostTarget {
  url: URL;
  /** Extra CA certificates (PEM) that may sign an https receiver's certificate. */
  caPem?: string | undefined;
  timeoutMs: number;
}

export type PostOutcome = { ok: true; status: number } | { ok: false; retry: boolean; reason: string };

/**
 * One POST. Resolves (never rejects) with what happened: a 2xx is ok; 408, 429 and 5xx, network
 * errors and timeouts may be retried; any other status will not get better by retrying.
 */
export function postJson(target: PostTarget, body: string, signal: AbortSignal): Promise<PostOutcome> {
  return new Promise((resolve) => {
    const https = target.url.protocol === 'https:';
    const options = {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'user-agent': 'tlsmesh-ca' },
      signal,
      agent: false as const,
      ...(https ? { rejectUnauthorized: true, ...(target.caPem !== undefined ? { ca: target.caPem } : {}) } : {}),
    };
    let settled = false;
    const finish = (outcome: PostOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(outcome);
    };
    const onResponse = (res: IncomingMessage): void => {
      res.resume();
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) finish({ ok: true, status });
        else finish({ ok: false, retry: status === 408 || status === 429 || status >= 500, reason: `HTTP ${status}` });
      });
      res.on('error', (error) => finish({ ok: false, retry: true, reason: error.message }));
    };
    const req = https ? httpsRequest(target.url, options, onResponse) : httpRequest(target.url, options, onResponse);
    const timer = setTimeout(() => {
      finish({ ok: false, retry: true, reason: `no answer within ${target.timeoutMs} ms` });
      req.destroy();
    }, target.timeoutMs);
    req.on('error', (error: NodeJS.ErrnoException) => finish({ ok: false, retry: !signal.aborted, reason: error.code ?? error.message }));
    req.end(body);
  });
}
