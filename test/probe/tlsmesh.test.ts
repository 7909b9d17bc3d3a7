/**
 * The prober against tlsmesh's own servers, certificates from a real tlsmesh CA: the SDK's HTTPS
 * server with the CRL passes every check (plain TLS and --http); the same server without the CRL
 * and the permissive (migration) server are caught. Over gRPC: the SDK's grpc-js credentials pass
 * (the revoked client is refused by the SDK's interceptor with PERMISSION_DENIED); grpc-js
 * credentials that do not ask for a client certificate, and an insecure server, are caught.
 */
import { once } from 'node:events';
import type { AddressInfo, Server } from 'node:net';
import { ServerCredentials } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMtlsHttpsServer, createPermissiveHttpsServer, staticIdentity } from '../../src/sdk/index.js';
import { grpcServerCredentials } from '../../src/sdk/grpc/index.js';
import { Identity } from '../../src/sdk/identity.js';
import { startGrpcServer, type TestServer } from '../sdk/grpc-fixtures.js';
import { ALL_PASS, evidenceOf, expectMatrix, probe } from './support/matrix.js';
import { SERVER_ID, startProbePki, type ProbePki } from './support/pki.js';

let pki: ProbePki;

beforeAll(async () => {
  pki = await startProbePki();
});
afterAll(async () => {
  await pki?.close();
});

async function listening(server: Server & { closeAllConnections(): void }): Promise<{ port: number; close: () => Promise<void> }> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

const serverIdentity = (withCrl: boolean) => staticIdentity({ ...pki.server, bundlePem: pki.bundlePem, ...(withCrl ? { crlPem: pki.crlPem } : {}) });
const ok = (_request: unknown, response: { end(body: string): void }): void => response.end('ok');

describe('tlsmesh HTTPS server (createMtlsHttpsServer)', () => {
  it('correct (with the CRL): every check passes, in plain TLS and with --http', async () => {
    const server = await listening(createMtlsHttpsServer(serverIdentity(true), {}, ok));
    try {
      const plain = await probe(pki, server.port);
      expectMatrix(plain, ALL_PASS);
      // In TLS 1.3 the refusal comes after the client's handshake: the evidence says so.
      expect(evidenceOf(plain, 'no-client-cert-refused')).toMatch(/^TLSv1\.3 handshake completed, then .* before any data/);
      expect(evidenceOf(plain, 'tls10-refused')).toMatch(/refused in the handshake/);
      expect(evidenceOf(plain, 'server-id-matches')).toBe(SERVER_ID);
      // The SDK's guard drops plaintext callers (and logs them) instead of Node's 400 answer.
      expect(evidenceOf(plain, 'plaintext-refused')).toBe('closed the connection without answering');

      const http = await probe(pki, server.port, { application: { kind: 'http', path: '/' } });
      expectMatrix(http, ALL_PASS);
      expect(evidenceOf(http, 'valid-client-cert-accepted')).toMatch(/answered "HTTP\/1\.1 200 OK"/);
    } finally {
      await server.close();
    }
  });

  it('wrong: without the CRL, the revoked client certificate gets in', async () => {
    const server = await listening(createMtlsHttpsServer(serverIdentity(false), {}, ok));
    try {
      const report = await probe(pki, server.port, { application: { kind: 'http', path: '/' } });
      expectMatrix(report, { ...ALL_PASS, 'revoked-cert-refused': 'fail' });
      expect(evidenceOf(report, 'revoked-cert-refused')).toMatch(/^accepted: .*HTTP\/1\.1 200 OK/);
    } finally {
      await server.close();
    }
  });

  it('wrong: the permissive (migration) server serves plaintext and every unverified TLS client (but refuses revoked ones)', async () => {
    const server = await listening(createPermissiveHttpsServer(serverIdentity(true), {}, ok));
    try {
      const report = await probe(pki, server.port, { application: { kind: 'http', path: '/' } });
      expectMatrix(report, {
        ...ALL_PASS,
        'plaintext-refused': 'fail',
        'no-client-cert-refused': 'fail',
        'unknown-ca-refused': 'fail',
        'expired-cert-refused': 'fail',
        'not-yet-valid-cert-refused': 'fail',
        'server-auth-only-cert-refused': 'fail',
      });
      expect(evidenceOf(report, 'plaintext-refused')).toMatch(/served plaintext HTTP: "HTTP\/1\.1 200 OK"/);
    } finally {
      await server.close();
    }
  });

  it('without --issuer-cert and --revoked-cert, those checks are skipped with the reason', async () => {
    const server = await listening(createMtlsHttpsServer(serverIdentity(true), {}, ok));
    try {
      const report = await probe(pki, server.port, { issuer: false, revoked: false, application: { kind: 'http', path: '/' } });
      const skipped = { 'expired-cert-refused': 'skip', 'not-yet-valid-cert-refused': 'skip', 'server-auth-only-cert-refused': 'skip', 'revoked-cert-refused': 'skip' } as const;
      expectMatrix(report, { ...ALL_PASS, ...skipped });
      expect(evidenceOf(report, 'expired-cert-refused')).toMatch(/needs --issuer-cert and --issuer-key/);
      expect(evidenceOf(report, 'revoked-cert-refused')).toMatch(/needs --revoked-cert and --revoked-key/);
    } finally {
      await server.close();
    }
  });
});

describe('gRPC servers (--grpc)', () => {
  let servers: TestServer[] = [];
  afterAll(() => {
    for (const server of servers) server.close();
    servers = [];
  });
  const grpcServer = async (credentials: ServerCredentials): Promise<TestServer> => {
    const server = await startGrpcServer(credentials);
    servers.push(server);
    return server;
  };

  it('tlsmesh grpc-js credentials: every check passes (the revoked certificate is refused with PERMISSION_DENIED)', async () => {
    const identity = new Identity({ ...pki.server, bundlePem: pki.bundlePem, crlPem: pki.crlPem });
    const server = await grpcServer(grpcServerCredentials({ current: () => identity, subscribe: () => () => undefined }));
    const report = await probe(pki, server.port, { application: { kind: 'grpc' } });
    // grpc-js alone would build its TLS context with Node's default suites, CBC-SHA ones
    // included (see the createSsl case below); the SDK's credentials give it TLS_CIPHERS.
    expectMatrix(report, ALL_PASS);
    expect(evidenceOf(report, 'valid-client-cert-accepted')).toMatch(/grpc-status 0 \(OK\)/);
    expect(evidenceOf(report, 'revoked-cert-refused')).toMatch(/refused by the application: grpc-status 7 \(PERMISSION_DENIED\)/);
    // The plaintext check speaks HTTP/2 (prior knowledge) with --grpc; a TLS port does not answer it.
    expect(evidenceOf(report, 'plaintext-refused')).not.toMatch(/HTTP\/2/);
  });

  it('wrong: grpc-js createSsl(…, checkClientCertificate = false) never asks for a client certificate', async () => {
    const credentials = ServerCredentials.createSsl(Buffer.from(pki.bundlePem), [{ cert_chain: Buffer.from(pki.server.certPem), private_key: Buffer.from(pki.server.keyPem) }], false);
    const server = await grpcServer(credentials);
    const report = await probe(pki, server.port, { application: { kind: 'grpc' } });
    expectMatrix(report, {
      ...ALL_PASS,
      'no-client-cert-refused': 'fail',
      'unknown-ca-refused': 'fail',
      'expired-cert-refused': 'fail',
      'not-yet-valid-cert-refused': 'fail',
      'revoked-cert-refused': 'fail',
      'server-auth-only-cert-refused': 'fail',
      'weak-ciphers-refused': 'fail',
    });
    expect(evidenceOf(report, 'no-client-cert-refused')).toMatch(/^accepted: .*grpc-status 0 \(OK\)/);
  });

  it('wrong: an insecure gRPC server answers HTTP/2 in plaintext', async () => {
    const server = await grpcServer(ServerCredentials.createInsecure());
    const report = await probe(pki, server.port, { application: { kind: 'grpc' } });
    expectMatrix(report, { 'plaintext-refused': 'fail', 'valid-client-cert-accepted': 'fail' });
    expect(evidenceOf(report, 'plaintext-refused')).toMatch(/HTTP\/2 in plaintext/);
    // No TLS at all: refusals prove nothing, so they are not passes.
    expect(report.checks.filter((check) => check.result === 'pass').map((check) => check.id)).toEqual([]);
  });
});
