/**
 * In-source suppressions: a comment `tlsmesh-audit-ignore RULE[, RULE…]: reason` at the end of
 * the finding's line, or on its own line above it (comment-only lines in between are skipped).
 * The reason is required: without one the comment suppresses nothing and is reported itself. An
 * unknown rule id is reported too, and so is a suppression that no longer matches a finding.
 */
import { isRuleId } from './rules.js';
import type { LineIndex } from './text.js';
import type { RawFinding } from './types.js';

/** A comment as its analyzer found it: offsets of the whole comment, and its text with the markers. */
export interface SourceComment {
  readonly start: number;
  readonly end: number;
  readonly text: string;
}

export interface Suppression {
  /** Line of the comment (1-based). */
  readonly line: number;
  /** Line whose findings it covers. */
  readonly targetLine: number;
  readonly ruleIds: readonly string[];
  readonly reason: string;
  readonly start: number;
  readonly end: number;
}

const DIRECTIVE = 'tlsmesh-audit-ignore';
const COMMENT_ONLY_LINE = /^\s*(?:$|\/\/|\/\*|\*|#|<!--|;)/;

/** The comment's words without its markers: `// x`, `/* x *\/`, `# x`, `<!-- x -->`. */
function commentBody(text: string): string {
  return text
    .replace(/^\s*(?:\/\/+|\/\*+|#+|<!--|;+|--)/, '')
    .replace(/(?:\*\/|-->)\s*$/, '')
    .replace(/^\s*\*\s?/gm, '')
    .trim();
}

/**
 * Comments in files without a parser of their own (YAML, .env, any text): a `#`, `//`, `;`,
 * `--` or `<!--` comment that starts the line or follows whitespace and holds the directive.
 */
export function lineComments(text: string, lines: LineIndex): SourceComment[] {
  const comments: SourceComment[] = [];
  if (!text.includes(DIRECTIVE)) return comments;
  const pattern = /(?:^|\s)((?:#|\/\/|;|--|<!--)\s*tlsmesh-audit-ignore\b.*)$/;
  for (let line = 1; line <= lines.lineCount; line++) {
    const content = lines.lineText(line);
    const match = pattern.exec(content);
    if (!match) continue;
    const start = lines.lineStart(line) + match.index + match[0].length - match[1]!.length;
    comments.push({ start, end: start + match[1]!.length, text: match[1]! });
  }
  return comments;
}

/** Parses the directives among `comments`; malformed ones come back as findings. */
export function parseSuppressions(comments: readonly SourceComment[], lines: LineIndex): { suppressions: Suppression[]; problems: RawFinding[] } {
  const suppressions: Suppression[] = [];
  const problems: RawFinding[] = [];
  for (const comment of comments) {
    const body = commentBody(comment.text);
    if (!body.startsWith(DIRECTIVE)) continue;
    const rest = body.slice(DIRECTIVE.length);
    if (rest !== '' && !/^[\s:]/.test(rest)) continue; // tlsmesh-audit-ignored, …
    const colon = rest.indexOf(':');
    const idsText = colon === -1 ? rest : rest.slice(0, colon);
    const reason = colon === -1 ? '' : rest.slice(colon + 1).replace(/\s+/g, ' ').trim();
    const ruleIds = idsText.split(/[\s,]+/).filter((id) => id !== '');
    const where = { start: comment.start, end: comment.end, key: normalizeDirective(body) };
    if (ruleIds.length === 0) {
      problems.push({ ruleId: 'audit/suppression-unknown-rule', ...where, message: `${DIRECTIVE} must name the rule ids it suppresses (${DIRECTIVE} RULE-ID: reason)` });
      continue;
    }
    if (!/[\p{L}\p{N}]/u.test(reason)) {
      problems.push({ ruleId: 'audit/suppression-without-reason', ...where, message: `suppression of ${ruleIds.join(', ')} has no reason, so it suppresses nothing: write "${DIRECTIVE} ${ruleIds.join(', ')}: why this is safe"` });
      continue;
    }
    const known = ruleIds.filter((id) => isRuleId(id) && !id.startsWith('audit/'));
    for (const id of ruleIds.filter((candidate) => !known.includes(candidate))) {
      problems.push({ ruleId: 'audit/suppression-unknown-rule', ...where, message: `suppression names ${id}, which is not a rule that can be suppressed (see tlsmesh audit --list-rules)` });
    }
    if (known.length === 0) continue;
    const position = lines.position(comment.start);
    const before = lines.lineText(position.line).slice(0, position.column - 1);
    let targetLine = position.line;
    if (before.trim() === '') {
      const endLine = lines.position(comment.end).line;
      targetLine = endLine + 1;
      while (targetLine <= lines.lineCount && COMMENT_ONLY_LINE.test(lines.lineText(targetLine))) targetLine++;
    }
    suppressions.push({ line: position.line, targetLine, ruleIds: known, reason, start: comment.start, end: comment.end });
  }
  return { suppressions, problems };
}

const normalizeDirective = (body: string): string => body.replace(/\s+/g, ' ').trim().slice(0, 200);
