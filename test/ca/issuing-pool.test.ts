/**
 * Enrolment with CSR verification and signing on worker threads (IssuingPool): the same
 * certificate, the same refusals with their codes and audit entries, the current key after a
 * rotation, and a worker crash that issues nothing and leaves a working pool.
 */
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Authority } from '../../src/ca/authority.js';
import { IssuingPool } from '../../src/ca/issuing-pool.js';
import { Keyring } from '../../src/ca/keyring.js';
import { LiveKeyring } from '../../src/ca/live-keyring.js';
import { activateRotation, prepareRotation } from '../../src/ca/rotation.js';
import { csrDer, parseCsr, pemBlocks } from '../../src/pki/index.js';
import { csrFor, PASSPHRASE, startTestCa, TRUST_DOMAIN, type TestCa } from '../helpers/ca.js';
import { opensslCsr } from '../helpers/openssl.js';

let ca: TestCa;
let pool: IssuingPool;
beforeAll(async () => {
  ca = await startTestCa();
  pool = new IssuingPool(1);
});
afterAll(async () => {
  await pool?.close();
  await ca?.close();
});

const anonymous = { spiffeId: null, peer: '127.0.0.1' };
const pooled = (keyring: Authority['keyring'] | LiveKeyring = ca.running.keys): Authority =>
  new Authority({ store: ca.running.authority.store, keyring, lifetimes: ca.running.authority.lifetimes, issuingPool: pool });

async function tokenFor(authority: Authority, spiffeId: string, dnsNames: string[] = []): Promise<{ token: string; jti: string }> {
  return authority.createToken({ spiffeId, dnsNames }, { spiffeId: authority.adminId, peer: null });
}

const chainOf = (pem: string): X509Certificate[] => pemBlocks(pem, 'CERTIFICATE').map((der) => new X509Certificate(der));

async function lastAudit(action: string): Promise<{ outcome: string; code: string | null }> {
  const entries = await ca.running.authority.store.listAudit({ action });
  return entries[entries.length - 1]!;
}

describe('enrolment through the issuing pool', () => {
  it('ok/issues the certificate the in-thread path issues (same TBS), signed by the active intermediate', async () => {
    const authority = pooled();
    const spiffeId = `spiffe://${TRUST_DOMAIN}/pool/ok`;
    const { csr } = await csrFor(spiffeId, { dnsNames: ['pool.example.org'] });
    const { token } = await tokenFor(authority, spiffeId, ['pool.example.org']);
    const issued = await authority.enroll({ token, csr }, anonymous);

    const [leaf, intermediate] = chainOf(issued.certificatePem);
    expect(leaf!.verify(intermediate!.publicKey)).toBe(true);
    expect(leaf!.subjectAltName).toBe(`URI:${spiffeId}, DNS:pool.example.org`);
    expect(intermediate!.raw.equals(ca.running.keys.current().issuer.certDer)).toBe(true);
    // The in-thread encoder, given the same fields, produces the TBSCertificate the worker signed.
    const der = leaf!.raw;
    const tbs = ca.running.keys.current().issuer.leafIssuer.encodeTbs({
      serial: Buffer.from(issued.serial, 'hex'),
      spki: parseCsr(csr).spki,
      rsaKey: false,
      spiffeId,
      dnsNames: ['pool.example.org'],
      ipAddresses: [],
      notBefore: issued.notBefore,
      notAfter: issued.notAfter,
    });
    expect(der.includes(tbs)).toBe(true);
    const stored = await ca.running.authority.store.getCertificate(issued.serial);
    expect(stored?.der.equals(der)).toBe(true);
    expect(await lastAudit('enroll')).toMatchObject({ outcome: 'ok', code: null });
  });

  it('fail/refusals keep their codes, are audited, and leave the token unused', async () => {
    const authority = pooled();
    const spiffeId = `spiffe://${TRUST_DOMAIN}/pool/refused`;
    const cases: [string, string][] = [];
    // A CSR for another identity.
    cases.push([(await csrFor(`spiffe://${TRUST_DOMAIN}/pool/someone-else`)).csr, 'ERR_CSR_IDENTITY_MISMATCH']);
    // A SAN the token does not allow.
    cases.push([(await csrFor(spiffeId, { dnsNames: ['not-allowed.example.org'] })).csr, 'ERR_CSR_SAN_NOT_ALLOWED']);
    // A signature that does not verify: one byte of the signed part changed.
    const good = csrDer((await csrFor(spiffeId)).csr);
    const tampered = Buffer.from(good);
    const at = tampered.indexOf(Buffer.from('pool/refused')) + 5;
    tampered[at] = tampered[at]! ^ 0x01;
    cases.push([`-----BEGIN CERTIFICATE REQUEST-----\n${tampered.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`, 'ERR_CSR_SIGNATURE']);
    // A key the policy refuses (made by OpenSSL, a second implementation).
    cases.push([opensslCsr(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024'], `URI:${spiffeId}`).csrPem, 'ERR_KEY_WEAK']);
    const ecKey = ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'];
    cases.push([opensslCsr(ecKey, `URI:${spiffeId}`, ['-addext', 'basicConstraints=critical,CA:TRUE']).csrPem, 'ERR_CSR_CA_REQUESTED']);
    cases.push(['not a CSR', 'ERR_CSR_MALFORMED']);

    const { token, jti } = await tokenFor(authority, spiffeId);
    for (const [csr, code] of cases) {
      await expect(authority.enroll({ token, csr }, anonymous)).rejects.toMatchObject({ code });
      expect(await lastAudit('enroll')).toMatchObject({ outcome: 'refused', code });
    }
    expect((await ca.running.authority.store.getToken(jti))?.usedAt).toBeNull();
    // The same token still works with a good CSR.
    await expect(authority.enroll({ token, csr: (await csrFor(spiffeId)).csr }, anonymous)).resolves.toMatchObject({ spiffeId });
  });

  it('fail/a worker that dies mid-job gives ERR_INTERNAL, issues nothing, and is replaced', async () => {
    const authority = pooled();
    const spiffeId = `spiffe://${TRUST_DOMAIN}/pool/crash`;
    const { token, jti } = await tokenFor(authority, spiffeId);
    const { csr } = await csrFor(spiffeId);
    const before = (await ca.running.authority.store.listCertificates({ spiffeId })).length;
    pool.crashOne(); // the worker exits before it reads the job posted next
    await expect(authority.enroll({ token, csr }, anonymous)).rejects.toMatchObject({ code: 'ERR_INTERNAL' });
    expect(await lastAudit('enroll')).toMatchObject({ outcome: 'error', code: 'ERR_INTERNAL' });
    expect((await ca.running.authority.store.listCertificates({ spiffeId })).length).toBe(before);
    expect((await ca.running.authority.store.getToken(jti))?.usedAt).toBeNull();
    // The replacement worker has no issuer yet; it gets the current one with its first job.
    await expect(authority.enroll({ token, csr }, anonymous)).resolves.toMatchObject({ spiffeId });
  });

  it('ok/a rotation landing while the worker signs: the leaf is built again with the new active key', async () => {
    const store = ca.running.authority.store;
    const before = ca.running.keys.current();
    const prepared = await prepareRotation({ store, passphrase: PASSPHRASE });
    await activateRotation({ store });
    const after = await Keyring.load(store, PASSPHRASE);
    expect(after.issuer.record.id).toBe(prepared.intermediateId);
    const live = new LiveKeyring(before, () => Promise.resolve(after));
    const authority = pooled(live);
    const spiffeId = `spiffe://${TRUST_DOMAIN}/pool/rotation`;
    const { token } = await tokenFor(authority, spiffeId);
    const { csr } = await csrFor(spiffeId);

    // The job goes to the worker with the old keyring; the swap lands before the worker answers.
    const enrolment = authority.enroll({ token, csr }, anonymous);
    expect(await live.reload()).toBe(true);
    const issued = await enrolment;
    const [leaf, intermediate] = chainOf(issued.certificatePem);
    expect(intermediate!.raw.equals(after.issuer.certDer)).toBe(true);
    expect(leaf!.verify(new X509Certificate(after.issuer.certDer).publicKey)).toBe(true);
    expect(leaf!.verify(new X509Certificate(before.issuer.certDer).publicKey)).toBe(false);
    expect((await store.getCertificate(issued.serial))?.issuerKeyId).toBe(prepared.intermediateId);
  });
});
