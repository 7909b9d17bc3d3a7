/**
 * Two `tlsmesh ca serve` processes on one PostgreSQL, serving at once: concurrent enrolments on
 * both get unique serials, and a token redeemed on one is refused on the other — also when both
 * receive it at the same moment. Both append to one audit hash chain, which verifies at the end.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initDataDir } from '../../src/ca/data-dir.js';
import { CaClient } from '../../src/client/ca-client.js';
import { parseCrl, type ParsedCrl } from '../../src/pki/crl.js';
import { pemBlocks } from '../../src/pki/index.js';
import { createOcspRequest, parseOcspResponse } from '../../src/pki/ocsp.js';
import { openPostgresStore, verifyStoredAuditChain, type Store } from '../../src/store/index.js';
import { cliCommand, startBackground, type BackgroundCli } from '../helpers/cli.js';
import { csrFor, PASSPHRASE, TRUST_DOMAIN } from '../helpers/ca.js';
import { createTestDatabase, requirePgInSuite, type TestDatabase } from '../helpers/pg.js';

describe('two CA processes on one PostgreSQL', async () => {
  if (!(await requirePgInSuite())) return;

  let database: TestDatabase;
  let dataDir: string;
  let store: Store;
  const servers: BackgroundCli[] = [];
  const admins: CaClient[] = [];
  const anonymous: CaClient[] = [];
  let urls: string[] = [];
  let bundlePem = '';

  beforeAll(async () => {
    database = await createTestDatabase();
    dataDir = mkdtempSync(join(tmpdir(), 'tlsmesh-ha-'));
    await initDataDir({ dataDir, trustDomain: TRUST_DOMAIN, passphrase: PASSPHRASE, store: database.url, listen: '127.0.0.1:0' });
    bundlePem = readFileSync(join(dataDir, 'bundle.pem'), 'utf8');
    for (let i = 0; i < 2; i++) {
      const server = startBackground(cliCommand(['ca', 'serve', '--data-dir', dataDir, '--listen', '127.0.0.1:0']), { env: { TLSMESH_CA_PASSPHRASE: PASSPHRASE } });
      servers.push(server);
    }
    urls = await Promise.all(servers.map(async (server) => (await server.waitFor(/serving at (https:\/\/\S+)/))[1]!));
    expect(new Set(urls).size).toBe(2);
    for (const url of urls) {
      admins.push(new CaClient({ url, bundlePem, trustDomain: TRUST_DOMAIN, certPem: readFileSync(join(dataDir, 'admin/cert.pem'), 'utf8'), keyPem: readFileSync(join(dataDir, 'admin/key.pem'), 'utf8') }));
      anonymous.push(new CaClient({ url, bundlePem, trustDomain: TRUST_DOMAIN, maxSockets: 16 }));
    }
    store = await openPostgresStore({ connectionString: database.url });
  });

  afterAll(async () => {
    for (const client of [...admins, ...anonymous]) client.close();
    await Promise.all(servers.map((server) => server.stop()));
    await store?.close();
    await database?.drop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('concurrent enrolments on both processes give unique serials, all recorded', async () => {
    const count = 40;
    const tokens = await Promise.all(Array.from({ length: count }, (_, i) => admins[i % 2]!.createToken({ spiffeId: `spiffe://${TRUST_DOMAIN}/ha/${i}` })));
    const csrs = await Promise.all(tokens.map((token) => csrFor(token.spiffeId)));
    const issued = await Promise.all(tokens.map((token, i) => anonymous[i % 2]!.enroll(token.token, csrs[i]!.csr)));
    const serials = issued.map((certificate) => certificate.serial);
    expect(new Set(serials).size).toBe(count);
    const stored = await store.listCertificates({ kind: 'workload', limit: 1000 });
    expect(new Set(stored.map((record) => record.serial))).toEqual(new Set(serials));
  });

  it('a token redeemed on one process is refused on the other', async () => {
    const token = await admins[0]!.createToken({ spiffeId: `spiffe://${TRUST_DOMAIN}/ha/replay` });
    const { csr } = await csrFor(token.spiffeId);
    await anonymous[0]!.enroll(token.token, csr);
    await expect(anonymous[1]!.enroll(token.token, csr)).rejects.toMatchObject({ code: 'ERR_TOKEN_REUSED' });
    const refusals = await store.listAudit({ action: 'enroll', limit: 1000 });
    expect(refusals.filter((entry) => entry.code === 'ERR_TOKEN_REUSED' && entry.detail['jti'] === token.jti)).toHaveLength(1);
  });

  it('the same token sent to both processes at once is honoured exactly once', async () => {
    const rounds = 10;
    let wins = 0;
    for (let i = 0; i < rounds; i++) {
      const token = await admins[i % 2]!.createToken({ spiffeId: `spiffe://${TRUST_DOMAIN}/ha/race-${i}` });
      const { csr } = await csrFor(token.spiffeId);
      const results = await Promise.allSettled(anonymous.map((client) => client.enroll(token.token, csr)));
      const fulfilled = results.filter((result) => result.status === 'fulfilled');
      const rejected = results.filter((result): result is PromiseRejectedResult => result.status === 'rejected');
      expect(fulfilled).toHaveLength(1);
      expect(rejected.map((result) => (result.reason as { code: string }).code)).toEqual(['ERR_TOKEN_REUSED']);
      wins += fulfilled.length;
    }
    expect(wins).toBe(rounds);
    const raced = await store.listCertificates({ kind: 'workload', limit: 1000 });
    expect(raced.filter((record) => record.spiffeId.includes('/ha/race-'))).toHaveLength(rounds);
  });

  it('a revocation made on one process shows in the other\'s CRL and OCSP answers within seconds', async () => {
    const token = await admins[0]!.createToken({ spiffeId: `spiffe://${TRUST_DOMAIN}/ha/revoked` });
    const { csr } = await csrFor(token.spiffeId);
    const issued = await anonymous[0]!.enroll(token.token, csr);
    const issuerDer = pemBlocks(issued.certificatePem, 'CERTIFICATE')[1]!;
    const ocspStatus = async (url: string): Promise<string> => {
      const response = await fetchOcsp(url, createOcspRequest({ issuerCertDer: issuerDer, serials: [Buffer.from(issued.serial, 'hex')] }), bundlePem);
      return parseOcspResponse(response).answers[0]!.status.kind;
    };
    expect(await ocspStatus(urls[1]!)).toBe('good'); // now cached on process 1 as "good"
    const numberBefore = await crlOf(anonymous[1]!);

    const revokedAt = Date.now();
    await admins[0]!.revoke({ serial: issued.serial, reason: 'keyCompromise' });
    // Process 0 published before answering; process 1 learns of it by polling the store (1 s).
    expect((await crlOf(anonymous[0]!)).revoked.has(issued.serial)).toBe(true);
    let seen = await crlOf(anonymous[1]!);
    while (!seen.revoked.has(issued.serial) && Date.now() - revokedAt < 5_000) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      seen = await crlOf(anonymous[1]!);
    }
    expect(seen.revoked.has(issued.serial)).toBe(true);
    expect(seen.crlNumber! > numberBefore.crlNumber!).toBe(true);
    expect(await ocspStatus(urls[1]!)).toBe('revoked');
    // One numbering across both processes: once both have caught up they serve the same CRL
    // (a process adopts the other's rather than signing a second one for the same revocations).
    let [a, b] = [await crlOf(anonymous[0]!), await crlOf(anonymous[1]!)];
    while (a.crlNumber !== b.crlNumber && Date.now() - revokedAt < 5_000) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      [a, b] = [await crlOf(anonymous[0]!), await crlOf(anonymous[1]!)];
    }
    expect(a.crlNumber).toBe(b.crlNumber);
    expect(a.der.equals(b.der)).toBe(true);
  });

  it('both processes appended to one audit chain, which verifies and holds every audit row', async () => {
    const report = await verifyStoredAuditChain(store);
    expect(report.break).toBeUndefined();
    expect(report.ok).toBe(true);
    const everything = await store.listAudit({});
    expect(report.count).toBe(everything.length);
    // The enrolments of the first test alone are 40 rows written concurrently by both processes.
    expect(everything.filter((entry) => entry.action === 'enroll' && entry.outcome === 'ok').length).toBeGreaterThanOrEqual(40);
    expect(report.head).toEqual(await store.auditChainHead());
  });
});

/** The intermediate's CRL (the second PEM block; the root's comes first) as one process serves it. */
async function crlOf(client: CaClient): Promise<ParsedCrl> {
  const answer = await client.fetchCrls();
  if (answer === 'not-modified') throw new Error('unexpected 304');
  return parseCrl(pemBlocks(answer.pem, 'X509 CRL')[1]!);
}

function fetchOcsp(baseUrl: string, der: Buffer, bundlePem: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const req = request(new URL('/v1/ocsp', baseUrl), { method: 'POST', ca: bundlePem, agent: false, headers: { 'content-type': 'application/ocsp-request' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve(Buffer.concat(chunks)));
    });
    req.on('error', reject);
    req.end(der);
  });
}
