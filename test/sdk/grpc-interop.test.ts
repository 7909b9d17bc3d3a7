/**
 * grpc-go ↔ grpc-js over mutual TLS, both ways, with certificates from the test CA. The Go
 * programs (test/interop/go) are built offline from Debian's packages by test/helpers/go.ts.
 */
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { grpcAuthzInterceptor } from '../../src/sdk/grpc/authz.js';
import { grpcChannelCredentials, grpcChannelOptions, grpcServerCredentials } from '../../src/sdk/grpc/credentials.js';
import { startTestCa, type TestCa, type Workload } from '../helpers/ca.js';
import { buildGoInterop, goInteropStatus, runGoClient, startGoServer, writeCredentialDir, writeCredentials, type GoServer } from '../helpers/go.js';
import { enrolled, identityOf, MutableIdentity, sameSerial, serverSerial, startGrpcServer, type TestServer } from './grpc-fixtures.js';
import { HEALTH_CHECK, SERVING_STATUS, TestClient } from './grpc-health.js';

const GO_SERVER_ID = 'spiffe://example.org/go/server';
const GO_CLIENT_ID = 'spiffe://example.org/go/client';
const NODE_SERVER_ID = 'spiffe://example.org/node/server';
const NODE_CLIENT_ID = 'spiffe://example.org/node/client';

const go = goInteropStatus();

describe.skipIf(!go.ok)(`grpc-go interop${go.ok ? '' : ` (skipped: ${go.reason})`}`, () => {
  let binaries: { server: string; client: string };
  let ca: TestCa;
  let workloads: Record<'goServer' | 'goClient' | 'nodeServer' | 'nodeClient', Workload>;
  const cleanup: (() => unknown)[] = [];

  beforeAll(async () => {
    binaries = buildGoInterop();
    ca = await startTestCa();
    const [goServer, goClient, nodeServer, nodeClient] = await Promise.all(
      [GO_SERVER_ID, GO_CLIENT_ID, NODE_SERVER_ID, NODE_CLIENT_ID].map((id) => enrolled(ca, id)),
    );
    workloads = { goServer: goServer as Workload, goClient: goClient as Workload, nodeServer: nodeServer as Workload, nodeClient: nodeClient as Workload };
  });

  afterAll(async () => {
    for (const step of cleanup.reverse()) await step();
    await ca?.close();
  });

  function nodeClient(address: string, expect: string): TestClient {
    const made = new TestClient(address, grpcChannelCredentials(new MutableIdentity(identityOf(workloads.nodeClient, ca.bundlePem)), { expect }), grpcChannelOptions());
    cleanup.push(() => made.close());
    return made;
  }

  describe('grpc-go server ← grpc-js client', () => {
    let goServer: GoServer;
    let goDir: string;

    beforeAll(async () => {
      const dir = writeCredentialDir({ certPem: workloads.goServer.certPem, keyPem: workloads.goServer.keyPem, bundlePem: ca.bundlePem });
      goDir = dir.dir;
      cleanup.push(dir.remove);
      goServer = await startGoServer(binaries.server, goDir);
      cleanup.push(() => goServer.close());
    });

    test('ok/grpc-js calls Health/Check; grpc-go authenticates the grpc-js client SPIFFE ID', async () => {
      const before = goServer.peers().length;
      const made = nodeClient(goServer.address, GO_SERVER_ID);
      for (let i = 0; i < 3; i++) expect(await made.check()).toEqual({ ok: true, value: { status: SERVING_STATUS.SERVING } });
      const peers = await goServer.waitForPeers(before + 3);
      expect(peers.slice(before), goServer.output()).toEqual(Array.from({ length: 3 }, () => [NODE_CLIENT_ID, HEALTH_CHECK]));
    });

    test('fail/grpc-js refuses the grpc-go server when it expects another SPIFFE ID', async () => {
      const before = goServer.peers().length;
      const result = await nodeClient(goServer.address, NODE_SERVER_ID).check();
      expect(!result.ok && result.error.code).toBe(status.UNAVAILABLE);
      expect(!result.ok && result.error.details).toMatch(/server identity mismatch/);
      // A call that does get through, so the Go server's output is known to be complete up to it.
      expect((await nodeClient(goServer.address, GO_SERVER_ID).check()).ok).toBe(true);
      expect((await goServer.waitForPeers(before + 1)).slice(before)).toEqual([[NODE_CLIENT_ID, HEALTH_CHECK]]);
    });

    test('ok/grpc-go presents a rewritten cert.pem on the next handshake, without a restart', async () => {
      const renewed = await enrolled(ca, GO_SERVER_ID);
      writeCredentials(goDir, { certPem: renewed.certPem, keyPem: renewed.keyPem, bundlePem: ca.bundlePem });
      const seen = await serverSerial(Number(goServer.address.split(':')[1]), identityOf(workloads.nodeClient, ca.bundlePem), GO_SERVER_ID);
      expect(sameSerial(seen, renewed.serial)).toBe(true);
      expect((await nodeClient(goServer.address, GO_SERVER_ID).check()).ok).toBe(true);
    });
  });

  describe('grpc-js server ← grpc-go client', () => {
    let server: TestServer;
    let clientDir: string;

    beforeAll(async () => {
      server = await startGrpcServer(grpcServerCredentials(new MutableIdentity(identityOf(workloads.nodeServer, ca.bundlePem))), {
        interceptors: [grpcAuthzInterceptor({ methods: { [HEALTH_CHECK]: GO_CLIENT_ID } })],
      });
      cleanup.push(() => server.close());
      const dir = writeCredentialDir({ certPem: workloads.goClient.certPem, keyPem: workloads.goClient.keyPem, bundlePem: ca.bundlePem });
      clientDir = dir.dir;
      cleanup.push(dir.remove);
    });

    test('ok/grpc-go calls Health/Check on grpc-js over mTLS; the handler sees the Go client SPIFFE ID', async () => {
      const before = server.calls.length;
      const run = await runGoClient(binaries.client, { address: server.address, dir: clientDir, expect: NODE_SERVER_ID, count: 3 });
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
      expect(run.stdout.trim().split('\n')).toEqual(['check 1 SERVING', 'check 2 SERVING', 'check 3 SERVING']);
      expect(server.calls.slice(before).map((call) => [call.method, call.spiffeId])).toEqual(Array.from({ length: 3 }, () => ['Check', GO_CLIENT_ID]));
    });

    test('fail/grpc-go client without a certificate is refused', async () => {
      const before = server.calls.length;
      const run = await runGoClient(binaries.client, { address: server.address, dir: clientDir, expect: NODE_SERVER_ID, noCert: true });
      // In TLS 1.3 the client finishes its side of the handshake before the server judges its
      // (missing) certificate, so grpc-go reports a dropped connection, not the TLS alert.
      expect(run.status).not.toBe(0);
      expect(run.stderr).toMatch(/^client: check 1: rpc error: code = Unavailable/);
      expect(server.calls.length).toBe(before);
    });

    test('fail/grpc-go refuses the grpc-js server when it expects another SPIFFE ID', async () => {
      const before = server.calls.length;
      const run = await runGoClient(binaries.client, { address: server.address, dir: clientDir, expect: GO_SERVER_ID });
      expect(run.status).not.toBe(0);
      expect(run.stderr).toMatch(/server identity mismatch/);
      expect(server.calls.length).toBe(before);
    });

    test('fail/grpc-go client not on the allow-list gets PermissionDenied with the reason', async () => {
      const strict = await startGrpcServer(grpcServerCredentials(new MutableIdentity(identityOf(workloads.nodeServer, ca.bundlePem))), {
        interceptors: [grpcAuthzInterceptor({ methods: { [HEALTH_CHECK]: NODE_CLIENT_ID } })],
      });
      try {
        const run = await runGoClient(binaries.client, { address: strict.address, dir: clientDir, expect: NODE_SERVER_ID });
        expect(run.status).not.toBe(0);
        expect(run.stderr).toContain(`code = PermissionDenied desc = ${GO_CLIENT_ID} is not allowed to call ${HEALTH_CHECK}`);
        expect(strict.calls).toEqual([]);
      } finally {
        strict.close();
      }
    });
  });
});
