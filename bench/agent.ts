/**
 * The agent benchmark (`BENCH_ONLY=agent`):
 *
 * - resident memory and idle CPU of one `tlsmesh agent` process (the compiled CLI) once its files
 *   are written, against a bare Node process doing nothing (the floor any Node agent pays);
 * - bundle change → bundle.pem rewritten: a CA rotation step (`prepare --root`) while 100 agents
 *   (in this process, each with its own directory and watch streams) follow the CA; the time from
 *   the CA's bundle changing (its keys reloaded) until the last of them has the new bundle on disk,
 *   against the same for 1 agent. Goal ≤ 2 s;
 * - renewal round trip: `renewNow()` → new files on disk, p50 of 20, against a bare CaClient
 *   renewal (CSR + mTLS call, no files) measured in the same run.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startAgent, tokenFromValue, type Agent } from '../src/agent/index.js';
import { initDataDir, readCaFile, resolveCaConfig, startCa, type RunningCa } from '../src/ca/index.js';
import { updateDataDirTrust } from '../src/ca/data-dir.js';
import { activateRotation, prepareRotation } from '../src/ca/rotation.js';
import { CaClient, enrollWithToken, renewCredentials } from '../src/client/index.js';
import { createLogger } from '../src/observe/logger.js';
import { pemBlocks } from '../src/pki/index.js';
import { percentile } from './issuance-load.js';
import { result, type Report } from './report.js';

const TRUST_DOMAIN = 'bench.tlsmesh.test';
const AGENTS = Number(process.env['BENCH_AGENTS'] ?? 100);
const RENEWALS = 20;
const IDLE_MS = Number(process.env['BENCH_AGENT_IDLE_MS'] ?? 10_000);
const GOAL_BUNDLE_MS = 2_000;
const CLI = fileURLToPath(new URL('../bin/tlsmesh.js', import.meta.url));

const progress = (text: string): boolean => process.stderr.write(`# ${text}\n`);
const quiet = createLogger({ component: 'agent', level: 'error' });

export async function runAgentBench(report: Report): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'tlsmesh-bench-agent-'));
  const passphrase = randomBytes(24).toString('base64url');
  const dataDir = join(root, 'ca');
  await initDataDir({ dataDir, trustDomain: TRUST_DOMAIN, passphrase, listen: '127.0.0.1:0' });
  const config = resolveCaConfig(dataDir, await readCaFile(dataDir), {}, {});
  const ca = await startCa({ config, passphrase, logger: createLogger({ component: 'ca', level: 'warn' }) });
  const bundlePem = await readFile(join(dataDir, 'bundle.pem'), 'utf8');
  const admin = new CaClient({ url: ca.url, bundlePem, trustDomain: TRUST_DOMAIN, certPem: await readFile(join(dataDir, 'admin/cert.pem'), 'utf8'), keyPem: await readFile(join(dataDir, 'admin/key.pem'), 'utf8') });
  const token = async (path: string): Promise<string> => (await admin.createToken({ spiffeId: `spiffe://${TRUST_DOMAIN}${path}` })).token;
  try {
    await residentCost(report, ca, bundlePem, root, await token('/bench/process'));
    await renewalRoundTrip(report, ca, bundlePem, root, token);
    await bundleFanOut(report, ca, dataDir, passphrase, root, token);
  } finally {
    admin.close();
    await ca.close();
    await rm(root, { recursive: true, force: true });
  }
}

/** VmRSS (bytes) and CPU time (ms) of a process, from /proc. */
async function procUsage(pid: number): Promise<{ rss: number; cpuMs: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const rss = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime, in clock ticks (100/s on Linux)
  return { rss, cpuMs: ticks * 10 };
}

async function idleCost(command: string, args: string[], env: NodeJS.ProcessEnv, readyWhen: () => Promise<boolean>): Promise<{ rss: number; cpuPercent: number }> {
  const child = spawn(command, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  try {
    const deadline = Date.now() + 30_000;
    while (!(await readyWhen())) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`agent bench: process did not get ready: ${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await new Promise((resolve) => setTimeout(resolve, 1_000)); // let start-up work settle
    const before = await procUsage(child.pid!);
    const started = performance.now();
    await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
    const after = await procUsage(child.pid!);
    return { rss: after.rss, cpuPercent: ((after.cpuMs - before.cpuMs) * 100) / (performance.now() - started) };
  } finally {
    child.kill('SIGTERM');
  }
}

async function residentCost(report: Report, ca: RunningCa, bundlePem: string, root: string, token: string): Promise<void> {
  progress(`agent process: memory and idle CPU over ${IDLE_MS / 1000} s…`);
  const bundleFile = join(root, 'process-bundle.pem');
  await writeFile(bundleFile, bundlePem);
  const out = join(root, 'process-out');
  const agent = await idleCost(
    process.execPath,
    [CLI, 'agent', '--ca', ca.url, '--bundle', bundleFile, '--out', out],
    { ...process.env, TLSMESH_TOKEN: token, TLSMESH_LOG_LEVEL: 'warn' },
    () => readFile(join(out, 'cert.pem')).then(() => true, () => false),
  );
  const bare = await idleCost(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], process.env, () => Promise.resolve(true));
  report.add(result('agent/process', 'resident memory', agent.rss / 1_048_576, 'MiB', bare.rss / 1_048_576));
  report.add(result('agent/process', 'idle CPU', agent.cpuPercent, '% of a core', null));
  report.add(result('agent/process', 'bare node: resident memory', bare.rss / 1_048_576, 'MiB'));
}

async function renewalRoundTrip(report: Report, ca: RunningCa, bundlePem: string, root: string, token: (path: string) => Promise<string>): Promise<void> {
  progress(`renewal round trip, ${RENEWALS} renewals…`);
  const agent = startAgent({ caUrl: ca.url, bundlePem, outDir: join(root, 'renewing'), token: tokenFromValue(await token('/bench/renewing')), logger: quiet, crl: false });
  const durations: number[] = [];
  try {
    await agent.ready();
    for (let i = 0; i < RENEWALS; i++) {
      const before = agent.status().serial;
      const start = performance.now();
      agent.renewNow();
      while (agent.status().serial === before) await new Promise((resolve) => setTimeout(resolve, 2));
      durations.push(performance.now() - start);
    }
  } finally {
    await agent.stop();
  }
  // Baseline: the same renewal without the agent (no files, no fsync, no hooks).
  const enrolled = await enrollWithToken({ url: ca.url, bundlePem, token: await token('/bench/bare') });
  let current = enrolled;
  const bare: number[] = [];
  for (let i = 0; i < RENEWALS; i++) {
    const start = performance.now();
    current = await renewCredentials({ url: ca.url, current, spiffeId: enrolled.issued.spiffeId, dnsNames: [], ipAddresses: [] });
    bare.push(performance.now() - start);
  }
  report.add(result('agent/renewal', 'renewNow → files on disk, p50', percentile(durations, 50), 'ms', percentile(bare, 50)));
  report.add(result('agent/renewal', 'bare CaClient renewal, p50', percentile(bare, 50), 'ms'));
}

async function bundleFanOut(
  report: Report,
  ca: RunningCa,
  dataDir: string,
  passphrase: string,
  root: string,
  token: (path: string) => Promise<string>,
): Promise<void> {
  const measure = async (count: number, label: string): Promise<number> => {
    progress(`${label}: ${count} agent(s) following the bundle…`);
    const agents: { agent: Agent; dir: string }[] = [];
    // A workload enrolling now is given the CA's current bundle (after an activation the CA's own
    // certificate chains to the new root, which the bundle from `ca init` does not hold).
    const currentBundle = ca.authority.keyring.bundlePem;
    // When each agent reports the write that carried the new bundle (the event comes after the
    // files are on disk): no polling of 100 directories competing with the agents for the loop.
    let start = 0;
    const rewrittenAt = new Map<string, number>();
    try {
      for (let i = 0; i < count; i++) {
        const dir = join(root, `${label}-${i}`);
        const agent = startAgent({
          caUrl: ca.url,
          bundlePem: currentBundle,
          outDir: dir,
          token: tokenFromValue(await token(`/bench/${label}/${i}`)),
          logger: quiet,
          onEvent: (event) => {
            if (start > 0 && event.type === 'written' && event.reasons.includes('bundle') && !rewrittenAt.has(dir)) rewrittenAt.set(dir, performance.now());
          },
        });
        agents.push({ agent, dir });
      }
      await Promise.all(agents.map(({ agent }) => agent.ready()));
      await new Promise((resolve) => setTimeout(resolve, 500)); // every watch stream open
      const roots = async (dir: string): Promise<number> => pemBlocks(await readFile(join(dir, 'bundle.pem'), 'utf8'), 'CERTIFICATE').length;
      const before = await roots(agents[0]!.dir);
      // The clock starts when the CA's bundle changes (its keys reload with the new root), not
      // at `prepare`, whose key generation and sealing are the operator's step, not the fan-out.
      const unsubscribe = ca.keys.onChange(() => (start = performance.now()));
      const prepared = await prepareRotation({ store: ca.authority.store, passphrase, newRoot: true });
      await updateDataDirTrust(dataDir, ca.authority.store, { add: [prepared.root!.fingerprint] });
      await ca.keys.reload();
      unsubscribe();
      if (start === 0) throw new Error('agent bench: the CA did not reload its keys');
      while (rewrittenAt.size < count) {
        if (performance.now() - start > 30_000) throw new Error(`agent bench: ${count - rewrittenAt.size} agent(s) never rewrote bundle.pem`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      // And the files say so (checked once, after the timing).
      for (const { dir } of agents) if ((await roots(dir)) <= before) throw new Error(`agent bench: ${dir}/bundle.pem does not hold the new root`);
      return Math.max(...rewrittenAt.values()) - start;
    } finally {
      await Promise.all(agents.map(({ agent }) => agent.stop()));
    }
  };
  const one = await measure(1, 'single');
  // The next rotation needs the prepared one activated first.
  await activateRotation({ store: ca.authority.store });
  await ca.keys.reload();
  const many = await measure(AGENTS, 'fleet');
  report.add(result('agent/bundle-change', `${AGENTS} agents: last bundle.pem rewritten`, many, 'ms', one));
  report.add(result('agent/bundle-change', '1 agent: bundle.pem rewritten', one, 'ms'));
  report.note(`goal bundle change → bundle.pem for ${AGENTS} agents ≤ ${GOAL_BUNDLE_MS} ms: ${Math.round(many)} ms, ${many <= GOAL_BUNDLE_MS ? 'MET' : 'NOT MET'} (from the CA's bundle change to the last file; ratio: against 1 agent in the same run)`);
}
