/**
 * One scan: find the files, run each analyzer on its kind, place and fingerprint what they
 * report, apply in-source suppressions and the baseline.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { TlsmeshError } from '../errors.js';
import { applyBaseline, fingerprint, type Baseline } from './baseline.js';
import { DEFAULT_EXCLUDES, discoverFiles, ExcludeMatcher, type FileKind, type SourceEntry } from './files.js';
import { analyzeEnv, analyzeJson, analyzeYaml } from './lang-config.js';
import { GoAnalyzer } from './lang-go.js';
import { analyzeTypeScript, loadTypeScript } from './lang-ts.js';
import { ruleById } from './rules.js';
import { findPrivateKeys } from './secrets.js';
import { lineComments, parseSuppressions, type SourceComment } from './suppressions.js';
import { LineIndex, normalizeCode } from './text.js';
import { SEVERITIES, type Finding, type RawFinding, type Severity, type SuppressedFinding } from './types.js';

export interface AuditOptions {
  /** Directory that paths in the report are relative to (default: the current directory). */
  root?: string;
  /** Files or directories to scan, relative to `root` (default: `root` itself). */
  paths?: readonly string[];
  /** Globs to skip (see files.ts for their meaning). */
  exclude?: readonly string[];
  /** Skip .git, node_modules, dist, vendor… (default true). */
  defaultExcludes?: boolean;
  /** Known findings to hide. */
  baseline?: Baseline;
  /** Larger files are skipped and listed in `skipped` (default 5 MiB). */
  maxFileBytes?: number;
}

export interface AuditReport {
  /** Absolute scan root. */
  readonly root: string;
  /** Findings to act on: not suppressed in the source, not in the baseline. Sorted by path, line, column. */
  readonly findings: readonly Finding[];
  /** Findings a suppression comment (with a reason) covers. */
  readonly suppressed: readonly SuppressedFinding[];
  /** Findings hidden because the baseline knows them. */
  readonly baselined: readonly Finding[];
  /** Baseline entries that matched nothing (fixed, or their code changed). */
  readonly staleBaselineEntries: number;
  readonly filesScanned: number;
  readonly skipped: readonly { readonly path: string; readonly reason: string }[];
  readonly durationMs: number;
}

const DEFAULT_MAX_FILE_BYTES = 5 * 1024 * 1024;

interface LoadedFile extends SourceEntry {
  readonly text: string;
}

/** Severity order for `--fail-on`: error > warning > note. */
export function atLeast(severity: Severity, threshold: Severity): boolean {
  return SEVERITIES.indexOf(severity) <= SEVERITIES.indexOf(threshold);
}

/** Whether a report should fail CI at `threshold` (`none` never fails). */
export function shouldFail(report: AuditReport, threshold: Severity | 'none'): boolean {
  return threshold !== 'none' && report.findings.some((finding) => atLeast(finding.severity, threshold));
}

async function load(entry: SourceEntry, maxBytes: number): Promise<LoadedFile | { skip: string }> {
  let data: Buffer;
  try {
    data = await readFile(entry.absolutePath);
  } catch (error) {
    throw new TlsmeshError('ERR_CONFIG', `cannot read ${entry.path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { cause: error });
  }
  if (data.length > maxBytes) return { skip: `larger than ${maxBytes} bytes` };
  if (data.subarray(0, 8000).includes(0)) return { skip: 'binary' };
  const text = data.toString('utf8');
  return { ...entry, text: text.charCodeAt(0) === 0xfeff ? text.slice(1) : text };
}

function compareFindings(a: Finding, b: Finding): number {
  if (a.path !== b.path) return a.path < b.path ? -1 : 1;
  return a.line - b.line || a.column - b.column || a.ruleId.localeCompare(b.ruleId);
}

/** Places, fingerprints and suppresses one file's raw findings. */
function settle(file: LoadedFile, raw: readonly RawFinding[], comments: readonly SourceComment[]): { findings: Finding[]; suppressed: SuppressedFinding[] } {
  const lines = new LineIndex(file.text);
  const { suppressions, problems } = parseSuppressions(comments, lines);
  const unique = new Map<string, RawFinding>();
  for (const finding of [...raw, ...problems]) unique.set(`${finding.ruleId}@${finding.start}`, finding);
  const ordered = [...unique.values()].sort((a, b) => a.start - b.start || a.ruleId.localeCompare(b.ruleId));
  const occurrences = new Map<string, number>();
  const used = new Set<string>();
  const findings: Finding[] = [];
  const suppressed: SuppressedFinding[] = [];
  const place = (item: RawFinding): Finding => {
    const rule = ruleById(item.ruleId);
    const start = lines.position(item.start);
    const end = lines.position(Math.max(item.end, item.start));
    const key = item.key ?? normalizeCode(file.text.slice(item.start, item.end));
    const counter = `${item.ruleId}\0${key}`;
    const occurrence = occurrences.get(counter) ?? 0;
    occurrences.set(counter, occurrence + 1);
    return {
      ruleId: item.ruleId,
      severity: rule.severity,
      path: file.path,
      line: start.line,
      column: start.column,
      endLine: end.line,
      endColumn: end.column,
      message: item.message,
      fix: rule.fix,
      snippet: item.snippet ?? normalizeCode(lines.lineText(start.line)),
      fingerprint: fingerprint(item.ruleId, file.path, key, occurrence),
    };
  };
  for (const item of ordered) {
    const finding = place(item);
    const cover = item.ruleId.startsWith('audit/') ? undefined : suppressions.find((entry) => entry.targetLine === finding.line && entry.ruleIds.includes(item.ruleId));
    if (cover) {
      used.add(`${cover.start}\0${item.ruleId}`);
      suppressed.push({ ...finding, suppression: { line: cover.line, reason: cover.reason } });
    } else {
      findings.push(finding);
    }
  }
  for (const entry of suppressions) {
    for (const ruleId of entry.ruleIds) {
      if (used.has(`${entry.start}\0${ruleId}`)) continue;
      findings.push(place({ ruleId: 'audit/unused-suppression', start: entry.start, end: entry.end, message: `this suppression of ${ruleId} matches no finding on line ${entry.targetLine}`, key: `unused:${ruleId}:${entry.reason}` }));
    }
  }
  return { findings, suppressed };
}

/**
 * Scans `paths` under `root` and returns what it found. Throws ERR_CONFIG for a missing path or
 * an unreadable file or directory.
 *
 * @example const report = await audit({ root: '.', exclude: ['test/**\/fixtures'] }); if (shouldFail(report, 'warning')) process.exitCode = 1;
 */
export async function audit(options: AuditOptions = {}): Promise<AuditReport> {
  const started = performance.now();
  const root = resolve(options.root ?? '.');
  const excludes = [...(options.defaultExcludes === false ? [] : DEFAULT_EXCLUDES), ...(options.exclude ?? [])];
  const entries = await discoverFiles(root, options.paths?.length ? options.paths : ['.'], new ExcludeMatcher(excludes));
  const maxBytes = options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;

  const files: LoadedFile[] = [];
  const skipped: { path: string; reason: string }[] = [];
  for (const entry of entries) {
    const loaded = await load(entry, maxBytes);
    if ('skip' in loaded) skipped.push({ path: entry.path, reason: loaded.skip });
    else files.push(loaded);
  }
  const byKind = (kind: FileKind): LoadedFile[] => files.filter((file) => file.kind === kind);

  const raw = new Map<string, { findings: RawFinding[]; comments: SourceComment[] }>();
  const add = (file: LoadedFile, findings: readonly RawFinding[], comments?: readonly SourceComment[]): void => {
    const slot = raw.get(file.absolutePath) ?? { findings: [], comments: [] };
    slot.findings.push(...findings);
    if (comments) slot.comments.push(...comments);
    raw.set(file.absolutePath, slot);
  };

  const tsFiles = byKind('ts');
  if (tsFiles.length > 0) {
    const ts = await loadTypeScript();
    const results = analyzeTypeScript(ts, tsFiles);
    for (const file of tsFiles) {
      const result = results.get(file.absolutePath);
      add(file, result?.findings ?? [], result?.comments ?? []);
    }
  }
  const goFiles = byKind('go');
  if (goFiles.length > 0) {
    const go = await GoAnalyzer.create();
    try {
      for (const file of goFiles) {
        const result = go.analyze(file.text);
        add(file, result.findings, result.comments);
      }
    } finally {
      go.dispose();
    }
  }
  for (const file of files) {
    if (file.kind === 'yaml') add(file, analyzeYaml(file.text));
    else if (file.kind === 'json') add(file, analyzeJson(file.text));
    else if (file.kind === 'env') add(file, analyzeEnv(file.text));
    add(file, findPrivateKeys(file.text));
    // Suppressions in configs always count (a malformed one is reported); in other text files
    // (Markdown, PEM…) only when there is a finding to suppress, so docs may quote the syntax.
    if (file.kind !== 'ts' && file.kind !== 'go' && (file.kind !== 'text' || (raw.get(file.absolutePath)?.findings.length ?? 0) > 0)) {
      add(file, [], lineComments(file.text, new LineIndex(file.text)));
    }
  }

  const all: Finding[] = [];
  const suppressed: SuppressedFinding[] = [];
  for (const file of files) {
    const slot = raw.get(file.absolutePath);
    if (!slot) continue;
    const settled = settle(file, slot.findings, slot.comments);
    all.push(...settled.findings);
    suppressed.push(...settled.suppressed);
  }
  const { fresh, known, stale } = applyBaseline(all.sort(compareFindings), options.baseline);
  return {
    root,
    findings: fresh,
    suppressed: suppressed.sort(compareFindings),
    baselined: known,
    staleBaselineEntries: stale,
    filesScanned: files.length,
    skipped,
    durationMs: Math.round(performance.now() - started),
  };
}
