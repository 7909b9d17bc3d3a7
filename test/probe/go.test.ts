/**
 * The prober against a Go HTTPS server (test/probe/go/mtls-server, crypto/tls + net/http, built
 * offline), correct (RequireAndVerifyClientCert with the bundle as ClientCAs, the CRL enforced in
 * VerifyPeerCertificate, TLS 1.2+, ECDHE-AEAD suites) and in each mistake Go services make:
 * VerifyClientCertIfGiven, RequestClientCert, RequireAnyClientCert, no ClientCAs, MinVersion
 * TLS 1.0 with Go's default suites, and no revocation check at all.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_PASS, evidenceOf, expectMatrix, probe, type Matrix } from './support/matrix.js';
import { startProbePki, type ProbePki } from './support/pki.js';
import { buildGoServer, GO_CORRECT, goStatus, startGoServer, type GoServerFlags } from './support/servers.js';

const status = goStatus();

/** Every client certificate the server must refuse. */
const CERTIFICATE_CHECKS_FAIL: Matrix = {
  'unknown-ca-refused': 'fail',
  'expired-cert-refused': 'fail',
  'not-yet-valid-cert-refused': 'fail',
  'server-auth-only-cert-refused': 'fail',
};

describe.skipIf(!status.ok)('Go crypto/tls server', () => {
  let pki: ProbePki;
  let binary: string;
  beforeAll(async () => {
    binary = buildGoServer();
    pki = await startProbePki();
  });
  afterAll(async () => {
    await pki?.close();
  });

  async function probed(flags: Partial<GoServerFlags>) {
    const server = await startGoServer(binary, pki.files, { ...GO_CORRECT, ...flags });
    try {
      return await probe(pki, server.port, { application: { kind: 'http', path: '/' } });
    } finally {
      await server.close();
    }
  }

  it('correct (RequireAndVerifyClientCert, ClientCAs, CRL, TLS 1.2+, AEAD): every check passes', async () => {
    const report = await probed({});
    expectMatrix(report, ALL_PASS);
    expect(evidenceOf(report, 'plaintext-refused')).toMatch(/Client sent an HTTP request to an HTTPS server/);
  });

  it('correct, in plain TLS mode too: Go refuses at the TLS layer', async () => {
    const server = await startGoServer(binary, pki.files, GO_CORRECT);
    try {
      expectMatrix(await probe(pki, server.port), ALL_PASS);
    } finally {
      await server.close();
    }
  });

  it('wrong: VerifyClientCertIfGiven accepts clients without a certificate', async () => {
    const report = await probed({ clientAuth: 'verify-if-given' });
    expectMatrix(report, { ...ALL_PASS, 'no-client-cert-refused': 'fail' });
  });

  it('wrong: RequestClientCert verifies nothing', async () => {
    const report = await probed({ clientAuth: 'request' });
    // The revocation check in VerifyPeerCertificate still runs, so the revoked one is refused.
    expectMatrix(report, { ...ALL_PASS, 'no-client-cert-refused': 'fail', ...CERTIFICATE_CHECKS_FAIL });
  });

  it('wrong: RequireAnyClientCert (what people pick when they have no ClientCAs) takes any certificate', async () => {
    const report = await probed({ clientAuth: 'require-any', clientCas: false });
    expectMatrix(report, { ...ALL_PASS, ...CERTIFICATE_CHECKS_FAIL });
  });

  it('wrong: no ClientCAs with RequireAndVerifyClientCert trusts the system roots instead of the bundle', async () => {
    const report = await probed({ clientCas: false });
    // Our own client is refused; the refusals of bad certificates then prove nothing (SKIP, not PASS).
    expectMatrix(report, {
      ...ALL_PASS,
      'valid-client-cert-accepted': 'fail',
      'no-client-cert-refused': 'skip',
      'unknown-ca-refused': 'skip',
      'expired-cert-refused': 'skip',
      'not-yet-valid-cert-refused': 'skip',
      'revoked-cert-refused': 'skip',
      'server-auth-only-cert-refused': 'skip',
      'weak-ciphers-refused': 'skip',
    });
    expect(evidenceOf(report, 'unknown-ca-refused')).toMatch(/^inconclusive: the server also refuses the valid client certificate/);
  });

  it("wrong: MinVersion TLS 1.0 with Go's default suites", async () => {
    const report = await probed({ minVersion: '1.0', ciphers: 'default' });
    expectMatrix(report, { ...ALL_PASS, 'tls10-refused': 'fail', 'tls11-refused': 'fail', 'weak-ciphers-refused': 'fail' });
    expect(evidenceOf(report, 'tls10-refused')).toMatch(/^negotiated TLSv1 with ECDHE-ECDSA-AES/);
  });

  it('wrong: no revocation check (crypto/tls never reads CRLs by itself)', async () => {
    const report = await probed({ crl: false });
    expectMatrix(report, { ...ALL_PASS, 'revoked-cert-refused': 'fail' });
  });
});
