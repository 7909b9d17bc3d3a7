/**
 * The dashboard over a real TLS socket, where the client certificate decides: the admin
 * certificate sees everything and revokes (CSRF token + Origin checked, CRL republished and
 * checked with `openssl crl`); a workload certificate, a stranger's certificate and a revoked
 * admin certificate are refused with a page and an audit entry. curl is a second client.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { csrFor, type TestCa, type Workload } from '../helpers/ca.js';
import { opensslSelfSigned, runAsync } from '../helpers/openssl.js';
import { csrfOf, httpsPage, IDS, startDashboardCa } from './support.js';

let ca: TestCa;
let workloads: Record<keyof typeof IDS, Workload>;
let admin: { certPem: string; keyPem: string };
let dir: string;

beforeAll(async () => {
  ({ ca, workloads } = await startDashboardCa());
  admin = { certPem: readFileSync(join(ca.dataDir, 'admin', 'cert.pem'), 'utf8'), keyPem: readFileSync(join(ca.dataDir, 'admin', 'key.pem'), 'utf8') };
  dir = mkdtempSync(join(tmpdir(), 'tlsmesh-dashboard-tls-'));
});
afterAll(async () => {
  await ca?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const origin = (): string => ca.url;
const lastAudit = async (action: string) => (await ca.running.authority.store.listAudit({ action, newestFirst: true, limit: 1 }))[0];

describe('the admin client certificate', () => {
  it('sees every page, each view audited under the admin SPIFFE ID', async () => {
    for (const path of ['/ui/', '/ui/certs', '/ui/timeline', '/ui/health', '/ui/revocations', '/ui/audit', '/ui/keys', `/ui/certs/${workloads.web.serial}`]) {
      const response = await httpsPage(ca, path, admin);
      expect(response.status, path).toBe(200);
      expect(await lastAudit('ui.view'), path).toMatchObject({ outcome: 'ok', actor: ca.running.authority.adminId, subject: path, detail: { access: 'admin' } });
    }
    const keys = await httpsPage(ca, '/ui/keys', admin);
    expect(keys.body).toContain(ca.running.authority.keyring.issuer.record.id);
  });

  it('curl (a second client) gets the overview with the admin certificate and the login page without', async () => {
    const cert = join(dir, 'admin.pem');
    const key = join(dir, 'admin.key');
    const bundle = join(dir, 'bundle.pem');
    writeFileSync(cert, admin.certPem);
    writeFileSync(key, admin.keyPem, { mode: 0o600 });
    writeFileSync(bundle, ca.bundlePem);
    const withCert = await runAsync('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', bundle, '--cert', cert, '--key', key, `${ca.url}/ui/`]);
    expect(withCert.stdout).toBe('200');
    const without = await runAsync('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', bundle, `${ca.url}/ui/`]);
    expect(without.stdout).toBe('401');
  });

  it('revokes through the confirmation page; the list shows it revoked and openssl finds the serial in the CRL', async () => {
    const target = workloads.web;
    const detail = await httpsPage(ca, `/ui/certs/${target.serial}`, admin);
    expect(detail.body).toContain(`/ui/certs/${target.serial}/revoke`);
    const confirm = await httpsPage(ca, `/ui/certs/${target.serial}/revoke`, admin);
    expect(confirm.status).toBe(200);
    expect(confirm.body).toContain(target.serial);
    expect(confirm.body).toContain(target.spiffeId);
    const csrf = csrfOf(confirm.body);
    const posted = await httpsPage(ca, `/ui/certs/${target.serial}/revoke`, { ...admin, form: { csrf, reason: 'keyCompromise' }, headers: { origin: origin(), 'sec-fetch-site': 'same-origin' } });
    expect(posted.status).toBe(303);
    const location = String(posted.headers.location);
    expect(location).toMatch(/^\/ui\/certs\?/);
    const list = await httpsPage(ca, location, admin);
    expect(list.body).toContain(`Certificate <code>${target.serial}</code> was revoked`);
    expect(list.body).toMatch(new RegExp(`${target.serial}</a></td>\\s*<td>workload</td>\\s*<td><span class="status status-revoked">Revoked</span>`));
    // The API's path: stored, audited as `revoke` by the admin, CRL republished before the redirect.
    expect(await lastAudit('revoke')).toMatchObject({ outcome: 'ok', actor: ca.running.authority.adminId, subject: target.serial, detail: { reason: 'keyCompromise' } });
    const crl = await fetchCrl();
    const text = await runAsync('openssl', ['crl', '-inform', 'DER', '-in', crl, '-noout', '-text']);
    expect(text.status).toBe(0);
    expect(text.stdout.toLowerCase().replace(/[^0-9a-z\n]/g, '')).toContain(`serialnumber${target.serial}`);
    expect(text.stdout).toContain('Key Compromise');
    const revocations = await httpsPage(ca, '/ui/revocations', admin);
    expect(revocations.body).toContain(target.serial);
  });

  it('refuses revoke posts without the CSRF token, with another token, or from another origin (403 ERR_CSRF, audited); nothing is revoked', async () => {
    const target = workloads.db;
    const csrf = csrfOf((await httpsPage(ca, `/ui/certs/${target.serial}/revoke`, admin)).body);
    const attempts: { form: Record<string, string>; headers: Record<string, string> }[] = [
      { form: { reason: 'keyCompromise' }, headers: { origin: origin() } },
      { form: { csrf: csrf.slice(0, -2) + (csrf.endsWith('AA') ? 'BB' : 'AA'), reason: 'keyCompromise' }, headers: { origin: origin() } },
      { form: { csrf, reason: 'keyCompromise' }, headers: {} },
      { form: { csrf, reason: 'keyCompromise' }, headers: { origin: 'https://evil.example' } },
      { form: { csrf, reason: 'keyCompromise' }, headers: { origin: 'null' } },
      { form: { csrf, reason: 'keyCompromise' }, headers: { origin: origin(), 'sec-fetch-site': 'same-site' } },
    ];
    for (const attempt of attempts) {
      const response = await httpsPage(ca, `/ui/certs/${target.serial}/revoke`, { ...admin, ...attempt });
      expect(response.status, JSON.stringify(attempt)).toBe(403);
      expect(response.headers['x-tlsmesh-error']).toBe('ERR_CSRF');
      expect(await lastAudit('ui.revoke')).toMatchObject({ outcome: 'refused', code: 'ERR_CSRF', actor: ca.running.authority.adminId });
    }
    const badReason = await httpsPage(ca, `/ui/certs/${target.serial}/revoke`, { ...admin, form: { csrf, reason: 'because' }, headers: { origin: origin() } });
    expect(badReason.headers['x-tlsmesh-error']).toBe('ERR_BAD_REQUEST');
    expect((await ca.running.authority.store.getCertificate(target.serial))?.status).toBe('valid');
  });
});

describe('refusals after the viewer is known', () => {
  it('a bad parameter from the admin is 400 ERR_BAD_REQUEST, audited under the admin SPIFFE ID, not as an anonymous peer', async () => {
    const response = await httpsPage(ca, '/ui/certs?status=bogus', admin);
    expect(response.status).toBe(400);
    expect(response.headers['x-tlsmesh-error']).toBe('ERR_BAD_REQUEST');
    expect(await lastAudit('ui.request')).toMatchObject({ outcome: 'refused', code: 'ERR_BAD_REQUEST', actor: ca.running.authority.adminId, subject: '/ui/certs' });
  });
});

describe('other certificates', () => {
  it('a workload certificate is 403 ERR_FORBIDDEN, audited under its SPIFFE ID', async () => {
    const response = await httpsPage(ca, '/ui/', { certPem: workloads.api.certPem, keyPem: workloads.api.keyPem });
    expect(response.status).toBe(403);
    expect(response.headers['x-tlsmesh-error']).toBe('ERR_FORBIDDEN');
    expect(response.body).not.toContain(IDS.db);
    expect(await lastAudit('ui.view')).toMatchObject({ outcome: 'refused', code: 'ERR_FORBIDDEN', actor: IDS.api });
  });

  it("a stranger's certificate is 401 ERR_CLIENT_CERT_REJECTED", async () => {
    const stranger = opensslSelfSigned(ca.running.authority.adminId);
    const response = await httpsPage(ca, '/ui/', stranger);
    expect(response.status).toBe(401);
    expect(response.headers['x-tlsmesh-error']).toBe('ERR_CLIENT_CERT_REJECTED');
    expect(await lastAudit('ui.view')).toMatchObject({ outcome: 'refused', code: 'ERR_CLIENT_CERT_REJECTED' });
  });

  it('a revoked admin certificate is 403 ERR_CERT_REVOKED', async () => {
    const authority = ca.running.authority;
    const { csr, keyPem } = await csrFor(authority.adminId);
    const second = await authority.issueDirect(csr, { spiffeId: authority.adminId, dnsNames: [], ipAddresses: [] }, 'admin', 'test');
    const before = await httpsPage(ca, '/ui/', { certPem: second.certificatePem, keyPem });
    expect(before.status).toBe(200);
    await ca.admin.revoke({ serial: second.serial, reason: 'superseded' });
    const after = await httpsPage(ca, '/ui/', { certPem: second.certificatePem, keyPem });
    expect(after.status).toBe(403);
    expect(after.headers['x-tlsmesh-error']).toBe('ERR_CERT_REVOKED');
    expect(await lastAudit('ui.view')).toMatchObject({ outcome: 'refused', code: 'ERR_CERT_REVOKED' });
  });
});

async function fetchCrl(): Promise<string> {
  const { request } = await import('node:https');
  const der = await new Promise<Buffer>((resolve, reject) => {
    const req = request(new URL('/v1/crl', ca.url), { ca: ca.bundlePem, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve(Buffer.concat(chunks)));
    });
    req.on('error', reject);
    req.end();
  });
  const path = join(dir, `crl-${Date.now()}.der`);
  writeFileSync(path, der);
  return path;
}
