/**
 * Where a server's CPU time goes during the measured phases: reads the CA's or the SDK servers'
 * `--cpu-prof` profile and bench/run.ts's phase windows (windows with one label, e.g. a variant
 * measured over several rounds, are summed), and prints self time by package or source file, the
 * top functions by self time (with the src/ function that called them), and src/ functions by
 * inclusive time.
 *
 *   BENCH_CPU_PROF=/tmp/prof BENCH_STORES=sqlite npm run bench
 *   npx tsx bench/cpu-profile-summary.ts /tmp/prof
 *
 * The windows line up because V8's profile clock and process.hrtime are both CLOCK_MONOTONIC.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Written by bench/run.ts beside the profiles. */
const PHASES_FILE = 'phases.json';

interface PhaseWindow {
  label: string;
  /** CLOCK_MONOTONIC microseconds, as process.hrtime.bigint() / 1000. */
  startUs: number;
  endUs: number;
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Our code: src/ as tsx runs it, and dist/ as the compiled package (what the CA and SDK servers import). */
const REPO_FILE = /(?:^|\/)((?:src|bench|dist)\/.*)$/;

function bucketOf(node: ProfileNode): string {
  const { url, functionName } = node.callFrame;
  if (url === '') return functionName.startsWith('(') ? functionName : `native ${functionName}`;
  const modules = url.lastIndexOf('node_modules/');
  if (modules >= 0) {
    const [scope = '', name = ''] = url.slice(modules + 'node_modules/'.length).split('/');
    return `npm ${scope.startsWith('@') ? `${scope}/${name}` : scope}`;
  }
  if (url.startsWith('node:')) return url.replace(/^node:(internal\/)?/, 'node:');
  return REPO_FILE.exec(url.replace(/^file:\/\//, ''))?.[1] ?? url;
}

const isOurs = (bucket: string): boolean => bucket.startsWith('src/') || bucket.startsWith('dist/');
const label = (node: ProfileNode): string => `${node.callFrame.functionName || '(anonymous)'} ${bucketOf(node)}`;

/** Windows with the same label (a variant measured in several rounds) are summarised together. */
function summarize(profile: Profile, phase: string | null, windows: readonly PhaseWindow[]): string | null {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);

  const self = new Map<string, number>();
  const functions = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const add = (map: Map<string, number>, key: string, us: number): void => {
    map.set(key, (map.get(key) ?? 0) + us);
  };
  let total = 0;
  let idle = 0;
  let time = profile.startTime;
  profile.samples.forEach((id, index) => {
    const delta = profile.timeDeltas[index] ?? 0;
    time += delta;
    if (phase !== null && !windows.some((window) => time >= window.startUs && time <= window.endUs)) return;
    const node = byId.get(id)!;
    total += delta;
    if (node.callFrame.functionName === '(idle)') idle += delta;
    add(self, bucketOf(node), delta);
    // A function outside src/ is named with the nearest src/ function above it: who asked for it.
    let caller: ProfileNode | undefined;
    const seen = new Set<string>();
    for (let at = parent.get(id); at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at)!;
      if (!isOurs(bucketOf(frame))) continue;
      caller ??= frame;
      const name = label(frame);
      if (!seen.has(name)) add(inclusive, name, delta);
      seen.add(name);
    }
    if (isOurs(bucketOf(node)) && !seen.has(label(node))) add(inclusive, label(node), delta);
    add(functions, `${label(node)}${caller && !isOurs(bucketOf(node)) ? `  <- ${label(caller)}` : ''}`, delta);
  });
  if (total === 0 || idle / total > 0.95) return null; // a helper thread with nothing to say
  const share = (us: number): string => `${((100 * us) / total).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms`;
  const top = (map: Map<string, number>, count: number): string[] =>
    [...map.entries()].sort((a, b) => b[1] - a[1]).slice(0, count).map(([name, us]) => `  ${share(us)}  ${name}`);
  return [
    `== ${phase ?? 'whole profile'}: ${(total / 1000).toFixed(0)} ms sampled${windows.length > 1 ? ` in ${windows.length} windows` : ''}`,
    'self time by package or file:',
    ...top(self, 15),
    'top functions by self time (<- the src/ function that called them):',
    ...top(functions, 20),
    'src/ functions by inclusive time (synchronous part: time after an await counts where it resumes):',
    ...top(inclusive, 15),
  ].join('\n');
}

async function main(): Promise<void> {
  const dir = process.argv[2];
  if (dir === undefined) throw new TypeError('usage: cpu-profile-summary.ts PROFILE_DIR');
  const files = (await readdir(dir)).filter((name) => name.endsWith('.cpuprofile')).sort();
  const windows = JSON.parse(await readFile(join(dir, PHASES_FILE), 'utf8').catch(() => '[]')) as PhaseWindow[];
  for (const file of files) {
    const profile = JSON.parse(await readFile(join(dir, file), 'utf8')) as Profile;
    const endUs = profile.startTime + profile.timeDeltas.reduce((sum, delta) => sum + delta, 0);
    const inside = windows.filter((window) => window.startUs >= profile.startTime && window.endUs <= endUs);
    const phases = [...new Set(inside.map((window) => window.label))];
    for (const phase of phases.length > 0 ? phases : [null]) {
      const text = summarize(profile, phase, inside.filter((window) => window.label === phase));
      if (text !== null) console.log(`# ${file}\n${text}`);
    }
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
