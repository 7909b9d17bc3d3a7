/**
 * Certificates issued through the API, checked by other implementations: OpenSSL's strict
 * verifier for both TLS purposes, GnuTLS certtool, and a real mutual-TLS handshake driven by curl
 * against a Node TLS server, both sides holding issued certificates.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pemBlocks, spiffeIdsOf, toPem } from '../../src/pki/index.js';
import { X509Certificate } from 'node:crypto';
import { csrFor, startTestCa, TRUST_DOMAIN, type TestCa } from '../helpers/ca.js';
import { hasCommand, runAsync, runWithFiles } from '../helpers/openssl.js';
import type { KeyType } from '../../src/pki/index.js';

const requireTool = (name: string): boolean => {
  if (hasCommand(name)) return true;
  if (process.env['CI'] === 'true') throw new Error(`CI requires ${name} (Debian package ${name === 'certtool' ? 'gnutls-bin' : name})`);
  return false;
};

describe('issued certificates under other implementations', () => {
  let ca: TestCa;
  beforeAll(async () => {
    ca = await startTestCa();
  });
  afterAll(async () => {
    await ca?.close();
  });

  async function issue(path: string, keyType: KeyType, sans: { dnsNames?: string[]; ipAddresses?: string[] } = {}) {
    const spiffeId = `spiffe://${TRUST_DOMAIN}${path}`;
    const { token } = await ca.admin.createToken({ spiffeId, dnsNames: sans.dnsNames ?? [], ipAddresses: sans.ipAddresses ?? [] });
    const { csr, keyPem } = await csrFor(spiffeId, { ...sans, keyType });
    const issued = await ca.anonymous.enroll(token, csr);
    const [leaf, intermediate] = pemBlocks(issued.certificatePem, 'CERTIFICATE');
    return { issued, keyPem, leafPem: toPem(leaf!, 'CERTIFICATE'), intermediatePem: toPem(intermediate!, 'CERTIFICATE') };
  }

  const keyTypes: KeyType[] = ['p256', 'p384', 'ed25519', 'rsa2048'];

  it.each(keyTypes)('openssl verify -x509_strict accepts a %s leaf for sslclient and sslserver', async (keyType) => {
    const { leafPem, intermediatePem } = await issue(`/interop/${keyType}`, keyType, { dnsNames: ['svc.internal'], ipAddresses: ['127.0.0.1', '::1'] });
    for (const purpose of ['sslclient', 'sslserver']) {
      const result = runWithFiles('openssl', () => ['verify', '-x509_strict', '-purpose', purpose, '-CAfile', 'bundle.pem', '-untrusted', 'int.pem', 'leaf.pem'], {
        'bundle.pem': ca.bundlePem,
        'int.pem': intermediatePem,
        'leaf.pem': leafPem,
      });
      expect(result.output).toContain('leaf.pem: OK');
      expect(result.status).toBe(0);
    }
  });

  it('openssl refuses the leaf against another CA, and without the intermediate', async () => {
    const { leafPem, intermediatePem } = await issue('/interop/negative', 'p256');
    const stranger = execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', '/dev/null', '-subj', '/O=stranger', '-days', '1'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const wrongCa = runWithFiles('openssl', () => ['verify', '-x509_strict', '-CAfile', 'bundle.pem', '-untrusted', 'int.pem', 'leaf.pem'], { 'bundle.pem': stranger, 'int.pem': intermediatePem, 'leaf.pem': leafPem });
    expect(wrongCa.status).not.toBe(0);
    const noIntermediate = runWithFiles('openssl', () => ['verify', '-x509_strict', '-CAfile', 'bundle.pem', 'leaf.pem'], { 'bundle.pem': ca.bundlePem, 'leaf.pem': leafPem });
    expect(noIntermediate.status).not.toBe(0);
    expect(noIntermediate.output).toMatch(/unable to get local issuer certificate/);
  });

  it('GnuTLS certtool verifies the chain against the bundle', async (context) => {
    if (!requireTool('certtool')) return context.skip('certtool (gnutls-bin) is not installed');
    const { issued } = await issue('/interop/gnutls', 'p256', { dnsNames: ['svc.internal'] });
    const result = runWithFiles('certtool', () => ['--verify', '--load-ca-certificate', 'bundle.pem', '--infile', 'chain.pem'], {
      'bundle.pem': ca.bundlePem,
      'chain.pem': issued.certificatePem,
    });
    expect(result.output).toMatch(/Chain verification output: Verified/);
    expect(result.status).toBe(0);
    const chain = runWithFiles('certtool', () => ['--verify-chain', '--infile', 'full.pem'], { 'full.pem': issued.certificatePem + ca.bundlePem });
    expect(chain.output).toMatch(/Chain verification output: Verified/);
  });

  it('the leaf says what the profile promises (openssl x509 -text)', async () => {
    const { leafPem } = await issue('/interop/profile', 'rsa2048', { dnsNames: ['svc.internal'] });
    const text = runWithFiles('openssl', () => ['x509', '-in', 'leaf.pem', '-noout', '-text'], { 'leaf.pem': leafPem }).output;
    expect(text).toMatch(/X509v3 Basic Constraints: critical\s+CA:FALSE/);
    expect(text).toMatch(/X509v3 Key Usage: critical\s+Digital Signature, Key Encipherment/);
    expect(text).toMatch(/TLS Web Server Authentication, TLS Web Client Authentication/);
    expect(text).toMatch(/URI:spiffe:\/\/example\.org\/interop\/profile, DNS:svc\.internal/);
    expect(text).toMatch(/CRL Distribution Points:[\s\S]*URI:https:\/\/127\.0\.0\.1:0\/v1\/crl/);
    expect(text).toMatch(/OCSP - URI:https:\/\/127\.0\.0\.1:0\/v1\/ocsp/);
    const leaf = new X509Certificate(leafPem);
    const lifetime = new Date(leaf.validTo).getTime() - new Date(leaf.validFrom).getTime();
    expect(lifetime).toBe(24 * 3600_000 + 60_000); // 24 h plus the 60 s backdate
    expect(BigInt(`0x${leaf.serialNumber}`) >= 2n ** 64n).toBe(true);
  });

  describe('a real mTLS handshake between two issued workloads (curl as the client)', () => {
    let server: Server;
    let port: number;
    let seenPeer: string[] = [];

    beforeAll(async () => {
      const serverCreds = await issue('/interop/server', 'p256', { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
      server = createServer(
        { key: serverCreds.keyPem, cert: serverCreds.issued.certificatePem, ca: ca.bundlePem, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' },
        (req, res) => {
          const peer = (req.socket as TLSSocket).getPeerCertificate();
          seenPeer = spiffeIdsOf(peer.subjectaltname);
          res.end(`hello ${seenPeer.join(',')}\n`);
        },
      );
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      port = (server.address() as AddressInfo).port;
    });
    afterAll(async () => {
      await new Promise<void>((resolve) => server?.close(() => resolve()));
    });

    it('curl with an issued client certificate gets through; the server sees its SPIFFE ID', async () => {
      const client = await issue('/interop/client', 'p256');
      const dir = mkdtempSync(join(tmpdir(), 'tlsmesh-curl-'));
      try {
        writeFileSync(join(dir, 'cert.pem'), client.issued.certificatePem);
        writeFileSync(join(dir, 'key.pem'), client.keyPem);
        writeFileSync(join(dir, 'bundle.pem'), ca.bundlePem);
        const ok = await runAsync('curl', ['-sS', '--max-time', '10', '--cacert', 'bundle.pem', '--cert', 'cert.pem', '--key', 'key.pem', `https://127.0.0.1:${port}/`], { cwd: dir });
        expect(ok.stdout).toBe(`hello spiffe://${TRUST_DOMAIN}/interop/client\n`);
        const noCert = await runAsync('curl', ['-sS', '--max-time', '10', '--cacert', 'bundle.pem', `https://127.0.0.1:${port}/`], { cwd: dir });
        expect(noCert.status).not.toBe(0);
        expect(noCert.stdout).toBe('');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  it("the CA's own server certificate names its SPIFFE ID and verifies with openssl", async () => {
    const url = new URL(ca.url);
    const dir = mkdtempSync(join(tmpdir(), 'tlsmesh-sclient-'));
    writeFileSync(join(dir, 'bundle.pem'), ca.bundlePem);
    const shown = await runAsync('openssl', ['s_client', '-connect', `${url.hostname}:${url.port}`, '-showcerts', '-verify_return_error', '-CAfile', 'bundle.pem'], { cwd: dir });
    rmSync(dir, { recursive: true, force: true });
    expect(shown.stdout).toMatch(/Verify return code: 0 \(ok\)/);
    const [serverLeaf] = pemBlocks(shown.stdout, 'CERTIFICATE');
    expect(spiffeIdsOf(new X509Certificate(serverLeaf!).subjectAltName)).toEqual([`spiffe://${TRUST_DOMAIN}/tlsmesh/ca`]);
  });
});
