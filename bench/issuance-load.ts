/**
 * Load on the CA's enrolment API: tokens minted, CSRs made and requests built before any timing,
 * then N workers (one kept-alive TLS connection each, bench/enrol-connection.ts) enrolling until a phase's count or time bound is reached. Every
 * response must carry a serial; at the end the store must hold exactly the serials received.
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { caPaths } from '../src/ca/data-dir.js';
import { CaClient, type IssuedResponse } from '../src/client/ca-client.js';
import { credentialPathsIn } from '../src/client/paths.js';
import { createCsr, generateKeyPair } from '../src/pki/index.js';
import { EnrolConnection, prepareEnrolRequest, type PreparedRequest } from './enrol-connection.js';

/** Distinct workload keys and identities; each CSR serves every token of its identity. */
const IDENTITIES = 64;
const MINT_CONCURRENCY = 16;
const LIST_PAGE = 1000;

export interface Target {
  url: string;
  trustDomain: string;
  dataDir: string;
}

export interface EnrolmentTicket {
  token: string;
  csr: string;
  spiffeId: string;
  /** The HTTP request carrying token and CSR, built before any timing. */
  request: PreparedRequest;
}

export interface PhaseOutcome {
  completed: number;
  elapsedMs: number;
  latenciesMs: number[];
  serials: string[];
  /** CLOCK_MONOTONIC µs (process.hrtime), to cut the server's CPU profile to this phase. */
  window: { startUs: number; endUs: number };
  /** CPU used over the phase, µs, all threads: the CA process's, and this load generator's. */
  serverCpuUs: number;
  /** The CA's main thread alone (TLS, HTTP, store; and the cryptography unless a worker pool does it). */
  serverMainThreadCpuUs: number;
  clientCpuUs: number;
}

/** CPU time so far, µs, of the CA process (all threads) and of its main thread. */
export interface ServerCpu {
  cpuMicros: () => number;
  mainThreadCpuMicros: () => number;
}

const processCpuMicros = (): number => {
  const { user, system } = process.cpuUsage();
  return user + system;
};

const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);

const spiffeIdOf = (trustDomain: string, identity: number): string => `spiffe://${trustDomain}/bench/w${identity}`;

/** Runs `work(i)` for i in [0, count) with at most `concurrency` in flight; stops at the first error. */
async function pool(count: number, concurrency: number, work: (index: number) => Promise<void>, deadline = Infinity): Promise<number> {
  let next = 0;
  // Workers set it; an object, so the type checker does not assume it is still null after the await.
  const state: { failure: Error | null } = { failure: null };
  const worker = async (): Promise<void> => {
    while (state.failure === null && next < count && performance.now() < deadline) {
      const index = next++;
      try {
        await work(index);
      } catch (error) {
        state.failure ??= error instanceof Error ? error : new Error(String(error));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  if (state.failure !== null) throw state.failure;
  return next;
}

export async function adminClient(target: Target): Promise<CaClient> {
  const files = credentialPathsIn(caPaths(target.dataDir).adminDir);
  const [certPem, keyPem, bundlePem] = await Promise.all([readFile(files.cert, 'utf8'), readFile(files.key, 'utf8'), readFile(files.bundle, 'utf8')]);
  return new CaClient({ url: target.url, bundlePem, trustDomain: target.trustDomain, certPem, keyPem, maxSockets: MINT_CONCURRENCY });
}

export async function enrolmentClient(target: Target, concurrency: number): Promise<CaClient> {
  const bundlePem = await readFile(caPaths(target.dataDir).bundle, 'utf8');
  return new CaClient({ url: target.url, bundlePem, trustDomain: target.trustDomain, maxSockets: concurrency });
}

/** One kept-alive TLS connection per concurrent client, open (handshake done) before timing. */
export async function enrolmentConnections(target: Target, concurrency: number): Promise<EnrolConnection[]> {
  const bundlePem = await readFile(caPaths(target.dataDir).bundle, 'utf8');
  const url = new URL(target.url);
  return Promise.all(Array.from({ length: concurrency }, () => EnrolConnection.open(url, bundlePem, target.trustDomain)));
}

/** `count` tickets (token + matching CSR), minted through the admin API. */
export async function prepareTickets(target: Target, admin: CaClient, count: number): Promise<EnrolmentTicket[]> {
  const csrs: string[] = [];
  for (let identity = 0; identity < IDENTITIES; identity++) {
    csrs.push(await createCsr({ privateKey: generateKeyPair('p256').privateKey, spiffeId: spiffeIdOf(target.trustDomain, identity) }));
  }
  const tickets = new Array<EnrolmentTicket>(count);
  const url = new URL(target.url);
  await pool(count, MINT_CONCURRENCY, async (index) => {
    const spiffeId = spiffeIdOf(target.trustDomain, index % IDENTITIES);
    const { token } = await admin.createToken({ spiffeId });
    const csr = csrs[index % IDENTITIES]!;
    tickets[index] = { token, csr, spiffeId, request: prepareEnrolRequest(url, token, csr) };
  });
  return tickets;
}

/**
 * Enrols with `tickets` over `connections` (one worker each, one request in flight per
 * connection) until all are used or `maxMs` has passed. Every answer must be 200 with a serial;
 * the first certificate is checked in full (chain signature, serial, SPIFFE ID), the rest only for
 * a serial, which is what the store check at the end compares.
 */
export async function runPhase(
  connections: readonly EnrolConnection[],
  tickets: readonly EnrolmentTicket[],
  maxMs: number,
  server: ServerCpu,
): Promise<PhaseOutcome> {
  const latenciesMs: number[] = [];
  const serials: string[] = [];
  const serverCpuStart = server.cpuMicros();
  const mainThreadCpuStart = server.mainThreadCpuMicros();
  const clientCpuStart = processCpuMicros();
  const startUs = monotonicUs();
  const start = performance.now();
  const deadline = start + maxMs;
  let lastEnd = start;
  let next = 0;
  const state: { failure: Error | null } = { failure: null };
  const worker = async (connection: EnrolConnection): Promise<void> => {
    while (state.failure === null && next < tickets.length && performance.now() < deadline) {
      const index = next++;
      const ticket = tickets[index]!;
      try {
        const sent = performance.now();
        const answer = await connection.send(ticket.request);
        lastEnd = performance.now();
        latenciesMs.push(lastEnd - sent);
        const issued = answer.body as Partial<IssuedResponse> & { error?: { code?: unknown } };
        if (answer.status !== 200) throw new Error(`enrolment ${index} refused: HTTP ${answer.status} ${String(issued.error?.code)}`);
        if (typeof issued.serial !== 'string' || !/^[0-9a-f]{2,40}$/.test(issued.serial)) throw new Error(`enrolment ${index} answered without a valid serial`);
        if (serials.length === 0) checkCertificate(String(issued.certificatePem), issued.serial, ticket.spiffeId);
        serials.push(issued.serial);
      } catch (error) {
        state.failure ??= error instanceof Error ? error : new Error(String(error));
      }
    }
  };
  await Promise.all(connections.slice(0, tickets.length).map(worker));
  if (state.failure !== null) throw state.failure;
  return {
    completed: serials.length,
    elapsedMs: lastEnd - start,
    latenciesMs,
    serials,
    window: { startUs, endUs: monotonicUs() },
    serverCpuUs: server.cpuMicros() - serverCpuStart,
    serverMainThreadCpuUs: server.mainThreadCpuMicros() - mainThreadCpuStart,
    clientCpuUs: processCpuMicros() - clientCpuStart,
  };
}

function checkCertificate(chainPem: string, serial: string, spiffeId: string): void {
  const blocks = chainPem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
  const [leafPem, issuerPem] = blocks;
  if (blocks.length !== 2 || leafPem === undefined || issuerPem === undefined) throw new Error(`expected leaf + intermediate, got ${blocks.length} certificates`);
  const leaf = new X509Certificate(leafPem);
  const issuer = new X509Certificate(issuerPem);
  if (!leaf.checkIssued(issuer) || !leaf.verify(issuer.publicKey)) throw new Error('the issued leaf does not verify against its intermediate');
  if (leaf.serialNumber.toLowerCase() !== serial) throw new Error(`the leaf's serial ${leaf.serialNumber} is not the answered ${serial}`);
  if (leaf.subjectAltName !== `URI:${spiffeId}`) throw new Error(`the leaf names ${leaf.subjectAltName ?? 'nothing'}, not ${spiffeId}`);
}

/** Throws unless the store holds exactly the workload serials the clients received, each once. */
export async function verifyStore(admin: CaClient, received: readonly string[]): Promise<void> {
  const unique = new Set(received);
  if (unique.size !== received.length) throw new Error(`${received.length - unique.size} serials were answered more than once`);
  const stored = new Set<string>();
  for (let offset = 0; ; offset += LIST_PAGE) {
    const { certificates } = await admin.listCertificates({ kind: 'workload', limit: LIST_PAGE, offset });
    for (const certificate of certificates) stored.add(certificate.serial);
    if (certificates.length < LIST_PAGE) break;
  }
  const missing = [...unique].filter((serial) => !stored.has(serial));
  if (stored.size !== unique.size || missing.length > 0) {
    throw new Error(`the store holds ${stored.size} workload certificates, the clients received ${unique.size} (${missing.length} received but not stored)`);
  }
}

/** Nearest-rank percentile of unsorted samples. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
