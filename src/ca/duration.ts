/** Durations in config and flags: `90s`, `15m`, `24h`, `30d`, or a bare number of seconds. */
import { TlsmeshError } from '../errors.js';

const UNIT_SECONDS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86_400 };

export function parseDuration(value: string | number, key: string): number {
  if (typeof value === 'number' && Number.isInteger(value) && value > 0) return value;
  const match = typeof value === 'string' ? /^(\d+)([smhd]?)$/.exec(value.trim()) : null;
  if (!match) throw new TlsmeshError('ERR_CONFIG', `${key} must be a duration like 90s, 15m, 24h or 30d (got ${JSON.stringify(value)})`);
  const seconds = Number(match[1]) * UNIT_SECONDS[match[2] || 's']!;
  if (seconds <= 0) throw new TlsmeshError('ERR_CONFIG', `${key} must be longer than zero`);
  return seconds;
}

export function formatDuration(seconds: number): string {
  for (const [unit, size] of [['d', 86_400], ['h', 3600], ['m', 60]] as const) {
    if (seconds % size === 0) return `${seconds / size}${unit}`;
  }
  return `${seconds}s`;
}
