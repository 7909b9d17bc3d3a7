/**
 * Shared pieces for the agent tests: temp directories, tokens, an event recorder to wait on, a
 * TCP proxy in front of the CA that the test switches off and on, OpenSSL checks of what the
 * agent wrote, and a tiny tmpfs for "disk full" and "read-only" (root only, skipped otherwise).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAgent, type Agent, type AgentEvent, type AgentOptions, type AgentStatus } from '../../src/agent/index.js';
import { Identity } from '../../src/sdk/identity.js';
import { FakeClock } from '../sdk/fake-clock.js';
import { pemBlocks, toPem } from '../../src/pki/index.js';
import type { TestCa } from '../helpers/ca.js';
import { capturedLogger, withDeadline } from '../sdk/support.js';

export const ID = (name: string): string => `spiffe://example.org/${name}`;

/** A fresh temp directory, removed by `cleanup()`. */
export function tempRoot(prefix = 'tlsmesh-agent-'): { root: string; dir: (name: string) => string; cleanup: () => void } {
  const root = mkdtempSync(join(tmpdir(), prefix));
  return { root, dir: (name) => join(root, name), cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

export async function tokenFor(ca: TestCa, spiffeId: string): Promise<string> {
  return (await ca.admin.createToken({ spiffeId })).token;
}

/** Writes a token into a file and returns the path (as an operator or a Secret mount would). */
export function tokenFile(path: string, token: string): string {
  writeFileSync(path, `${token}\n`, { mode: 0o600 });
  return path;
}

export interface EventRecorder {
  events: AgentEvent[];
  onEvent: (event: AgentEvent) => void;
  /** Resolves with the first event from index `from` on (default: the next one) that matches. */
  next<T extends AgentEvent['type']>(type: T, options?: { from?: number; where?: (event: Extract<AgentEvent, { type: T }>) => boolean; timeoutMs?: number }): Promise<Extract<AgentEvent, { type: T }>>;
  /** The index the next event will have. */
  mark(): number;
}

export function recorder(): EventRecorder {
  const events: AgentEvent[] = [];
  const waiters = new Set<() => void>();
  return {
    events,
    onEvent(event) {
      events.push(event);
      for (const waiter of [...waiters]) waiter();
    },
    mark: () => events.length,
    next(type, options = {}) {
      const from = options.from ?? events.length;
      type Wanted = Extract<AgentEvent, { type: typeof type }>;
      const found = (): Wanted | undefined =>
        events.slice(from).find((event): event is Wanted => event.type === type && (options.where?.(event as Wanted) ?? true));
      return withDeadline(
        new Promise<Wanted>((resolve) => {
          const check = (): void => {
            const event = found();
            if (event) {
              waiters.delete(check);
              resolve(event);
            }
          };
          waiters.add(check);
          check();
        }),
        options.timeoutMs ?? 20_000,
        `agent event "${type}" (seen: ${events.map((event) => event.type).join(', ')})`,
      );
    },
  };
}

/** A TCP proxy to the CA that refuses connections while down (and cuts the open ones when going down). */
export interface CaProxy {
  url: string;
  up(): void;
  down(): void;
  close(): Promise<void>;
}

export async function startProxy(ca: TestCa, initially: 'up' | 'down'): Promise<CaProxy> {
  const target = Number(new URL(ca.url).port);
  let mode = initially;
  const open = new Set<Socket>();
  const server: Server = createServer((client) => {
    if (mode === 'down') {
      client.destroy();
      return;
    }
    const upstream = connect(target, '127.0.0.1');
    open.add(client);
    open.add(upstream);
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream).pipe(client);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    up: () => {
      mode = 'up';
    },
    down: () => {
      mode = 'down';
      for (const socket of open) socket.destroy();
      open.clear();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of open) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** The options every agent test starts from. */
export function baseOptions(ca: TestCa, outDir: string, extra: Partial<AgentOptions> = {}): AgentOptions {
  return { caUrl: ca.url, bundlePem: ca.bundlePem, outDir, watch: true, ...extra };
}

export const readText = (path: string): string => readFileSync(path, 'utf8');

/**
 * `openssl verify -x509_strict` of the directory's chain against its bundle (and, with `crl`,
 * against its CRLs for every CA): the second implementation's word on what the agent wrote.
 */
export async function opensslVerify(dir: string, options: { crl?: boolean; certPem?: string } = {}): Promise<{ status: number; output: string }> {
  const work = mkdtempSync(join(tmpdir(), 'tlsmesh-agent-verify-'));
  try {
    const chain = pemBlocks(options.certPem ?? readText(join(dir, 'cert.pem')), 'CERTIFICATE');
    writeFileSync(join(work, 'leaf.pem'), toPem(chain[0]!, 'CERTIFICATE'));
    writeFileSync(join(work, 'untrusted.pem'), chain.slice(1).map((der) => toPem(der, 'CERTIFICATE')).join(''));
    const args = ['verify', '-x509_strict', '-CAfile', join(dir, 'bundle.pem'), '-untrusted', join(work, 'untrusted.pem')];
    if (options.crl === true) args.push('-crl_check_all', '-CRLfile', join(dir, 'crl.pem'));
    return await run('openssl', [...args, join(work, 'leaf.pem')]);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Runs a tool without blocking the event loop (the CA under test is in this process); stdin closed. */
function run(command: string, args: string[]): Promise<{ status: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ status: code ?? -1, output }));
  });
}

/**
 * A tmpfs of a few pages, mounted on a fresh directory (root only: returns null elsewhere, and the
 * test says why it skipped). Tests run as root here, and root writes through chmod 0500 — but not
 * through a full or read-only file system.
 */
export interface TinyFs {
  path: string;
  /** Fills it up: every further write fails with ENOSPC. */
  fill(): void;
  unfill(): void;
  readOnly(on: boolean): void;
  cleanup(): void;
}

export function tinyTmpfs(sizeKb: number): TinyFs | null {
  if (process.getuid?.() !== 0) return null;
  const path = mkdtempSync(join(tmpdir(), 'tlsmesh-agent-tmpfs-'));
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKb}k,mode=0700`, 'tmpfs', path], { encoding: 'utf8' });
  if (mounted.status !== 0) {
    rmSync(path, { recursive: true, force: true });
    return null;
  }
  const filler = join(path, 'filler');
  return {
    path,
    fill() {
      try {
        writeFileSync(filler, Buffer.alloc(sizeKb * 1024 * 2));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
      }
    },
    unfill() {
      rmSync(filler, { force: true });
    },
    readOnly(on) {
      const result = spawnSync('mount', ['-o', `remount,${on ? 'ro' : 'rw'}`, path], { encoding: 'utf8' });
      if (result.status !== 0) throw new Error(`remount failed: ${result.stderr}`);
    },
    cleanup() {
      spawnSync('umount', ['-l', path]);
      rmSync(path, { recursive: true, force: true });
    },
  };
}

/** An agent on a fake clock (starting at real time + `offsetMs`), with its events and logs kept. */
export interface FakeAgent {
  agent: Agent;
  clock: FakeClock;
  events: EventRecorder;
  log: ReturnType<typeof capturedLogger>;
  /** Moves the fake clock to `at` (ms), firing the agent's timers due by then. */
  advanceTo: (at: number) => void;
}

export function fakeAgent(ca: TestCa, outDir: string, extra: Partial<AgentOptions> & { offsetMs?: number; fakeClock?: FakeClock } = {}): FakeAgent {
  const { offsetMs, fakeClock: given, ...options } = extra;
  const clock = given ?? new FakeClock(Date.now() + (offsetMs ?? 0));
  const events = recorder();
  const log = capturedLogger();
  const agent = startAgent({
    ...baseOptions(ca, outDir),
    clock: clock.clock,
    timers: clock,
    random: () => 0.5, // jitter 0: renewal exactly at 2/3; backoff at 3/4 of nominal
    logger: log.logger,
    ...options,
    onEvent: (event) => {
      events.onEvent(event);
      options.onEvent?.(event);
    },
  });
  return { agent, clock, events, log, advanceTo: (at) => clock.advanceTo(at) };
}

/** The serial of the set a reader sees through the stable names; throws if key and certificate do not match. */
export function serialOnDisk(dir: string): string {
  return new Identity({ certPem: readText(join(dir, 'cert.pem')), keyPem: readText(join(dir, 'key.pem')), bundlePem: readText(join(dir, 'bundle.pem')) }).serial;
}

/** GET /healthz. */
export async function getHealth(url: string): Promise<{ status: number; body: AgentStatus }> {
  const response = await fetch(`${url}/healthz`);
  return { status: response.status, body: (await response.json()) as AgentStatus };
}

/** Checks `condition` until it holds, within a deadline (for state no event announces, such as a CA reloading its keys). */
export function eventually(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  return withDeadline(
    new Promise<void>((resolve) => {
      const check = (): void => {
        if (condition()) resolve();
        else setTimeout(check, 20);
      };
      check();
    }),
    timeoutMs,
    what,
  );
}
