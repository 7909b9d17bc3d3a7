/**
 * The revocation benchmark (`BENCH_ONLY=revocation`):
 *
 * - CRL generation: `CrlIssuer.issue` for 10,000 and 100,000 entries (median of 3), size, and
 *   `parseCrl`; @peculiar/x509's X509CrlGenerator on 10,000 entries as the baseline.
 * - revoke → refused: a CA and an mTLS HTTPS server (on `caIdentity`, following the CA's CRL watch
 *   stream) in this process; per round a client enrols, calls over a kept-alive connection, is
 *   revoked through the admin API, and then calls again until refused: the time from the revoke
 *   call to the refusal on the open connection and on a new connection, p50 and p99 over 100
 *   rounds, against the revoke call's own latency.
 * - OCSP: POST /v1/ocsp answers/s with a fresh nonce each (signed per request) and without one
 *   (cached), 16 in flight, against raw P-256 signatures/s measured in the same run.
 *
 * Goals: revoke → refused p99 ≤ 5 s; a 100,000-entry CRL in ≤ 1 s.
 */
import { randomBytes, sign, generateKeyPairSync, webcrypto } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request as httpsRequest, Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { initDataDir, readCaFile, resolveCaConfig, startCa } from '../src/ca/index.js';
import { CaClient } from '../src/client/index.js';
import { createLogger } from '../src/observe/logger.js';
import {
  createCsr,
  createOcspRequest,
  expectSpiffeId,
  CrlIssuer,
  generateKeyPair,
  parseCrl,
  parseOcspResponse,
  pemBlocks,
  randomSerial,
  type RevokedEntry,
} from '../src/pki/index.js';
import { caIdentity, createMtlsHttpsServer, MtlsHttpsAgent, staticIdentity } from '../src/sdk/index.js';
import { x509Library } from '../src/pki/x509-library.js';
import { benchChain } from './ca-chain.js';
import { percentile } from './issuance-load.js';
import { result, type Report } from './report.js';

const TRUST_DOMAIN = 'bench.tlsmesh.test';
const ROUNDS = 100;
const REFUSAL_DEADLINE_MS = 10_000;
const OCSP_MS = 3_000;
const OCSP_IN_FLIGHT = 16;
const GOAL_P99_MS = 5_000;
const GOAL_100K_MS = 1_000;

const progress = (text: string): boolean => process.stderr.write(`# ${text}\n`);
const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

export async function runRevocationBench(report: Report): Promise<void> {
  await crlGeneration(report);
  await liveCa(report);
}

async function crlGeneration(report: Report): Promise<void> {
  progress('CRL generation…');
  const { intermediateDer, intermediateKey: intermediate, notBefore, notAfter } = await benchChain(TRUST_DOMAIN);
  const issuer = new CrlIssuer({ issuerCertDer: intermediateDer, issuerPrivateKey: intermediate.privateKey });
  const entriesOf = (count: number): RevokedEntry[] =>
    Array.from({ length: count }, (_, i) => ({ serial: randomSerial(), revokedAt: new Date(notBefore.getTime() + i), reason: i % 3 === 0 ? 'keyCompromise' : 'unspecified' }));

  const baseline10k = await peculiarCrlMs(entriesOf(10_000), intermediateDer, intermediate.privateKey);
  for (const count of [10_000, 100_000]) {
    const entries = entriesOf(count);
    const times: number[] = [];
    const parseTimes: number[] = [];
    let der: Buffer = Buffer.alloc(0);
    for (let run = 0; run < 3; run++) {
      const start = performance.now();
      der = issuer.issue({ crlNumber: BigInt(run + 1), thisUpdate: notBefore, nextUpdate: notAfter, entries });
      times.push(performance.now() - start);
      const parseStart = performance.now();
      if (parseCrl(der).revoked.size !== count) throw new Error('CRL benchmark: the parsed CRL lost entries');
      parseTimes.push(performance.now() - parseStart);
    }
    const label = `${count / 1000}k`;
    const perSecond = (count * 1000) / median(times);
    report.add(result(`crl/${label}`, 'generate (encode + sign)', median(times), 'ms'));
    report.add(result(`crl/${label}`, 'generate rate', perSecond, 'entries/s', count === 10_000 ? (10_000 * 1000) / baseline10k : null));
    report.add(result(`crl/${label}`, 'size', der.length, 'bytes'));
    report.add(result(`crl/${label}`, 'parse (parseCrl)', median(parseTimes), 'ms'));
    if (count === 100_000) report.note(`goal 100,000-entry CRL in ≤ ${GOAL_100K_MS} ms: ${Math.round(median(times))} ms, ${median(times) <= GOAL_100K_MS ? 'MET' : 'NOT MET'}`);
  }
  report.add(result('crl/10k', '@peculiar/x509 X509CrlGenerator', baseline10k, 'ms'));
}

async function peculiarCrlMs(entries: RevokedEntry[], issuerDer: Buffer, issuerKey: ReturnType<typeof generateKeyPair>['privateKey']): Promise<number> {
  const x509 = x509Library();
  const signingKey = await webcrypto.subtle.importKey('pkcs8', issuerKey.export({ format: 'der', type: 'pkcs8' }), { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
  const issuer = new x509.X509Certificate(issuerDer);
  const start = performance.now();
  await x509.X509CrlGenerator.create({
    issuer: issuer.subject,
    thisUpdate: new Date(),
    nextUpdate: new Date(Date.now() + 86_400_000),
    entries: entries.map((entry) => ({ serialNumber: entry.serial.toString('hex'), revocationDate: entry.revokedAt })),
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    signingKey,
  });
  return performance.now() - start;
}

interface Material {
  certPem: string;
  keyPem: string;
  bundlePem: string;
  serial: string;
}

async function liveCa(report: Report): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'tlsmesh-bench-revocation-'));
  const passphrase = randomBytes(24).toString('base64url');
  const dataDir = join(root, 'data');
  await initDataDir({ dataDir, trustDomain: TRUST_DOMAIN, passphrase, listen: '127.0.0.1:0' });
  const config = resolveCaConfig(dataDir, await readCaFile(dataDir), {}, {});
  const ca = await startCa({ config, passphrase, logger: createLogger({ component: 'ca', level: 'warn' }) });
  const bundlePem = await readFile(join(dataDir, 'bundle.pem'), 'utf8');
  const admin = new CaClient({ url: ca.url, bundlePem, trustDomain: TRUST_DOMAIN, certPem: await readFile(join(dataDir, 'admin/cert.pem'), 'utf8'), keyPem: await readFile(join(dataDir, 'admin/key.pem'), 'utf8') });
  const anonymous = new CaClient({ url: ca.url, bundlePem, trustDomain: TRUST_DOMAIN });
  const enrol = async (path: string): Promise<Material> => {
    const spiffeId = `spiffe://${TRUST_DOMAIN}${path}`;
    const { token } = await admin.createToken({ spiffeId });
    const { privateKey } = generateKeyPair('p256');
    const issued = await anonymous.enroll(token, await createCsr({ privateKey, spiffeId }));
    return { certPem: issued.certificatePem, keyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, bundlePem, serial: issued.serial };
  };
  const { token } = await admin.createToken({ spiffeId: `spiffe://${TRUST_DOMAIN}/bench/server` });
  const serverSource = await caIdentity({ url: ca.url, bundlePem, token });
  const server = createMtlsHttpsServer(serverSource, { logger: createLogger({ component: 'sdk', level: 'error' }) }, (_req, res) => res.end('ok'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  try {
    await revokeToRefused(report, url, enrol, admin);
    await ocspThroughput(report, ca.url, bundlePem, await enrol('/bench/ocsp'));
  } finally {
    serverSource.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    admin.close();
    anonymous.close();
    await ca.close();
    await rm(root, { recursive: true, force: true });
  }
}

/** One GET; the status, or the error code when the connection was refused. */
function call(agent: Agent, url: string): Promise<number | string> {
  return new Promise((resolve) => {
    const req = httpsRequest(url, { agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', (error: Error & { code?: string }) => resolve(error.code ?? error.message));
    req.end();
  });
}

async function revokeToRefused(report: Report, url: string, enrol: (path: string) => Promise<Material>, admin: CaClient): Promise<void> {
  progress(`revoke → refused, ${ROUNDS} rounds…`);
  const revokeCallMs: number[] = [];
  const openRefusedMs: number[] = [];
  const newRefusedMs: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const material = await enrol(`/bench/client-${round}`);
    const agent = new MtlsHttpsAgent(staticIdentity(material), `spiffe://${TRUST_DOMAIN}/bench/server`, { maxSockets: 1 });
    try {
      if ((await call(agent, url)) !== 200) throw new Error('revocation bench: the client was not served before being revoked');
      const start = performance.now();
      await admin.revoke({ serial: material.serial, reason: 'keyCompromise' });
      revokeCallMs.push(performance.now() - start);
      // The open keep-alive connection: called again until refused (403).
      let status = await call(agent, url);
      while (status === 200 && performance.now() - start < REFUSAL_DEADLINE_MS) status = await call(agent, url);
      if (status !== 403) throw new Error(`revocation bench: the open connection got ${status} instead of 403 within ${REFUSAL_DEADLINE_MS} ms`);
      openRefusedMs.push(performance.now() - start);
      // A new connection with the revoked certificate.
      const fresh = new MtlsHttpsAgent(staticIdentity(material), `spiffe://${TRUST_DOMAIN}/bench/server`);
      try {
        const answer = await call(fresh, url);
        if (answer === 200) throw new Error('revocation bench: a new connection with the revoked certificate was served');
      } finally {
        fresh.destroy();
      }
      newRefusedMs.push(performance.now() - start);
    } finally {
      agent.destroy();
    }
  }
  const revokeP50 = percentile(revokeCallMs, 50);
  report.add(result('revocation/revoke-call', 'latency p50', revokeP50, 'ms'));
  for (const [name, samples] of [
    ['open connection', openRefusedMs],
    ['new connection', newRefusedMs],
  ] as const) {
    report.add(result(`revocation/refused (${name})`, 'p50 after the revoke call starts', percentile(samples, 50), 'ms', revokeP50));
    report.add(result(`revocation/refused (${name})`, 'p99 after the revoke call starts', percentile(samples, 99), 'ms', revokeP50));
  }
  const worst = Math.max(percentile(openRefusedMs, 99), percentile(newRefusedMs, 99));
  report.note(`goal revoke → refused p99 ≤ ${GOAL_P99_MS} ms: ${Math.round(worst)} ms, ${worst <= GOAL_P99_MS ? 'MET' : 'NOT MET'} (ratios: against the revoke call's own p50)`);
}

async function ocspThroughput(report: Report, caUrl: string, bundlePem: string, subject: Material): Promise<void> {
  progress('OCSP…');
  const issuerDer = pemBlocks(subject.certPem, 'CERTIFICATE')[1]!;
  const serials = [Buffer.from(subject.serial, 'hex')];
  const agent = new Agent({ keepAlive: true, maxSockets: OCSP_IN_FLIGHT, ca: bundlePem, checkServerIdentity: expectSpiffeId(`spiffe://${TRUST_DOMAIN}/tlsmesh/ca`) });
  const post = (body: Buffer): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      const req = httpsRequest(new URL('/v1/ocsp', caUrl), { method: 'POST', agent, headers: { 'content-type': 'application/ocsp-request' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve(Buffer.concat(chunks)));
      });
      req.on('error', reject);
      req.end(body);
    });
  const run = async (withNonce: boolean): Promise<number> => {
    const fixed = createOcspRequest({ issuerCertDer: issuerDer, serials });
    const first = parseOcspResponse(await post(fixed));
    if (first.status !== 'successful' || first.answers[0]?.status.kind !== 'good') throw new Error('OCSP bench: the responder did not answer "good"');
    let answered = 0;
    const deadline = performance.now() + OCSP_MS;
    const start = performance.now();
    await Promise.all(
      Array.from({ length: OCSP_IN_FLIGHT }, async () => {
        while (performance.now() < deadline) {
          await post(withNonce ? createOcspRequest({ issuerCertDer: issuerDer, serials, nonce: randomBytes(16) }) : fixed);
          answered += 1;
        }
      }),
    );
    return (answered * 1000) / (performance.now() - start);
  };
  try {
    const signed = await run(true);
    const cached = await run(false);
    const raw = rawSignatures(1_000);
    report.add(result('ocsp/raw-limit', 'p256 sign', raw, 'ops/s'));
    report.add(result('ocsp/post', 'answers/s, nonce (signed per request)', signed, 'answers/s', raw));
    report.add(result('ocsp/post', 'answers/s, no nonce (cached)', cached, 'answers/s', raw));
  } finally {
    agent.destroy();
  }
}

function rawSignatures(durationMs: number): number {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const data = randomBytes(300);
  let count = 0;
  const start = performance.now();
  while (performance.now() - start < durationMs) {
    for (let i = 0; i < 50; i++) sign('sha256', data, privateKey);
    count += 50;
  }
  return (count * 1000) / (performance.now() - start);
}
