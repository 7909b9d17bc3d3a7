/**
 * Walking the audit chain of a store, exporting it as JSON lines, and verifying such an export
 * off the box. Memory stays bounded: rows are read in pages and checked as they come.
 */
import { TlsmeshError } from '../errors.js';
import { AuditChainVerifier, type AuditChainReport, type AuditChainRow, type AuditChainVerifierOptions } from './audit-chain.js';
import type { Store } from './types.js';

const PAGE = 1000;

/** The store's chained rows with seq above `afterSeq`, in chain order. */
export async function* auditChainRows(store: Store, afterSeq = 0): AsyncGenerator<AuditChainRow> {
  for (let after = afterSeq; ; ) {
    const rows = await store.readAuditChain(after, PAGE);
    yield* rows;
    if (rows.length < PAGE) return;
    after = rows[rows.length - 1]!.seq!;
  }
}

/**
 * Verifies the store's whole chain from seq 1, then that no row sits outside it: a row inserted
 * with plain SQL without chain fields, or with a seq the walk by seq never meets (0 or below, or a
 * duplicate once the unique index is dropped). The table must hold exactly the rows verified.
 *
 * @example
 * const report = await verifyStoredAuditChain(store, { anchors: [{ seq: 1200, hash: '9f…' }] });
 * if (!report.ok) console.error(report.break?.message);
 */
export async function verifyStoredAuditChain(store: Store, options: Pick<AuditChainVerifierOptions, 'anchors'> = {}): Promise<AuditChainReport> {
  const verifier = new AuditChainVerifier({ anchors: options.anchors ?? [] });
  let walked = 0;
  for await (const row of auditChainRows(store)) {
    if (!verifier.push(row)) break;
    walked += 1;
  }
  if (!verifier.broken) {
    const [outside] = await store.listUnchainedAudit(1);
    if (outside !== undefined) {
      verifier.fail({ fault: 'inserted', seq: outside.seq, id: outside.id, message: `row id ${outside.id} is outside the chain (missing chain fields or seq ${String(outside.seq)}): it was written outside tlsmesh's chain` });
    }
  }
  if (!verifier.broken) {
    const total = await store.countAudit();
    if (total !== walked) {
      verifier.fail({ fault: 'inserted', seq: null, id: null, message: `the audit table holds ${total} rows but the chain accounts for ${walked}: rows were written outside the chain (a duplicated seq?)` });
    }
  }
  return verifier.finish();
}

/** One export line: the row's fields under the names of AuditChainRow, detail as the stored text. */
export const auditExportLine = (row: AuditChainRow): string =>
  JSON.stringify({
    id: row.id,
    seq: row.seq,
    at: row.at,
    actor: row.actor,
    action: row.action,
    subject: row.subject,
    outcome: row.outcome,
    code: row.code,
    detail: row.detail,
    peer: row.peer,
    prevHash: row.prevHash,
    hash: row.hash,
  });

const STRING_FIELDS = ['actor', 'action', 'outcome', 'detail'] as const;
const NULLABLE_STRING_FIELDS = ['subject', 'code', 'peer', 'prevHash', 'hash'] as const;

/** Parses one export line; anything but the exact shape is ERR_AUDIT_EXPORT_MALFORMED naming the line. */
export function parseAuditExportLine(line: string, lineNumber: number): AuditChainRow {
  const bad = (what: string): TlsmeshError => new TlsmeshError('ERR_AUDIT_EXPORT_MALFORMED', `line ${lineNumber}: ${what}`);
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw bad('not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('not a JSON object');
  const record = value as Record<string, unknown>;
  const integer = (name: string, nullable: boolean): number | null => {
    const field = record[name];
    if (nullable && field === null) return null;
    if (typeof field !== 'number' || !Number.isSafeInteger(field)) throw bad(`${name} is not an integer`);
    return field;
  };
  for (const name of STRING_FIELDS) if (typeof record[name] !== 'string') throw bad(`${name} is not a string`);
  for (const name of NULLABLE_STRING_FIELDS) if (record[name] !== null && typeof record[name] !== 'string') throw bad(`${name} is not a string or null`);
  return {
    id: integer('id', false)!,
    seq: integer('seq', true),
    at: integer('at', false)!,
    actor: record['actor'] as string,
    action: record['action'] as string,
    subject: record['subject'] as string | null,
    outcome: record['outcome'] as string,
    code: record['code'] as string | null,
    detail: record['detail'] as string,
    peer: record['peer'] as string | null,
    prevHash: record['prevHash'] as string | null,
    hash: record['hash'] as string | null,
  };
}

/**
 * Verifies an export (one JSON object per line; blank lines are refused, a final newline is
 * not a line). A file that starts past seq 1 verifies only with `partial`.
 *
 * @example
 * const report = await verifyAuditExport(createInterface({ input: createReadStream('audit.jsonl') }), {});
 */
export async function verifyAuditExport(lines: AsyncIterable<string> | Iterable<string>, options: AuditChainVerifierOptions = {}): Promise<AuditChainReport> {
  const verifier = new AuditChainVerifier(options);
  let number = 0;
  for await (const line of lines) {
    number++;
    if (!verifier.push(parseAuditExportLine(line, number))) break;
  }
  return verifier.finish();
}
