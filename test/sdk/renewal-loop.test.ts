/**
 * The renewal loop with a fake clock and a fake renewer (schedule, backoff, stop), then
 * caIdentity against the real test CA with the same fake clock: enrol, renew when due, publish.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Identity } from '../../src/sdk/identity.js';
import { caIdentity } from '../../src/sdk/sources/ca.js';
import { renewAt } from '../../src/sdk/sources/renew-schedule.js';
import { startRenewalLoop } from '../../src/sdk/sources/renewal-loop.js';
import { startTestCa, type TestCa } from '../helpers/ca.js';
import { expectCodeAsync } from '../pki/support.js';
import { FakeClock } from './fake-clock.js';
import { capturedLogger, materialFor, withDeadline } from './support.js';

let ca: TestCa;
let first: Identity;
let second: Identity;

beforeAll(async () => {
  ca = await startTestCa();
  first = new Identity(await materialFor(ca, 'spiffe://example.org/loop'));
  second = new Identity(await materialFor(ca, 'spiffe://example.org/loop'));
});
afterAll(async () => {
  await ca.close();
});

/** A renewer the test answers by hand. */
function manualRenewer() {
  const calls: { current: Identity; resolve: (identity: Identity) => void; reject: (error: Error) => void }[] = [];
  let wake: (() => void) | undefined;
  return {
    calls,
    renew: (current: Identity) =>
      new Promise<Identity>((resolve, reject) => {
        calls.push({ current, resolve, reject });
        wake?.();
      }),
    /** Resolves once the renewer has been called `count` times in all. */
    called: (count: number) =>
      withDeadline(
        new Promise<void>((resolve) => {
          const check = () => (calls.length >= count ? resolve() : (wake = check));
          check();
        }),
        5000,
        `renewal call #${count}`,
      ),
  };
}

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('startRenewalLoop', () => {
  it('renews at renewAt(notBefore, notAfter, jitter) with the injected random, then from the new certificate', async () => {
    const clock = new FakeClock(first.notBefore.getTime());
    const renewer = manualRenewer();
    const renewed: string[] = [];
    const loop = startRenewalLoop({ initial: first, renew: renewer.renew, onRenewed: (i) => renewed.push(i.serial), onError: (e) => { throw e; }, clock: clock.clock, timers: clock, random: () => 0.75 });

    const due = renewAt(first.notBefore, first.notAfter, 0.5).getTime(); // random 0.75 → jitter 0.5
    expect(loop.nextAttemptAt()?.getTime()).toBe(due);
    clock.advanceTo(due - 1);
    expect(renewer.calls).toHaveLength(0);
    clock.advanceTo(due);
    await renewer.called(1);
    expect(renewer.calls[0]!.current).toBe(first);

    renewer.calls[0]!.resolve(second);
    await settle();
    expect(renewed).toEqual([second.serial]);
    expect(loop.nextAttemptAt()?.getTime()).toBe(renewAt(second.notBefore, second.notAfter, 0.5).getTime());
    loop.stop();
    expect(clock.pending).toBe(0);
  });

  it('retries with growing backoff while renewal fails, reporting each failure, and keeps going after success', async () => {
    const start = first.notBefore.getTime();
    const clock = new FakeClock(start);
    const renewer = manualRenewer();
    const errors: string[] = [];
    const loop = startRenewalLoop({ initial: first, renew: renewer.renew, onRenewed: () => undefined, onError: (e) => errors.push(e.message), clock: clock.clock, timers: clock, random: () => 0 });

    const delays: number[] = [];
    for (let failure = 0; failure < 4; failure += 1) {
      clock.advanceTo(clock.nextAt()!);
      await renewer.called(failure + 1);
      renewer.calls[failure]!.reject(new Error(`CA down ${failure}`));
      await settle();
      delays.push(clock.nextAt()! - clock.now);
    }
    expect(errors).toEqual(['CA down 0', 'CA down 1', 'CA down 2', 'CA down 3']);
    expect(delays).toEqual([500, 1000, 2000, 4000]); // 1 s doubling, scaled by random 0 → 1/2

    clock.advanceTo(clock.nextAt()!);
    await renewer.called(5);
    renewer.calls[4]!.resolve(second);
    await settle();
    expect(loop.nextAttemptAt()?.getTime()).toBe(renewAt(second.notBefore, second.notAfter, -1).getTime());
    loop.stop();
  });

  it('stop() cancels the timer, and a renewal finishing after stop is dropped', async () => {
    const clock = new FakeClock(first.notBefore.getTime());
    const renewer = manualRenewer();
    const renewed: string[] = [];
    const loop = startRenewalLoop({ initial: first, renew: renewer.renew, onRenewed: (i) => renewed.push(i.serial), onError: () => undefined, clock: clock.clock, timers: clock });
    clock.advanceTo(clock.nextAt()!);
    await renewer.called(1);
    loop.stop();
    renewer.calls[0]!.resolve(second);
    await settle();
    expect(renewed).toEqual([]);
    expect(loop.nextAttemptAt()).toBeUndefined();
    expect(clock.pending).toBe(0);
  });

  it('a due time beyond the 24.8-day timer limit is reached in several waits, not fired at once', () => {
    const year = 365 * 24 * 3600_000;
    const longLived = { ...first, notBefore: new Date(0), notAfter: new Date(year) } as unknown as Identity;
    const clock = new FakeClock(0);
    const renewer = manualRenewer();
    const loop = startRenewalLoop({ initial: longLived, renew: renewer.renew, onRenewed: () => undefined, onError: () => undefined, clock: clock.clock, timers: clock, random: () => 0.5 });
    expect(clock.nextAt()).toBe(2 ** 31 - 1);
    clock.advanceTo(2 ** 31 - 1);
    expect(renewer.calls).toHaveLength(0);
    expect(loop.nextAttemptAt()?.getTime()).toBe(renewAt(new Date(0), new Date(year), 0).getTime());
    loop.stop();
  });
});

describe('caIdentity (real CA, fake clock)', () => {
  it('enrols with a token, renews with a new key when due, and publishes the new certificate', async () => {
    const { token } = await ca.admin.createToken({ spiffeId: 'spiffe://example.org/in-process' });
    const clock = new FakeClock(Date.now());
    const source = await caIdentity({ url: ca.url, bundlePem: ca.bundlePem, token, clock: clock.clock, timers: clock, random: () => 0.5 });
    try {
      const enrolled = source.current();
      expect(enrolled.spiffeId).toBe('spiffe://example.org/in-process');
      expect(source.nextRenewalAt()?.getTime()).toBe(renewAt(enrolled.notBefore, enrolled.notAfter, 0).getTime());

      const published = new Promise<Identity>((resolve) => source.subscribe(resolve));
      clock.advanceTo(source.nextRenewalAt()!.getTime());
      const renewed = await withDeadline(published, 15_000, 'renewed identity');
      expect(renewed.spiffeId).toBe(enrolled.spiffeId);
      expect(renewed.serial).not.toBe(enrolled.serial);
      expect(renewed.keyPem).not.toBe(enrolled.keyPem);
      expect(source.current()).toBe(renewed);
      // The next round is planned from the new certificate's own dates.
      expect(source.nextRenewalAt()!.getTime()).toBe(renewAt(renewed.notBefore, renewed.notAfter, 0).getTime());
    } finally {
      source.close();
    }
  });

  it('a renewal the CA refuses is reported with its code and the current identity kept', async () => {
    const { token } = await ca.admin.createToken({ spiffeId: 'spiffe://example.org/to-revoke' });
    const clock = new FakeClock(Date.now());
    const log = capturedLogger();
    const errors: Error[] = [];
    const source = await caIdentity({ url: ca.url, bundlePem: ca.bundlePem, token, clock: clock.clock, timers: clock, logger: log.logger, onError: (e) => errors.push(e) });
    try {
      const enrolled = source.current();
      await ca.admin.revoke({ serial: enrolled.serial, reason: 'keyCompromise' });
      const reported = log.next((line) => line.source === 'CA identity', 15_000);
      clock.advanceTo(source.nextRenewalAt()!.getTime());
      const line = await reported;
      expect(line.level).toBe(40);
      expect(errors[0]).toMatchObject({ code: 'ERR_CERT_REVOKED' });
      // Kept: the same certificate (the identity object itself is new: it carries the CRL that revoked it).
      expect(source.current().serial).toBe(enrolled.serial);
      const deadline = Date.now() + 5_000; // the CA's watch stream brings the CRL that revoked it
      while (!source.current().isRevoked(enrolled.serial) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(source.current().isRevoked(enrolled.serial)).toBe(true);
      expect(source.nextRenewalAt()!.getTime()).toBeGreaterThan(clock.now); // retrying with backoff
    } finally {
      source.close();
    }
  });

  it('a spent token fails the initial enrolment with its code', async () => {
    const { token } = await ca.admin.createToken({ spiffeId: 'spiffe://example.org/once' });
    const source = await caIdentity({ url: ca.url, bundlePem: ca.bundlePem, token });
    source.close();
    await expectCodeAsync(caIdentity({ url: ca.url, bundlePem: ca.bundlePem, token }), 'ERR_TOKEN_REUSED');
  });
});
