/** How the CLI talks: one-line errors with a hint, JSON when asked, durations in words. */
import { isTlsmeshError } from '../errors.js';

export interface GlobalOptions {
  debug?: boolean;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Prints `error ERR_CODE: message` and a hint; with --debug also the stack and causes. */
export function reportError(error: unknown, debug: boolean): number {
  const code = isTlsmeshError(error) ? error.code : 'ERR_INTERNAL';
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`error ${code}: ${message}\n`);
  if (debug) {
    let current: unknown = error;
    while (current instanceof Error) {
      process.stderr.write(`${current.stack ?? current.message}\n`);
      current = current.cause;
      if (current !== undefined) process.stderr.write('caused by: ');
    }
  } else {
    process.stderr.write('hint: re-run with --debug for details\n');
  }
  return 1;
}

/** "3 days 4 hours", "12 minutes", "40 seconds": the two largest units. */
export function durationInWords(milliseconds: number): string {
  const units: [string, number][] = [
    ['day', 86_400_000],
    ['hour', 3_600_000],
    ['minute', 60_000],
    ['second', 1000],
  ];
  let rest = Math.abs(milliseconds);
  const parts: string[] = [];
  for (const [name, size] of units) {
    const count = Math.floor(rest / size);
    if (count > 0 && parts.length < 2) {
      parts.push(`${count} ${name}${count === 1 ? '' : 's'}`);
      rest -= count * size;
    } else if (parts.length > 0) {
      break;
    }
  }
  return parts.length > 0 ? parts.join(' ') : '0 seconds';
}

export function timeLeftInWords(notAfter: Date, now: Date): string {
  const left = notAfter.getTime() - now.getTime();
  return left >= 0 ? `expires in ${durationInWords(left)}` : `EXPIRED ${durationInWords(left)} ago`;
}

export const examples = (lines: string[]): string => `\nEXAMPLES\n${lines.map((line) => `  ${line}`).join('\n')}\n`;
