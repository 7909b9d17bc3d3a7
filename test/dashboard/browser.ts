/**
 * Debian's Chromium driven by playwright-core (never a downloaded browser), for the dashboard.
 *
 * Playwright presents a context's `clientCertificates` through its own TLS proxy, in the process
 * that runs the browser server. That proxy verifies the server against Node's default CA store
 * (it passes no `ca`), so the browser server runs in a child process started with
 * NODE_EXTRA_CA_CERTS = the CA's bundle: the dashboard's certificate is really verified against
 * the trust bundle, without ignoring HTTPS errors. Tests connect to it over its WebSocket.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { it } from 'vitest';
import { REPO_ROOT } from '../helpers/cli.js';

export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** True when Chromium is there; otherwise throws under CI=true, or registers one skipped test naming the reason. */
export function requireChromium(): boolean {
  if (existsSync(CHROMIUM)) return true;
  const reason = `${CHROMIUM} is not installed (apt-get install chromium)`;
  if (process.env['CI'] === 'true') throw new Error(`CI requires Chromium for the dashboard tests: ${reason}`);
  console.warn(`[tlsmesh tests] skipping dashboard browser tests: ${reason}`);
  it.skip(`skipped: ${reason}`, () => {});
  return false;
}

const SERVER_SCRIPT = `
import { chromium } from 'playwright-core';
const server = await chromium.launchServer({ executablePath: ${JSON.stringify(CHROMIUM)}, headless: true, args: ${JSON.stringify(CHROMIUM_ARGS)} });
process.stdout.write(server.wsEndpoint() + '\\n');
process.stdin.on('end', () => { server.close().then(() => process.exit(0), () => process.exit(1)); });
process.stdin.resume();
`;

export interface BrowserHandle {
  browser: Browser;
  close(): Promise<void>;
}

/** A browser whose client-certificate proxy trusts `bundleFile` (and nothing is ignored). */
export async function launchBrowser(bundleFile: string): Promise<BrowserHandle> {
  const child: ChildProcess = spawn(process.execPath, ['--input-type=module', '-e', SERVER_SCRIPT], {
    cwd: REPO_ROOT,
    env: { ...process.env, NODE_EXTRA_CA_CERTS: bundleFile },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const endpoint = await new Promise<string>((resolve, reject) => {
    let text = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
      const line = text.split('\n')[0];
      if (text.includes('\n') && line) resolve(line.trim());
    });
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`the browser server exited (${code}) before it listened`)));
  });
  const browser = await chromium.connect(endpoint);
  return {
    browser,
    async close() {
      await browser.close().catch(() => {});
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.stdin!.end();
      await exited;
    },
  };
}
