/** Who the gRPC caller is, read from the auth context grpc-js gives handlers and interceptors. */
import type { PeerCertificate } from 'node:tls';
import { expect, test } from 'vitest';
import { callerSpiffeId } from '../../src/sdk/grpc/authz.js';

const callWith = (subjectaltname: string | undefined) => ({
  getAuthContext: () => (subjectaltname === undefined ? {} : { sslPeerCertificate: { subjectaltname } as PeerCertificate }),
});

test.each<[string, string | undefined, string | undefined]>([
  ['ok/the one SPIFFE ID among other SANs', 'DNS:api, URI:spiffe://example.org/api, IP Address:127.0.0.1', 'spiffe://example.org/api'],
  ['fail/no verified certificate (grpc-js gives an empty auth context)', undefined, undefined],
  ['fail/no URI SAN', 'DNS:api', undefined],
  ['fail/two SPIFFE IDs are ambiguous', 'URI:spiffe://example.org/a, URI:spiffe://example.org/b', undefined],
  ['fail/an invalid SPIFFE ID is not an identity', 'URI:spiffe://example.org/a//b', undefined],
])('%s', (_name, subjectaltname, expected) => {
  expect(callerSpiffeId(callWith(subjectaltname))).toBe(expected);
});

test('fail/a call without an auth context', () => {
  expect(callerSpiffeId({ getAuthContext: () => null })).toBeUndefined();
});
