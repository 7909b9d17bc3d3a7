/** The pure parts of permissive mode: first-byte classification and the bounded caller table. */
import { describe, expect, it } from 'vitest';
import { CallerTable, classifyFirstByte } from '../../src/sdk/permissive-callers.js';

describe('classifyFirstByte', () => {
  it.each([
    ['ok/tls handshake record', 0x16, 'tls'],
    ['ok/GET', 'G'.charCodeAt(0), 'http'],
    ['ok/POST, PUT, PATCH, PRI (h2c preface)', 'P'.charCodeAt(0), 'http'],
    ['ok/DELETE', 'D'.charCodeAt(0), 'http'],
    ['ok/OPTIONS', 'O'.charCodeAt(0), 'http'],
    ['fail/TLS alert record', 0x15, 'unknown'],
    ['fail/SSLv2-style hello', 0x80, 'unknown'],
    ['fail/NUL', 0x00, 'unknown'],
    ['fail/lower-case method', 'g'.charCodeAt(0), 'unknown'],
    ['fail/no method starts with X', 'X'.charCodeAt(0), 'unknown'],
    ['fail/CR', 0x0d, 'unknown'],
  ])('%s', (_name, byte, kind) => {
    expect(classifyFirstByte(byte)).toBe(kind);
  });
});

describe('CallerTable', () => {
  it('counts connections by address and mode, with first and last seen', () => {
    const table = new CallerTable(10);
    table.record('10.0.0.1', 'plaintext', 1_000);
    table.record('10.0.0.1', 'mtls', 2_000);
    table.record('10.0.0.1', 'plaintext', 3_000);
    expect(table.snapshot().get('10.0.0.1')).toEqual({ plaintext: 2, unauthenticated: 0, mtls: 1, firstSeen: new Date(1_000), lastSeen: new Date(3_000) });
  });

  it('keeps at most `max` addresses, forgetting the least recently seen', () => {
    const table = new CallerTable(2);
    table.record('a', 'plaintext', 1);
    table.record('b', 'plaintext', 2);
    table.record('a', 'unauthenticated', 3); // a is now the most recent
    table.record('c', 'plaintext', 4); // b goes
    expect([...table.snapshot().keys()]).toEqual(['a', 'c']);
    expect(table.evicted).toBe(1);
    for (let i = 0; i < 100; i += 1) table.record(`x${i}`, 'plaintext', 5 + i);
    expect(table.snapshot().size).toBe(2);
    expect(table.evicted).toBe(101);
  });

  it('a snapshot does not change with later records', () => {
    const table = new CallerTable(5);
    table.record('a', 'plaintext', 1);
    const before = table.snapshot();
    table.record('a', 'plaintext', 2);
    expect(before.get('a')?.plaintext).toBe(1);
  });

  it('a size that is not a positive integer is a TypeError', () => {
    expect(() => new CallerTable(0)).toThrow(TypeError);
    expect(() => new CallerTable(2.5)).toThrow(TypeError);
  });
});
