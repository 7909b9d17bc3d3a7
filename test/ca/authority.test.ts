/**
 * Authority behaviour that the HTTP tests cannot reach: the serial-collision retry (serials are
 * 126 random bits, so a collision has to be injected), and where the CSR check and the leaf
 * signature run (in place when alone, on the thread pool beside other issuances).
 */
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Authority } from '../../src/ca/authority.js';
import { LeafIssuer, randomSerial } from '../../src/pki/index.js';
import { csrFor, startTestCa, TRUST_DOMAIN, type TestCa } from '../helpers/ca.js';
import { runWithFiles } from '../helpers/openssl.js';

describe('serial collisions', () => {
  let ca: TestCa;
  beforeAll(async () => {
    ca = await startTestCa();
  });
  afterAll(async () => {
    await ca?.close();
  });

  function authorityWithSerials(serials: Buffer[]): Authority {
    const { store, keyring, lifetimes } = ca.running.authority;
    let next = 0;
    return new Authority({ store, keyring, lifetimes, serials: () => serials[Math.min(next++, serials.length - 1)]! });
  }
  const admin = (authority: Authority) => ({ spiffeId: authority.adminId, peer: null });
  const anonymous = { spiffeId: null, peer: '127.0.0.1' };

  it('ok/a colliding serial is replaced by a fresh one and the enrolment succeeds', async () => {
    const spiffeId = `spiffe://${TRUST_DOMAIN}/collide`;
    const taken = randomSerial();
    const first = authorityWithSerials([taken]);
    const { token: t1 } = await first.createToken({ spiffeId }, admin(first));
    await first.enroll({ token: t1, csr: (await csrFor(spiffeId)).csr }, anonymous);

    const fresh = randomSerial();
    const second = authorityWithSerials([taken, fresh]);
    const { token: t2 } = await second.createToken({ spiffeId }, admin(second));
    const issued = await second.enroll({ token: t2, csr: (await csrFor(spiffeId)).csr }, anonymous);
    expect(issued.serial).toBe(fresh.toString('hex'));
  });

  it('fail/three collisions in a row give ERR_SERIAL_COLLISION and leave the token unused', async () => {
    const spiffeId = `spiffe://${TRUST_DOMAIN}/collide-always`;
    const taken = randomSerial();
    const first = authorityWithSerials([taken]);
    const { token: t1 } = await first.createToken({ spiffeId }, admin(first));
    await first.enroll({ token: t1, csr: (await csrFor(spiffeId)).csr }, anonymous);

    const stuck = authorityWithSerials([taken]);
    const { token, jti } = await stuck.createToken({ spiffeId }, admin(stuck));
    await expect(stuck.enroll({ token, csr: (await csrFor(spiffeId)).csr }, anonymous)).rejects.toMatchObject({ code: 'ERR_SERIAL_COLLISION' });
    expect((await ca.running.authority.store.getToken(jti))?.usedAt).toBeNull();
  });
});

describe('where issuance cryptography runs', () => {
  let ca: TestCa;
  beforeAll(async () => {
    ca = await startTestCa();
  });
  afterAll(async () => {
    vi.restoreAllMocks();
    await ca?.close();
  });
  const anonymous = { spiffeId: null, peer: '127.0.0.1' };

  it('ok/a lone enrolment signs in place; concurrent ones sign on the thread pool; a bad CSR signature is refused either way', async () => {
    const authority = ca.running.authority;
    const admin = { spiffeId: authority.adminId, peer: null };
    const inPlace = vi.spyOn(LeafIssuer.prototype, 'issue');
    const onPool = vi.spyOn(LeafIssuer.prototype, 'issueAsync');
    const ticket = async (name: string, csr?: string) => {
      const spiffeId = `spiffe://${TRUST_DOMAIN}/where/${name}`;
      const { token } = await authority.createToken({ spiffeId }, admin);
      return { token, csr: csr ?? (await csrFor(spiffeId)).csr };
    };
    const verifies = (issued: { certificatePem: string }) => {
      const [leaf, intermediate] = issued.certificatePem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g)!;
      return new X509Certificate(leaf).verify(new X509Certificate(intermediate!).publicKey);
    };

    expect(verifies(await authority.enroll(await ticket('alone'), anonymous))).toBe(true);
    expect([inPlace.mock.calls.length, onPool.mock.calls.length]).toEqual([1, 0]);

    inPlace.mockClear();
    const badCsr = flipLastByte((await csrFor(`spiffe://${TRUST_DOMAIN}/where/bad`)).csr);
    const tickets = await Promise.all([...Array.from({ length: 6 }, (_, i) => ticket(`together-${i}`)), ticket('bad', badCsr)]);
    // All seven start in one turn, so each signs while the others are under way.
    const results = await Promise.allSettled(tickets.map((request) => authority.enroll(request, anonymous)));
    const issued = results.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
    expect(issued).toHaveLength(6);
    expect(issued.every(verifies)).toBe(true);
    // A second implementation on leaves signed on the pool: openssl's strict chain check.
    for (const certificate of issued.slice(0, 2)) {
      const [leafPem, intermediatePem] = certificate.certificatePem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g)!;
      for (const purpose of ['sslclient', 'sslserver']) {
        const result = runWithFiles('openssl', () => ['verify', '-x509_strict', '-purpose', purpose, '-CAfile', 'bundle.pem', '-untrusted', 'int.pem', 'leaf.pem'], {
          'bundle.pem': certificate.bundlePem,
          'int.pem': `${intermediatePem}\n`,
          'leaf.pem': `${leafPem}\n`,
        });
        expect(result.output).toContain('leaf.pem: OK');
      }
    }
    expect(onPool.mock.calls.length).toBeGreaterThan(0);
    expect(onPool.mock.calls.length + inPlace.mock.calls.length).toBe(6);
    expect(results[6]).toMatchObject({ status: 'rejected', reason: { code: 'ERR_CSR_SIGNATURE' } });
    const refusals = await authority.store.listAudit({ action: 'enroll', outcome: 'refused', limit: 10 });
    expect(refusals.map((entry) => entry.code)).toContain('ERR_CSR_SIGNATURE');
  });
});

/** The CSR with the last byte of its signature changed. */
function flipLastByte(csrPem: string): string {
  const der = Buffer.from(csrPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  der[der.length - 1] = der[der.length - 1]! ^ 0x01;
  return `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
}
