/**
 * The CA's Prometheus metrics, end to end: a real CA, scraped over mutual TLS as Prometheus would,
 * while it issues, refuses and revokes; names, types and labels checked, and the exposition
 * linted by `promtool check metrics`.
 */
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { csrFor, enrollWorkload, startTestCa, TRUST_DOMAIN, type TestCa, type Workload } from '../helpers/ca.js';
import { parseExposition, promtoolCheckMetrics, requirePromtool, type Exposition } from '../helpers/prometheus.js';

function scrape(ca: TestCa, credentials: { certPem: string; keyPem: string } | null): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      new URL('/metrics', ca.url),
      { ca: ca.bundlePem, agent: false, ...(credentials ? { cert: credentials.certPem, key: credentials.keyPem } : {}) },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('CA metrics', () => {
  let ca: TestCa;
  let admin: { certPem: string; keyPem: string };
  let workload: Workload;
  const metrics = async (): Promise<Exposition> => {
    const answer = await scrape(ca, admin);
    expect(answer.status).toBe(200);
    return parseExposition(answer.body);
  };

  beforeAll(async () => {
    ca = await startTestCa();
    const dir = join(ca.dataDir, 'admin');
    admin = { certPem: readFileSync(join(dir, 'cert.pem'), 'utf8'), keyPem: readFileSync(join(dir, 'key.pem'), 'utf8') };
  });
  afterAll(() => ca?.close());

  it('01 before any enrolment: every family is declared with its type; counters at zero', async () => {
    const answer = await scrape(ca, admin);
    expect(answer.type).toMatch(/^text\/plain; version=0\.0\.4/);
    const m = parseExposition(answer.body);
    expect(Object.fromEntries([...m.types].filter(([name]) => name.startsWith('tlsmesh_')))).toEqual({
      tlsmesh_certificate_expiry_timestamp_seconds: 'gauge',
      tlsmesh_certificate_not_before_timestamp_seconds: 'gauge',
      tlsmesh_crl_this_update_timestamp_seconds: 'gauge',
      tlsmesh_crl_next_update_timestamp_seconds: 'gauge',
      tlsmesh_crl_size_bytes: 'gauge',
      tlsmesh_crl_entries: 'gauge',
      tlsmesh_bundle_version: 'gauge',
      tlsmesh_rotations_total: 'counter',
      tlsmesh_tls_handshake_refusals_total: 'counter',
      tlsmesh_ca_enrollments_total: 'counter',
      tlsmesh_ca_renewals_total: 'counter',
      tlsmesh_ca_revocations_total: 'counter',
      tlsmesh_ca_tokens_created_total: 'counter',
      tlsmesh_ca_issuance_duration_seconds: 'histogram',
      tlsmesh_store_errors_total: 'counter',
    });
    expect(m.find('tlsmesh_ca_enrollments_total')).toEqual([]);
    expect(m.value('tlsmesh_bundle_version')).toBe(0);
    // The admin certificate issued at init is an identity too; the CA's own TLS certificate as well.
    expect(m.find('tlsmesh_certificate_expiry_timestamp_seconds', { kind: 'admin' })).toHaveLength(1);
    expect(m.find('tlsmesh_certificate_expiry_timestamp_seconds', { kind: 'ca-server' })).toHaveLength(1);
    // One CRL per CA in the chain (root and intermediate), each fresh and empty.
    const crls = m.find('tlsmesh_crl_next_update_timestamp_seconds');
    expect(crls).toHaveLength(2);
    for (const crl of crls) expect(crl.value * 1000).toBeGreaterThan(Date.now());
    for (const entries of m.find('tlsmesh_crl_entries')) expect(entries.value).toBe(0);
  });

  it('02 an enrolment shows as a success, with its latency and the identity\'s expiry', async () => {
    workload = await enrollWorkload(ca, `spiffe://${TRUST_DOMAIN}/metrics/api`);
    const m = await metrics();
    expect(m.value('tlsmesh_ca_enrollments_total', { result: 'ok', code: '' })).toBe(1);
    expect(m.value('tlsmesh_ca_tokens_created_total', { result: 'ok', code: '' })).toBe(1);
    expect(m.value('tlsmesh_ca_issuance_duration_seconds_count', { operation: 'enroll' })).toBe(1);
    expect(m.value('tlsmesh_ca_issuance_duration_seconds_bucket', { operation: 'enroll', le: '+Inf' })).toBe(1);
    const [record] = await ca.running.authority.store.listCertificates({ spiffeId: workload.spiffeId });
    expect(m.value('tlsmesh_certificate_expiry_timestamp_seconds', { spiffe_id: workload.spiffeId, kind: 'workload' })).toBe(record!.notAfter.getTime() / 1000);
    expect(m.value('tlsmesh_certificate_not_before_timestamp_seconds', { spiffe_id: workload.spiffeId, kind: 'workload' })).toBe(record!.notBefore.getTime() / 1000);
  });

  it('03 refusals are counted by code: a reused token, a renewal without a certificate', async () => {
    const { token } = await ca.admin.createToken({ spiffeId: `spiffe://${TRUST_DOMAIN}/metrics/reuse` });
    await ca.anonymous.enroll(token, (await csrFor(`spiffe://${TRUST_DOMAIN}/metrics/reuse`)).csr);
    await expect(ca.anonymous.enroll(token, (await csrFor(`spiffe://${TRUST_DOMAIN}/metrics/reuse`)).csr)).rejects.toMatchObject({ code: 'ERR_TOKEN_REUSED' });
    await expect(ca.anonymous.renew((await csrFor(workload.spiffeId)).csr)).rejects.toMatchObject({ code: 'ERR_CLIENT_CERT_REQUIRED' });
    const m = await metrics();
    expect(m.value('tlsmesh_ca_enrollments_total', { result: 'ok', code: '' })).toBe(2);
    expect(m.value('tlsmesh_ca_enrollments_total', { result: 'refused', code: 'ERR_TOKEN_REUSED' })).toBe(1);
    expect(m.value('tlsmesh_ca_renewals_total', { result: 'refused', code: 'ERR_CLIENT_CERT_REQUIRED' })).toBe(1);
    expect(m.value('tlsmesh_tls_handshake_refusals_total', { component: 'ca', transport: 'https', reason: 'no-certificate' })).toBe(1);
  });

  it('04 a renewal moves the identity\'s expiry to the new certificate', async () => {
    const { csr } = await csrFor(workload.spiffeId);
    const renewed = await workload.client.renew(csr);
    const m = await metrics();
    expect(m.value('tlsmesh_ca_renewals_total', { result: 'ok', code: '' })).toBe(1);
    expect(m.value('tlsmesh_ca_issuance_duration_seconds_count', { operation: 'renew' })).toBe(1);
    expect(m.value('tlsmesh_certificate_expiry_timestamp_seconds', { spiffe_id: workload.spiffeId })).toBe(new Date(renewed.notAfter).getTime() / 1000);
    workload = { ...workload, serial: renewed.serial };
  });

  it('05 a revocation is counted, lands in the CRL gauges, and the identity drops out of the expiry gauge', async () => {
    const before = await metrics();
    const crlRotations = before.value('tlsmesh_rotations_total', { component: 'ca', what: 'crl' }) ?? 0;
    await ca.admin.revoke({ spiffeId: workload.spiffeId, reason: 'keyCompromise' });
    const m = await metrics();
    expect(m.value('tlsmesh_ca_revocations_total', { result: 'ok', code: '' })).toBe(1);
    // Both of the identity's certificates (the enrolled one and its renewal) are listed.
    expect(m.find('tlsmesh_crl_entries').map((sample) => sample.value).sort()).toEqual([0, 2]);
    expect(m.value('tlsmesh_rotations_total', { component: 'ca', what: 'crl' })).toBe(crlRotations + 1);
    expect(m.find('tlsmesh_certificate_expiry_timestamp_seconds', { spiffe_id: workload.spiffeId })).toEqual([]);
    const active = ca.running.crls.current().active;
    expect(m.value('tlsmesh_crl_size_bytes', { issuer: active.issuerKeyId })).toBe(active.record.der.length);
  });

  it('06 /metrics refuses a caller without a certificate, and a workload that is not allowed to scrape', async () => {
    expect((await scrape(ca, null)).status).toBe(401);
    const other = await enrollWorkload(ca, `spiffe://${TRUST_DOMAIN}/metrics/curious`);
    const refused = await scrape(ca, other);
    expect(refused.status).toBe(403);
    expect(JSON.parse(refused.body)).toMatchObject({ error: { code: 'ERR_FORBIDDEN' } });
    const audit = await ca.running.authority.store.listAudit({ action: 'metrics' });
    expect(audit.map((entry) => [entry.outcome, entry.code, entry.actor])).toEqual([
      ['refused', 'ERR_CLIENT_CERT_REQUIRED', 'peer:127.0.0.1'],
      ['refused', 'ERR_FORBIDDEN', other.spiffeId],
    ]);
    const m = await metrics();
    expect(m.value('tlsmesh_tls_handshake_refusals_total', { reason: 'identity-not-allowed' })).toBe(1);
    expect(m.value('tlsmesh_tls_handshake_refusals_total', { reason: 'no-certificate' })).toBe(2);
  });

  it('07 a plaintext caller on the TLS port is a refused handshake with reason plaintext', async () => {
    const port = Number(new URL(ca.url).port);
    await new Promise<void>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => socket.write('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'));
      socket.on('error', reject);
      socket.on('close', () => resolve());
      socket.resume();
    });
    // The server counts in its tlsClientError handler, which runs before it closes the socket.
    const m = await metrics();
    expect(m.value('tlsmesh_tls_handshake_refusals_total', { component: 'ca', transport: 'https', reason: 'plaintext' })).toBe(1);
  });

  it('08 promtool accepts the exposition (names, units, types, help)', async (context) => {
    if (!requirePromtool()) return context.skip('promtool (Debian prometheus) is not installed');
    const answer = await scrape(ca, admin);
    const lint = promtoolCheckMetrics(answer.body);
    expect(lint.output).toBe('');
    expect(lint.status).toBe(0);
  });
});
