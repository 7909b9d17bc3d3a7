/** The shapes the auditor passes around: rules, what an analyzer reports, and what a scan returns. */

/** SARIF's levels, strongest first. `--fail-on` compares against this order. */
export type Severity = 'error' | 'warning' | 'note';

export const SEVERITIES: readonly Severity[] = ['error', 'warning', 'note'];

/** Which analyzer owns a rule. */
export type RuleLanguage = 'ts' | 'go' | 'config' | 'secret' | 'audit';

export interface AuditRule {
  /** Stable id, `area/what`: used in suppressions, baselines and SARIF. Never renamed. */
  readonly id: string;
  readonly severity: Severity;
  readonly language: RuleLanguage;
  /** One line: what the rule finds. */
  readonly title: string;
  /** Why it matters, and the cases the rule deliberately leaves alone. */
  readonly description: string;
  /** How to fix it. */
  readonly fix: string;
}

/**
 * What an analyzer reports, in offsets into the file's text (UTF-16 code units, as JavaScript
 * strings, TypeScript, web-tree-sitter and yaml all count). The scan turns these into lines and
 * columns, fingerprints them and applies suppressions.
 */
export interface RawFinding {
  readonly ruleId: string;
  readonly start: number;
  readonly end: number;
  readonly message: string;
  /**
   * The code the fingerprint is made from: short, without secrets, stable when unrelated lines
   * move. Defaults to the reported text with its whitespace collapsed.
   */
  readonly key?: string;
  /** What reports show instead of the source line, where the line may hold a secret. */
  readonly snippet?: string;
}

export interface Finding {
  readonly ruleId: string;
  readonly severity: Severity;
  /** POSIX path relative to the scan root. */
  readonly path: string;
  /** 1-based. */
  readonly line: number;
  /** 1-based, in UTF-16 code units (SARIF's default `columnKind`). */
  readonly column: number;
  readonly endLine: number;
  readonly endColumn: number;
  readonly message: string;
  readonly fix: string;
  /** The finding's line, trimmed and cut to 200 characters (private keys: the BEGIN line only). */
  readonly snippet: string;
  /** Survives line shifts: rule, path, normalised code and occurrence, hashed (see baseline.ts). */
  readonly fingerprint: string;
}

export interface SuppressedFinding extends Finding {
  readonly suppression: { readonly line: number; readonly reason: string };
}
