/** Identity validation (ok/… and fail/… cases) and the static source's updates. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Identity, identityProblem, type IdentityMaterial } from '../../src/sdk/identity.js';
import { staticIdentity } from '../../src/sdk/sources/static.js';
import { opensslSelfSigned } from '../helpers/openssl.js';
import { startTestCa, type TestCa } from '../helpers/ca.js';
import { expectCode } from '../pki/support.js';
import { capturedLogger, materialFor } from './support.js';

let ca: TestCa;
let good: IdentityMaterial & { serial: string };
let other: IdentityMaterial & { serial: string };

beforeAll(async () => {
  ca = await startTestCa();
  good = await materialFor(ca, 'spiffe://example.org/billing/api');
  other = await materialFor(ca, 'spiffe://example.org/orders');
});
afterAll(async () => {
  await ca.close();
});

describe('Identity', () => {
  it('ok/enrolled material: SPIFFE ID, serial, dates, trust domain', () => {
    const identity = new Identity(good);
    expect(identity.spiffeId).toBe('spiffe://example.org/billing/api');
    expect(identity.trustDomain).toBe('example.org');
    expect(identity.serial).toBe(good.serial);
    expect(identity.notAfter.getTime()).toBeGreaterThan(identity.notBefore.getTime());
    expect(identity.crlPem).toBeUndefined();
    expect(identity.keyPem).toBe(good.keyPem);
  });

  it('ok/never shows the key when logged or serialised', () => {
    const identity = new Identity(good);
    const json = JSON.stringify(identity);
    expect(json).toContain(good.serial);
    expect(json).not.toContain('PRIVATE KEY');
    expect(Object.keys(identity)).not.toContain('keyPem');
  });

  const cases: [string, (m: IdentityMaterial) => IdentityMaterial, 'cert' | 'key' | 'bundle' | 'crl'][] = [
    ['fail/no certificate', (m) => ({ ...m, certPem: 'nothing here' }), 'cert'],
    ['fail/certificate cut short', (m) => ({ ...m, certPem: m.certPem.slice(0, m.certPem.length - 40) }), 'cert'],
    ['fail/certificate garbage inside the block', (m) => ({ ...m, certPem: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' }), 'cert'],
    ['fail/key of another certificate', (m) => ({ ...m, keyPem: other.keyPem }), 'key'],
    ['fail/key cut short', (m) => ({ ...m, keyPem: m.keyPem.slice(0, 60) }), 'key'],
    ['fail/key garbage', (m) => ({ ...m, keyPem: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n' }), 'key'],
    ['fail/empty bundle', (m) => ({ ...m, bundlePem: '' }), 'bundle'],
    ['fail/bundle cut short', (m) => ({ ...m, bundlePem: m.bundlePem.slice(0, 100) }), 'bundle'],
    ['fail/CRL that is not one', (m) => ({ ...m, crlPem: '-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n' }), 'crl'],
    ['fail/CRL text without a block', (m) => ({ ...m, crlPem: 'not a crl' }), 'crl'],
  ];
  for (const [name, mutate, part] of cases) {
    it(`${name} → ERR_IDENTITY_INVALID naming the ${part}`, () => {
      const material = mutate(good);
      expect(identityProblem(material)?.part).toBe(part);
      expectCode(() => new Identity(material), 'ERR_IDENTITY_INVALID');
    });
  }

  it('fail/a leaf without a SPIFFE ID, or with two', () => {
    const noId = opensslSelfSigned('https://example.org/not-spiffe');
    expect(identityProblem({ ...noId, bundlePem: good.bundlePem })).toMatchObject({ part: 'cert', message: expect.stringContaining('exactly one SPIFFE ID') as unknown });
    const twoIds = opensslSelfSigned('spiffe://example.org/a,URI:spiffe://example.org/b');
    expect(identityProblem({ ...twoIds, bundlePem: good.bundlePem })).toMatchObject({ part: 'cert', message: expect.stringContaining('names 2') as unknown });
  });

  it('misuse/non-string fields are a TypeError', () => {
    expect(() => new Identity({ ...good, keyPem: undefined as unknown as string })).toThrow(TypeError);
  });

  it('sameMaterialAs compares the PEM texts', () => {
    expect(new Identity(good).sameMaterialAs(new Identity({ ...good }))).toBe(true);
    expect(new Identity(good).sameMaterialAs(new Identity(other))).toBe(false);
  });
});

describe('staticIdentity', () => {
  it('update() publishes to every subscriber; unsubscribe stops one', () => {
    const source = staticIdentity(good);
    const seen: string[] = [];
    const seenToo: string[] = [];
    const stop = source.subscribe((identity) => seen.push(identity.serial));
    source.subscribe((identity) => seenToo.push(identity.serial));
    source.update(other);
    expect(source.current().serial).toBe(other.serial);
    stop();
    source.update(good);
    expect(seen).toEqual([other.serial]);
    expect(seenToo).toEqual([other.serial, good.serial]);
  });

  it('a bad update throws ERR_IDENTITY_INVALID and keeps the current identity, telling nobody', () => {
    const source = staticIdentity(good);
    const seen: string[] = [];
    source.subscribe((identity) => seen.push(identity.serial));
    expectCode(() => source.update({ ...other, keyPem: good.keyPem }), 'ERR_IDENTITY_INVALID');
    expect(source.current().serial).toBe(good.serial);
    expect(seen).toEqual([]);
  });

  it('a throwing subscriber is reported and does not stop the others', async () => {
    const log = capturedLogger();
    const errors: Error[] = [];
    const source = staticIdentity(good, { logger: log.logger, onError: (error) => errors.push(error) });
    const seen: string[] = [];
    source.subscribe(() => {
      throw new Error('subscriber broke');
    });
    source.subscribe((identity) => seen.push(identity.serial));
    source.update(other);
    expect(seen).toEqual([other.serial]);
    expect(errors.map((error) => error.message)).toEqual(['subscriber broke']);
    await log.next((line) => line.msg.includes('subscriber broke'));
  });
});
