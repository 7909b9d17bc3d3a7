/**
 * Reading Prometheus text exposition in tests: samples by name and labels, the TYPE of each family,
 * and `promtool check metrics` (Debian `prometheus`) as the second implementation that lints it.
 */
import { spawnSync } from 'node:child_process';
import { hasCommand } from './openssl.js';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  samples: Sample[];
  types: Map<string, string>;
  help: Map<string, string>;
  /** The value of the one sample with this name whose labels include `labels`; undefined when none. */
  value(name: string, labels?: Record<string, string>): number | undefined;
  /** Every sample of this name whose labels include `labels`. */
  find(name: string, labels?: Record<string, string>): Sample[];
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseExposition(text: string): Exposition {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.startsWith('# TYPE ')) {
      const [name, type] = line.slice(7).split(' ');
      types.set(name!, type!);
    } else if (line.startsWith('# HELP ')) {
      const space = line.indexOf(' ', 7);
      help.set(line.slice(7, space), line.slice(space + 1));
    } else if (line !== '' && !line.startsWith('#')) {
      const match = LINE.exec(line);
      if (!match) throw new Error(`not an exposition line: ${line}`);
      const labels: Record<string, string> = {};
      for (const label of (match[2] ?? '').matchAll(LABEL)) labels[label[1]!] = label[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      samples.push({ name: match[1]!, labels, value: Number(match[3]) });
    }
  }
  const find = (name: string, labels: Record<string, string> = {}): Sample[] =>
    samples.filter((sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value));
  return {
    samples,
    types,
    help,
    find,
    value(name, labels) {
      const found = find(name, labels);
      if (found.length > 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}`);
      return found[0]?.value;
    },
  };
}

/** True when promtool can run; otherwise false locally and an error under CI=true (CI installs it). */
export function requirePromtool(): boolean {
  if (hasCommand('promtool')) return true;
  if (process.env['CI'] === 'true') throw new Error('CI requires promtool (Debian package prometheus)');
  return false;
}

/** `promtool check metrics` on an exposition: status and what it said (it lints names, units, help). */
export function promtoolCheckMetrics(text: string): { status: number; output: string } {
  const result = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  return { status: result.status ?? -1, output: `${result.stdout}${result.stderr}` };
}
