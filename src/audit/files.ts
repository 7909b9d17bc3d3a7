/**
 * Which files a scan reads: a walk from each target, skipping symbolic links, the default
 * excluded directories and `--exclude` globs; each file classified by name for its analyzer.
 */
import { lstat, readdir, stat } from 'node:fs/promises';
import { basename, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { TlsmeshError } from '../errors.js';

export type FileKind = 'ts' | 'go' | 'yaml' | 'json' | 'env' | 'text';

export interface SourceEntry {
  readonly absolutePath: string;
  /** POSIX, relative to the scan root (absolute when the file lies outside it). */
  readonly path: string;
  readonly kind: FileKind;
}

/** Directories no scan enters unless `defaultExcludes: false`: dependencies, build output, VCS data. */
export const DEFAULT_EXCLUDES: readonly string[] = Object.freeze(['.git', '.hg', '.svn', 'node_modules', 'dist', 'vendor']);

/** Lock files: generated, large, never configuration. Only the private-key check reads them. */
const LOCK_FILES = new Set(['package-lock.json', 'npm-shrinkwrap.json', 'yarn.lock', 'pnpm-lock.yaml', 'go.sum', 'composer.lock', 'Cargo.lock', 'Gemfile.lock', 'poetry.lock']);

export function classify(name: string): FileKind {
  if (LOCK_FILES.has(name)) return 'text';
  if (name === '.env' || name.startsWith('.env.') || name.endsWith('.env')) return 'env';
  if (/\.d\.[cm]?ts$/.test(name)) return 'text';
  if (/\.(?:[cm]?[jt]s|[jt]sx)$/.test(name)) return 'ts';
  if (name.endsWith('.go')) return 'go';
  if (/\.ya?ml$/.test(name)) return 'yaml';
  if (name.endsWith('.json')) return 'json';
  return 'text';
}

/**
 * A glob as a regular expression over POSIX paths: `**` any number of segments, `*` and `?`
 * within one segment, `{a,b}` alternatives, `[abc]` classes.
 */
export function globToRegExp(glob: string): RegExp {
  let pattern = '';
  let depth = 0;
  for (let index = 0; index < glob.length; index++) {
    const char = glob[index]!;
    if (char === '*') {
      if (glob[index + 1] === '*') {
        const slashAfter = glob[index + 2] === '/';
        index += slashAfter ? 2 : 1;
        pattern += slashAfter ? '(?:.*/)?' : '.*';
      } else {
        pattern += '[^/]*';
      }
    } else if (char === '?') {
      pattern += '[^/]';
    } else if (char === '{') {
      depth++;
      pattern += '(?:';
    } else if (char === '}' && depth > 0) {
      depth--;
      pattern += ')';
    } else if (char === ',' && depth > 0) {
      pattern += '|';
    } else if (char === '[') {
      const close = glob.indexOf(']', index + 1);
      if (close === -1) {
        pattern += '\\[';
      } else {
        const body = glob.slice(index + 1, close).replace(/^!/, '^').replace(/\\/g, '\\\\');
        pattern += `[${body}]`;
        index = close;
      }
    } else {
      pattern += char.replace(/[.+^${}()|\\/]/g, '\\$&');
    }
  }
  return new RegExp(`^${pattern}$`);
}

/**
 * `--exclude` semantics: a glob without `/` matches a file or directory name at any depth
 * (`fixtures`, `*.pb.go`); one with `/` matches the path from the root (`test/**\/fixtures`).
 * An excluded directory is not entered.
 */
export class ExcludeMatcher {
  readonly #anyName: RegExp[] = [];
  readonly #fullPath: RegExp[] = [];

  constructor(globs: readonly string[]) {
    for (const raw of globs) {
      const glob = raw.replace(/\\/g, '/').replace(/^\.\//, '').replace(/\/+$/, '');
      if (glob === '') continue;
      if (glob.includes('/')) this.#fullPath.push(globToRegExp(glob.replace(/^\//, '')));
      else this.#anyName.push(globToRegExp(glob));
    }
  }

  matches(path: string): boolean {
    const name = path.slice(path.lastIndexOf('/') + 1);
    return this.#anyName.some((pattern) => pattern.test(name)) || this.#fullPath.some((pattern) => pattern.test(path));
  }
}

export const toPosix = (path: string): string => (sep === '/' ? path : path.split(sep).join('/'));

function displayPath(root: string, absolutePath: string): string {
  const rel = relative(root, absolutePath);
  if (rel === '') return basename(absolutePath);
  return rel.startsWith('..') || isAbsolute(rel) ? toPosix(absolutePath) : toPosix(rel);
}

/**
 * Every file under `targets` (files or directories, relative to `root`), sorted by path.
 * A missing target is an ERR_CONFIG; unreadable directories too (a scan that silently skipped
 * part of the tree would pass code nobody looked at).
 */
export async function discoverFiles(root: string, targets: readonly string[], exclude: ExcludeMatcher): Promise<SourceEntry[]> {
  const found = new Map<string, SourceEntry>();
  const visit = async (absolutePath: string, explicit: boolean): Promise<void> => {
    const path = displayPath(root, absolutePath);
    if (!explicit && exclude.matches(path)) return;
    let stats;
    try {
      // A link named on the command line is followed; links met while walking are not (no loops).
      stats = explicit ? await stat(absolutePath) : await lstat(absolutePath);
    } catch (error) {
      throw new TlsmeshError('ERR_CONFIG', `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { cause: error });
    }
    if (stats.isSymbolicLink()) return;
    if (stats.isDirectory()) {
      let names: string[];
      try {
        names = await readdir(absolutePath);
      } catch (error) {
        throw new TlsmeshError('ERR_CONFIG', `cannot list ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { cause: error });
      }
      names.sort();
      for (const name of names) await visit(join(absolutePath, name), false);
    } else if (stats.isFile()) {
      found.set(absolutePath, { absolutePath, path, kind: classify(basename(absolutePath)) });
    }
  };
  for (const target of targets) {
    const absolutePath = resolve(root, target);
    // An explicit target is scanned even if its own name matches an exclude (it was asked for).
    await visit(absolutePath, true);
  }
  return [...found.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
