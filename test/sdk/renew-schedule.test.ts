/** renewAt and retryDelayMs: pure, so tested over the whole range of their inputs. */
import { describe, expect, it } from 'vitest';
import { renewAt, retryDelayMs } from '../../src/sdk/sources/renew-schedule.js';

const HOUR = 3600_000;
const at = (ms: number) => new Date(ms);

describe('renewAt', () => {
  const table: [string, number, number, number, number][] = [
    // name, notBefore, notAfter, jitter, expected
    ['ok/24 h leaf, no jitter: 16 h', 0, 24 * HOUR, 0, 16 * HOUR],
    ['ok/24 h leaf, earliest: 16 h - 72 min', 0, 24 * HOUR, -1, 16 * HOUR - 72 * 60_000],
    ['ok/24 h leaf, latest: 16 h + 72 min', 0, 24 * HOUR, 1, 16 * HOUR + 72 * 60_000],
    ['ok/offset start', 1_000_000, 1_000_000 + 30 * 24 * HOUR, 0, 1_000_000 + 20 * 24 * HOUR],
    ['ok/1 s lifetime', 5000, 6000, 0, 5667],
    ['ok/empty lifetime: at once', 5000, 5000, 0.5, 5000],
    ['ok/negative lifetime: at once', 5000, 4000, -0.5, 5000],
  ];
  for (const [name, notBefore, notAfter, jitter, expected] of table) {
    it(name, () => {
      expect(renewAt(at(notBefore), at(notAfter), jitter).getTime()).toBe(expected);
    });
  }

  it('ok/every jitter in [-1, 1] lands in [0.6166, 0.7167] of the lifetime, monotonic in jitter', () => {
    const lifetime = 24 * HOUR;
    let previous = -Infinity;
    for (let step = -100; step <= 100; step += 1) {
      const when = renewAt(at(0), at(lifetime), step / 100).getTime();
      expect(when).toBeGreaterThanOrEqual(Math.floor(lifetime * (2 / 3 - 1 / 20)));
      expect(when).toBeLessThanOrEqual(Math.ceil(lifetime * (2 / 3 + 1 / 20)));
      expect(when).toBeGreaterThanOrEqual(previous);
      previous = when;
    }
  });

  it('ok/always strictly inside the validity for any positive lifetime', () => {
    for (const lifetime of [1, 2, 3, 7, 60, 1000, 59_999, HOUR, 10 * 365 * 24 * HOUR]) {
      for (const jitter of [-1, -0.3, 0, 0.3, 1]) {
        const when = renewAt(at(1000), at(1000 + lifetime), jitter).getTime();
        expect(when).toBeGreaterThanOrEqual(1000);
        expect(when).toBeLessThanOrEqual(1000 + lifetime);
      }
    }
  });

  it('fail/jitter outside [-1, 1] or not a number', () => {
    for (const jitter of [-1.0001, 1.0001, Number.NaN, Infinity, '0' as unknown as number]) {
      expect(() => renewAt(at(0), at(HOUR), jitter)).toThrow(RangeError);
    }
  });

  it('fail/invalid dates', () => {
    expect(() => renewAt(new Date('nope'), at(HOUR), 0)).toThrow(TypeError);
    expect(() => renewAt(at(0), new Date(Number.NaN), 0)).toThrow(TypeError);
    expect(() => renewAt(0 as unknown as Date, at(HOUR), 0)).toThrow(TypeError);
  });
});

describe('retryDelayMs', () => {
  it('ok/doubles from 1 s up to 5 min, scaled into [1/2, 1)', () => {
    const expected = [1000, 2000, 4000, 8000, 16_000, 32_000, 64_000, 128_000, 256_000, 300_000, 300_000];
    expected.forEach((nominal, attempt) => {
      expect(retryDelayMs(attempt, 0)).toBe(nominal / 2);
      expect(retryDelayMs(attempt, 0.999_999)).toBeLessThan(nominal);
      expect(retryDelayMs(attempt, 0.999_999)).toBeGreaterThan(nominal * 0.99);
    });
    expect(retryDelayMs(10_000, 0.5)).toBe(225_000); // huge attempt counts do not overflow
  });

  it('ok/a custom policy', () => {
    expect(retryDelayMs(3, 0, { baseMs: 10, maxMs: 50 })).toBe(25);
  });

  it('fail/bad attempt or random', () => {
    expect(() => retryDelayMs(-1, 0)).toThrow(RangeError);
    expect(() => retryDelayMs(1.5, 0)).toThrow(RangeError);
    expect(() => retryDelayMs(0, 1)).toThrow(RangeError);
    expect(() => retryDelayMs(0, -0.1)).toThrow(RangeError);
  });
});
