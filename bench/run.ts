/**
 * `npm run bench`: four benchmarks, selectable with BENCH_ONLY=ca, sdk, revocation or agent, comma-separated (default all).
 *
 * - ca: issuance through the HTTP API (enrol with a one-time token → certificate) on SQLite and
 *   PostgreSQL with 1 and 32 concurrent clients, against the raw crypto limit measured in the same
 *   run (before and after the HTTP phases, mean), plus the leaf-encoding micro-benchmark.
 * - sdk: HTTP/1.1, HTTP/2 and gRPC unary through tlsmesh mTLS against the same servers in
 *   plaintext and with hand-written node:tls mTLS, and full vs resumed handshakes (bench/sdk.ts).
 * - revocation: CRL generation, revoke → refused latency, OCSP answers/s (bench/revocation.ts).
 * - agent: memory and idle CPU, bundle change → 100 agents' bundle.pem, renewal round trip (bench/agent.ts).
 *
 * See bench/README.md for the output and the knobs. Exits non-zero when a check fails (an
 * enrolment error, a duplicate serial, a store that does not hold what was answered; a request
 * not answered 200, an unauthenticated mTLS request, a connection not reused, a handshake that did
 * not resume as asked).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CaClient } from '../src/client/ca-client.js';
import { startCaProcess, type CaProcess } from './ca-process.js';
import { adminClient, enrolmentConnections, percentile, prepareTickets, runPhase, verifyStore, type PhaseOutcome } from './issuance-load.js';
import { measureLeafEncoding } from './leaf-encoding.js';
import { createBenchDatabase, postgresUnavailableReason, redactedPgUrl } from './postgres-database.js';
import { measureIssuanceCryptoFloor, measureRawLimit } from './raw-limit.js';
import { Report, result } from './report.js';
import { runAgentBench } from './agent.js';
import { runRevocationBench } from './revocation.js';
import { runSdkBench, type PhaseWindow } from './sdk.js';

const RESULTS_FILE = fileURLToPath(new URL('./results/latest.jsonl', import.meta.url));
/** With BENCH_CPU_PROF=DIR the CA child writes V8 CPU profiles there, and this file the phase windows (read by cpu-profile-summary.ts). */
const CPU_PROFILE_DIR = process.env['BENCH_CPU_PROF'];
const PHASES_FILE = 'phases.json';
const RAW_LIMIT_MS = 2000;
const LEAF_ENCODING_MS = 1500;
/** Bounded in count and in time, so a slow machine still finishes in a few minutes. */
const PHASES = [
  { concurrency: 1, warmup: 200, measured: 500, maxMs: 15_000 },
  // A long warm-up: with 200 the phase measured V8 still optimising (server and client CPU per
  // certificate ~1.5x their steady values), not the CA as it runs for days.
  { concurrency: 32, warmup: 2000, measured: 4000, maxMs: 20_000 },
] as const;
const GOAL_CERTS_PER_SECOND = 1000;
const GOAL_RATIO = 0.25;

type StoreKind = 'sqlite' | 'postgres';
const BENCHES = ['ca', 'sdk', 'revocation', 'agent'] as const;
type BenchName = (typeof BENCHES)[number];

interface PhaseMeasurement {
  store: StoreKind;
  concurrency: number;
  outcome: PhaseOutcome;
}

const progress = (text: string): boolean => process.stderr.write(`# ${text}\n`);

/** Teardown steps still pending, so that Ctrl-C (or a `timeout` wrapper's SIGTERM) cleans up as `finally` does. Each is idempotent. */
const pendingCleanups: (() => Promise<void>)[] = [];
for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  process.once(signal, () => {
    progress(`${signal}; cleaning up`);
    void Promise.allSettled(pendingCleanups.map((cleanup) => cleanup())).finally(() => process.exit(code));
  });
}

async function withCleanup<T>(cleanup: () => Promise<void>, body: () => Promise<T>): Promise<T> {
  pendingCleanups.push(cleanup);
  try {
    return await body();
  } finally {
    pendingCleanups.splice(pendingCleanups.indexOf(cleanup), 1);
    await cleanup();
  }
}

async function benchStore(store: StoreKind, storeUrl?: string): Promise<PhaseMeasurement[]> {
  const ca = await startCaProcess({ storeUrl, cpuProfileDir: CPU_PROFILE_DIR });
  return withCleanup(ca.stop, async () => {
    const admin = await adminClient(ca);
    try {
      return await loadStore(store, ca, admin);
    } finally {
      admin.close();
    }
  });
}

async function loadStore(store: StoreKind, ca: CaProcess, admin: CaClient): Promise<PhaseMeasurement[]> {
  const needed = PHASES.reduce((sum, phase) => sum + phase.warmup + phase.measured, 0);
  const mintStart = performance.now();
  const tickets = await prepareTickets(ca, admin, needed);
  progress(`${store}: ${needed} tokens minted in ${Math.round(performance.now() - mintStart)} ms (not timed)`);

  const measurements: PhaseMeasurement[] = [];
  const received: string[] = [];
  let used = 0;
  for (const phase of PHASES) {
    const connections = await enrolmentConnections(ca, phase.concurrency);
    try {
      const warm = await runPhase(connections, tickets.slice(used, used + phase.warmup), phase.maxMs, ca);
      used += phase.warmup;
      const outcome = await runPhase(connections, tickets.slice(used, used + phase.measured), phase.maxMs, ca);
      used += phase.measured;
      received.push(...warm.serials, ...outcome.serials);
      measurements.push({ store, concurrency: phase.concurrency, outcome });
      const rate = (outcome.completed * 1000) / outcome.elapsedMs;
      progress(`${store}, ${phase.concurrency} client(s): ${outcome.completed} certificates, ${Math.round(rate)}/s, p50 ${percentile(outcome.latenciesMs, 50).toFixed(2)} ms, CPU µs/cert server ${Math.round(outcome.serverCpuUs / outcome.completed)} (main thread ${Math.round(outcome.serverMainThreadCpuUs / outcome.completed)}) client ${Math.round(outcome.clientCpuUs / outcome.completed)}`);
    } finally {
      for (const connection of connections) connection.close();
    }
  }
  await verifyStore(admin, received);
  progress(`${store}: the store holds exactly the ${received.length} serials answered, all distinct`);
  return measurements;
}

/** Registers a teardown for Ctrl-C while it is pending; returns the function that unregisters it. */
function registerCleanup(cleanup: () => Promise<void>): () => void {
  pendingCleanups.push(cleanup);
  return () => {
    const at = pendingCleanups.indexOf(cleanup);
    if (at >= 0) pendingCleanups.splice(at, 1);
  };
}

async function main(): Promise<number> {
  const report = new Report();
  const only = (process.env['BENCH_ONLY'] ?? BENCHES.join(',')).split(',').map((name) => name.trim());
  const unknownBench = only.filter((name) => !(BENCHES as readonly string[]).includes(name));
  if (unknownBench.length > 0) throw new TypeError(`BENCH_ONLY: unknown benchmark ${unknownBench.join(', ')} (use ca, sdk, revocation, agent, comma-separated)`);
  const selected = (name: BenchName): boolean => only.includes(name);
  const windows: PhaseWindow[] = [];
  if (selected('ca')) windows.push(...(await benchCa(report)));
  if (selected('sdk')) windows.push(...(await runSdkBench(report, { cpuProfileDir: CPU_PROFILE_DIR, registerCleanup })));
  if (selected('revocation')) await runRevocationBench(report);
  if (selected('agent')) await runAgentBench(report);
  await report.writeJsonl(RESULTS_FILE);
  if (CPU_PROFILE_DIR !== undefined) await writeFile(join(CPU_PROFILE_DIR, PHASES_FILE), JSON.stringify(windows, null, 2));
  process.stdout.write(`\n${report.table()}\n`);
  return 0;
}

/** The issuance benchmark; returns the measured windows (for CPU profiles). */
async function benchCa(report: Report): Promise<PhaseWindow[]> {
  const stores = (process.env['BENCH_STORES'] ?? 'sqlite,postgres').split(',').map((name) => name.trim());
  const unknown = stores.filter((name) => name !== 'sqlite' && name !== 'postgres');
  if (unknown.length > 0) throw new TypeError(`BENCH_STORES: unknown store ${unknown.join(', ')} (use sqlite, postgres or both, comma-separated)`);
  // Checked first, so that CI fails at once rather than after minutes of measuring.
  const pgUnavailable = stores.includes('postgres') ? await postgresUnavailableReason() : null;
  if (pgUnavailable !== null && process.env['CI'] === 'true') {
    throw new Error(`PostgreSQL at ${redactedPgUrl()} is not reachable (${pgUnavailable}); CI requires the PostgreSQL phases`);
  }

  progress('raw limit (before)…');
  const rawBefore = measureRawLimit(RAW_LIMIT_MS);
  progress('leaf encoding…');
  const leaf = await measureLeafEncoding(LEAF_ENCODING_MS);

  const measurements: PhaseMeasurement[] = [];
  if (stores.includes('sqlite')) measurements.push(...(await benchStore('sqlite')));
  if (stores.includes('postgres')) {
    if (pgUnavailable === null) {
      const database = await createBenchDatabase();
      measurements.push(...(await withCleanup(database.drop, () => benchStore('postgres', database.url))));
    } else {
      report.note(`PostgreSQL phases SKIPPED: ${redactedPgUrl()} is not reachable (${pgUnavailable}); set TLSMESH_BENCH_PG_URL`);
    }
  }

  progress('raw limit (after)…');
  const rawAfter = measureRawLimit(RAW_LIMIT_MS);
  const raw = (rawBefore + rawAfter) / 2;
  progress('issuance crypto floor…');
  const floor = measureIssuanceCryptoFloor(RAW_LIMIT_MS);

  report.add(result('raw-limit', 'p256 verify+sign, before', rawBefore, 'ops/s'));
  report.add(result('raw-limit', 'p256 verify+sign, after', rawAfter, 'ops/s'));
  report.add(result('raw-limit', 'p256 verify+sign, mean', raw, 'ops/s'));
  // Information: the cryptography an enrolment cannot avoid (a never-seen key imported, then
  // verified), against the raw limit's warm key.
  report.add(result('raw-limit', 'p256 import+verify+sign, fresh key each (floor)', floor, 'ops/s', raw));
  report.add(result('leaf-encoding', '@peculiar/x509 create', leaf.peculiar, 'leaves/s'));
  report.add(result('leaf-encoding', 'LeafIssuer.issue', leaf.leafIssuer, 'leaves/s', leaf.peculiar));
  report.add(result('leaf-encoding', 'LeafIssuer.encodeTbs (no sign)', leaf.encodeOnly, 'leaves/s', leaf.peculiar));
  for (const { store, concurrency, outcome } of measurements) {
    const bench = `issuance/${store}/c${concurrency}`;
    report.add(result(bench, 'throughput', (outcome.completed * 1000) / outcome.elapsedMs, 'certs/s', raw));
    report.add(result(bench, 'latency p50', percentile(outcome.latenciesMs, 50), 'ms'));
    report.add(result(bench, 'latency p99', percentile(outcome.latenciesMs, 99), 'ms'));
    report.add(result(bench, 'certificates measured', outcome.completed, 'certs'));
    // Per certificate, whoever was the bottleneck: with the CPU time of both processes and the
    // cores available, these say how far the machine could go (see docs/performance.md).
    report.add(result(bench, 'server CPU per certificate', outcome.serverCpuUs / outcome.completed, 'µs'));
    report.add(result(bench, 'server main thread CPU per certificate', outcome.serverMainThreadCpuUs / outcome.completed, 'µs'));
    report.add(result(bench, 'client CPU per certificate', outcome.clientCpuUs / outcome.completed, 'µs'));
  }

  const best = report.results.find((entry) => entry.bench === 'issuance/sqlite/c32' && entry.metric === 'throughput');
  if (best !== undefined) {
    const met = (ok: boolean): string => (ok ? 'MET' : 'NOT MET');
    report.note(`goal ≥ ${GOAL_CERTS_PER_SECOND} certs/s on SQLite (32 clients): ${best.value} certs/s, ${met(best.value >= GOAL_CERTS_PER_SECOND)}`);
    report.note(`goal ≥ ${GOAL_RATIO} of the raw limit on SQLite (32 clients): ${best.ratio?.toFixed(3) ?? '?'}, ${met((best.ratio ?? 0) >= GOAL_RATIO)}`);
  }
  if (best !== undefined) {
    report.note(`information: SQLite (32 clients) against the issuance crypto floor (${Math.round(floor)} ops/s, one thread): ${(best.value / floor).toFixed(3)}`);
  }
  report.note(`ratios: issuance against the raw limit mean (${Math.round(raw)} ops/s); leaf encoding against @peculiar/x509; compare ratios only within one run`);
  return measurements.map(({ store, concurrency, outcome }) => ({ label: `${store}, ${concurrency} client(s)`, ...outcome.window }));
}

void main()
  .catch((error: unknown) => {
    progress(`benchmark FAILED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    return 1;
  })
  .then((code) => process.exit(code));
