/**
 * The prober against `openssl s_server -www`, set up correctly (client certificate required and
 * verified against the bundle, CRLs for root and intermediate, TLS 1.2+, ECDHE-AEAD suites) and
 * in two common wrong ways: `-verify 1` (a client certificate is asked for but optional, and
 * verification errors are ignored) and TLS 1.0/1.1 enabled through `@SECLEVEL=0`.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_PASS, evidenceOf, expectMatrix, probe } from './support/matrix.js';
import { startProbePki, type ProbePki } from './support/pki.js';
import { opensslStatus, startOpensslServer } from './support/servers.js';

const status = opensslStatus();

describe.skipIf(!status.ok)('openssl s_server', () => {
  let pki: ProbePki;
  /** Bundle and both CRLs in one file: s_server's -CRL reads a single CRL, its -CAfile loader reads them all. */
  let trustWithCrls: string;
  beforeAll(async () => {
    pki = await startProbePki();
    trustWithCrls = join(pki.dir, 'bundle-and-crls.pem');
    writeFileSync(trustWithCrls, pki.bundlePem + pki.crlPem);
  });
  afterAll(async () => {
    await pki?.close();
  });

  const identity = (): string[] => ['-cert', pki.files.serverCert, '-cert_chain', pki.files.serverCert, '-key', pki.files.serverKey, '-CAfile', trustWithCrls];
  const REQUIRE_AND_VERIFY = ['-Verify', '1', '-verify_return_error'];
  const CRLS = ['-crl_check_all'];
  const MODERN = ['-no_tls1', '-no_tls1_1', '-cipher', 'ECDHE+AESGCM:ECDHE+CHACHA20'];

  async function probed(flags: string[], http: boolean) {
    const server = await startOpensslServer(flags);
    try {
      return await probe(pki, server.port, http ? { application: { kind: 'http', path: '/' } } : {});
    } finally {
      await server.close();
    }
  }

  it('correct (-Verify 1 -verify_return_error, CRLs, TLS 1.2+, AEAD): every check passes', async () => {
    const report = await probed([...identity(), ...REQUIRE_AND_VERIFY, ...CRLS, ...MODERN], true);
    expectMatrix(report, ALL_PASS);
    expect(evidenceOf(report, 'revoked-cert-refused')).toMatch(/alert "certificate revoked"/);
    expect(evidenceOf(report, 'expired-cert-refused')).toMatch(/alert "certificate expired"/);
    expect(evidenceOf(report, 'server-auth-only-cert-refused')).toMatch(/alert "unsupported certificate"/);
    expect(evidenceOf(report, 'valid-client-cert-accepted')).toMatch(/answered "HTTP\/1\.0 200 ok"/);
  });

  it('wrong: -verify 1 makes the client certificate optional and its verification advisory', async () => {
    const report = await probed([...identity(), '-verify', '1', ...CRLS, ...MODERN], true);
    expectMatrix(report, {
      ...ALL_PASS,
      'no-client-cert-refused': 'fail',
      'unknown-ca-refused': 'fail',
      'expired-cert-refused': 'fail',
      'not-yet-valid-cert-refused': 'fail',
      'revoked-cert-refused': 'fail',
      'server-auth-only-cert-refused': 'fail',
    });
    expect(evidenceOf(report, 'no-client-cert-refused')).toMatch(/^accepted: TLSv1\.3 handshake completed, then answered "HTTP\/1\.0 200 ok"/);
  });

  it('wrong: TLS 1.0 and 1.1 allowed (-min_protocol TLSv1 -cipher DEFAULT@SECLEVEL=0), in plain TLS mode', async () => {
    const report = await probed([...identity(), ...REQUIRE_AND_VERIFY, ...CRLS, '-min_protocol', 'TLSv1', '-cipher', 'DEFAULT@SECLEVEL=0'], false);
    expectMatrix(report, { ...ALL_PASS, 'tls10-refused': 'fail', 'tls11-refused': 'fail', 'weak-ciphers-refused': 'fail' });
    expect(evidenceOf(report, 'tls10-refused')).toMatch(/^negotiated TLSv1 with /);
    expect(evidenceOf(report, 'tls11-refused')).toMatch(/^negotiated TLSv1\.1 with /);
  });
});
