/**
 * The dashboard in real headless Chromium against a real CA with enrolled identities: every
 * page renders (screenshots in test-results/dashboard/), search and status filters, keyboard
 * use, revoking from the UI with its confirmation (then checked in the CRL with openssl), and
 * the read-only token that can view but not revoke.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestCa, Workload } from '../helpers/ca.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { runAsync } from '../helpers/openssl.js';
import { launchBrowser, requireChromium, type BrowserHandle } from './browser.js';
import { IDS, READ_ONLY_TOKEN, startDashboardCa } from './support.js';

const SHOTS = join(REPO_ROOT, 'test-results', 'dashboard');

describe('dashboard in Chromium', () => {
  if (!requireChromium()) return;

  let ca: TestCa;
  let workloads: Record<keyof typeof IDS, Workload>;
  let dir: string;
  let handle: BrowserHandle;
  let admin: BrowserContext;

  beforeAll(async () => {
    ({ ca, workloads } = await startDashboardCa());
    dir = mkdtempSync(join(tmpdir(), 'tlsmesh-dashboard-browser-'));
    mkdirSync(SHOTS, { recursive: true });
    const bundleFile = join(dir, 'bundle.pem');
    writeFileSync(bundleFile, ca.bundlePem);
    handle = await launchBrowser(bundleFile);
    admin = await handle.browser.newContext({
      clientCertificates: [{ origin: ca.url, cert: readFileSync(join(ca.dataDir, 'admin', 'cert.pem')), key: readFileSync(join(ca.dataDir, 'admin', 'key.pem')) }],
      viewport: { width: 1200, height: 900 },
    });
  }, 60_000);
  afterAll(async () => {
    await admin?.close();
    await handle?.close();
    await ca?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const open = async (context: BrowserContext, path: string): Promise<{ page: Page; status: number }> => {
    const page = await context.newPage();
    const response = await page.goto(`${ca.url}${path}`);
    return { page, status: response?.status() ?? 0 };
  };
  const rowIds = async (page: Page): Promise<string[]> => page.locator('table tbody tr td:first-child code').allTextContents();

  it('renders every page with real data for the admin certificate (screenshots saved)', async () => {
    const pages: [string, string, string][] = [
      ['/ui/', 'Overview', 'overview'],
      ['/ui/certs', 'Certificates', 'certificates'],
      [`/ui/certs/${workloads.api.serial}`, 'Certificate', 'certificate-detail'],
      ['/ui/timeline', 'Expiry timeline', 'timeline'],
      ['/ui/health', 'Renewal health', 'health'],
      ['/ui/revocations', 'Recent revocations', 'revocations'],
      ['/ui/audit', 'Audit trail', 'audit'],
      ['/ui/keys', 'CA keys', 'keys'],
    ];
    for (const [path, heading, name] of pages) {
      const { page, status } = await open(admin, path);
      expect(status, path).toBe(200);
      expect(await page.locator('h1').textContent(), path).toBe(heading);
      expect(await page.locator('main').count()).toBe(1);
      // The stylesheet loaded under the CSP (the header is dark only when it did).
      expect(await page.evaluate("getComputedStyle(document.querySelector('header.top')).backgroundColor")).toBe('rgb(36, 41, 47)');
      await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
      await page.close();
    }
    const { page } = await open(admin, '/ui/');
    // Counted here from the full list, independently of the dashboard's COUNT query.
    const now = Date.now();
    const valid = (await ca.running.authority.store.listCertificates({})).filter((r) => r.status === 'valid' && r.notAfter.getTime() >= now);
    expect(valid.length).toBeGreaterThanOrEqual(5); // three workloads, the admin, the CA's server certificate (and its OCSP responder's)
    expect(await page.locator('.card .n').first().textContent()).toBe(String(valid.length));
    await page.close();
    const timeline = await open(admin, '/ui/timeline');
    expect(await timeline.page.locator('svg[role=img] title#chart-title').textContent()).toMatch(/Certificates expiring per (hour|day)/);
    const total = (await timeline.page.locator('table tbody td.num').allTextContents()).reduce((n, text) => n + Number(text), 0);
    expect(total).toBeGreaterThanOrEqual(4); // the three workloads and the CA server certificate (24 h leaves)
    await timeline.page.close();
  });

  it('search filters the list, and the status filter narrows it', async () => {
    const { page } = await open(admin, '/ui/certs');
    await page.getByLabel('SPIFFE ID contains').fill('ns/prod');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.waitForURL(/q=ns%2Fprod/);
    expect((await rowIds(page)).sort()).toEqual([IDS.api, IDS.db]);
    await page.getByLabel('Status').selectOption('revoked');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.waitForURL(/status=revoked/);
    expect(await rowIds(page)).toEqual([]);
    expect(await page.locator('caption').textContent()).toContain('No certificates match');
    await page.getByLabel('Status').selectOption('valid');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.waitForURL(/status=valid/);
    expect((await rowIds(page)).sort()).toEqual([IDS.api, IDS.db]);
    await page.close();
  });

  it('keyboard: the first Tab reaches the skip link, further Tabs the search box, Enter submits it', async () => {
    const { page } = await open(admin, '/ui/certs');
    await page.keyboard.press('Tab');
    // Expressions as strings: this project's TypeScript has no DOM library.
    expect(await page.evaluate('document.activeElement.textContent')).toBe('Skip to content');
    let found = false;
    for (let i = 0; i < 30 && !found; i++) {
      await page.keyboard.press('Tab');
      found = (await page.evaluate("document.activeElement.id === 'q'")) === true;
    }
    expect(found).toBe(true);
    // The focused search box shows a visible outline.
    expect(await page.evaluate("getComputedStyle(document.getElementById('q')).outlineStyle")).toBe('solid');
    await page.keyboard.type('dev/');
    await Promise.all([page.waitForURL(/q=dev%2F/), page.keyboard.press('Enter')]);
    expect(await rowIds(page)).toEqual([IDS.web]);
    await page.close();
  });

  it('revoking from the UI asks for confirmation, then shows it revoked in the list and it is in the CRL', async () => {
    const target = workloads.api;
    const { page } = await open(admin, `/ui/certs/${target.serial}`);
    await page.getByRole('link', { name: 'Revoke…' }).click();
    await page.waitForURL(/\/revoke$/);
    expect(await page.locator('h1').textContent()).toBe('Revoke certificate');
    expect(await page.locator('main').textContent()).toContain(target.spiffeId);
    await page.getByLabel('Reason').selectOption('keyCompromise');
    await page.screenshot({ path: join(SHOTS, 'revoke-confirm.png'), fullPage: true });
    await Promise.all([page.waitForURL(/revoked=/), page.getByRole('button', { name: `Revoke certificate ${target.serial}` }).click()]);
    expect(await page.getByRole('status').textContent()).toContain(target.serial);
    const row = page.locator('tr', { has: page.locator(`a:text-is("${target.serial}")`) });
    expect(await row.locator('.status').textContent()).toBe('Revoked');
    await page.screenshot({ path: join(SHOTS, 'revoked-list.png'), fullPage: true });
    await page.close();

    const crlFile = join(dir, 'ui.crl');
    writeFileSync(crlFile, await getCrl());
    const text = await runAsync('openssl', ['crl', '-inform', 'DER', '-in', crlFile, '-noout', '-text']);
    expect(text.status).toBe(0);
    expect(text.stdout.replace(/\s+/g, ' ')).toMatch(new RegExp(`Serial Number: ${target.serial.toUpperCase()} .*?Key Compromise`));
  });

  it('axe-core finds no serious or critical accessibility violation on any page', async () => {
    // bypassCSP only to inject axe-core's script: the pages' CSP forbids every script, which is
    // the point of it. Same client certificate, so the server is verified as above.
    const audit = await handle.browser.newContext({
      bypassCSP: true,
      clientCertificates: [{ origin: ca.url, cert: readFileSync(join(ca.dataDir, 'admin', 'cert.pem')), key: readFileSync(join(ca.dataDir, 'admin', 'key.pem')) }],
    });
    try {
      for (const path of ['/ui/', '/ui/certs', `/ui/certs/${workloads.db.serial}`, `/ui/certs/${workloads.db.serial}/revoke`, '/ui/timeline', '/ui/health', '/ui/revocations', '/ui/audit', '/ui/keys', '/ui/login']) {
        const { page } = await open(audit, path);
        await page.addScriptTag({ path: join(REPO_ROOT, 'node_modules', 'axe-core', 'axe.min.js') });
        const violations = await page.evaluate(async () => {
          const result = await (globalThis as unknown as { axe: { run(): Promise<{ violations: { id: string; impact: string | null; nodes: unknown[] }[] }> } }).axe.run();
          return result.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length }));
        });
        expect(violations.filter((v) => v.impact === 'serious' || v.impact === 'critical'), path).toEqual([]);
        await page.close();
      }
    } finally {
      await audit.close();
    }
  });

  it('the read-only token: login form, every page viewable, no revoke', async () => {
    // Playwright's verifying proxy serves only origins with a client certificate; a context
    // without one talks to the CA from Chromium directly, which has no per-context CA setting.
    // The CA's certificate is verified against the bundle in the admin context above (same
    // server, same certificate); this context is about what a read-only session may do.
    const reader = await handle.browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1200, height: 900 } });
    try {
      const { page, status } = await open(reader, '/ui/');
      expect(status).toBe(401);
      expect(await page.locator('h1').textContent()).toBe('Sign in');
      await page.screenshot({ path: join(SHOTS, 'login.png'), fullPage: true });
      await page.getByLabel('Read-only token').fill(READ_ONLY_TOKEN);
      await Promise.all([page.waitForURL(`${ca.url}/ui/`), page.getByRole('button', { name: 'Log in (read-only)' }).click()]);
      expect(await page.locator('h1').textContent()).toBe('Overview');
      expect(await page.locator('.who').textContent()).toContain('Read-only session');
      const cookies = await reader.cookies();
      expect(cookies).toHaveLength(1);
      expect(cookies[0]).toMatchObject({ name: '__Host-tlsmesh-ui', httpOnly: true, secure: true, sameSite: 'Strict' });
      expect(cookies[0]!.value).not.toContain(READ_ONLY_TOKEN);

      await page.goto(`${ca.url}/ui/certs/${workloads.db.serial}`);
      expect(await page.getByRole('link', { name: 'Revoke…' }).count()).toBe(0);
      expect(await page.locator('main').textContent()).toContain('read-only session');
      const refused = await page.goto(`${ca.url}/ui/certs/${workloads.db.serial}/revoke`);
      expect(refused?.status()).toBe(403);
      expect(await page.locator('main').textContent()).toContain('ERR_FORBIDDEN');
      await page.screenshot({ path: join(SHOTS, 'read-only-refused.png'), fullPage: true });
      expect((await ca.running.authority.store.getCertificate(workloads.db.serial))?.status).toBe('valid');

      await page.goto(`${ca.url}/ui/`);
      await Promise.all([page.waitForURL(/\/ui\/login$/), page.getByRole('button', { name: 'Log out' }).click()]);
      const after = await page.goto(`${ca.url}/ui/`);
      expect(after?.status()).toBe(401);
    } finally {
      await reader.close();
    }
  });

  function getCrl(): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const req = request(new URL('/v1/crl', ca.url), { ca: ca.bundlePem, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve(Buffer.concat(chunks)));
      });
      req.on('error', reject);
      req.end();
    });
  }
});
