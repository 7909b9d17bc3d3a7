/**
 * An identity from the files the agent (or anything else) writes: cert.pem, key.pem, bundle.pem
 * and, when present, crl.pem. The directory is watched rather than the files, because an atomic
 * write renames a new inode over the old name (and Kubernetes swaps a `..data` symlink), which a
 * per-file watch would stop seeing. A set that does not load (a file cut short, a key that does
 * not match the certificate yet) is ignored and the current identity kept; a problem that is still
 * there after `settleMs` is reported, so the normal key-then-certificate window of a rotation
 * does not raise false alarms.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { TlsmeshError } from '../../errors.js';
import { Identity, identityProblem, type IdentityMaterial, type IdentityPart } from '../identity.js';
import { IdentityPublisher, type IdentitySource } from '../identity-source.js';
import { errorReporter, type ReportingOptions } from '../report.js';

/** A directory holding cert.pem, key.pem, bundle.pem and optionally crl.pem, or explicit paths. */
export type IdentityFiles = { dir: string } | { certPath: string; keyPath: string; bundlePath: string; crlPath?: string | undefined };

export interface FileIdentityOptions extends ReportingOptions {
  /** Quiet time after the last change before reading (default 100 ms). */
  debounceMs?: number;
  /** How long a problem may last before it is reported (default 1000 ms). */
  settleMs?: number;
  /** Re-read this often too, for file systems where watching misses changes (default 30 s; 0: never). */
  pollIntervalMs?: number;
}

export type ReloadResult = 'updated' | 'unchanged' | 'failed';

export interface FileIdentitySource extends IdentitySource {
  /** Reads the files now (as a change would); resolves with what happened. */
  reload(): Promise<ReloadResult>;
}

interface Paths {
  cert: string;
  key: string;
  bundle: string;
  crl: string | undefined;
  /** In directory mode crl.pem is optional; an explicit crlPath must exist. */
  crlOptional: boolean;
}

function pathsOf(files: IdentityFiles): Paths {
  if ('dir' in files) {
    if (typeof files.dir !== 'string' || files.dir === '') throw new TypeError('fileIdentity: dir must be a non-empty string');
    const dir = files.dir;
    return { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem'), bundle: join(dir, 'bundle.pem'), crl: join(dir, 'crl.pem'), crlOptional: true };
  }
  for (const field of ['certPath', 'keyPath', 'bundlePath'] as const) {
    if (typeof files[field] !== 'string' || files[field] === '') throw new TypeError(`fileIdentity: ${field} must be a non-empty string`);
  }
  return { cert: files.certPath, key: files.keyPath, bundle: files.bundlePath, crl: files.crlPath, crlOptional: false };
}

async function readRequired(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (cause) {
    throw unreadable(path, cause);
  }
}

const unreadable = (path: string, cause: unknown): TlsmeshError =>
  new TlsmeshError('ERR_IDENTITY_FILE', `cannot read ${path}: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`, { cause });

/** Reads and validates the whole set; throws a coded error naming the file at fault. */
async function loadIdentity(paths: Paths): Promise<Identity> {
  const [certPem, keyPem, bundlePem] = await Promise.all([readRequired(paths.cert), readRequired(paths.key), readRequired(paths.bundle)]);
  let crlPem: string | undefined;
  if (paths.crl !== undefined) {
    try {
      crlPem = await readFile(paths.crl, 'utf8');
    } catch (cause) {
      if (!paths.crlOptional || (cause as NodeJS.ErrnoException).code !== 'ENOENT') throw unreadable(paths.crl, cause);
    }
  }
  const material: IdentityMaterial = { certPem, keyPem, bundlePem, crlPem };
  const problem = identityProblem(material);
  if (problem) {
    const file: Record<IdentityPart, string> = { cert: paths.cert, key: paths.key, bundle: paths.bundle, crl: paths.crl ?? 'crl' };
    throw new TlsmeshError('ERR_IDENTITY_INVALID', `${file[problem.part]}: ${problem.message}`);
  }
  return new Identity(material);
}

/**
 * Loads the files (throwing ERR_IDENTITY_FILE or ERR_IDENTITY_INVALID naming the file if the first
 * load fails), then watches their directory.
 *
 * @example
 * const source = await fileIdentity({ dir: '/var/run/tlsmesh' }, { onError: (error) => alert(error) });
 */
export async function fileIdentity(files: IdentityFiles, options: FileIdentityOptions = {}): Promise<FileIdentitySource> {
  const paths = pathsOf(files);
  const debounceMs = options.debounceMs ?? 100;
  const settleMs = options.settleMs ?? 1000;
  const pollIntervalMs = options.pollIntervalMs ?? 30_000;
  const report = errorReporter(options, 'file identity');
  const publisher = new IdentityPublisher(await loadIdentity(paths), report);

  let closed = false;
  let debounce: NodeJS.Timeout | undefined;
  let pendingProblem: { error: Error; timer: NodeJS.Timeout } | undefined;
  let running: Promise<ReloadResult> | undefined;
  let again = false;

  const clearProblem = (): void => {
    if (pendingProblem) clearTimeout(pendingProblem.timer);
    pendingProblem = undefined;
  };
  const noteProblem = (error: Error): void => {
    if (pendingProblem) {
      pendingProblem.error = error; // the latest word on what is wrong; the clock keeps running
      return;
    }
    const timer = setTimeout(() => {
      const problem = pendingProblem;
      pendingProblem = undefined;
      if (problem && !closed) report(problem.error);
    }, settleMs);
    timer.unref();
    pendingProblem = { error, timer };
  };

  const readOnce = async (): Promise<ReloadResult> => {
    let identity: Identity;
    try {
      identity = await loadIdentity(paths);
    } catch (error) {
      noteProblem(error as Error);
      return 'failed';
    }
    if (closed || identity.sameMaterialAs(publisher.current())) {
      clearProblem();
      return 'unchanged';
    }
    const rollback = identity.crlRollbackFrom(publisher.current());
    if (rollback !== null) {
      noteProblem(new TlsmeshError('ERR_IDENTITY_INVALID', `${paths.crl ?? 'crl'}: ${rollback}; keeping the newer CRL`));
      return 'failed';
    }
    clearProblem();
    publisher.publish(identity);
    return 'updated';
  };

  // One read at a time; a change seen during a read causes one more read after it.
  const reload = (): Promise<ReloadResult> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      let result = await readOnce();
      while (again && !closed) {
        again = false;
        const next = await readOnce();
        if (next !== 'unchanged' || result === 'failed') result = next;
      }
      return result;
    })().finally(() => {
      running = undefined;
    });
    return running;
  };

  const scheduleReload = (): void => {
    if (closed) return;
    clearTimeout(debounce);
    debounce = setTimeout(() => void reload(), debounceMs);
    debounce.unref();
  };

  const directories = new Set([paths.cert, paths.key, paths.bundle, ...(paths.crl ? [paths.crl] : [])].map((path) => dirname(path)));
  const watchers: FSWatcher[] = [...directories].map((dir) => {
    // Every event in the directory counts: a rename of a temp file or of a `..data` symlink is the change.
    const watcher = watch(dir, { persistent: false }, scheduleReload);
    watcher.on('error', (error) => report(new TlsmeshError('ERR_IDENTITY_FILE', `watching ${dir} failed: ${error.message}`, { cause: error })));
    return watcher;
  });
  const poll = pollIntervalMs > 0 ? setInterval(scheduleReload, pollIntervalMs) : undefined;
  poll?.unref();

  return {
    current: () => publisher.current(),
    subscribe: (listener) => publisher.subscribe(listener),
    reload,
    close() {
      closed = true;
      clearTimeout(debounce);
      clearInterval(poll);
      clearProblem();
      for (const watcher of watchers) watcher.close();
      publisher.clear();
    },
  };
}
