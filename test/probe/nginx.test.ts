/**
 * The prober against nginx (Debian's package), correct (`ssl_verify_client on` with the bundle and
 * both CRLs, TLS 1.2+, ECDHE-AEAD suites) and wrong (`ssl_verify_client optional`; nginx's
 * default suites). nginx completes the TLS handshake even for a bad client certificate and
 * answers the request with 400, so it is probed with --http: a refusal shows as that 400.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_PASS, evidenceOf, expectMatrix, probe } from './support/matrix.js';
import { startProbePki, type ProbePki } from './support/pki.js';
import { nginxStatus, startNginx } from './support/servers.js';

const status = nginxStatus();

describe.skipIf(!status.ok)('nginx', () => {
  let pki: ProbePki;
  beforeAll(async () => {
    pki = await startProbePki();
  });
  afterAll(async () => {
    await pki?.close();
  });

  const tls = (verifyClient: 'on' | 'optional', ciphers: string | null): string[] => [
    `ssl_certificate ${pki.files.serverCert};`,
    `ssl_certificate_key ${pki.files.serverKey};`,
    `ssl_client_certificate ${pki.files.bundle};`,
    `ssl_crl ${pki.files.crl};`,
    `ssl_verify_client ${verifyClient};`,
    'ssl_verify_depth 2;',
    'ssl_protocols TLSv1.2 TLSv1.3;',
    ...(ciphers !== null ? [`ssl_ciphers ${ciphers};`] : []),
  ];
  const AEAD = 'ECDHE+AESGCM:ECDHE+CHACHA20';

  async function probed(lines: string[], http: boolean) {
    const server = await startNginx(lines);
    try {
      return await probe(pki, server.port, http ? { application: { kind: 'http', path: '/' } } : {});
    } finally {
      await server.close();
    }
  }

  it('correct (ssl_verify_client on, CRLs, TLS 1.2+, AEAD): every check passes with --http; refusals are its 400 answers', async () => {
    const report = await probed(tls('on', AEAD), true);
    expectMatrix(report, ALL_PASS);
    expect(evidenceOf(report, 'no-client-cert-refused')).toMatch(/refused by the application: "HTTP\/1\.1 400 Bad Request" \("400 No required SSL certificate was sent"\)/);
    expect(evidenceOf(report, 'revoked-cert-refused')).toMatch(/"400 The SSL certificate error"/);
    expect(evidenceOf(report, 'plaintext-refused')).toMatch(/400 Bad Request.*The plain HTTP request was sent to HTTPS port.*a TLS server's reply to plaintext/);
  });

  it('the same correct nginx in plain TLS mode fails the refusal checks: it never refuses at the TLS layer', async () => {
    const report = await probed(tls('on', AEAD), false);
    expectMatrix(report, { 'no-client-cert-refused': 'fail', 'valid-client-cert-accepted': 'pass' });
    expect(evidenceOf(report, 'no-client-cert-refused')).toMatch(/not refused at the TLS layer.*probe with --http or --grpc/);
  });

  it('wrong: ssl_verify_client optional lets clients without a certificate in', async () => {
    const report = await probed(tls('optional', AEAD), true);
    // A certificate that is sent is still verified (and refused with 400); a missing one is not required.
    expectMatrix(report, { ...ALL_PASS, 'no-client-cert-refused': 'fail' });
    expect(evidenceOf(report, 'no-client-cert-refused')).toMatch(/^accepted: .*"HTTP\/1\.1 200 OK"/);
  });

  it("wrong: nginx's default ssl_ciphers (HIGH:!aNULL:!MD5) take CBC and RSA key exchange suites", async () => {
    const report = await probed(tls('on', null), true);
    expectMatrix(report, { ...ALL_PASS, 'weak-ciphers-refused': 'fail' });
    expect(evidenceOf(report, 'weak-ciphers-refused')).toMatch(/CBC \(no AEAD\): negotiated TLSv1\.2/);
  });
});
