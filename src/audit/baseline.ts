/**
 * Baselines: the findings a team has accepted for now, so CI fails only on new ones.
 *
 * A finding's fingerprint is a hash of the rule id, the file path, the normalised code of the
 * finding (whitespace collapsed; for private keys a hash of the key body, never the key) and its
 * occurrence among identical findings in that file. Line numbers are left out, so adding or
 * removing lines elsewhere keeps it; changing the flagged code, or moving it to another file,
 * makes it a new finding.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { TlsmeshError } from '../errors.js';
import { writeFileAtomic } from '../fsutil/write-private.js';
import type { Finding } from './types.js';

/** SARIF `partialFingerprints` key, versioned so a change of recipe never matches old values. */
export const FINGERPRINT_KEY = 'tlsmeshAudit/v1';

export function fingerprint(ruleId: string, path: string, key: string, occurrence: number): string {
  return createHash('sha256').update(`v1\0${ruleId}\0${path}\0${key}\0${occurrence}`).digest('hex').slice(0, 32);
}

const BaselineSchema = z.strictObject({
  version: z.literal(1),
  tool: z.literal('tlsmesh audit'),
  findings: z.array(
    z.strictObject({
      fingerprint: z.string().regex(/^[0-9a-f]{32}$/),
      ruleId: z.string(),
      path: z.string(),
      line: z.number().int().positive(),
      message: z.string(),
    }),
  ),
});

export type Baseline = z.infer<typeof BaselineSchema>;

/** The baseline for `findings`, sorted by path, line and rule so that it diffs well in review. */
export function createBaseline(findings: readonly Finding[]): Baseline {
  const sorted = [...findings].sort((a, b) => (a.path === b.path ? a.line - b.line || a.ruleId.localeCompare(b.ruleId) : a.path < b.path ? -1 : 1));
  return {
    version: 1,
    tool: 'tlsmesh audit',
    findings: sorted.map(({ fingerprint: print, ruleId, path, line, message }) => ({ fingerprint: print, ruleId, path, line, message })),
  };
}

export function parseBaseline(text: string, source: string): Baseline {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new TlsmeshError('ERR_CONFIG', `baseline ${source} is not JSON: ${(error as Error).message}`, { cause: error });
  }
  const parsed = BaselineSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? issue.path.join('.') : '(top level)';
    throw new TlsmeshError('ERR_CONFIG', `baseline ${source} is not a tlsmesh audit baseline: ${where}: ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data;
}

export async function readBaseline(file: string): Promise<Baseline> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new TlsmeshError('ERR_CONFIG', `cannot read baseline ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { cause: error });
  }
  return parseBaseline(text, file);
}

export async function writeBaseline(file: string, findings: readonly Finding[]): Promise<Baseline> {
  const baseline = createBaseline(findings);
  try {
    await writeFileAtomic(file, `${JSON.stringify(baseline, null, 2)}\n`, 0o644);
  } catch (error) {
    throw new TlsmeshError('ERR_CONFIG', `cannot write baseline ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { cause: error });
  }
  return baseline;
}

/** Splits `findings` into new ones and those the baseline knows; `stale` counts baseline entries no longer found. */
export function applyBaseline(findings: readonly Finding[], baseline: Baseline | undefined): { fresh: Finding[]; known: Finding[]; stale: number } {
  if (!baseline) return { fresh: [...findings], known: [], stale: 0 };
  const accepted = new Set(baseline.findings.map((entry) => entry.fingerprint));
  const fresh: Finding[] = [];
  const known: Finding[] = [];
  const seen = new Set<string>();
  for (const finding of findings) {
    if (accepted.has(finding.fingerprint)) {
      known.push(finding);
      seen.add(finding.fingerprint);
    } else {
      fresh.push(finding);
    }
  }
  return { fresh, known, stale: [...accepted].filter((print) => !seen.has(print)).length };
}
