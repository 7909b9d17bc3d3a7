/**
 * End to end: a real CA (SQLite, HTTPS) with an alert webhook in its ca.yaml pointing at a real
 * receiver on loopback. Its injected clock is moved forward; evaluations are driven explicitly
 * (the loop's timer is a manual one that never fires by itself).
 *
 * 1. setup: receiver, CA with alerts, a workload enrolled — nothing to say
 * 2. clock +22h50m (95% of the 24 h leaf): the receiver gets TlsmeshCertificateExpiringSoon
 *    (warning and critical) and TlsmeshRenewalFailing naming the identity; while the receiver
 *    holds the request, the CA still issues
 * 3. the same alerts again: deduplicated
 * 4. the workload renews: the receiver gets them resolved
 * 5. teardown (always)
 */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebhookMessage } from '../../src/ca/alerts/webhook.js';
import { csrFor, enrollWorkload, startTestCa, type TestCa, type Workload } from '../helpers/ca.js';

const BILLING = 'spiffe://example.org/billing';
const MIN = 60_000;

describe('CA alert webhook, end to end', () => {
  const messages: WebhookMessage[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  const held: ServerResponse[] = [];
  let hold = false;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      messages.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as WebhookMessage);
      for (const waiter of waiters.filter((entry) => messages.length >= entry.count)) waiter.resolve();
      if (hold) held.push(res);
      else res.writeHead(200).end();
    });
  });
  const arrived = (count: number): Promise<void> => (messages.length >= count ? Promise.resolve() : new Promise((resolve) => waiters.push({ count, resolve })));
  let ca: TestCa;
  let workload: Workload;
  let ticks = 0;

  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    ca = await startTestCa({
      configYaml: `\nalerts:\n  evaluationInterval: 1m\n  webhooks:\n    - url: http://127.0.0.1:${port}/alerts\n`,
      // A timer that never fires on its own: every evaluation below is explicit.
      start: {
        alertTimer: () => {
          ticks += 1;
          return () => undefined;
        },
      },
    });
  });

  afterAll(async () => {
    for (const res of held) res.destroy();
    await ca?.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('1. a fresh workload: the evaluation finds nothing and sends nothing', async () => {
    expect(ticks).toBe(1);
    workload = await enrollWorkload(ca, BILLING);
    expect(await ca.running.alerts!.evaluateNow()).toEqual([]);
    await ca.running.alerts!.idle();
    expect(messages).toEqual([]);
  });

  it('2. clock moved to 95% of its lifetime: the receiver is told, naming the identity; issuance does not wait for it', async () => {
    ca.clockOffsetMs = 22 * 60 * MIN + 50 * MIN;
    // The CRL is due at this time too; publish it now so that only the certificate is late.
    await ca.running.crls.refresh();
    hold = true;
    const alerts = await ca.running.alerts!.evaluateNow();
    expect(alerts.map((alert) => `${alert.labels.alertname}/${alert.labels.severity}`)).toEqual([
      'TlsmeshCertificateExpiringSoon/critical',
      'TlsmeshCertificateExpiringSoon/warning',
      'TlsmeshRenewalFailing/warning',
    ]);
    await arrived(1);
    // The receiver holds the request; the CA still enrols.
    const other = await enrollWorkload(ca, 'spiffe://example.org/other');
    expect(other.serial).toMatch(/^[0-9a-f]+$/);
    hold = false;
    for (const res of held.splice(0)) res.writeHead(200).end();
    await ca.running.alerts!.idle();

    expect(messages).toHaveLength(1);
    const message = messages[0]!;
    expect(message.status).toBe('firing');
    // The CA's configured publicUrl (what its certificates point at).
    expect(message.externalURL).toMatch(/^https:\/\/127\.0\.0\.1:/);
    const expiring = message.alerts.find((alert) => alert.labels['alertname'] === 'TlsmeshCertificateExpiringSoon' && alert.labels['severity'] === 'warning');
    expect(expiring).toMatchObject({ status: 'firing', labels: { spiffe_id: BILLING, kind: 'workload' }, endsAt: '0001-01-01T00:00:00Z' });
    expect(expiring!.annotations['summary']).toContain(BILLING);
    expect(expiring!.annotations['description']).toContain(`serial ${workload.serial}`);
    expect(expiring!.annotations['runbook_url']).toMatch(/#tlsmeshcertificateexpiringsoon$/);
    expect(message.alerts.map((alert) => alert.labels['spiffe_id'])).toEqual([BILLING, BILLING, BILLING]);
  });

  it('3. evaluated again a minute later: nothing new is sent', async () => {
    ca.clockOffsetMs += MIN;
    await ca.running.alerts!.evaluateNow();
    await ca.running.alerts!.idle();
    expect(messages).toHaveLength(1);
  });

  it('4. the workload renews: its alerts are sent as resolved', async () => {
    const { csr } = await csrFor(BILLING);
    await workload.client.renew(csr);
    expect(await ca.running.alerts!.evaluateNow()).toEqual([]);
    await ca.running.alerts!.idle();
    expect(messages).toHaveLength(2);
    expect(messages[1]!.status).toBe('resolved');
    expect(messages[1]!.alerts.map((alert) => [alert.status, alert.labels['alertname'], alert.fingerprint])).toEqual(
      messages[0]!.alerts.map((alert) => ['resolved', alert.labels['alertname'], alert.fingerprint]),
    );
  });
});
