/**
 * The pure parts of permissive mode: what the first byte of a connection says it speaks, and the
 * bounded table of callers by address that tells a team who still has to move to mutual TLS.
 */
import { METHODS } from 'node:http';

/** How a caller reached a permissive server. */
export type CallerMode = 'mtls' | 'unauthenticated' | 'plaintext';

/** What a first byte says: a TLS handshake record, the first letter of an HTTP method, or neither. */
export type FirstByteKind = 'tls' | 'http' | 'unknown';

/** The content type of a TLS handshake record: every ClientHello starts with it. */
const TLS_HANDSHAKE_RECORD = 0x16;

/** First letters of the methods node:http parses (methods are case-sensitive: upper case only). */
const METHOD_INITIALS: ReadonlySet<number> = new Set(METHODS.map((method) => method.charCodeAt(0)));

/**
 * The kind of protocol a connection speaks, from its first byte.
 *
 * @example classifyFirstByte(0x16) === 'tls'; classifyFirstByte('G'.charCodeAt(0)) === 'http';
 */
export function classifyFirstByte(byte: number): FirstByteKind {
  if (byte === TLS_HANDSHAKE_RECORD) return 'tls';
  return METHOD_INITIALS.has(byte) ? 'http' : 'unknown';
}

/** Connections seen from one address, by mode. */
export interface CallerCounts {
  plaintext: number;
  unauthenticated: number;
  mtls: number;
  firstSeen: Date;
  lastSeen: Date;
}

interface Row {
  plaintext: number;
  unauthenticated: number;
  mtls: number;
  firstSeen: number;
  lastSeen: number;
}

/**
 * Connection counts by remote address, holding at most `max` addresses: when full, the address
 * seen least recently is forgotten (and counted in `evicted`), so a scan from many addresses
 * cannot grow it without bound.
 */
export class CallerTable {
  readonly #max: number;
  readonly #rows = new Map<string, Row>();
  #evicted = 0;

  constructor(max: number) {
    if (!Number.isInteger(max) || max < 1) throw new TypeError('the caller table size must be a positive integer');
    this.#max = max;
  }

  /** Counts one connection from `address` in `mode` at time `now` (ms); true when it is the address's first in that mode. */
  record(address: string, mode: CallerMode, now: number): boolean {
    let row = this.#rows.get(address);
    if (row) {
      this.#rows.delete(address); // re-inserted below: the Map's order is the order of last use
    } else {
      if (this.#rows.size >= this.#max) {
        const oldest = this.#rows.keys().next();
        if (!oldest.done) this.#rows.delete(oldest.value);
        this.#evicted += 1;
      }
      row = { plaintext: 0, unauthenticated: 0, mtls: 0, firstSeen: now, lastSeen: now };
    }
    row[mode] += 1;
    row.lastSeen = now;
    this.#rows.set(address, row);
    return row[mode] === 1;
  }

  /** Addresses forgotten because the table was full. */
  get evicted(): number {
    return this.#evicted;
  }

  /** A copy, least recently seen first. */
  snapshot(): ReadonlyMap<string, Readonly<CallerCounts>> {
    const copy = new Map<string, Readonly<CallerCounts>>();
    for (const [address, row] of this.#rows) {
      copy.set(address, Object.freeze({ plaintext: row.plaintext, unauthenticated: row.unauthenticated, mtls: row.mtls, firstSeen: new Date(row.firstSeen), lastSeen: new Date(row.lastSeen) }));
    }
    return copy;
  }
}
