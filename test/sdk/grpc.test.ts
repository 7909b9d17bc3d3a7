/**
 * grpc-js client ↔ grpc-js server over mutual TLS with certificates from a real test CA, and every
 * way in that must be refused.
 */
import { X509Certificate } from 'node:crypto';
import { ChannelCredentials, credentials, status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { isTlsmeshError } from '../../src/errors.js';
import { type GrpcDenial, grpcAuthzInterceptor } from '../../src/sdk/grpc/authz.js';
import { grpcChannelCredentials, grpcChannelOptions, grpcServerCredentials, grpcServerOptions } from '../../src/sdk/grpc/credentials.js';
import { staticIdentity } from '../../src/sdk/sources/static.js';
import { checkServerSpiffeId, spiffeMatcher, type SpiffeMatchers } from '../../src/sdk/spiffe-matcher.js';
import { startTestCa, type TestCa, type Workload } from '../helpers/ca.js';
import { opensslSelfSigned } from '../helpers/openssl.js';
import { enrolled, identityOf, MutableIdentity, startGrpcServer, type TestServer } from './grpc-fixtures.js';
import { SERVING_STATUS, TestClient } from './grpc-health.js';

const SERVER_ID = 'spiffe://example.org/svc/server';
const CLIENT_ID = 'spiffe://example.org/svc/client';
const INTRUDER_ID = 'spiffe://example.org/svc/intruder';

let ca: TestCa;
let serverWorkload: Workload;
let clientWorkload: Workload;
let intruderWorkload: Workload;
let server: TestServer;
const denials: GrpcDenial[] = [];
const clients: TestClient[] = [];

function client(credentialsForCall: ChannelCredentials): TestClient {
  const made = new TestClient(server.address, credentialsForCall, grpcChannelOptions());
  clients.push(made);
  return made;
}

function mtlsClient(workload: Workload, expect: SpiffeMatchers = SERVER_ID): TestClient {
  return client(grpcChannelCredentials(new MutableIdentity(identityOf(workload, ca.bundlePem)), { expect }));
}

beforeAll(async () => {
  ca = await startTestCa();
  [serverWorkload, clientWorkload, intruderWorkload] = await Promise.all([
    enrolled(ca, SERVER_ID),
    enrolled(ca, CLIENT_ID),
    enrolled(ca, INTRUDER_ID),
  ]);
  const serverSource = new MutableIdentity(identityOf(serverWorkload, ca.bundlePem));
  server = await startGrpcServer(grpcServerCredentials(serverSource), {
    serverOptions: grpcServerOptions(serverSource),
    interceptors: [
      grpcAuthzInterceptor({
        services: {
          'grpc.health.v1.Health': [{ trustDomain: 'example.org' }],
          'tlsmesh.test.Who': [{ pathPrefix: 'spiffe://example.org/svc' }],
        },
        methods: { '/tlsmesh.test.Who/Admin': CLIENT_ID },
        onDeny: (denial) => denials.push(denial),
      }),
    ],
  });
});

afterAll(async () => {
  for (const made of clients) made.close();
  server?.close();
  await ca?.close();
});

describe('ok: mutual TLS between grpc-js client and server', () => {
  test("ok/health check over mTLS from the SDK's static identity source; the handler sees the caller SPIFFE ID", async () => {
    const before = server.calls.length;
    const source = staticIdentity({ certPem: clientWorkload.certPem, keyPem: clientWorkload.keyPem, bundlePem: ca.bundlePem });
    const made = client(grpcChannelCredentials(source, { expect: SERVER_ID }));
    expect(await made.check()).toEqual({ ok: true, value: { status: SERVING_STATUS.SERVING } });
    const who = await made.who();
    expect(who.ok && who.value.spiffeId).toBe(CLIENT_ID);
    expect(server.calls.slice(before).map((call) => call.spiffeId)).toEqual([CLIENT_ID, CLIENT_ID]);
  });

  test.each<[string, SpiffeMatchers]>([
    ['ok/exact server ID', SERVER_ID],
    ['ok/server trust domain', { trustDomain: 'example.org' }],
    ['ok/server path prefix', { pathPrefix: 'spiffe://example.org/svc' }],
  ])('%s', async (_name, expectServer) => {
    expect((await mtlsClient(clientWorkload, expectServer).check()).ok).toBe(true);
  });
});

describe('fail: refused connections never reach a handler', () => {
  async function expectRefused(made: TestClient, details?: RegExp) {
    const before = server.calls.length;
    const result = await made.check();
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.error.code).toBe(status.UNAVAILABLE);
      if (details) expect(result.error.details).toMatch(details);
    }
    expect(server.calls.length).toBe(before);
  }

  test('fail/plaintext (insecure channel)', async () => {
    await expectRefused(client(credentials.createInsecure()));
  });

  test('fail/TLS without a client certificate', async () => {
    const noCert = ChannelCredentials.createSsl(Buffer.from(ca.bundlePem), null, null, { checkServerIdentity: checkServerSpiffeId(spiffeMatcher(SERVER_ID)) });
    await expectRefused(client(noCert));
  });

  test("fail/client certificate from another CA, naming a trusted client's ID", async () => {
    const stranger = opensslSelfSigned(CLIENT_ID);
    const source = new MutableIdentity({ certPem: stranger.certPem, keyPem: stranger.keyPem, bundlePem: ca.bundlePem, spiffeId: CLIENT_ID });
    await expectRefused(client(grpcChannelCredentials(source, { expect: SERVER_ID })));
  });

  test.each<[string, SpiffeMatchers]>([
    ['fail/server ID is not the exact one expected', 'spiffe://example.org/svc/other'],
    ['fail/server in another trust domain', { trustDomain: 'example.com' }],
    ['fail/server outside the path prefix (segment boundary)', { pathPrefix: 'spiffe://example.org/sv' }],
  ])('%s', async (_name, expectServer) => {
    await expectRefused(mtlsClient(clientWorkload, expectServer), /server identity mismatch/);
  });
});

describe('authorization by caller SPIFFE ID', () => {
  test('ok/service rules admit the caller; a method rule overrides its service rule', async () => {
    const intruder = mtlsClient(intruderWorkload);
    expect((await intruder.check()).ok).toBe(true);
    expect((await intruder.who('Who')).ok).toBe(true);
    expect((await mtlsClient(clientWorkload).who('Admin')).ok).toBe(true);
  });

  test('fail/caller not on the method allow-list gets PERMISSION_DENIED with the reason', async () => {
    const before = server.calls.length;
    const result = await mtlsClient(intruderWorkload).who('Admin');
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.error.code).toBe(status.PERMISSION_DENIED);
      expect(result.error.details).toBe(`${INTRUDER_ID} is not allowed to call /tlsmesh.test.Who/Admin`);
    }
    expect(server.calls.length).toBe(before);
    expect(denials.at(-1)).toMatchObject({ method: '/tlsmesh.test.Who/Admin', spiffeId: INTRUDER_ID });
  });

  test('fail/a method with no rule and no default is denied to everyone', async () => {
    const strict = await startGrpcServer(grpcServerCredentials(new MutableIdentity(identityOf(serverWorkload, ca.bundlePem))), {
      interceptors: [grpcAuthzInterceptor({ services: { 'grpc.health.v1.Health': CLIENT_ID } })],
    });
    try {
      const made = new TestClient(strict.address, grpcChannelCredentials(new MutableIdentity(identityOf(clientWorkload, ca.bundlePem)), { expect: SERVER_ID }), grpcChannelOptions());
      clients.push(made);
      expect((await made.check()).ok).toBe(true);
      const who = await made.who();
      expect(!who.ok && who.error.code).toBe(status.PERMISSION_DENIED);
      expect(strict.calls.map((call) => call.method)).toEqual(['Check']);
    } finally {
      strict.close();
    }
  });

  test('fail/malformed policies are refused when the interceptor is made', () => {
    expect(() => grpcAuthzInterceptor({ methods: { 'Health/Check': CLIENT_ID } })).toThrow(TypeError);
    expect(() => grpcAuthzInterceptor({ services: { '/grpc.health.v1.Health': CLIENT_ID } })).toThrow(TypeError);
    const codeOf = (make: () => unknown) => {
      try {
        make();
      } catch (error) {
        return isTlsmeshError(error) ? error.code : error;
      }
      return 'no error';
    };
    expect(codeOf(() => grpcAuthzInterceptor({ default: 'https://example.org/x' }))).toBe('ERR_SPIFFE_ID_INVALID');
    // An empty list would deny everyone by accident; leaving the method out says so on purpose.
    expect(codeOf(() => grpcAuthzInterceptor({ methods: { '/a.B/C': [] } }))).toBe('ERR_CONFIG');
  });
});

describe('connection recycling', () => {
  test('ok/max connection age is well inside what is left of a leaf due for renewal', () => {
    const leaf = new X509Certificate(serverWorkload.certPem);
    const lifetimeMs = Date.parse(leaf.validTo) - Date.parse(leaf.validFrom);
    const age = grpcServerOptions(new MutableIdentity(identityOf(serverWorkload, ca.bundlePem)))['grpc.max_connection_age_ms'];
    expect(age).toBeGreaterThan(0);
    // Renewal at 2/3 (jitter 1/20) leaves 0.28 of the lifetime; grpc-js adds up to 10 % jitter.
    expect((age ?? Infinity) * 1.1).toBeLessThan(lifetimeMs * 0.28);
  });

  test.each([0, -1, 1.5, 2 ** 31])('fail/maxConnectionAgeMs %s is refused', (value) => {
    expect(() => grpcServerOptions(new MutableIdentity(identityOf(serverWorkload, ca.bundlePem)), { maxConnectionAgeMs: value })).toThrow(TypeError);
  });
});
