/** The `alerts` section of ca.yaml, read from a real file: defaults, and refusals that name the key. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_ALERT_POLICY } from '../../src/ca/alerts/evaluate.js';
import { readCaFile, resolveCaConfig, type CaConfig } from '../../src/ca/config.js';
import { TlsmeshError } from '../../src/errors.js';

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function load(alertsYaml: string): Promise<Readonly<CaConfig>> {
  const dir = mkdtempSync(join(tmpdir(), 'tlsmesh-alerts-config-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'ca.yaml'), `trustDomain: example.org\n${alertsYaml}`);
  return resolveCaConfig(dir, await readCaFile(dir), {}, {});
}

describe('ca.yaml alerts', () => {
  it('ok/absent, or no webhooks: no alerts', async () => {
    expect((await load('')).alerts).toBeNull();
    expect((await load('alerts:\n  webhooks: []\n')).alerts).toBeNull();
  });

  it('ok/one https webhook: defaults everywhere else', async () => {
    const config = await load('alerts:\n  webhooks:\n    - url: https://hooks.example.org/tlsmesh\n      caFile: hooks-ca.pem\n');
    expect(config.alerts).toEqual({
      evaluationIntervalMs: 60_000,
      repeatIntervalMs: 4 * 3_600_000,
      expiredLookbackMs: 24 * 3_600_000,
      policy: DEFAULT_ALERT_POLICY,
      webhooks: [{ url: 'https://hooks.example.org/tlsmesh', caFile: `${config.dataDir}/hooks-ca.pem`, timeoutMs: 10_000, maxAttempts: 5, insecureHttp: false }],
    });
  });

  it('ok/every setting', async () => {
    const config = await load(`alerts:
  evaluationInterval: 30s
  repeatInterval: 1h
  expiredLookback: 2d
  runbookBaseUrl: https://wiki.example.org/tlsmesh-alerts
  webhooks:
    - url: http://127.0.0.1:9093/hook
      timeout: 5s
      maxAttempts: 3
    - url: http://alerts.internal/hook
      allowInsecureHttp: true
  thresholds:
    renewalOverdue: 0.75
    expiringWarning: 0.85
    expiringCritical: 0.97
    crlWarning: 0.6
    crlCritical: 0.8
    refusalFloorPerSecond: 1
    refusalFactor: 10
    spikeWindow: 10m
    baselineWindow: 2h
    plaintextWindow: 1h
    storeErrorWindow: 15m
`);
    expect(config.alerts).toEqual({
      evaluationIntervalMs: 30_000,
      repeatIntervalMs: 3_600_000,
      expiredLookbackMs: 2 * 86_400_000,
      policy: {
        renewalOverdueAfter: 0.75,
        expiringWarningAfter: 0.85,
        expiringCriticalAfter: 0.97,
        crlWarningAfter: 0.6,
        crlCriticalAfter: 0.8,
        refusalFloorPerSecond: 1,
        refusalFactor: 10,
        spikeWindowMs: 600_000,
        baselineWindowMs: 7_200_000,
        plaintextWindowMs: 3_600_000,
        storeErrorWindowMs: 900_000,
        runbookBaseUrl: 'https://wiki.example.org/tlsmesh-alerts',
      },
      webhooks: [
        { url: 'http://127.0.0.1:9093/hook', caFile: null, timeoutMs: 5000, maxAttempts: 3, insecureHttp: false },
        { url: 'http://alerts.internal/hook', caFile: null, timeoutMs: 10_000, maxAttempts: 5, insecureHttp: true },
      ],
    });
  });

  const refusals: [string, string, string][] = [
    ['fail/unknown key', 'alerts:\n  webhook: []\n', 'alerts'],
    ['fail/unknown webhook key', 'alerts:\n  webhooks:\n    - url: https://h.example.org/\n      headers: {}\n', 'alerts.webhooks.0'],
    ['fail/unknown threshold', 'alerts:\n  webhooks:\n    - url: https://h.example.org/\n  thresholds:\n    expiring: 0.9\n', 'alerts.thresholds'],
    ['fail/not a URL', 'alerts:\n  webhooks:\n    - url: hooks\n', 'alerts.webhooks.0.url'],
    ['fail/not http(s)', 'alerts:\n  webhooks:\n    - url: ftp://h.example.org/\n', 'alerts.webhooks.0.url'],
    ['fail/plain http off loopback without the opt-in', 'alerts:\n  webhooks:\n    - url: https://ok.example.org/\n    - url: http://alerts.internal/hook\n', 'alerts.webhooks.1.allowInsecureHttp'],
    ['fail/caFile with http', 'alerts:\n  webhooks:\n    - url: http://127.0.0.1:9/\n      caFile: ca.pem\n', 'alerts.webhooks.0.caFile'],
    ['fail/timeout too long', 'alerts:\n  webhooks:\n    - url: https://h.example.org/\n      timeout: 5m\n', 'alerts.webhooks.0.timeout'],
    ['fail/bad duration', 'alerts:\n  evaluationInterval: soon\n  webhooks:\n    - url: https://h.example.org/\n', 'alerts.evaluationInterval'],
    ['fail/interval too short', 'alerts:\n  evaluationInterval: 1s\n  webhooks:\n    - url: https://h.example.org/\n', 'alerts.evaluationInterval'],
    ['fail/interval not shorter than the spike window', 'alerts:\n  evaluationInterval: 5m\n  webhooks:\n    - url: https://h.example.org/\n', 'alerts.evaluationInterval'],
    ['fail/fraction above 1', 'alerts:\n  webhooks:\n    - url: https://h.example.org/\n  thresholds:\n    renewalOverdue: 80\n', 'alerts.thresholds.renewalOverdue'],
    ['fail/warning above critical', 'alerts:\n  webhooks:\n    - url: https://h.example.org/\n  thresholds:\n    expiringWarning: 0.96\n', 'alerts.thresholds.expiringWarning'],
    ['fail/crl warning above critical', 'alerts:\n  webhooks:\n    - url: https://h.example.org/\n  thresholds:\n    crlCritical: 0.5\n', 'alerts.thresholds.crlWarning'],
    ['fail/too many attempts', 'alerts:\n  webhooks:\n    - url: https://h.example.org/\n      maxAttempts: 100\n', 'alerts.webhooks.0.maxAttempts'],
    ['fail/runbook URL with a fragment', 'alerts:\n  runbookBaseUrl: https://wiki.example.org/x#y\n  webhooks:\n    - url: https://h.example.org/\n', 'alerts.runbookBaseUrl'],
  ];
  for (const [name, yaml, key] of refusals) {
    it(`${name}: ERR_CONFIG naming ${key}`, async () => {
      const error = await load(yaml).then(
        () => null,
        (caught: unknown) => caught,
      );
      expect(error).toBeInstanceOf(TlsmeshError);
      expect((error as TlsmeshError).code).toBe('ERR_CONFIG');
      expect((error as TlsmeshError).message).toContain(key);
    });
  }
});
