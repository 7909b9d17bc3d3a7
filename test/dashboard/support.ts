/** A real CA with the dashboard's read-only token configured, a few enrolled identities, and request helpers. */
import { appendFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { enrollWorkload, startTestCa, type TestCa, type Workload } from '../helpers/ca.js';

export const READ_ONLY_TOKEN = 'read-only-dashboard-token-0123456789abcdef';

export const IDS = {
  api: 'spiffe://example.org/ns/prod/sa/api',
  db: 'spiffe://example.org/ns/prod/sa/db',
  web: 'spiffe://example.org/ns/dev/sa/web',
} as const;

export async function startDashboardCa(): Promise<{ ca: TestCa; workloads: Record<keyof typeof IDS, Workload> }> {
  const ca = await startTestCa({
    prepare(dataDir) {
      const tokenFile = join(dataDir, 'ui-token');
      writeFileSync(tokenFile, `${READ_ONLY_TOKEN}\n`, { mode: 0o600 });
      appendFileSync(join(dataDir, 'ca.yaml'), 'dashboard:\n  readOnlyTokenFile: ui-token\n  sessionLifetime: 1h\n');
    },
  });
  const workloads = {
    api: await enrollWorkload(ca, IDS.api),
    db: await enrollWorkload(ca, IDS.db),
    web: await enrollWorkload(ca, IDS.web),
  };
  return { ca, workloads };
}

export interface PageResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** An HTTPS request to the CA over a real socket, verifying the CA's certificate against its bundle. */
export function httpsPage(
  ca: TestCa,
  path: string,
  options: { method?: string; certPem?: string; keyPem?: string; headers?: Record<string, string>; form?: Record<string, string> } = {},
): Promise<PageResponse> {
  const body = options.form === undefined ? undefined : new URLSearchParams(options.form).toString();
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(path, ca.url),
      {
        method: options.method ?? (body === undefined ? 'GET' : 'POST'),
        ca: ca.bundlePem,
        agent: false,
        ...(options.certPem !== undefined ? { cert: options.certPem, key: options.keyPem } : {}),
        headers: { ...(body !== undefined ? { 'content-type': 'application/x-www-form-urlencoded' } : {}), ...options.headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** The CSRF token of a page's form. */
export function csrfOf(html: string): string {
  const match = /name="csrf" value="([^"]+)"/.exec(html);
  if (!match) throw new Error('no CSRF field on the page');
  return match[1]!;
}
