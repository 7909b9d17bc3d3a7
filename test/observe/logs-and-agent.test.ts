/**
 * JSON logs: stable fields (component, spiffe_id, serial, reason, peer) on the lines operators
 * search for, secrets redacted by path and never written by the CA or the agent; and the agent's
 * metrics, scraped from its health endpoint as Prometheus would, while it enrols and renews.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHealthServer } from '../../src/agent/health.js';
import { createLogger } from '../../src/observe/logger.js';
import { AgentMetrics } from '../../src/observe/metrics.js';
import { tokenFromFile } from '../../src/agent/token.js';
import { csrFor, startTestCa, TRUST_DOMAIN, type TestCa } from '../helpers/ca.js';
import { parseExposition } from '../helpers/prometheus.js';
import { fakeAgent, tempRoot, tokenFile, tokenFor } from '../agent/support.js';

function capture(): { lines: Record<string, unknown>[]; destination: Writable } {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const text of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(text) as Record<string, unknown>);
      callback();
    },
  });
  return { lines, destination };
}

describe('logger redaction', () => {
  it('redacts secrets by path, at the top level and one level down, and keeps the stable fields', () => {
    const { lines, destination } = capture();
    const logger = createLogger({ component: 'ca', level: 'info', destination });
    logger.info(
      {
        token: 'eyJ.secret.token',
        passphrase: 'hunter2 hunter2',
        key: '-----BEGIN PRIVATE KEY-----',
        request: { token: 'nested-token', privateKey: 'nested-key', spiffe_id: 'spiffe://t/x' },
        req: { headers: { authorization: 'Bearer abc', cookie: 'tlsmesh_ui=abc' } },
        spiffe_id: 'spiffe://t/x',
        serial: '0a1b',
        reason: 'expired',
        peer: '127.0.0.1:4433',
      },
      'something happened',
    );
    const [line] = lines;
    expect(line).toMatchObject({
      component: 'ca',
      token: '[redacted]',
      passphrase: '[redacted]',
      key: '[redacted]',
      request: { token: '[redacted]', privateKey: '[redacted]', spiffe_id: 'spiffe://t/x' },
      req: { headers: { authorization: '[redacted]', cookie: '[redacted]' } },
      spiffe_id: 'spiffe://t/x',
      serial: '0a1b',
      reason: 'expired',
      peer: '127.0.0.1:4433',
    });
    expect(typeof line!['time']).toBe('string');
    expect(JSON.stringify(lines)).not.toMatch(/secret\.token|hunter2|nested-token|nested-key|BEGIN PRIVATE KEY|Bearer abc/);
  });
});

describe('CA and agent logs and agent metrics, end to end', () => {
  let ca: TestCa;
  const temp = tempRoot();
  beforeAll(async () => {
    ca = await startTestCa();
  });
  afterAll(async () => {
    await ca?.close();
    temp.cleanup();
  });

  it('a refused enrolment is one line with component, code, reason and peer; no token or key is ever logged', async () => {
    const spiffeId = `spiffe://${TRUST_DOMAIN}/logs/reuse`;
    const { token } = await ca.admin.createToken({ spiffeId });
    const first = await csrFor(spiffeId);
    await ca.anonymous.enroll(token, first.csr);
    await expect(ca.anonymous.enroll(token, (await csrFor(spiffeId)).csr)).rejects.toMatchObject({ code: 'ERR_TOKEN_REUSED' });
    const refused = ca.logs.map((text) => JSON.parse(text) as Record<string, unknown>).find((line) => line['code'] === 'ERR_TOKEN_REUSED');
    expect(refused).toMatchObject({ component: 'ca', msg: 'request refused', code: 'ERR_TOKEN_REUSED', peer: '127.0.0.1' });
    expect(typeof refused!['reason']).toBe('string');
    const all = ca.logs.join('\n');
    expect(all).not.toContain(token);
    expect(all).not.toContain(token.split('.')[2]!); // not even the signature part
    expect(all).not.toMatch(/PRIVATE KEY/);
  });

  it('the agent logs its identity and serial, serves metrics beside /healthz, and counts its renewals', async () => {
    const spiffeId = `spiffe://${TRUST_DOMAIN}/logs/agent`;
    const token = await tokenFor(ca, spiffeId);
    const metrics = new AgentMetrics();
    const { agent, log, clock, advanceTo, events } = fakeAgent(ca, temp.dir('agent'), { token: tokenFromFile(tokenFile(temp.dir('agent.token'), token)), metrics });
    const health = await startHealthServer({ status: () => agent.status() }, { host: '127.0.0.1', port: 0, metrics });
    try {
      const status = await agent.ready();
      const enrolled = await log.next((line) => line['event'] === 'agent.enrolled');
      expect(enrolled).toMatchObject({ spiffe_id: spiffeId, serial: status.serial });
      expect(log.lines.map((line) => JSON.stringify(line)).join('\n')).not.toContain(token);

      const scrape = async () => {
        const response = await fetch(`${health.url}/metrics`);
        expect(response.status).toBe(200);
        expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
        return parseExposition(await response.text());
      };
      let m = await scrape();
      expect(m.value('tlsmesh_agent_renewals_total', { result: 'ok' })).toBe(1);
      expect(m.value('tlsmesh_agent_last_renewal_success_timestamp_seconds')).toBe(clock.clock() / 1000);
      expect(m.value('tlsmesh_certificate_expiry_timestamp_seconds', { spiffe_id: spiffeId })).toBe(new Date(status.notAfter!).getTime() / 1000);
      // The agent wrote crl.pem: its CRLs are reported under the trust domain.
      expect(m.value('tlsmesh_crl_next_update_timestamp_seconds', { issuer: TRUST_DOMAIN })).toBeGreaterThan(Date.now() / 1000);

      // Past 2/3 of the lifetime the agent renews: a new leaf is a rotation, and a second success.
      const from = events.mark();
      advanceTo(new Date(status.nextRenewalAt!).getTime() + 1);
      await events.next('written', { from });
      m = await scrape();
      expect(m.value('tlsmesh_agent_renewals_total', { result: 'ok' })).toBe(2);
      expect(m.value('tlsmesh_rotations_total', { component: 'agent', what: 'leaf' })).toBe(1);
      const renewed = agent.status();
      expect(renewed.serial).not.toBe(status.serial);
      expect(m.value('tlsmesh_certificate_expiry_timestamp_seconds', { spiffe_id: spiffeId })).toBe(new Date(renewed.notAfter!).getTime() / 1000);
    } finally {
      await health.close();
      await agent.stop();
    }
  });
});
