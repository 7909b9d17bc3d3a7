/**
 * Shared bits of the audit tests: where the fixture corpus lives, its expectations (inline
 * `expect: RULE-ID` comments on the finding's line, or a directory's expected.json for files
 * that cannot carry comments), and throwaway project directories.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');

/** `path:line:rule`, sorted: the shape findings and expectations are compared in. */
export type Key = string;

const INLINE = /\bexpect: ([A-Za-z0-9/, .-]+?)\s*(?:\*\/|-->)?$/;

export function filesUnder(dir: string): string[] {
  const found: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) found.push(...filesUnder(path));
    else found.push(path);
  }
  return found;
}

const posix = (path: string): string => path.split(sep).join('/');

/** Every expected finding under the fixture root, as sorted `path:line:rule` keys. */
export function expectedFindings(root = FIXTURES): Key[] {
  const keys: Key[] = [];
  for (const file of filesUnder(root)) {
    const path = posix(relative(root, file));
    if (file.endsWith('expected.json')) {
      const table = JSON.parse(readFileSync(file, 'utf8')) as Record<string, { line: number; ruleId: string }[]>;
      for (const [name, entries] of Object.entries(table)) {
        for (const entry of entries) keys.push(`${posix(relative(root, join(dirname(file), name)))}:${entry.line}:${entry.ruleId}`);
      }
      continue;
    }
    readFileSync(file, 'utf8')
      .split(/\r?\n/)
      .forEach((line, index) => {
        const match = INLINE.exec(line);
        for (const id of match?.[1]?.split(/[\s,]+/).filter((part) => part !== '') ?? []) keys.push(`${path}:${index + 1}:${id}`);
      });
  }
  return keys.sort();
}

/** A temporary directory with `files` written into it; `cleanup()` removes it. */
export function project(files: Record<string, string>): { dir: string; write: (path: string, text: string) => void; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'tlsmesh-audit-'));
  const write = (path: string, text: string): void => {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  };
  for (const [path, text] of Object.entries(files)) write(path, text);
  return { dir, write, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
