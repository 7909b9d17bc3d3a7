/**
 * Third-party servers for the probe tests: availability (skip locally with a reason, fail under
 * CI=true, as test/helpers/go.ts does) and child processes that announce their port.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect, createServer } from 'node:net';

export type ToolStatus = { ok: true } | { ok: false; reason: string };

/** `problem()` names what is missing, or undefined. In CI a missing tool is an error, not a skip. */
export function toolStatus(what: string, problem: () => string | undefined): ToolStatus {
  const reason = problem();
  if (reason === undefined) return { ok: true };
  if (process.env['CI'] === 'true') throw new Error(`${what} probe tests cannot run in CI: ${reason}`);
  console.warn(`${what} probe tests skipped: ${reason}`);
  return { ok: false, reason };
}

export const runs = (command: string, args: string[]): boolean => spawnSync(command, args, { stdio: 'ignore' }).status === 0;

export const NGINX = ['/usr/sbin/nginx', '/usr/local/sbin/nginx'].find((path) => existsSync(path)) ?? 'nginx';

export interface ServerProcess {
  port: number;
  output(): string;
  close(): Promise<void>;
}

/**
 * Starts `command` and resolves once `ready` (with the port as group 1, or `port` given) appears
 * in its output, or — with `probePort` — once the port accepts TCP connections. Rejects with the
 * output if the process exits first or nothing happens within 15 s.
 */
export function startServerProcess(
  command: string,
  args: string[],
  ready: { pattern: RegExp } | { port: number },
  options: { cwd?: string } = {},
): Promise<ServerProcess> {
  const child: ChildProcess = spawn(command, args, { cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const close = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  return new Promise((resolve, reject) => {
    let done = false;
    const succeed = (port: number): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearInterval(poller);
      resolve({ port, output: () => text, close });
    };
    const failWith = (why: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearInterval(poller);
      void close().then(() => reject(new Error(`${command} ${why}:\n${text}`)));
    };
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('utf8');
      if ('pattern' in ready) {
        const match = ready.pattern.exec(text);
        if (match) succeed(Number(match[1]));
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('error', (error) => failWith(`could not start: ${error.message}`));
    child.once('exit', (code) => failWith(`exited (${code}) before it was ready`));
    const timer = setTimeout(() => failWith('was not ready within 15 s'), 15_000);
    const poller = setInterval(() => {
      if ('port' in ready) void portOpen(ready.port).then((open) => open && succeed(ready.port));
    }, 50);
  });
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** A port that was free a moment ago (for servers that cannot listen on port 0 and report it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
