/**
 * Telling the workload that its files changed: run a command, signal a process named by a pid
 * file, or call an HTTP endpoint. A hook runs after each write; a failing hook is reported (log,
 * health counters) and never rolls the files back: the next write runs it again.
 *
 * `exec` runs the operator's command line with `/bin/sh -c`, so it can be `nginx -s reload` or
 * `systemctl reload app` or a pipeline. The command comes from the agent's own flags or config
 * (the same trust as the agent binary itself), never from the CA or the files. It runs in its own
 * process group, is killed (the whole group) after its timeout, and gets the paths in its
 * environment (TLSMESH_CERT_DIR, TLSMESH_CERT_FILE, …) but never TLSMESH_TOKEN.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import { TlsmeshError } from '../errors.js';

export type ReloadHook =
  | { kind: 'exec'; command: string; timeoutMs?: number | undefined }
  | { kind: 'signal'; signal: NodeJS.Signals; pidFile: string }
  | { kind: 'http'; url: string; timeoutMs?: number | undefined };

/** What the hook is told about the write that ran it. */
export interface ReloadContext {
  dir: string;
  spiffeId: string;
  serial: string;
  notAfter: Date;
  /** Why the files changed: enrolled, renewed, bundle, crl, repaired. */
  reasons: readonly string[];
}

export interface ReloadOutcome {
  hook: string;
  ok: boolean;
  /** Exit code and output tail, signal and pid, or HTTP status; the error when not ok. */
  detail: string;
}

export const DEFAULT_EXEC_TIMEOUT_MS = 30_000;
export const DEFAULT_HTTP_TIMEOUT_MS = 10_000;
/** The largest pid Linux hands out (pid_max's ceiling). */
const MAX_PID = 4_194_304;
const OUTPUT_TAIL_BYTES = 2048;
/** Never handed to a reload command: the enrolment token, the CA passphrase. */
const SECRET_ENV = ['TLSMESH_TOKEN', 'TLSMESH_CA_PASSPHRASE'];

/** A signal name Node knows (HUP or SIGHUP), as NodeJS.Signals; throws ERR_CONFIG otherwise. */
export function parseSignal(value: string): NodeJS.Signals {
  const name = (value.toUpperCase().startsWith('SIG') ? value.toUpperCase() : `SIG${value.toUpperCase()}`) as NodeJS.Signals;
  if (!(name in osConstants.signals) || name === 'SIGKILL' || name === 'SIGSTOP') {
    throw new TlsmeshError('ERR_CONFIG', `reload signal must be a signal name such as HUP, USR1 or USR2 (got "${value}")`);
  }
  return name;
}

export const describeHook = (hook: ReloadHook): string =>
  hook.kind === 'exec' ? `exec ${JSON.stringify(hook.command)}` : hook.kind === 'signal' ? `signal ${hook.signal} to the pid in ${hook.pidFile}` : `POST ${hook.url}`;

/** Runs one hook; resolves with the outcome (a hook that fails is an outcome, not a rejection). */
export async function runReloadHook(hook: ReloadHook, context: ReloadContext): Promise<ReloadOutcome> {
  const name = describeHook(hook);
  try {
    const detail = hook.kind === 'exec' ? await runExec(hook.command, hook.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS, context) : hook.kind === 'signal' ? await sendSignal(hook.signal, hook.pidFile) : await callUrl(hook.url, hook.timeoutMs ?? DEFAULT_HTTP_TIMEOUT_MS, context);
    return { hook: name, ok: true, detail };
  } catch (error) {
    return { hook: name, ok: false, detail: (error as Error).message };
  }
}

function hookEnv(context: ReloadContext): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of SECRET_ENV) delete env[name];
  return {
    ...env,
    TLSMESH_CERT_DIR: context.dir,
    TLSMESH_CERT_FILE: join(context.dir, 'cert.pem'),
    TLSMESH_KEY_FILE: join(context.dir, 'key.pem'),
    TLSMESH_BUNDLE_FILE: join(context.dir, 'bundle.pem'),
    TLSMESH_CRL_FILE: join(context.dir, 'crl.pem'),
    TLSMESH_SPIFFE_ID: context.spiffeId,
    TLSMESH_SERIAL: context.serial,
    TLSMESH_NOT_AFTER: context.notAfter.toISOString(),
    TLSMESH_RELOAD_REASON: context.reasons.join(','),
  };
}

const tail = (text: string): string => (text.length > OUTPUT_TAIL_BYTES ? `…${text.slice(-OUTPUT_TAIL_BYTES)}` : text).trim();

function runExec(command: string, timeoutMs: number, context: ReloadContext): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', command], { env: hookEnv(context), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    const collect = (chunk: Buffer): void => {
      output = (output + chunk.toString('utf8')).slice(-2 * OUTPUT_TAIL_BYTES);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL'); // the shell and whatever it started
      } catch {
        child.kill('SIGKILL');
      }
    }, timeoutMs);
    timer.unref();
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot run /bin/sh: ${error.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const out = tail(output);
      const shown = out === '' ? '' : `; output: ${out}`;
      if (timedOut) reject(new Error(`timed out after ${timeoutMs} ms and was killed${shown}`));
      else if (code === 0) resolve(`exit 0${shown}`);
      else reject(new Error(`${signal !== null ? `killed by ${signal}` : `exit ${code}`}${shown}`));
    });
  });
}

/** Reads a pid file: one positive integer (a negative or 0 would signal a whole process group). */
export async function readPidFile(pidFile: string): Promise<number> {
  let text: string;
  try {
    text = await readFile(pidFile, 'utf8');
  } catch (error) {
    throw new Error(`cannot read the pid file ${pidFile} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, { cause: error });
  }
  const trimmed = text.trim();
  if (!/^\d{1,7}$/.test(trimmed)) throw new Error(`the pid file ${pidFile} does not hold a process id (got ${JSON.stringify(trimmed.slice(0, 20))})`);
  const pid = Number(trimmed);
  // pid 1 is init (systemd, or a container's entry point seen from another namespace): signalling it is never a reload.
  if (pid <= 1 || pid > MAX_PID) throw new Error(`the pid file ${pidFile} holds ${pid}, which is not a process to reload`);
  return pid;
}

async function sendSignal(signal: NodeJS.Signals, pidFile: string): Promise<string> {
  const pid = await readPidFile(pidFile);
  try {
    process.kill(pid, signal);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new Error(code === 'ESRCH' ? `no process ${pid} (a stale pid file ${pidFile}?)` : `cannot signal process ${pid}: ${code ?? (error as Error).message}`, { cause: error });
  }
  return `${signal} sent to process ${pid}`;
}

async function callUrl(url: string, timeoutMs: number, context: ReloadContext): Promise<string> {
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ dir: context.dir, spiffeId: context.spiffeId, serial: context.serial, notAfter: context.notAfter.toISOString(), reasons: context.reasons }),
      signal: AbortSignal.timeout(timeoutMs),
      redirect: 'manual',
    });
  } catch (error) {
    const cause = (error as Error).cause as Error | undefined;
    throw new Error((error as Error).name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : `request failed: ${cause?.message ?? (error as Error).message}`, { cause: error });
  }
  await response.body?.cancel();
  if (response.status < 200 || response.status > 299) throw new Error(`answered HTTP ${response.status}`);
  return `HTTP ${response.status}`;
}
