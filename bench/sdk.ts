/**
 * The SDK benchmark (bench/run.ts with BENCH_ONLY=sdk, or by default): requests/s, p50/p99
 * latency and server CPU per request of HTTP/1.1, HTTP/2 and gRPC unary on reused connections,
 * each against the same tiny server in plaintext, with hand-written node:tls mTLS and with
 * tlsmesh; then full and resumed TLS 1.3 handshakes/s (and server CPU per handshake) against the
 * tlsmesh and the hand-written HTTPS servers. See bench/README.md.
 *
 * The servers run in a child process (bench/sdk-server.ts). Identities come from a real tlsmesh
 * CA, stopped before anything is timed. Variants are measured in rounds with the order rotated
 * (A B C, B C A, C A B, …) so drift on a shared machine hits them all alike; each block is a
 * bounded request count, and a variant's throughput is the median of its rounds. Throws when a
 * check fails: an answer other than 200 `ok`, a connection opened while measuring, an mTLS
 * connection whose handler did not see the client's SPIFFE ID, a request count the server does not agree
 * with, a handshake the server did not complete or refused, a connection that resumed when it
 * should not (or the other way round).
 */
import { staticIdentity } from 'tlsmesh/sdk';
import { percentile } from './issuance-load.js';
import { type Report, result } from './report.js';
import { issueBenchIdentities } from './sdk-identities.js';
import { type Handshaker, handshaker } from './sdk-handshake.js';
import { type ClientSetup, createRequester, drive, type Measured, type Requester } from './sdk-load.js';
import { startSdkServerProcess, type SdkServerProcess } from './sdk-process.js';
import { PROTOCOLS, type Protocol, type ServerKey, type ServerStats, serverKey, type Variant, VARIANTS } from './sdk-shared.js';

const CONCURRENCY = 32;
/** A multiple of the variant count, so each variant runs equally often in each position of the rotation. */
const ROUNDS = 9;
/**
 * Per variant: a warm-up, then per round a block of `measured` requests (under a second here:
 * short blocks, many rounds, so that a burst of other work lands in few of them), each bounded
 * in time too.
 */
const LOAD: Record<Protocol, { warmup: number; measured: number; maxMs: number }> = {
  http1: { warmup: 5000, measured: 15_000, maxMs: 5000 },
  http2: { warmup: 3000, measured: 6000, maxMs: 5000 },
  grpc: { warmup: 2000, measured: 2500, maxMs: 5000 },
};
/** Four blocks (two servers × full, resumed), rotated over `rounds` rounds; counts per block. */
const HANDSHAKE = { concurrency: 8, warmup: 100, full: 400, resumed: 800, maxMs: 5000, rounds: 4 };
const HANDSHAKE_SERVERS = ['node-tls', 'tlsmesh'] as const satisfies readonly Variant[];
const HANDSHAKE_KINDS = ['full', 'resumed'] as const;

export const GOALS = { ofPlaintext: 0.85, ofNodeTls: 0.95, resumedOverFull: 2 } as const;

const SDK_PHASES = [...PROTOCOLS, 'handshakes'] as const;
type SdkPhase = (typeof SDK_PHASES)[number];

/** BENCH_SDK_PHASES=http1,handshakes…: run only some phases (default all), to look at one without waiting for the rest. */
function sdkPhases(): Set<SdkPhase> {
  const names = (process.env['BENCH_SDK_PHASES'] ?? SDK_PHASES.join(',')).split(',').map((name) => name.trim());
  const unknown = names.filter((name) => !(SDK_PHASES as readonly string[]).includes(name));
  if (unknown.length > 0) throw new TypeError(`BENCH_SDK_PHASES: unknown phase ${unknown.join(', ')} (use ${SDK_PHASES.join(', ')}, comma-separated)`);
  return new Set(names as SdkPhase[]);
}

/** BENCH_SDK_CALLER=every: mTLS handlers read the caller's SPIFFE ID on every request (default: once per connection). */
function callerOnEveryRequest(): boolean {
  const value = process.env['BENCH_SDK_CALLER'] ?? 'connection';
  if (value !== 'connection' && value !== 'every') throw new TypeError(`BENCH_SDK_CALLER: "${value}" is neither connection nor every`);
  return value === 'every';
}

export interface PhaseWindow {
  label: string;
  startUs: number;
  endUs: number;
}

const progress = (text: string): boolean => process.stderr.write(`# ${text}\n`);
const met = (ok: boolean): string => (ok ? 'MET' : 'NOT MET');

/** The rotation for round `round`: A B C, B C A, C A B, … */
const rotated = <T>(items: readonly T[], round: number): T[] => items.map((_, index) => items[(index + round) % items.length]!);

interface Aggregate {
  completed: number;
  latenciesMs: number[];
  /** Per round, operations/s. */
  rounds: number[];
  /** The server child's CPU time during the blocks, µs. */
  serverCpuUs: number;
  /** This process's (the load generator's) CPU time during the blocks, µs. */
  clientCpuUs: number;
}

const emptyAggregate = (): Aggregate => ({ completed: 0, latenciesMs: [], rounds: [], serverCpuUs: 0, clientCpuUs: 0 });

function absorb(aggregate: Aggregate, measured: Measured, cpu: { serverCpuUs: number; clientCpuUs: number }): void {
  aggregate.completed += measured.completed;
  for (const latency of measured.latenciesMs) aggregate.latenciesMs.push(latency);
  aggregate.rounds.push((measured.completed * 1000) / measured.elapsedMs);
  aggregate.serverCpuUs += cpu.serverCpuUs;
  aggregate.clientCpuUs += cpu.clientCpuUs;
}

/**
 * Throughput of a variant: the median of its per-round rates, so that a round in which something
 * else took the CPU does not move the result (the rounds interleave the variants, so each
 * variant's median comes from the same stretch of time).
 */
function rate(aggregate: Aggregate): number {
  const sorted = [...aggregate.rounds].sort((a, b) => a - b);
  const middle = sorted.length / 2;
  return sorted.length % 2 === 1 ? sorted[Math.floor(middle)]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** The server's CPU time per operation, µs (all blocks together). */
const cpuPerOperation = (aggregate: Aggregate): number => aggregate.serverCpuUs / aggregate.completed;
/**
 * Client and server CPU time per operation, µs: what a request costs the two cores whoever was
 * waiting for whom, so it moves less than req/s when other work shares the machine.
 */
const totalCpuPerOperation = (aggregate: Aggregate): number => (aggregate.serverCpuUs + aggregate.clientCpuUs) / aggregate.completed;

/** min–max of per-round ratios, to show how much the machine drifted. */
function spread(numerator: Aggregate, denominator: Aggregate): string {
  const ratios = numerator.rounds.map((value, round) => value / denominator.rounds[round]!);
  return `${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}`;
}

function delta(after: ServerStats, before: ServerStats, key: ServerKey) {
  const [now, then] = [after.servers[key], before.servers[key]];
  return {
    requests: now.requests - then.requests,
    authenticated: now.authenticated - then.authenticated,
    connections: now.connections - then.connections,
    handshakes: now.handshakes - then.handshakes,
    refusals: now.refusals - then.refusals,
    strangers: now.strangers,
    tls: now.tls,
  };
}

const ownCpuUs = (): number => {
  const { user, system } = process.cpuUsage();
  return user + system;
};

/** One measured block, with the server's and this process's CPU time spent during it. */
async function block(
  server: SdkServerProcess,
  operation: () => Promise<void>,
  count: number,
  concurrency: number,
  maxMs: number,
): Promise<{ measured: Measured; cpu: { serverCpuUs: number; clientCpuUs: number } }> {
  const before = await server.stats();
  const clientBefore = ownCpuUs();
  const measured = await drive(operation, count, concurrency, maxMs);
  const clientCpuUs = ownCpuUs() - clientBefore;
  const after = await server.stats();
  return { measured, cpu: { serverCpuUs: after.cpuUs - before.cpuUs, clientCpuUs } };
}

async function loadProtocol(protocol: Protocol, server: SdkServerProcess, setup: ClientSetup, windows: PhaseWindow[]): Promise<Record<Variant, Aggregate>> {
  const plan = LOAD[protocol];
  const requesters = Object.fromEntries(VARIANTS.map((variant) => [variant, createRequester(protocol, variant, server.ports[serverKey(protocol, variant)], setup)])) as Record<
    Variant,
    Requester
  >;
  try {
    const before = await server.stats();
    const sent = Object.fromEntries(VARIANTS.map((variant) => [variant, 0])) as Record<Variant, number>;
    for (const variant of VARIANTS) {
      const warm = await drive(() => requesters[variant].send(), plan.warmup, CONCURRENCY, plan.maxMs);
      sent[variant] += warm.completed;
    }
    const warmed = await server.stats();
    const aggregates = Object.fromEntries(VARIANTS.map((variant) => [variant, emptyAggregate()])) as Record<Variant, Aggregate>;
    for (let round = 0; round < ROUNDS; round++) {
      for (const variant of rotated(VARIANTS, round)) {
        const { measured, cpu } = await block(server, () => requesters[variant].send(), plan.measured, CONCURRENCY, plan.maxMs);
        absorb(aggregates[variant], measured, cpu);
        sent[variant] += measured.completed;
        windows.push({ label: `sdk ${protocol} ${variant}`, ...measured.window });
      }
    }
    const after = await server.stats();
    for (const variant of VARIANTS) {
      const key = serverKey(protocol, variant);
      const total = delta(after, before, key);
      const measuring = delta(after, warmed, key);
      if (total.requests !== sent[variant]) throw new Error(`${key}: the client got ${sent[variant]} answers, the server handled ${total.requests} requests`);
      if (measuring.connections !== 0) throw new Error(`${key}: ${measuring.connections} connection(s) opened while measuring (expected reuse only)`);
      if (variant !== 'plaintext' && (total.connections === 0 || total.authenticated !== total.connections || total.strangers.length > 0)) {
        throw new Error(`${key}: ${total.authenticated} of ${total.connections} connections saw the client's SPIFFE ID${total.strangers.length > 0 ? `; others: ${total.strangers.join(', ')}` : ''}`);
      }
      const aggregate = aggregates[variant];
      progress(
        `${key}: ${aggregate.completed} requests measured on ${total.connections} connection(s), ${Math.round(rate(aggregate))}/s, p50 ${percentile(aggregate.latenciesMs, 50).toFixed(2)} ms, ` +
          `server ${cpuPerOperation(aggregate).toFixed(1)} µs CPU/request, client + server ${totalCpuPerOperation(aggregate).toFixed(1)} µs` +
          (variant === 'plaintext' ? '' : `; every connection authenticated as ${setup.client.spiffeId}${total.tls.length > 0 ? `; ${total.tls.join(', ')}` : ''}`),
      );
    }
    return aggregates;
  } finally {
    await Promise.all(VARIANTS.map((variant) => requesters[variant].close()));
  }
}

type HandshakeKey = `${(typeof HANDSHAKE_SERVERS)[number]} ${(typeof HANDSHAKE_KINDS)[number]}`;

async function handshakes(server: SdkServerProcess, setup: ClientSetup, windows: PhaseWindow[]): Promise<Record<HandshakeKey, Aggregate>> {
  const identity = setup.source.current();
  const blocks = HANDSHAKE_SERVERS.flatMap((variant) =>
    HANDSHAKE_KINDS.map((kind) => ({
      key: `${variant} ${kind}` satisfies HandshakeKey,
      variant,
      kind,
      shaker: handshaker(server.ports[serverKey('http1', variant)], identity, setup.serverSpiffeId, kind === 'resumed'),
    })),
  );
  const check = (key: string, shaker: Handshaker, kind: 'full' | 'resumed', done: number, resumed: number): void => {
    const doneNow = shaker.done - done;
    const resumedNow = shaker.resumed - resumed;
    const expected = kind === 'full' ? 0 : doneNow;
    if (resumedNow !== expected || shaker.wrong > 0) throw new Error(`handshakes ${key}: ${resumedNow} of ${doneNow} connections resumed, expected ${expected}`);
  };

  // Warm-up, with one request per connection: answered 200 by a handler that saw the client's ID.
  const before = await server.stats();
  for (const { shaker } of blocks) await drive(() => shaker.operation(true), HANDSHAKE.warmup, HANDSHAKE.concurrency, HANDSHAKE.maxMs);
  const warmed = await server.stats();
  for (const variant of HANDSHAKE_SERVERS) {
    const seen = delta(warmed, before, serverKey('http1', variant));
    const made = 2 * HANDSHAKE.warmup;
    if (seen.requests !== made || seen.authenticated !== made || seen.handshakes !== made || seen.refusals !== 0) {
      throw new Error(`handshakes ${variant} (warm-up): ${made} connections made, the server completed ${seen.handshakes} handshakes, answered ${seen.requests} requests (${seen.authenticated} connections from the client's SPIFFE ID), refused ${seen.refusals}`);
    }
  }

  const aggregates = Object.fromEntries(blocks.map(({ key }) => [key, emptyAggregate()])) as Record<HandshakeKey, Aggregate>;
  for (let round = 0; round < HANDSHAKE.rounds; round++) {
    for (const { key, kind, shaker } of rotated(blocks, round)) {
      const { done, resumed } = shaker;
      const count = kind === 'full' ? HANDSHAKE.full : HANDSHAKE.resumed;
      const { measured, cpu } = await block(server, () => shaker.operation(false), count, HANDSHAKE.concurrency, HANDSHAKE.maxMs);
      check(key, shaker, kind, done, resumed);
      absorb(aggregates[key], measured, cpu);
      windows.push({ label: `sdk handshake ${key}`, ...measured.window });
    }
  }
  const after = await server.stats();
  for (const variant of HANDSHAKE_SERVERS) {
    const made = HANDSHAKE_KINDS.reduce((sum, kind) => sum + aggregates[`${variant} ${kind}`].completed, 0);
    const seen = delta(after, warmed, serverKey('http1', variant));
    if (seen.handshakes !== made || seen.refusals !== 0) {
      throw new Error(`handshakes ${variant}: ${made} connections made, the server completed ${seen.handshakes} handshakes and refused ${seen.refusals}`);
    }
  }
  for (const { key, kind } of blocks) {
    const aggregate = aggregates[key];
    progress(
      `handshakes ${key}: ${aggregate.completed} connections, ${Math.round(rate(aggregate))}/s, server ${cpuPerOperation(aggregate).toFixed(0)} µs CPU/handshake; ` +
        `every one ${kind === 'full' ? 'not ' : ''}resumed (isSessionReused), completed by the server, none refused`,
    );
  }
  return aggregates;
}

/** Runs the SDK benchmark, adding its results and goal verdicts to `report`; returns the measured windows for CPU profiles. */
export async function runSdkBench(report: Report, options: { cpuProfileDir?: string | undefined; registerCleanup?: (cleanup: () => Promise<void>) => () => void } = {}): Promise<PhaseWindow[]> {
  const everyRequest = callerOnEveryRequest();
  const phases = sdkPhases();
  progress('sdk: issuing the server and client identities from a bench CA (not timed)…');
  const identities = await issueBenchIdentities();
  const server = await startSdkServerProcess({
    server: identities.server,
    clientSpiffeId: identities.client.spiffeId,
    callerOnEveryRequest: everyRequest,
    cpuProfileDir: options.cpuProfileDir,
  });
  const unregister = options.registerCleanup?.(() => server.stop());
  const source = staticIdentity({ certPem: identities.client.certPem, keyPem: identities.client.keyPem, bundlePem: identities.client.bundlePem });
  const setup: ClientSetup = { client: identities.client, source, serverSpiffeId: identities.server.spiffeId, concurrency: CONCURRENCY };
  const windows: PhaseWindow[] = [];
  const loads = new Map<Protocol, Record<Variant, Aggregate>>();
  let shakes: Record<HandshakeKey, Aggregate> | undefined;
  try {
    for (const protocol of PROTOCOLS.filter((name) => phases.has(name))) {
      progress(`sdk ${protocol}: ${VARIANTS.join(', ')}; ${CONCURRENCY} in flight, ${ROUNDS} rounds of ${LOAD[protocol].measured} requests each…`);
      loads.set(protocol, await loadProtocol(protocol, server, setup, windows));
    }
    if (phases.has('handshakes')) {
      progress(`sdk handshakes: full and resumed, ${HANDSHAKE.concurrency} at once, ${HANDSHAKE.rounds} rounds…`);
      shakes = await handshakes(server, setup, windows);
    }
  } catch (error) {
    const log = await server.logTail(20);
    throw new Error(`${error instanceof Error ? error.message : String(error)}${log ? `\nlast server log lines:\n${log}` : ''}`, { cause: error });
  } finally {
    source.close();
    unregister?.();
    await server.stop();
  }

  const verdicts: string[] = [];
  const spreads: string[] = [];
  for (const [protocol, aggregates] of loads) {
    const [plain, hand, mesh] = [aggregates.plaintext, aggregates['node-tls'], aggregates.tlsmesh];
    const bench = (variant: Variant): string => `sdk/${protocol}/${variant}`;
    report.add(result(bench('plaintext'), 'throughput', rate(plain), 'req/s'));
    report.add(result(bench('node-tls'), 'throughput', rate(hand), 'req/s', rate(plain)));
    report.add(result(bench('tlsmesh'), 'throughput', rate(mesh), 'req/s', rate(plain)));
    report.add(result(bench('tlsmesh'), 'throughput vs node-tls', rate(mesh), 'req/s', rate(hand)));
    for (const variant of VARIANTS) {
      report.add(result(bench(variant), 'latency p50', percentile(aggregates[variant].latenciesMs, 50), 'ms'));
      report.add(result(bench(variant), 'latency p99', percentile(aggregates[variant].latenciesMs, 99), 'ms'));
    }
    report.add(result(bench('plaintext'), 'server CPU per request', cpuPerOperation(plain), 'µs'));
    report.add(result(bench('node-tls'), 'server CPU per request', cpuPerOperation(hand), 'µs', cpuPerOperation(plain)));
    report.add(result(bench('tlsmesh'), 'server CPU per request vs node-tls', cpuPerOperation(mesh), 'µs', cpuPerOperation(hand)));
    report.add(result(bench('plaintext'), 'client + server CPU per request', totalCpuPerOperation(plain), 'µs'));
    report.add(result(bench('node-tls'), 'client + server CPU per request', totalCpuPerOperation(hand), 'µs', totalCpuPerOperation(plain)));
    report.add(result(bench('tlsmesh'), 'client + server CPU per request', totalCpuPerOperation(mesh), 'µs', totalCpuPerOperation(plain)));
    report.add(result(bench('tlsmesh'), 'client + server CPU per request vs node-tls', totalCpuPerOperation(mesh), 'µs', totalCpuPerOperation(hand)));
    report.add(result(`sdk/${protocol}`, 'requests measured per variant', Math.min(...VARIANTS.map((variant) => aggregates[variant].completed)), 'requests'));
    const ofPlain = rate(mesh) / rate(plain);
    const ofHand = rate(mesh) / rate(hand);
    verdicts.push(`goal tlsmesh ≥ ${GOALS.ofPlaintext} of plaintext, ${protocol}: ${ofPlain.toFixed(3)}, ${met(ofPlain >= GOALS.ofPlaintext)}`);
    verdicts.push(`goal tlsmesh ≥ ${GOALS.ofNodeTls} of hand-written node:tls, ${protocol}: ${ofHand.toFixed(3)}, ${met(ofHand >= GOALS.ofNodeTls)}`);
    spreads.push(`${protocol} ${spread(mesh, plain)} / ${spread(mesh, hand)}`);
  }
  if (shakes) reportHandshakes(report, shakes, verdicts);

  for (const verdict of verdicts) report.note(verdict);
  report.note(`sdk per-round ratios tlsmesh/plaintext / tlsmesh/node-tls, min–max over ${ROUNDS} rounds (throughput is the median round): ${spreads.join('; ')}`);
  report.note(
    `sdk ratios: throughput against the same protocol's plaintext server, or its hand-written node:tls server ("vs node-tls"); server CPU per request of node-tls against plaintext, of tlsmesh against node-tls; ` +
      `resumed handshakes (and their server CPU) against full; ${CONCURRENCY} requests in flight on reused connections, ${HANDSHAKE.concurrency} handshakes at once; ` +
      `mTLS handlers read the caller's SPIFFE ID ${everyRequest ? 'on every request' : 'once per connection'}`,
  );
  return windows;
}

function reportHandshakes(report: Report, shakes: Record<HandshakeKey, Aggregate>, verdicts: string[]): void {
  for (const variant of HANDSHAKE_SERVERS) {
    const [full, resumed] = [shakes[`${variant} full`], shakes[`${variant} resumed`]];
    report.add(result(`sdk/handshake/${variant}`, 'full', rate(full), 'handshakes/s'));
    report.add(result(`sdk/handshake/${variant}`, 'resumed', rate(resumed), 'handshakes/s', rate(full)));
    report.add(result(`sdk/handshake/${variant}`, 'server CPU per full handshake', cpuPerOperation(full), 'µs'));
    report.add(result(`sdk/handshake/${variant}`, 'server CPU per resumed handshake', cpuPerOperation(resumed), 'µs', cpuPerOperation(full)));
  }
  const [meshFull, meshResumed] = [shakes['tlsmesh full'], shakes['tlsmesh resumed']];
  report.add(result('sdk/handshake/tlsmesh', 'full vs node-tls', rate(meshFull), 'handshakes/s', rate(shakes['node-tls full'])));
  report.add(result('sdk/handshake/tlsmesh', 'resumed vs node-tls', rate(meshResumed), 'handshakes/s', rate(shakes['node-tls resumed'])));
  const speedup = rate(meshResumed) / rate(meshFull);
  verdicts.push(`goal tlsmesh resumed handshakes ≥ ${GOALS.resumedOverFull}× full: ${speedup.toFixed(2)}×, ${met(speedup >= GOALS.resumedOverFull)}`);
}
