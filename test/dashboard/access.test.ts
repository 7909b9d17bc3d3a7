/**
 * The dashboard in-process (`app.inject()`, where a socket adds nothing): refusals without a
 * credential, the read-only token login and its session, what a read-only session may not do,
 * CSRF/Origin checks on its forms, escaping of stored text, security headers, audit entries.
 * Client-certificate access is in tls.test.ts (it needs a real TLS socket).
 */
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestCa, Workload } from '../helpers/ca.js';
import { csrfOf, IDS, READ_ONLY_TOKEN, startDashboardCa } from './support.js';

let ca: TestCa;
let workloads: Record<keyof typeof IDS, Workload>;
const HOST = '127.0.0.1:8443';
const ORIGIN = `https://${HOST}`;

beforeAll(async () => {
  ({ ca, workloads } = await startDashboardCa());
});
afterAll(async () => {
  await ca?.close();
});

const inject = (options: { method?: 'GET' | 'POST'; url: string; cookie?: string; form?: Record<string, string>; headers?: Record<string, string> }): Promise<LightMyRequestResponse> =>
  ca.running.app.inject({
    method: options.method ?? (options.form ? 'POST' : 'GET'),
    url: options.url,
    headers: {
      host: HOST,
      ...(options.form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      ...(options.cookie ? { cookie: options.cookie } : {}),
      ...options.headers,
    },
    ...(options.form ? { payload: new URLSearchParams(options.form).toString() } : {}),
  });

async function login(): Promise<string> {
  const response = await inject({ url: '/ui/login', form: { token: READ_ONLY_TOKEN }, headers: { origin: ORIGIN, 'sec-fetch-site': 'same-origin' } });
  expect(response.statusCode).toBe(303);
  const setCookie = String(response.headers['set-cookie']);
  return setCookie.split(';')[0]!;
}

const lastAudit = async (action: string) => (await ca.running.authority.store.listAudit({ action, newestFirst: true, limit: 1 }))[0];

describe('without a credential', () => {
  it('every page answers 401 ERR_UI_LOGIN_REQUIRED with the login form, and the refusal is audited with the peer', async () => {
    for (const url of ['/ui', '/ui/', '/ui/certs', '/ui/timeline', '/ui/health', '/ui/revocations', '/ui/audit', '/ui/keys', `/ui/certs/${workloads.api.serial}`]) {
      const response = await inject({ url });
      expect(response.statusCode, url).toBe(401);
      expect(response.headers['x-tlsmesh-error'], url).toBe('ERR_UI_LOGIN_REQUIRED');
      expect(response.body).toContain('<form method="post" action="/ui/login">');
      expect(response.body).not.toContain(IDS.api);
    }
    const entry = await lastAudit('ui.view');
    expect(entry).toMatchObject({ outcome: 'refused', code: 'ERR_UI_LOGIN_REQUIRED', subject: `/ui/certs/${workloads.api.serial}`, actor: 'peer:127.0.0.1', peer: '127.0.0.1' });
  });

  it('revoke is refused before anything else, and the certificate stays valid', async () => {
    const response = await inject({ url: `/ui/certs/${workloads.api.serial}/revoke`, form: { csrf: 'x', reason: 'keyCompromise' }, headers: { origin: ORIGIN } });
    expect(response.statusCode).toBe(401);
    expect(response.headers['x-tlsmesh-error']).toBe('ERR_UI_LOGIN_REQUIRED');
    expect((await ca.running.authority.store.getCertificate(workloads.api.serial))?.status).toBe('valid');
    expect(await lastAudit('ui.revoke')).toMatchObject({ outcome: 'refused', code: 'ERR_UI_LOGIN_REQUIRED' });
  });

  it('a forged session cookie is no session', async () => {
    const response = await inject({ url: '/ui/', cookie: `__Host-tlsmesh-ui=${'A'.repeat(43)}` });
    expect(response.statusCode).toBe(401);
    expect(response.headers['x-tlsmesh-error']).toBe('ERR_UI_LOGIN_REQUIRED');
  });
});

describe('security headers', () => {
  it('pages, refusals, the stylesheet and unknown paths all carry them', async () => {
    const cookie = await login();
    const responses = await Promise.all([
      inject({ url: '/ui/', cookie }),
      inject({ url: '/ui/' }),
      inject({ url: '/ui/static/dashboard.css' }),
      inject({ url: '/ui/nothing-here', cookie }),
      inject({ url: '/ui/certs?status=bogus', cookie }),
    ]);
    expect(responses.map((r) => r.statusCode)).toEqual([200, 401, 200, 404, 400]);
    for (const response of responses) {
      expect(response.headers['content-security-policy']).toBe("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
      expect(response.headers['referrer-policy']).toBe('same-origin');
      expect(response.headers['x-content-type-options']).toBe('nosniff');
      expect(response.headers['cache-control']).toBe('no-store');
    }
    expect(responses[2].headers['content-type']).toBe('text/css; charset=utf-8');
    expect(responses[0].headers['content-type']).toBe('text/html; charset=utf-8');
    // No script and no inline style anywhere (the CSP would block them anyway).
    expect(responses[0].body).not.toMatch(/<script|style=|\son[a-z]+=/i);
    expect(responses[3].headers['x-tlsmesh-error']).toBe('ERR_NOT_FOUND');
    expect(responses[4].headers['x-tlsmesh-error']).toBe('ERR_BAD_REQUEST');
  });

  it('the API keeps its JSON answers and gets none of the page headers', async () => {
    const response = await inject({ url: '/v1/certs' });
    expect(response.statusCode).toBe(401);
    expect(response.json()).toMatchObject({ error: { code: 'ERR_CLIENT_CERT_REQUIRED' } });
    expect(response.headers['content-security-policy']).toBeUndefined();
  });
});

describe('read-only token login', () => {
  it('a wrong token is 401 ERR_UI_TOKEN_INVALID, audited, with no cookie', async () => {
    const response = await inject({ url: '/ui/login', form: { token: `${READ_ONLY_TOKEN}x` }, headers: { origin: ORIGIN } });
    expect(response.statusCode).toBe(401);
    expect(response.headers['x-tlsmesh-error']).toBe('ERR_UI_TOKEN_INVALID');
    expect(response.headers['set-cookie']).toBeUndefined();
    const entry = await lastAudit('ui.login');
    expect(entry).toMatchObject({ outcome: 'refused', code: 'ERR_UI_TOKEN_INVALID', peer: '127.0.0.1' });
    expect(JSON.stringify(entry)).not.toContain(READ_ONLY_TOKEN);
  });

  it('a login posted from another origin, or with no Origin, is ERR_CSRF even with the right token', async () => {
    for (const headers of [{}, { origin: 'https://evil.example' }, { origin: 'null' }, { origin: ORIGIN, 'sec-fetch-site': 'cross-site' }]) {
      const response = await inject({ url: '/ui/login', form: { token: READ_ONLY_TOKEN }, headers });
      expect(response.statusCode, JSON.stringify(headers)).toBe(403);
      expect(response.headers['x-tlsmesh-error']).toBe('ERR_CSRF');
      expect(response.headers['set-cookie']).toBeUndefined();
    }
  });

  it('the right token gives a session cookie: HttpOnly, Secure, SameSite=Strict, bounded, never the token', async () => {
    const response = await inject({ url: '/ui/login', form: { token: READ_ONLY_TOKEN }, headers: { origin: ORIGIN } });
    expect(response.statusCode).toBe(303);
    expect(response.headers.location).toBe('/ui/');
    const setCookie = String(response.headers['set-cookie']);
    expect(setCookie).toMatch(/^__Host-tlsmesh-ui=[A-Za-z0-9_-]{43}; Path=\/; Max-Age=3600; HttpOnly; Secure; SameSite=Strict$/);
    expect(setCookie).not.toContain(READ_ONLY_TOKEN);
    const entry = await lastAudit('ui.login');
    expect(entry).toMatchObject({ outcome: 'ok', detail: { access: 'read-only', lifetimeSeconds: 3600 } });
    expect(entry?.actor).toMatch(/^ui-session:[0-9a-f]{12}$/);
  });

  it('a session views every page, each view audited with the session as actor', async () => {
    const cookie = await login();
    for (const url of ['/ui/', '/ui/certs', '/ui/timeline', '/ui/health', '/ui/revocations', '/ui/audit', '/ui/keys', `/ui/certs/${workloads.api.serial}`]) {
      const response = await inject({ url, cookie });
      expect(response.statusCode, url).toBe(200);
      expect(await lastAudit('ui.view'), url).toMatchObject({ outcome: 'ok', subject: url, detail: { access: 'read-only' } });
    }
  });

  it('search and status filters narrow the list', async () => {
    const cookie = await login();
    const prod = (await inject({ url: '/ui/certs?q=PROD', cookie })).body;
    expect(prod).toContain(IDS.api);
    expect(prod).toContain(IDS.db);
    expect(prod).not.toContain(IDS.web);
    const wildcard = (await inject({ url: '/ui/certs?q=%25', cookie })).body;
    expect(wildcard).toContain('No certificates match');
    const valid = (await inject({ url: '/ui/certs?status=valid&q=ns%2F', cookie })).body;
    for (const id of Object.values(IDS)) expect(valid).toContain(id);
    expect((await inject({ url: '/ui/certs?status=revoked&q=ns%2F', cookie })).body).toContain('No certificates match');
    expect((await inject({ url: '/ui/certs?status=expired&q=ns%2F', cookie })).body).toContain('No certificates match');
  });

  it('a read-only session sees no revoke button and is refused (403 ERR_FORBIDDEN, audited) on the confirmation and the post', async () => {
    const cookie = await login();
    const detail = await inject({ url: `/ui/certs/${workloads.db.serial}`, cookie });
    expect(detail.body).not.toContain('/revoke"');
    const confirm = await inject({ url: `/ui/certs/${workloads.db.serial}/revoke`, cookie });
    expect(confirm.statusCode).toBe(403);
    expect(confirm.headers['x-tlsmesh-error']).toBe('ERR_FORBIDDEN');
    // Even with the session's own, valid CSRF token and the right origin.
    const csrf = csrfOf((await inject({ url: '/ui/', cookie })).body);
    const post = await inject({ url: `/ui/certs/${workloads.db.serial}/revoke`, cookie, form: { csrf, reason: 'keyCompromise' }, headers: { origin: ORIGIN, 'sec-fetch-site': 'same-origin' } });
    expect(post.statusCode).toBe(403);
    expect(post.headers['x-tlsmesh-error']).toBe('ERR_FORBIDDEN');
    expect((await ca.running.authority.store.getCertificate(workloads.db.serial))?.status).toBe('valid');
    const entry = await lastAudit('ui.revoke');
    expect(entry).toMatchObject({ outcome: 'refused', code: 'ERR_FORBIDDEN', subject: `/ui/certs/${workloads.db.serial}/revoke` });
    expect(entry?.actor).toMatch(/^ui-session:/);
  });

  it('logout needs the CSRF token and the origin, then ends the session', async () => {
    const cookie = await login();
    const csrf = csrfOf((await inject({ url: '/ui/', cookie })).body);
    const forged = await inject({ url: '/ui/logout', cookie, form: { csrf: 'not-the-token' }, headers: { origin: ORIGIN } });
    expect(forged.headers['x-tlsmesh-error']).toBe('ERR_CSRF');
    const crossOrigin = await inject({ url: '/ui/logout', cookie, form: { csrf }, headers: { origin: 'https://evil.example' } });
    expect(crossOrigin.headers['x-tlsmesh-error']).toBe('ERR_CSRF');
    expect((await inject({ url: '/ui/', cookie })).statusCode).toBe(200);
    const out = await inject({ url: '/ui/logout', cookie, form: { csrf }, headers: { origin: ORIGIN } });
    expect(out.statusCode).toBe(303);
    expect(String(out.headers['set-cookie'])).toContain('Max-Age=0');
    expect((await inject({ url: '/ui/', cookie })).statusCode).toBe(401);
  });

  it('a session ends after its lifetime by the CA clock', async () => {
    const cookie = await login();
    expect((await inject({ url: '/ui/', cookie })).statusCode).toBe(200);
    ca.clockOffsetMs = 3600_000 + 1000;
    try {
      const response = await inject({ url: '/ui/', cookie });
      expect(response.statusCode).toBe(401);
      expect(response.headers['x-tlsmesh-error']).toBe('ERR_UI_LOGIN_REQUIRED');
    } finally {
      ca.clockOffsetMs = 0;
    }
    expect((await inject({ url: '/ui/', cookie })).statusCode).toBe(401);
  });
});

describe('escaping', () => {
  it('stored and reflected text is escaped on every page it reaches', async () => {
    const cookie = await login();
    const nasty = `"><script>alert(1)</script><img src=x onerror=alert(2)>`;
    await ca.running.authority.store.appendAudit({ at: new Date(), actor: nasty, action: 'renew', subject: nasty, outcome: 'refused', code: 'ERR_CSR_MALFORMED', detail: { message: nasty }, peer: nasty });
    await ca.running.authority.store.appendAudit({ at: new Date(), actor: nasty, action: 'revoke', subject: nasty, outcome: 'ok', code: null, detail: { reason: nasty }, peer: null });
    const pages = await Promise.all(
      ['/ui/audit', '/ui/health', '/ui/revocations', `/ui/certs?q=${encodeURIComponent(nasty)}`, `/ui/audit?action=${encodeURIComponent(nasty)}`].map((url) => inject({ url, cookie })),
    );
    for (const response of pages) {
      expect(response.statusCode).toBe(200);
      expect(response.body).not.toContain('<script>');
      expect(response.body).not.toContain('<img');
      expect(response.body).toContain('&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;');
    }
  });
});
