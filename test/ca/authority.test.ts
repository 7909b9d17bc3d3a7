/**
 * Authority behaviour that the HTTP tests cannot reach: the serial-collision retry (serials are
 * 126 random bits, so a collision has to be injected).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Authority } from '../../src/ca/authority.js';
import { randomSerial } from '../../src/pki/index.js';
import { csrFor, startTestCa, TRUST_DOMAIN, type TestCa } from '../helpers/ca.js';

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
