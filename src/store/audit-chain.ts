/**
 * The audit log's hash chain: each row carries `seq` (1, 2, 3, … with no gaps), the hash of the
 * row before it (`prevHash`, 64 zeros for the first) and its own `hash`, SHA-256 over a
 * canonical encoding of every field. Editing, deleting or inserting a row breaks the chain at
 * that row; truncating the tail or recomputing the whole chain is caught only against a head
 * recorded elsewhere (an anchor). docs/audit-log.md describes the format for other verifiers.
 *
 * Pure code: the store computes hashes when it appends (kysely-store.ts, the migration) and the
 * verifier below checks rows handed to it in chain order, from the store or from an export.
 */
import { createHash } from 'node:crypto';

/** The first element of every encoded row; a new encoding gets a new tag. */
export const AUDIT_CHAIN_FORMAT = 'tlsmesh-audit-v1';
/** `prevHash` of the first row. */
export const GENESIS_HASH = '0'.repeat(64);

/** One audit row as stored, with the chain fields (null on a row written outside the chain). */
export interface AuditChainRow {
  /** The table's key; not hashed (the chain position is `seq`). */
  id: number;
  seq: number | null;
  /** Epoch milliseconds, as stored. */
  at: number;
  actor: string;
  action: string;
  subject: string | null;
  outcome: string;
  code: string | null;
  /** The detail JSON text exactly as stored (hashed as text, so no re-encoding is involved). */
  detail: string;
  peer: string | null;
  prevHash: string | null;
  hash: string | null;
}

/** A chain position and its hash, as the CA logs it and `--expect-head` takes it. */
export interface AuditChainAnchor {
  seq: number;
  hash: string;
}

/** The fields a row's hash covers. */
export type HashedAuditFields = Pick<AuditChainRow, 'at' | 'actor' | 'action' | 'subject' | 'outcome' | 'code' | 'detail' | 'peer'> & {
  seq: number;
  prevHash: string;
};

/**
 * The canonical encoding: a JSON array (no whitespace) of the format tag and the fields in a
 * fixed order. JSON.stringify of strings, integers and null has one output, and any language's
 * JSON encoder that does not escape non-ASCII produces the same bytes.
 */
export function encodeAuditRow(fields: HashedAuditFields): string {
  return JSON.stringify([
    AUDIT_CHAIN_FORMAT,
    fields.seq,
    fields.at,
    fields.actor,
    fields.action,
    fields.subject,
    fields.outcome,
    fields.code,
    fields.detail,
    fields.peer,
    fields.prevHash,
  ]);
}

/** Lowercase hex SHA-256 of the UTF-8 canonical encoding. */
export function hashAuditRow(fields: HashedAuditFields): string {
  return createHash('sha256').update(encodeAuditRow(fields), 'utf8').digest('hex');
}

/** The chain fields of the row appended after `tail` (null: the log is empty). */
export function nextChainFields(tail: AuditChainAnchor | null, row: Omit<HashedAuditFields, 'seq' | 'prevHash'>): { seq: number; prevHash: string; hash: string } {
  const seq = tail === null ? 1 : tail.seq + 1;
  const prevHash = tail === null ? GENESIS_HASH : tail.hash;
  return { seq, prevHash, hash: hashAuditRow({ ...row, seq, prevHash }) };
}

/**
 * What is wrong at the first bad row:
 * - `edited`: the row's stored hash does not match its fields;
 * - `inserted`: the row has no chain fields, repeats or goes back in the sequence, or does not
 *   link to the row before it (a row put in, or replaced, with its own hash recomputed);
 * - `missing`: the sequence skips numbers, so rows were deleted (also at the start);
 * - `truncated`: the chain ends before an anchor's position;
 * - `rewritten`: the row at an anchor's position has another hash (the chain was recomputed).
 */
export type AuditChainFault = 'edited' | 'inserted' | 'missing' | 'truncated' | 'rewritten';

export interface AuditChainBreak {
  fault: AuditChainFault;
  /** Chain position of the bad row (or of the anchor for `truncated`); null for a row without one. */
  seq: number | null;
  /** The bad row's id; null when there is no row (`truncated`, or a row from a file without one). */
  id: number | null;
  message: string;
}

export interface AuditChainReport {
  ok: boolean;
  /** Rows that verified, in order, before the first break (all of them when ok). */
  count: number;
  /** The first row checked; null when there were none. */
  first: AuditChainAnchor | null;
  /** The last row that verified; null when none did. */
  head: AuditChainAnchor | null;
  /** Anchors found on the chain with the hash they name. */
  anchorsMatched: number;
  /** Set when not ok. */
  break?: AuditChainBreak;
}

export interface AuditChainVerifierOptions {
  /** Heads recorded earlier (the CA logs them): each must be on the chain, with that hash. */
  anchors?: readonly AuditChainAnchor[];
  /**
   * Accept a chain that does not start at seq 1 (an export made with `--since`): its first row's
   * `prevHash` is taken as given. Rows before it, and anchors before it, cannot be checked.
   */
  partial?: boolean;
}

const HEX_HASH = /^[0-9a-f]{64}$/;

/**
 * Checks rows fed in chain order and stops at the first break: `push` returns false once broken.
 *
 * @example
 * const verifier = new AuditChainVerifier({ anchors: [{ seq: 120, hash: 'ab…' }] });
 * for (const row of rows) if (!verifier.push(row)) break;
 * const report = verifier.finish();
 */
export class AuditChainVerifier {
  readonly #anchors: Map<number, string>;
  readonly #partial: boolean;
  #previous: AuditChainAnchor | null = null;
  #first: AuditChainAnchor | null = null;
  #count = 0;
  #anchorsMatched = 0;
  #break: AuditChainBreak | undefined;

  constructor(options: AuditChainVerifierOptions = {}) {
    this.#anchors = new Map();
    for (const anchor of options.anchors ?? []) {
      const hash = anchor.hash.toLowerCase();
      const known = this.#anchors.get(anchor.seq);
      if (known !== undefined && known !== hash) {
        throw new TypeError(`two anchors for seq ${anchor.seq} name different hashes`);
      }
      this.#anchors.set(anchor.seq, hash);
    }
    this.#partial = options.partial === true;
  }

  get broken(): boolean {
    return this.#break !== undefined;
  }

  push(row: AuditChainRow): boolean {
    if (this.#break !== undefined) return false;
    const fault = this.#check(row);
    if (fault !== undefined) {
      this.#break = fault;
      return false;
    }
    const position = { seq: row.seq!, hash: row.hash! };
    this.#first ??= position;
    this.#previous = position;
    this.#count++;
    return true;
  }

  /** Marks the chain broken from outside (for instance a row of the store outside the chain). */
  fail(fault: AuditChainBreak): void {
    this.#break ??= fault;
  }

  finish(): AuditChainReport {
    if (this.#break === undefined) {
      const head = this.#previous;
      const firstSeq = this.#first?.seq ?? 1;
      for (const [seq] of [...this.#anchors].sort(([a], [b]) => a - b)) {
        if (head === null || seq > head.seq) {
          this.#break = {
            fault: 'truncated',
            seq,
            id: null,
            message: `the chain ends at seq ${head?.seq ?? 0}, before the anchor at seq ${seq}: rows at the tail were removed`,
          };
          break;
        }
        if (seq < firstSeq) {
          this.#break = { fault: 'missing', seq, id: null, message: `the anchor at seq ${seq} lies before the first row checked (seq ${firstSeq})` };
          break;
        }
      }
    }
    return {
      ok: this.#break === undefined,
      count: this.#count,
      first: this.#first,
      head: this.#previous,
      anchorsMatched: this.#anchorsMatched,
      ...(this.#break === undefined ? {} : { break: this.#break }),
    };
  }

  #check(row: AuditChainRow): AuditChainBreak | undefined {
    const at = (fault: AuditChainFault, message: string): AuditChainBreak => ({ fault, seq: row.seq, id: row.id, message });
    const name = row.seq === null ? `row id ${row.id}` : `seq ${row.seq}`;
    if (row.seq === null || row.hash === null || row.prevHash === null) {
      return at('inserted', `${name} has no chain fields: it was written outside tlsmesh's chain`);
    }
    if (!Number.isSafeInteger(row.seq) || row.seq < 1 || !HEX_HASH.test(row.hash) || !HEX_HASH.test(row.prevHash)) {
      return at('inserted', `${name} has malformed chain fields`);
    }
    const expected = hashAuditRow({ ...row, seq: row.seq, prevHash: row.prevHash });
    if (expected !== row.hash) {
      return at('edited', `${name} was changed after it was written: its stored hash does not match its fields`);
    }
    const previous = this.#previous;
    if (previous === null) {
      if (!this.#partial) {
        if (row.seq !== 1) return at('missing', `the chain starts at seq ${row.seq}: rows 1 to ${row.seq - 1} are missing`);
        if (row.prevHash !== GENESIS_HASH) return at('inserted', `seq 1 does not link to the genesis hash`);
      }
    } else {
      if (row.seq <= previous.seq) return at('inserted', `${name} follows seq ${previous.seq}: a row was inserted or repeated`);
      if (row.seq > previous.seq + 1) {
        const gap = row.seq - previous.seq - 1;
        return at('missing', `${gap === 1 ? `seq ${previous.seq + 1} is` : `seq ${previous.seq + 1} to ${row.seq - 1} are`} missing: rows were deleted`);
      }
      if (row.prevHash !== previous.hash) {
        return at('inserted', `${name} does not link to seq ${previous.seq}: a row was replaced or inserted with a recomputed hash`);
      }
    }
    const anchored = this.#anchors.get(row.seq);
    if (anchored !== undefined) {
      if (anchored !== row.hash) {
        return at('rewritten', `${name} has hash ${row.hash}, the anchor says ${anchored}: the chain was recomputed from here or earlier`);
      }
      this.#anchorsMatched++;
    }
    return undefined;
  }
}

/** Parses `SEQ:HASH` (as the CA logs a head and `--expect-head` takes it); null if malformed. */
export function parseAuditAnchor(text: string): AuditChainAnchor | null {
  const match = /^(\d{1,15}):([0-9a-fA-F]{64})$/.exec(text.trim());
  if (match === null) return null;
  const seq = Number(match[1]);
  return seq >= 1 ? { seq, hash: match[2]!.toLowerCase() } : null;
}

export const formatAuditAnchor = (anchor: AuditChainAnchor): string => `${anchor.seq}:${anchor.hash}`;
