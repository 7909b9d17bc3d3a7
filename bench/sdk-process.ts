/**
 * Starts bench/sdk-server.ts in a child process with an IPC channel, hands it the server identity
 * over that channel, and stops it. The parent owns the temp directory (the servers' log), so it is
 * removed even if the child has to be killed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchIdentity, FromServer, ServerKey, ServerStats, ToServer } from './sdk-shared.js';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const SERVER_SCRIPT = fileURLToPath(new URL('./sdk-server.ts', import.meta.url));
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;

export interface SdkServerProcess {
  ports: Record<ServerKey, number>;
  /** What every handler has counted so far. */
  stats(): Promise<ServerStats>;
  /** The last lines of the servers' log (for error messages). */
  logTail(lines: number): Promise<string>;
  /** Stops the child (IPC disconnect and SIGTERM, then SIGKILL) and removes the temp directory. Idempotent. */
  stop(): Promise<void>;
}

type Reply<T extends FromServer['type']> = Extract<FromServer, { type: T }>;
/** A message to the child before the channel numbers it (distributes over the union). */
type Request<T = ToServer> = T extends unknown ? Omit<T, 'id'> : never;

const exited = (child: ChildProcess): Promise<void> =>
  child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once('exit', () => resolve()));

export interface SdkServerOptions {
  server: BenchIdentity;
  clientSpiffeId: string;
  callerOnEveryRequest: boolean;
  /** Write a V8 CPU profile of the servers here (`node --cpu-prof`). */
  cpuProfileDir?: string | undefined;
}

export async function startSdkServerProcess(options: SdkServerOptions): Promise<SdkServerProcess> {
  const root = await mkdtemp(join(tmpdir(), 'tlsmesh-sdk-bench-'));
  const logFile = join(root, 'servers.log');
  const nodeArgs = ['--import', 'tsx'];
  if (options.cpuProfileDir !== undefined) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${options.cpuProfileDir}`);
  // stdout is piped to our stderr: our stdout carries only the JSON result lines.
  const child = spawn(process.execPath, [...nodeArgs, SERVER_SCRIPT, logFile], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  child.stdout?.pipe(process.stderr);

  const pending = new Map<number, { resolve: (reply: FromServer) => void; reject: (error: Error) => void }>();
  let nextId = 1;
  child.on('message', (message: FromServer) => {
    const waiter = pending.get(message.id);
    pending.delete(message.id);
    if (message.type === 'error') waiter?.reject(new Error(`the SDK server child failed: ${message.message}`));
    else waiter?.resolve(message);
  });
  child.once('exit', (code, signal) => {
    for (const waiter of pending.values()) waiter.reject(new Error(`the SDK server child exited (code ${code}, signal ${signal})`));
    pending.clear();
  });
  const ask = <T extends FromServer['type']>(message: Request, timeoutMs: number): Promise<Reply<T>> =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`the SDK server child did not answer "${message.type}" within ${timeoutMs} ms`));
      }, timeoutMs);
      pending.set(id, {
        resolve: (reply) => {
          clearTimeout(timer);
          resolve(reply as Reply<T>);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      const numbered: ToServer = { ...message, id };
      child.send(numbered);
    });

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        if (child.connected) child.disconnect();
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
        await exited(child);
        clearTimeout(timer);
      }
      await rm(root, { recursive: true, force: true });
    })();
    return stopped;
  };
  const logTail = async (lines: number): Promise<string> => {
    const text = await readFile(logFile, 'utf8').catch(() => '');
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  };

  try {
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    const { server, clientSpiffeId, callerOnEveryRequest } = options;
    const ready = await ask<'ready'>({ type: 'start', server, clientSpiffeId, callerOnEveryRequest }, START_TIMEOUT_MS);
    return {
      ports: ready.ports,
      stats: async () => (await ask<'stats'>({ type: 'stats' }, 10_000)).stats,
      logTail,
      stop,
    };
  } catch (error) {
    const log = await logTail(20);
    await stop();
    throw new Error(`${error instanceof Error ? error.message : String(error)}${log ? `\nlast server log lines:\n${log}` : ''}`, { cause: error });
  }
}
