/**
 * Benchmark results: one JSON object per line on stdout (and in bench/results/latest.jsonl), then
 * a table for people. `baseline` is the value, in the same unit, that `ratio` divides by: the raw
 * crypto limit measured in the same run for issuance, @peculiar/x509 for leaf encoding. Machines
 * are shared and noisy, so only ratios from one run are comparable; raw values are for context.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface BenchResult {
  bench: string;
  metric: string;
  value: number;
  unit: string;
  baseline: number | null;
  ratio: number | null;
}

/** Rounds to 3 significant decimals for reading; keeps integers of large values. */
const tidy = (value: number): number => (Math.abs(value) >= 100 ? Math.round(value) : Number(value.toPrecision(3)));

export function result(bench: string, metric: string, value: number, unit: string, baseline: number | null = null): BenchResult {
  return {
    bench,
    metric,
    value: tidy(value),
    unit,
    baseline: baseline === null ? null : tidy(baseline),
    ratio: baseline === null || baseline === 0 ? null : Number((value / baseline).toFixed(4)),
  };
}

export class Report {
  readonly results: BenchResult[] = [];
  readonly notes: string[] = [];

  /** Prints the line at once, so a long run shows progress and a crash keeps what was measured. */
  add(entry: BenchResult): void {
    this.results.push(entry);
    process.stdout.write(`${JSON.stringify(entry)}\n`);
  }

  /** A line for people, shown under the table (and on stderr when it happens). */
  note(text: string): void {
    this.notes.push(text);
    process.stderr.write(`# ${text}\n`);
  }

  table(): string {
    const header = ['bench', 'metric', 'value', 'unit', 'baseline', 'ratio'];
    const rows = this.results.map((entry) => [
      entry.bench,
      entry.metric,
      String(entry.value),
      entry.unit,
      entry.baseline === null ? '' : String(entry.baseline),
      entry.ratio === null ? '' : entry.ratio.toFixed(3),
    ]);
    const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
    const numeric = new Set([2, 4, 5]);
    const line = (cells: string[]): string =>
      cells.map((cell, column) => (numeric.has(column) ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!))).join('  ');
    const rule = widths.map((width) => '-'.repeat(width)).join('  ');
    return [line(header), rule, ...rows.map(line), ...this.notes.map((text) => `* ${text}`)].join('\n');
  }

  async writeJsonl(path: string): Promise<void> {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, this.results.map((entry) => JSON.stringify(entry)).join('\n') + '\n');
  }
}
