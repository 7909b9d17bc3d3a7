/**
 * Where an enrolment's time goes, stage by stage, in one process with no HTTP: the CA's own code
 * (Authority, Keyring, store on SQLite in a temp dir) timed one stage at a time, then the whole
 * `Authority.enroll`. Comparing with bench/run.ts's HTTP figures leaves what TLS, HTTP and
 * fastify cost. A diagnostic, not part of `npm run bench`:
 *
 *   npx tsx bench/issuance-stages.ts
 */
import { createPublicKey, randomBytes, sign, verify } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Authority } from '../src/ca/authority.js';
import { readCaFile, resolveCaConfig } from '../src/ca/config.js';
import { initDataDir } from '../src/ca/data-dir.js';
import { Keyring } from '../src/ca/keyring.js';
import { verifyToken } from '../src/ca/tokens.js';
import { createCsr, csrDer, generateKeyPair, parseCsr, randomSerial, serialHex } from '../src/pki/index.js';
import { readChildren, readWhole } from '../src/pki/der.js';
import { OID } from '../src/pki/oids.js';
import { verifyWith } from '../src/pki/signing.js';
import { openStore } from '../src/store/index.js';

const COUNT = 1000;
const IDENTITIES = 64;
const TRUST_DOMAIN = 'bench.tlsmesh.test';

/** Mean µs per call of `work(i)` over `count` calls, after a warm-up of a tenth. */
async function microsPerCall(count: number, work: (index: number) => unknown): Promise<number> {
  for (let i = 0; i < count / 10; i++) await work(i);
  const start = performance.now();
  for (let i = 0; i < count; i++) await work(i);
  return ((performance.now() - start) * 1000) / count;
}

async function main(): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'tlsmesh-stages-'));
  const passphrase = randomBytes(24).toString('base64url');
  try {
    const dataDir = join(root, 'data');
    await initDataDir({ dataDir, trustDomain: TRUST_DOMAIN, passphrase, publicUrl: `https://ca.${TRUST_DOMAIN}:8443` });
    const config = resolveCaConfig(dataDir, await readCaFile(dataDir), {}, {});
    const store = await openStore(config.store);
    try {
      const keyring = await Keyring.load(store, passphrase, { crlUrl: `${config.publicUrl}/v1/crl`, ocspUrl: `${config.publicUrl}/v1/ocsp` });
      const authority = new Authority({ store, keyring });
      const admin = { spiffeId: authority.adminId, peer: null };
      const ids = Array.from({ length: IDENTITIES }, (_, i) => `spiffe://${TRUST_DOMAIN}/bench/w${i}`);
      const csrs = await Promise.all(ids.map((spiffeId) => createCsr({ privateKey: generateKeyPair('p256').privateKey, spiffeId })));
      // Enough tokens for the warm-up and the timed calls of both stages that redeem them.
      const tokens: string[] = [];
      for (let i = 0; i < 2.2 * COUNT + 2; i++) tokens.push((await authority.createToken({ spiffeId: ids[i % IDENTITIES]! }, admin)).token);
      const parsed = csrs.map((csr) => parseCsr(csr));
      const rows: [string, number][] = [];
      const stage = async (name: string, work: (index: number) => unknown): Promise<void> => {
        rows.push([name, await microsPerCall(COUNT, work)]);
      };
      const keyFor = (kid: string): ReturnType<typeof keyring.tokenKey> => keyring.tokenKey(kid);

      const raw = generateKeyPair('p256');
      const tbs = randomBytes(450);
      const rawSignature = sign('sha256', tbs, raw.privateKey);
      await stage('raw: node:crypto ECDSA P-256 sign', () => sign('sha256', tbs, raw.privateKey));
      await stage('raw: node:crypto ECDSA P-256 verify', () => verify('sha256', tbs, raw.publicKey, rawSignature));
      await stage('token: verifyToken (HS256, node:crypto HMAC)', (i) => verifyToken(tokens[i]!, { trustDomain: TRUST_DOMAIN, now: new Date(), keyFor }));
      await stage('CSR: createPublicKey(SPKI DER)', (i) => createPublicKey({ key: parsed[i % IDENTITIES]!.spki, format: 'der', type: 'spki' }));
      // The alternative to the DER decoder: the same key from its coordinates (what a fix would do).
      const jwks = parsed.map((csr) => csr.publicKey.export({ format: 'jwk' }));
      await stage('CSR: createPublicKey(JWK), the same key', (i) => createPublicKey({ key: jwks[i % IDENTITIES]!, format: 'jwk' }));
      // CertificationRequestInfo and signature, cut out as parseCsr does, to time the verify alone.
      const signed = csrs.map((csr) => {
        const [info, , signature] = readChildren(readWhole(csrDer(csr), 'ERR_CSR_MALFORMED'), 'ERR_CSR_MALFORMED');
        return { info: info!.raw, signature: signature!.content.subarray(1) };
      });
      await stage('CSR: ECDSA verify, key ready (verifyWith)', (i) => {
        const { info, signature } = signed[i % IDENTITIES]!;
        if (!verifyWith(OID.ecdsaWithSha256, parsed[i % IDENTITIES]!.publicKey, info, signature)) throw new Error('CSR signature did not verify');
      });
      await stage('CSR: parseCsr (all: parse, key, policy, verify)', (i) => parseCsr(csrs[i % IDENTITIES]!));
      const now = new Date();
      const request = (i: number) => ({
        serial: randomSerial(),
        spki: parsed[i % IDENTITIES]!.spki,
        rsaKey: false,
        spiffeId: ids[i % IDENTITIES]!,
        dnsNames: [],
        ipAddresses: [],
        notBefore: now,
        notAfter: new Date(now.getTime() + 86_400_000),
      });
      await stage('leaf: LeafIssuer.issue (encode + sign)', (i) => keyring.issuer.leafIssuer.issue(request(i)));
      const leaf = keyring.issuer.leafIssuer.issue(request(0));
      await stage('answer: chain PEM + JSON.stringify', () => JSON.stringify({ serial: 'x', certificatePem: keyring.chainPem(leaf), bundlePem: keyring.bundlePem }));
      let next = 0;
      await stage('store: token redeem + cert insert + audit (1 transaction)', async (i) => {
        const token = tokens[next++]!; // the store does not check the token's identity
        const { jti } = verifyToken(token, { trustDomain: TRUST_DOMAIN, now: new Date(), keyFor });
        const serial = serialHex(randomSerial());
        const at = new Date();
        await store.redeemTokenAndInsertCertificate(
          jti,
          at,
          { serial, spiffeId: ids[i % IDENTITIES]!, dnsNames: [], ipAddresses: [], notBefore: at, notAfter: at, issuerKeyId: keyring.issuer.record.id, kind: 'workload', status: 'valid', revokedAt: null, revocationReason: null, der: leaf, createdAt: at, origin: `enroll:${jti}` },
          { at, actor: 'peer:127.0.0.1', action: 'enroll', subject: ids[i % IDENTITIES]!, outcome: 'ok', code: null, detail: { jti, serial }, peer: '127.0.0.1' },
        );
      });
      const tokenVerify = rows.find(([name]) => name.startsWith('token:'))![1];
      rows[rows.length - 1]![1] -= tokenVerify; // the redeem stage verified a token only to learn its jti
      await stage('Authority.enroll, in process (all of the above)', () => {
        const index = next++; // token k names identity k mod IDENTITIES
        return authority.enroll({ token: tokens[index]!, csr: csrs[index % IDENTITIES]! }, { spiffeId: null, peer: '127.0.0.1' });
      });

      const width = Math.max(...rows.map(([name]) => name.length));
      console.log(`${'stage'.padEnd(width)}  µs/call`);
      for (const [name, micros] of rows) console.log(`${name.padEnd(width)}  ${micros.toFixed(1).padStart(7)}`);
      const enroll = rows[rows.length - 1]![1];
      console.log(`${'=> in-process ceiling (1 / enroll)'.padEnd(width)}  ${Math.round(1e6 / enroll)} certs/s`);
    } finally {
      await store.close();
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
