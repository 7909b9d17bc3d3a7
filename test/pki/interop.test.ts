/**
 * OpenSSL and GnuTLS as second implementations: chains made by createRootCertificate,
 * createIntermediateCertificate and LeafIssuer must verify in both, for every CA and leaf key
 * type, and the trust-domain name constraint must refuse a leaf of another trust domain.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeafIssuer } from '../../src/pki/leaf.js';
import { randomSerial } from '../../src/pki/serial.js';
import {
  describeCerttool,
  KEY_TYPES_UNDER_TEST,
  makeCa,
  openssl,
  pem,
  run,
  scratchDir,
  testKey,
  validityAroundNow,
  type CaFixture,
  type Scratch,
  type TestKeyType,
} from './support.js';

const TRUST_DOMAIN = 'example.org';
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

let scratch: Scratch;
const cas = new Map<TestKeyType, CaFixture>();
const matrix = KEY_TYPES_UNDER_TEST.flatMap((caType) => KEY_TYPES_UNDER_TEST.map((leaf) => ({ ca: caType, leaf })));

function issueLeaf(caType: TestKeyType, leafType: TestKeyType, spiffeId: string): Buffer {
  const fixture = cas.get(caType)!;
  const issuer = new LeafIssuer({
    issuerCertDer: fixture.intermediateDer,
    issuerNotAfter: fixture.notAfter,
    issuerPrivateKey: fixture.intermediateKey.privateKey,
    crlUrl: 'http://ca.example.org/v1/crl',
    ocspUrl: 'http://ca.example.org/v1/ocsp',
  });
  return issuer.issue({
    serial: randomSerial(),
    spki: testKey(leafType, 3).publicKey.export({ format: 'der', type: 'spki' }),
    rsaKey: leafType === 'rsa2048',
    spiffeId,
    dnsNames: ['api.example.org'],
    ipAddresses: ['10.0.0.1', '2001:db8::1'],
    ...validityAroundNow(),
  });
}

/** Writes root, intermediate, leaf and the leaf→root chain; returns the file names. */
function writeChain(name: string, caType: TestKeyType, leafDer: Buffer): { root: string; intermediate: string; leaf: string; chain: string } {
  const fixture = cas.get(caType)!;
  const files = { root: `${name}-root.pem`, intermediate: `${name}-intermediate.pem`, leaf: `${name}-leaf.pem`, chain: `${name}-chain.pem` };
  scratch.write(files.root, pem(fixture.rootDer, 'CERTIFICATE'));
  scratch.write(files.intermediate, pem(fixture.intermediateDer, 'CERTIFICATE'));
  scratch.write(files.leaf, pem(leafDer, 'CERTIFICATE'));
  scratch.write(files.chain, pem(leafDer, 'CERTIFICATE') + pem(fixture.intermediateDer, 'CERTIFICATE') + pem(fixture.rootDer, 'CERTIFICATE'));
  return files;
}

const opensslVerify = (purpose: string, files: { root: string; intermediate: string; leaf: string }) =>
  run('openssl', ['verify', '-x509_strict', '-purpose', purpose, '-CAfile', files.root, '-untrusted', files.intermediate, files.leaf], scratch.dir);

beforeAll(async () => {
  scratch = scratchDir();
  for (const type of KEY_TYPES_UNDER_TEST) cas.set(type, await makeCa(type, type, TRUST_DOMAIN));
});

afterAll(() => scratch?.remove());

describe('openssl verify -x509_strict', () => {
  it.each(matrix)('ok/ca=$ca leaf=$leaf verifies for sslclient and sslserver', ({ ca, leaf }) => {
    const files = writeChain(`ossl-${ca}-${leaf}`, ca, issueLeaf(ca, leaf, `spiffe://${TRUST_DOMAIN}/ns/prod/sa/api`));
    for (const purpose of ['sslclient', 'sslserver']) {
      const result = opensslVerify(purpose, files);
      expect(result, `purpose ${purpose}`).toMatchObject({ status: 0 });
      expect(result.stdout).toContain(`${files.leaf}: OK`);
    }
  });

  it.each(KEY_TYPES_UNDER_TEST)('fail/ca=%s leaf naming spiffe://other.org/x: permitted subtree violation (error 47)', (ca) => {
    const files = writeChain(`ossl-foreign-${ca}`, ca, issueLeaf(ca, 'p256', 'spiffe://other.org/x'));
    const result = opensslVerify('sslclient', files);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/error 47 at 0 depth lookup: permitted subtree violation/);
  });

  it('fail/leaf checked against another CA root: unable to get local issuer (error 20)', () => {
    const files = writeChain('ossl-wrong-root', 'p256', issueLeaf('p256', 'p256', `spiffe://${TRUST_DOMAIN}/api`));
    scratch.write('other-root.pem', pem(cas.get('p384')!.rootDer, 'CERTIFICATE'));
    const result = run('openssl', ['verify', '-x509_strict', '-CAfile', 'other-root.pem', '-untrusted', files.intermediate, files.leaf], scratch.dir);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/error 20 at \d depth lookup: unable to get local issuer certificate/);
  });
});

describe('certificate contents as openssl x509 -text shows them', () => {
  const text = (der: Buffer, name: string): string => {
    scratch.write(name, pem(der, 'CERTIFICATE'));
    return openssl(['x509', '-in', name, '-noout', '-text'], scratch.dir);
  };

  it.each(KEY_TYPES_UNDER_TEST)('ok/root (%s): CA, pathlen 1, KU keyCertSign+cRLSign, critical URI name constraint', (type) => {
    const out = text(cas.get(type)!.rootDer, `text-root-${type}.pem`);
    expect(out).toMatch(/X509v3 Basic Constraints: critical\s+CA:TRUE, pathlen:1\s/);
    expect(out).toMatch(/X509v3 Key Usage: critical\s+Certificate Sign, CRL Sign\s/);
    expect(out).toMatch(/X509v3 Name Constraints: critical\s+Permitted:\s+URI:example\.org\s/);
    expect(out).toMatch(/X509v3 Subject Key Identifier:/);
  });

  it.each(KEY_TYPES_UNDER_TEST)('ok/intermediate (%s): CA, pathlen 0, KU keyCertSign+cRLSign, name constraint, AKI', (type) => {
    const out = text(cas.get(type)!.intermediateDer, `text-intermediate-${type}.pem`);
    expect(out).toMatch(/X509v3 Basic Constraints: critical\s+CA:TRUE, pathlen:0\s/);
    expect(out).toMatch(/X509v3 Key Usage: critical\s+Certificate Sign, CRL Sign\s/);
    expect(out).toMatch(/X509v3 Name Constraints: critical\s+Permitted:\s+URI:example\.org\s/);
    expect(out).toMatch(/X509v3 Authority Key Identifier:/);
  });

  it.each(KEY_TYPES_UNDER_TEST)('ok/leaf (%s key): not a CA, leaf key usages, both EKUs, SANs, CRL DP and OCSP', (leafType) => {
    const out = text(issueLeaf('p256', leafType, `spiffe://${TRUST_DOMAIN}/ns/prod/sa/api`), `text-leaf-${leafType}.pem`);
    expect(out).toMatch(/X509v3 Basic Constraints: critical\s+CA:FALSE\s/);
    expect(out).not.toContain('CA:TRUE');
    const keyUsage = leafType === 'rsa2048' ? 'Digital Signature, Key Encipherment' : 'Digital Signature';
    expect(out).toMatch(new RegExp(`X509v3 Key Usage: critical\\s+${keyUsage}\\n`));
    expect(out).toMatch(/X509v3 Extended Key Usage:\s+TLS Web Server Authentication, TLS Web Client Authentication\s/);
    expect(out).toMatch(
      /X509v3 Subject Alternative Name:\s+URI:spiffe:\/\/example\.org\/ns\/prod\/sa\/api, DNS:api\.example\.org, IP Address:10\.0\.0\.1, IP Address:2001:DB8:0:0:0:0:0:1\s/,
    );
    expect(out).toMatch(/X509v3 CRL Distribution Points:\s+Full Name:\s+URI:http:\/\/ca\.example\.org\/v1\/crl\s/);
    expect(out).toMatch(/Authority Information Access:\s+OCSP - URI:http:\/\/ca\.example\.org\/v1\/ocsp\s/);
    expect(out).toMatch(/Subject: O\s*=\s*tlsmesh\n/);
  });
});

describeCerttool('GnuTLS certtool', () => {
  // Profile "medium" (112-bit security) is the one RSA-2048 meets; "high" asks for RSA-3072.
  it.each(matrix)('ok/ca=$ca leaf=$leaf: --verify-chain, and --verify against the root for both purposes', ({ ca, leaf }) => {
    const files = writeChain(`gnutls-${ca}-${leaf}`, ca, issueLeaf(ca, leaf, `spiffe://${TRUST_DOMAIN}/ns/prod/sa/api`));
    const chain = run('certtool', ['--verify-chain', '--infile', files.chain], scratch.dir);
    expect(chain.status, chain.stdout + chain.stderr).toBe(0);
    expect(chain.stdout).toContain('Chain verification output: Verified.');
    for (const purpose of [CLIENT_AUTH, SERVER_AUTH]) {
      const verify = run(
        'certtool',
        ['--verify', '--load-ca-certificate', files.root, '--infile', files.chain, '--verify-purpose', purpose, '--verify-profile', 'medium'],
        scratch.dir,
      );
      expect(verify.status, `purpose ${purpose}: ${verify.stdout}${verify.stderr}`).toBe(0);
      expect(verify.stdout).toContain('Chain verification output: Verified.');
    }
  });

  it('fail/a purpose the leaf does not carry (emailProtection) is refused', () => {
    const files = writeChain('gnutls-purpose', 'p256', issueLeaf('p256', 'p256', `spiffe://${TRUST_DOMAIN}/api`));
    const verify = run('certtool', ['--verify', '--load-ca-certificate', files.root, '--infile', files.chain, '--verify-purpose', '1.3.6.1.5.5.7.3.4'], scratch.dir);
    expect(verify.status).not.toBe(0);
    expect(verify.stdout).toContain('does not match the intended purpose');
  });

  // GnuTLS 3.7.9 (Debian 12) enforces DNS name constraints but not URI ones: certtool accepts
  // spiffe://other.org/x under a CA whose critical name constraint permits only URI:example.org
  // (checked by hand: a DNS:evil.com leaf under a DNS constraint is refused, the URI leaf is not).
  // OpenSSL (above) is the implementation that checks the URI constraint; nothing in the
  // certificate can make GnuTLS 3.7 enforce it.
  it.skip('fail/leaf naming spiffe://other.org/x is refused — skipped: GnuTLS 3.7.9 does not enforce URI name constraints', () => {});
});
