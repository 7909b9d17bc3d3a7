/**
 * The README's first command, as a user runs it: `npm run quickstart`, then Ctrl-C (SIGINT to the
 * whole process group, as a terminal sends it). Both services must have called each other over
 * mutual TLS and named each other's SPIFFE ID, and everything must stop cleanly.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { REPO_ROOT } from './helpers/cli.js';

it('npm run quickstart: two services call each other over mTLS until Ctrl-C', async () => {
  const home = mkdtempSync(join(tmpdir(), 'tlsmesh-quickstart-'));
  const child = spawn('npm', ['run', '--silent', 'quickstart'], {
    cwd: REPO_ROOT,
    env: { ...process.env, TLSMESH_QUICKSTART_DIR: home },
    detached: true, // its own process group, so SIGINT reaches npm, tsx and node as from a terminal
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  // 'close' waits for every process holding the pipes (npm, tsx, node) to finish.
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  let done = false;
  void closed.then(() => (done = true));
  try {
    const domain = 'spiffe://quickstart.tlsmesh.local';
    const wanted = [
      `[orders] called payments over mutual TLS (TLSv1.3): peer ${domain}/payments; it saw us as ${domain}/orders`,
      `[payments] called orders over mutual TLS (TLSv1.3): peer ${domain}/orders; it saw us as ${domain}/payments`,
    ];
    // Two rounds (the first at start, the second two seconds later), bounded by a deadline.
    const deadline = Date.now() + 90_000;
    const rounds = (): number => Math.min(...wanted.map((line) => output.split(line).length - 1));
    while (rounds() < 2 && Date.now() < deadline && !done) await new Promise((r) => setTimeout(r, 200));
    expect(rounds(), output).toBeGreaterThanOrEqual(2);
    expect(output).not.toMatch(/failed/);
    expect(statSync(join(home, 'orders', 'key.pem')).mode & 0o777).toBe(0o600);

    process.kill(-child.pid!, 'SIGINT');
    const { code, signal } = await closed;
    // npm itself re-raises SIGINT (as in a terminal); the quickstart underneath must stop cleanly.
    expect(code === 0 || signal === 'SIGINT', `exit ${code} ${signal}`).toBe(true);
    expect(output).toMatch(/\nstopped\n/);
    expect(output).not.toMatch(/quickstart failed/);
  } finally {
    if (!done) process.kill(-child.pid!, 'SIGKILL');
    rmSync(home, { recursive: true, force: true });
  }
});
