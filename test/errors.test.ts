/**
 * The error registry (src/errors.ts) is the closed set of codes tlsmesh reports. This checks the
 * registry itself, that the source throws only registered codes and uses every one (no dead
 * codes), and that docs/errors.md (generated) documents each of them.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_REGISTRY, isTlsmeshError, TlsmeshError, type ErrorCode } from '../src/errors.js';
import { renderErrorsDoc } from '../scripts/errors-doc.js';
import { REPO_ROOT } from './helpers/cli.js';

const CODES = Object.keys(ERROR_REGISTRY) as ErrorCode[];
const SRC = join(REPO_ROOT, 'src');
const ERRORS_FILE = join(SRC, 'errors.ts');
const DOCS = join(REPO_ROOT, 'docs', 'errors.md');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return /\.(ts|mts|cts|js|mjs)$/.test(entry.name) ? [path] : [];
  });
}

const sources = sourceFiles(SRC).map((path) => ({ path: relative(REPO_ROOT, path), text: readFileSync(path, 'utf8') }));
const sourcesBesidesRegistry = sources.filter((file) => file.path !== relative(REPO_ROOT, ERRORS_FILE));

describe('error registry', () => {
  it('has codes, and the source tree was read', () => {
    expect(CODES.length).toBeGreaterThan(10);
    expect(sourcesBesidesRegistry.length).toBeGreaterThan(10);
  });

  it('every code is well-formed, with a 4xx/5xx status and a one-sentence summary', () => {
    for (const code of CODES) {
      const entry: { status: number; summary: string } = ERROR_REGISTRY[code];
      expect(code).toMatch(/^ERR_[A-Z0-9_]+$/);
      expect(Number.isInteger(entry.status), code).toBe(true);
      expect(entry.status, code).toBeGreaterThanOrEqual(400);
      expect(entry.status, code).toBeLessThan(600);
      expect(entry.summary.trim().length, code).toBeGreaterThan(0);
      expect(entry.summary, code).toMatch(/\.$/);
    }
  });

  it('every code is unique (the registry source declares none twice)', () => {
    expect(new Set(CODES).size).toBe(CODES.length);
    // An object literal silently keeps the last of two equal keys: count the declarations.
    const declared = [...readFileSync(ERRORS_FILE, 'utf8').matchAll(/^\s*(ERR_[A-Z0-9_]+)\s*:/gm)].map((match) => match[1]!);
    expect(declared.length).toBe(CODES.length);
    expect(new Set(declared).size).toBe(declared.length);
  });

  it('new TlsmeshError(code, message) carries the code, its status and the cause', () => {
    const cause = new Error('inner');
    for (const code of CODES) {
      const error = new TlsmeshError(code, 'a message', { cause });
      expect(error).toBeInstanceOf(Error);
      expect(error.code).toBe(code);
      expect(error.status).toBe(ERROR_REGISTRY[code].status);
      expect(error.message).toBe('a message');
      expect(error.cause).toBe(cause);
      expect(error.name).toBe('TlsmeshError');
      expect(isTlsmeshError(error, code)).toBe(true);
    }
    expect(isTlsmeshError(new TlsmeshError('ERR_CONFIG', 'x'), 'ERR_STORE')).toBe(false);
    expect(isTlsmeshError(Object.assign(new Error('x'), { code: 'ERR_CONFIG' }))).toBe(false);
  });

  it('every code thrown with new TlsmeshError(…) anywhere under src/ is in the registry', () => {
    const thrown = new Map<string, string>();
    for (const file of sources) {
      for (const match of file.text.matchAll(/new\s+TlsmeshError\(\s*['"`](ERR_[A-Z0-9_]+)['"`]/g)) thrown.set(match[1]!, file.path);
    }
    expect(thrown.size).toBeGreaterThan(10); // the pattern does find the throws
    for (const [code, path] of thrown) expect(CODES, `${code} thrown in ${path}`).toContain(code);
  });

  it('every registry code is used somewhere under src/ besides the registry (no dead codes)', () => {
    const unused = CODES.filter((code) => !sourcesBesidesRegistry.some((file) => new RegExp(`['"\`]${code}['"\`]`).test(file.text)));
    expect(unused).toEqual([]);
  });

  it('docs/errors.md is exactly what scripts/errors-doc.ts renders from the registry', () => {
    const doc = readFileSync(DOCS, 'utf8');
    expect(doc, 'run `npx tsx scripts/errors-doc.ts`').toBe(renderErrorsDoc());
    const missing = CODES.filter((code) => !new RegExp(`\\b${code}\\b`).test(doc));
    expect(missing).toEqual([]);
  });
});
