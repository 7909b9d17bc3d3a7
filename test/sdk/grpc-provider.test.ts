/** The certificate provider over an identity source, without sockets (grpc-js is exercised elsewhere). */
import type { experimental } from '@grpc/grpc-js';
import { expect, test } from 'vitest';
import { IdentityCertificateProvider } from '../../src/sdk/grpc/provider.js';
import { MutableIdentity } from './grpc-fixtures.js';
import { decodeCheckRequest, decodeCheckResponse, encodeCheckRequest, encodeCheckResponse, SERVING_STATUS } from './grpc-health.js';

const identity = (n: number, bundle = 'bundle-1') => ({ certPem: `cert-${n}`, keyPem: `key-${n}`, bundlePem: bundle, spiffeId: 'spiffe://example.org/x' });
const tick = () => new Promise((resolve) => process.nextTick(resolve));

function listen(provider: IdentityCertificateProvider) {
  const seen: string[] = [];
  const ca: experimental.CaCertificateUpdateListener = (update) => seen.push(`ca:${update?.caCertificate.toString() ?? 'null'}`);
  const id: experimental.IdentityCertificateUpdateListener = (update) => seen.push(`id:${update?.certificate.toString() ?? 'null'}`);
  provider.addCaCertificateListener(ca);
  provider.addIdentityCertificateListener(id);
  return { seen, stop: () => (provider.removeCaCertificateListener(ca), provider.removeIdentityCertificateListener(id)) };
}

test('ok/first update on the next tick, then only the parts that changed', async () => {
  const source = new MutableIdentity(identity(1));
  const { seen } = listen(new IdentityCertificateProvider(source));
  expect(seen).toEqual([]); // never synchronously: grpc-js registers its watcher after this call
  await tick();
  expect(seen).toEqual(['ca:bundle-1', 'id:cert-1']);
  source.set(identity(2));
  expect(seen.slice(2)).toEqual(['id:cert-2']);
  source.set(identity(2, 'bundle-2'));
  expect(seen.slice(3)).toEqual(['ca:bundle-2']);
});

test('ok/a source that fails keeps the previous identity and reports the error', async () => {
  let failing = false;
  const source = new MutableIdentity(identity(1));
  const errors: unknown[] = [];
  const flaky = {
    current() {
      if (failing) throw new Error('half-written file');
      return source.current();
    },
    subscribe: (listener: () => void) => source.subscribe(listener),
  };
  const provider = new IdentityCertificateProvider(flaky, { onError: (error) => errors.push(error) });
  const { seen } = listen(provider);
  await tick();
  failing = true;
  source.set(identity(2));
  expect(seen).toEqual(['ca:bundle-1', 'id:cert-1']); // no null update: that would drop connections
  expect(errors).toHaveLength(1);
  failing = false;
  source.set(identity(3));
  expect(seen.slice(2)).toEqual(['id:cert-3']);
});

test('ok/subscribes while grpc-js listens and lets go after the last listener', async () => {
  const source = new MutableIdentity(identity(1));
  const provider = new IdentityCertificateProvider(source);
  const first = listen(provider);
  const second = listen(provider);
  expect(source.listeners).toBe(1);
  first.stop();
  expect(source.listeners).toBe(1);
  second.stop();
  expect(source.listeners).toBe(0);
  await tick();
  expect(first.seen).toEqual([]); // removed before the tick: nothing delivered to it
});

test('ok/hand-written Health messages have the protobuf encoding grpc-go expects', () => {
  expect(encodeCheckResponse({ status: SERVING_STATUS.SERVING })).toEqual(Buffer.from([0x08, 0x01]));
  expect(encodeCheckRequest({ service: '' })).toEqual(Buffer.alloc(0));
  expect(encodeCheckRequest({ service: 'api' })).toEqual(Buffer.from([0x0a, 0x03, 0x61, 0x70, 0x69]));
  expect(decodeCheckRequest(Buffer.from([0x0a, 0x03, 0x61, 0x70, 0x69]))).toEqual({ service: 'api' });
  // Unknown fields are skipped, absent fields are the proto3 default.
  expect(decodeCheckResponse(Buffer.from([0x10, 0x05, 0x08, 0x02]))).toEqual({ status: SERVING_STATUS.NOT_SERVING });
  expect(decodeCheckResponse(Buffer.alloc(0))).toEqual({ status: SERVING_STATUS.UNKNOWN });
});
