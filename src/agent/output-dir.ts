/**
 * The agent's output directory, written the way Kubernetes' atomic writer does it, so that a
 * reader never pairs a new cert.pem with an old key.pem and a crash leaves a complete old or a
 * complete new set:
 *
 *   <out>/.tlsmesh-<time>-<rand>/{cert,key,bundle,crl}.pem   one directory per version
 *   <out>/..data -> .tlsmesh-<time>-<rand>                    the version in use
 *   <out>/cert.pem -> ..data/cert.pem                         stable names (also key, bundle, crl)
 *
 * A write fills a fresh version directory (each file created with its final mode, written,
 * fsynced; then the directory fsynced), then points `..data` at it by renaming a temporary
 * symlink over it — one rename(2), the commit point — and fsyncs `<out>`. Before the commit the
 * old set is untouched; after it the new one is complete. Older versions are removed after the
 * commit. Anything named `.tlsmesh-*` that `..data` does not point to is a leftover (of a crash,
 * or of a write that failed) and is removed too; nothing else in `<out>` is ever touched.
 *
 * The file system calls go through `DirectoryFs` so tests can make any step fail.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, mkdir, open, readdir, readFile, readlink, rename, rm, stat, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { TlsmeshError } from '../errors.js';
import type { CredentialSet, FileRead, FoundFiles } from './credential-set.js';

/** The stable names, in the order they are written into a version directory. */
export const CREDENTIAL_FILES = { key: 'key.pem', cert: 'cert.pem', bundle: 'bundle.pem', crl: 'crl.pem' } as const;
export type CredentialFile = keyof typeof CREDENTIAL_FILES;

/** The symlink naming the version in use (the name Kubernetes and `fileIdentity` know). */
export const DATA_LINK = '..data';
const PREFIX = '.tlsmesh-';

/** Every file system call a write makes. */
export interface DirectoryFs {
  mkdir: (path: string, mode: number) => Promise<void>;
  /** Creates (exclusively) a file with `mode`, writes it and fsyncs it. */
  writeFile: (path: string, content: string, mode: number) => Promise<void>;
  /** fsync(2) on a directory, so that the entries just made in it survive a crash. */
  syncDir: (path: string) => Promise<void>;
  symlink: (target: string, path: string) => Promise<void>;
  rename: (from: string, to: string) => Promise<void>;
  remove: (path: string) => Promise<void>;
  readdir: (path: string) => Promise<string[]>;
  /** The link's target, or null when `path` is not a symlink (or does not exist). */
  readlink: (path: string) => Promise<string | null>;
}

export const NODE_FS: DirectoryFs = {
  mkdir: async (path, mode) => {
    await mkdir(path, { mode });
  },
  writeFile: async (path, content, mode) => {
    const handle = await open(path, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY | constants.O_NOFOLLOW, mode);
    try {
      await handle.writeFile(content);
      await handle.chmod(mode); // the umask narrowed (or a default ACL widened) the create mode
      await handle.sync();
    } finally {
      await handle.close();
    }
  },
  syncDir: async (path) => {
    const handle = await open(path, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  },
  symlink: (target, path) => symlink(target, path),
  rename: (from, to) => rename(from, to),
  remove: (path) => rm(path, { recursive: true, force: true }),
  readdir: (path) => readdir(path),
  readlink: async (path) => {
    try {
      return await readlink(path);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EINVAL' || code === 'ENOENT') return null;
      throw error;
    }
  },
};

const suffix = (): string => randomBytes(4).toString('hex');
const stamp = (now: number): string => new Date(now).toISOString().replace(/[-:.]/g, '');

function writeError(dir: string, step: string, cause: unknown): TlsmeshError {
  const code = (cause as NodeJS.ErrnoException).code;
  const hint = code === 'ENOSPC' ? ' (disk full)' : code === 'EROFS' ? ' (read-only file system)' : code === 'EACCES' || code === 'EPERM' ? ' (permission denied)' : '';
  return new TlsmeshError('ERR_IDENTITY_FILE', `cannot write the credentials into ${dir}: ${step} failed: ${code ?? (cause as Error).message}${hint}; the previous files are unchanged`, { cause });
}

export interface WriteOptions {
  /** key.pem's mode (default 0600; 0640 to share it with a group). */
  keyMode?: number;
  /** For the version directory's name. */
  now?: number;
  fs?: DirectoryFs;
}

/**
 * Makes `<out>` (0700) when it does not exist, checks by writing that it can hold files, and
 * removes leftovers of an interrupted write. Throws ERR_IDENTITY_FILE naming the directory.
 */
export async function prepareOutputDir(dir: string, fs: DirectoryFs = NODE_FS): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const info = await stat(dir);
    if (!info.isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
  } catch (cause) {
    throw writeError(dir, 'creating the directory', cause);
  }
  // access(W_OK) says yes to root on a read-only mount: only a write tells.
  const probe = join(dir, `${PREFIX}probe-${suffix()}`);
  try {
    await fs.writeFile(probe, '', 0o600);
  } catch (cause) {
    throw writeError(dir, 'a test write', cause);
  } finally {
    await fs.remove(probe).catch(() => undefined);
  }
  await removeLeftovers(dir, fs);
}

/** Removes every `.tlsmesh-*` entry that `..data` does not point to; returns what it could not remove. */
export async function removeLeftovers(dir: string, fs: DirectoryFs = NODE_FS): Promise<string[]> {
  const current = await fs.readlink(join(dir, DATA_LINK));
  const failed: string[] = [];
  for (const name of await fs.readdir(dir)) {
    if (!name.startsWith(PREFIX) || name === current) continue;
    try {
      await fs.remove(join(dir, name));
    } catch {
      failed.push(name);
    }
  }
  return failed;
}

/**
 * Writes `set` as a new version and makes it current (see the file comment), making `<out>` (0700)
 * if needed. Returns the version
 * directory's name. On failure before the commit, the previous set is intact and ERR_IDENTITY_FILE
 * is thrown; a failure after it (fsync of `<out>`, the stable links) is thrown too, and the next
 * write, which the agent retries, repeats every step.
 */
export async function writeCredentialSet(dir: string, set: CredentialSet, options: WriteOptions = {}): Promise<string> {
  const fs = options.fs ?? NODE_FS;
  const keyMode = options.keyMode ?? 0o600;
  const version = `${PREFIX}${stamp(options.now ?? Date.now())}-${suffix()}`;
  const versionPath = join(dir, version);
  const contents: [CredentialFile, string | undefined][] = [['key', set.keyPem], ['cert', set.certPem], ['bundle', set.bundlePem], ['crl', set.crlPem]];
  const present = contents.filter((entry): entry is [CredentialFile, string] => entry[1] !== undefined);
  let step = 'creating the version directory';
  const temporaryLink = join(dir, `${PREFIX}link-${suffix()}`);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 }); // a no-op once prepareOutputDir has run
    await fs.mkdir(versionPath, 0o755);
    for (const [file, content] of present) {
      step = `writing ${CREDENTIAL_FILES[file]}`;
      await fs.writeFile(join(versionPath, CREDENTIAL_FILES[file]), content, file === 'key' ? keyMode : 0o644);
    }
    step = 'syncing the version directory';
    await fs.syncDir(versionPath);
    step = `linking ${DATA_LINK}`;
    await fs.symlink(version, temporaryLink);
    await fs.rename(temporaryLink, join(dir, DATA_LINK)); // the commit point
  } catch (cause) {
    await fs.remove(temporaryLink).catch(() => undefined);
    await fs.remove(versionPath).catch(() => undefined);
    throw writeError(dir, step, cause);
  }
  try {
    step = `syncing ${dir}`;
    await fs.syncDir(dir);
    for (const [file, name] of Object.entries(CREDENTIAL_FILES) as [CredentialFile, string][]) {
      step = `linking ${name}`;
      const wanted = `${DATA_LINK}/${name}`;
      const path = join(dir, name);
      if (present.some(([entry]) => entry === file)) {
        if ((await fs.readlink(path)) === wanted) continue;
        // A regular file there (written by `tlsmesh cert request`, or put there by hand) is
        // replaced by the link in one rename too.
        const temporary = join(dir, `${PREFIX}link-${suffix()}`);
        await fs.symlink(wanted, temporary);
        await fs.rename(temporary, path);
      } else if ((await fs.readlink(path)) === wanted) {
        await fs.remove(path); // no CRL in this version: no dangling link
      }
    }
    step = `syncing ${dir}`;
    await fs.syncDir(dir);
  } catch (cause) {
    throw new TlsmeshError('ERR_IDENTITY_FILE', `the new credentials in ${dir} are in place, but ${step} failed: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`, { cause });
  }
  await removeLeftovers(dir, fs).catch(() => undefined); // best effort: retried after every write
  return version;
}

const MAX_FILE_BYTES = 64 * 1024 * 1024;

async function readOne(path: string): Promise<FileRead> {
  try {
    const info = await stat(path);
    if (!info.isFile()) return { error: 'not a regular file' };
    if (info.size > MAX_FILE_BYTES) return { error: `larger than ${MAX_FILE_BYTES} bytes` };
    return { text: await readFile(path, 'utf8') };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return { error: code === 'ENOENT' ? 'missing' : `cannot be read (${code ?? (error as Error).message})` };
  }
}

/**
 * Reads the set through its stable names (what every reader sees), and notes what is not the
 * agent's layout: a name that is not the `..data` link, or a key readable beyond `keyMode`.
 */
export async function readCredentialFiles(dir: string, keyMode = 0o600): Promise<FoundFiles> {
  const [cert, key, bundle, crl] = await Promise.all([
    readOne(join(dir, CREDENTIAL_FILES.cert)),
    readOne(join(dir, CREDENTIAL_FILES.key)),
    readOne(join(dir, CREDENTIAL_FILES.bundle)),
    readOne(join(dir, CREDENTIAL_FILES.crl)),
  ]);
  const layout: string[] = [];
  for (const name of [CREDENTIAL_FILES.cert, CREDENTIAL_FILES.key, CREDENTIAL_FILES.bundle]) {
    const info = await lstat(join(dir, name)).catch(() => null);
    if (info !== null && !info.isSymbolicLink()) layout.push(`${name} is a regular file, not a link into ${DATA_LINK} (an older layout)`);
  }
  if ('text' in key) {
    const mode = (await stat(join(dir, CREDENTIAL_FILES.key))).mode & 0o777;
    if ((mode & ~keyMode) !== 0) layout.push(`key.pem has mode 0${mode.toString(8)}, wider than 0${keyMode.toString(8)}`);
  }
  return { cert, key, bundle, crl, layout };
}
