/**
 * Starts bench/ca-server.ts in a child process and stops it. The parent owns the temp directory
 * (data dir + log), so it is removed even if the child has to be killed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const SERVER_SCRIPT = fileURLToPath(new URL('./ca-server.ts', import.meta.url));
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;

export interface CaProcessOptions {
  /** postgres:// URL of an empty database; SQLite in the data dir when absent. */
  storeUrl?: string | undefined;
  /** Write a V8 CPU profile of the server here (`node --cpu-prof`). */
  cpuProfileDir?: string | undefined;
}

export interface CaProcess {
  url: string;
  trustDomain: string;
  dataDir: string;
  /**
   * CPU time the child has used so far, µs, every thread (user + system, from /proc; Linux
   * only, 10 ms resolution): the server's cost per certificate whoever the bottleneck was.
   * NaN where /proc is not available.
   */
  cpuMicros: () => number;
  /** The same for the child's main thread alone (the one that runs TLS, HTTP and the store). */
  mainThreadCpuMicros: () => number;
  /** Stops the child (SIGTERM, then SIGKILL) and removes the temp directory. Idempotent. */
  stop: () => Promise<void>;
}

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on every Linux Node supports). */
const USER_HZ = 100;

function procCpuMicros(pid: number | undefined, thread?: number): number {
  if (pid === undefined) return NaN;
  try {
    const stat = readFileSync(thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`, 'latin1');
    // Fields after the command name (which may hold spaces, so cut at its closing parenthesis):
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after ") ".
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1_000_000) / USER_HZ;
  } catch {
    return NaN;
  }
}

const exited = (child: ChildProcess): Promise<void> =>
  child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once('exit', () => resolve()));

async function tailOf(path: string, lines: number): Promise<string> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

export async function startCaProcess(options: CaProcessOptions = {}): Promise<CaProcess> {
  const root = await mkdtemp(join(tmpdir(), 'tlsmesh-bench-'));
  const dataDir = join(root, 'data');
  const logFile = join(root, 'ca.log');
  const nodeArgs = ['--import', 'tsx'];
  if (options.cpuProfileDir !== undefined) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${options.cpuProfileDir}`);
  const env: NodeJS.ProcessEnv = { ...process.env, TLSMESH_CA_PASSPHRASE: randomBytes(24).toString('base64url') };
  if (options.storeUrl !== undefined) env['TLSMESH_CA_STORE'] = options.storeUrl;
  else delete env['TLSMESH_CA_STORE'];
  const child = spawn(process.execPath, [...nodeArgs, SERVER_SCRIPT, dataDir, logFile], { cwd: REPO_ROOT, env, stdio: ['pipe', 'pipe', 'inherit'] });

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
        await exited(child);
        clearTimeout(timer);
      }
      await rm(root, { recursive: true, force: true });
    })();
    return stopped;
  };

  try {
    const ready = await new Promise<{ url: string; trustDomain: string }>((resolve, reject) => {
      let buffered = '';
      const timer = setTimeout(() => reject(new Error(`the CA child did not start within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (chunk: string) => {
        buffered += chunk;
        const end = buffered.indexOf('\n');
        if (end < 0) return;
        clearTimeout(timer);
        try {
          resolve(JSON.parse(buffered.slice(0, end)) as { url: string; trustDomain: string });
        } catch (error) {
          reject(new Error(`the CA child printed something other than its URL: ${buffered.slice(0, end)}`, { cause: error }));
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`the CA child exited before serving (code ${code}, signal ${signal})`));
      });
      child.once('error', reject);
    });
    return { ...ready, dataDir, cpuMicros: () => procCpuMicros(child.pid), mainThreadCpuMicros: () => procCpuMicros(child.pid, child.pid), stop };
  } catch (error) {
    const log = await tailOf(logFile, 20);
    await stop();
    throw new Error(`${error instanceof Error ? error.message : String(error)}${log ? `\nlast CA log lines:\n${log}` : ''}`, { cause: error });
  }
}
