/** Puts the alert parts together for `startCa`: signals, notifier and the loop, started. */
import { readFile } from 'node:fs/promises';
import type { Registry } from 'prom-client';
import { TlsmeshError } from '../../errors.js';
import type { Logger } from '../../observe/logger.js';
import type { Store } from '../../store/index.js';
import type { PublishedCrls } from '../crl-publisher.js';
import type { AlertsConfig } from './config.js';
import { AlertLoop, type IntervalTimer } from './loop.js';
import { WebhookNotifier, type WebhookTarget } from './notifier.js';
import { createSignalSource } from './signals.js';
import { redactedUrl } from './webhook.js';

export interface StartAlertsOptions {
  config: AlertsConfig;
  store: Store;
  crls: { current(): PublishedCrls };
  registry?: Registry | undefined;
  clock: () => Date;
  logger: Logger;
  /** The CA's public URL (`externalURL` and `generatorURL` in the payload). */
  externalUrl: string;
  timer?: IntervalTimer | undefined;
}

export async function startAlerts(options: StartAlertsOptions): Promise<AlertLoop> {
  const { config, logger } = options;
  const webhooks: WebhookTarget[] = [];
  for (const [index, webhook] of config.webhooks.entries()) {
    let caPem: string | undefined;
    if (webhook.caFile !== null) {
      try {
        caPem = await readFile(webhook.caFile, 'utf8');
      } catch (cause) {
        throw new TlsmeshError('ERR_CONFIG', `alerts.webhooks.${index}.caFile: cannot read ${webhook.caFile}`, { cause });
      }
    }
    const url = new URL(webhook.url);
    if (webhook.insecureHttp) {
      logger.warn({ event: 'alerts.webhook_insecure', webhook: redactedUrl(url) }, 'alert webhook uses plain http to a host that is not loopback (allowInsecureHttp): alerts travel unencrypted and unauthenticated');
    }
    webhooks.push({ url, caPem, timeoutMs: webhook.timeoutMs, maxAttempts: webhook.maxAttempts });
  }
  const notifier = new WebhookNotifier({ webhooks, repeatIntervalMs: config.repeatIntervalMs, clock: options.clock, logger, externalUrl: options.externalUrl });
  const gather = createSignalSource({ store: options.store, crls: options.crls, registry: options.registry, policy: config.policy, expiredLookbackMs: config.expiredLookbackMs });
  const loop = new AlertLoop({ gather, notifier, policy: config.policy, clock: options.clock, intervalMs: config.evaluationIntervalMs, logger, ...(options.timer ? { timer: options.timer } : {}) });
  loop.start();
  logger.info({ event: 'alerts.started', webhooks: webhooks.map((webhook) => redactedUrl(webhook.url)), intervalMs: config.evaluationIntervalMs }, 'alert webhooks configured');
  return loop;
}
