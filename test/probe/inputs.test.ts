/**
 * The prober's inputs and its certificates: targets, the PEM material (coded errors naming the
 * flag, never quoting a key), --expect-id, the server chain rules, and the minted test
 * certificates, each checked by OpenSSL (`openssl verify -x509_strict -purpose sslclient`) as a
 * second implementation: only the property under test is wrong.
 */
import { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { isTlsmeshError } from '../../src/errors.js';
import { certificatesToPem, createRootCertificate, generateKeyPair, randomSerial, spiffeIdsOf } from '../../src/pki/index.js';
import type { CheckedIssuer } from '../../src/probe/material.js';
import { checkMaterial, expectedId, parseTarget } from '../../src/probe/index.js';
import { mintFromIssuer, mintFromUnknownCa, mintServerAuthOnly } from '../../src/probe/mint.js';
import { checkServerId, verifyServerChain } from '../../src/probe/server-chain.js';
import { issueWithLibrary } from '../../src/pki/x509-library.js';
import { runWithFiles } from '../helpers/openssl.js';

const ID = 'spiffe://example.org/probe/client';
const DAY = 86_400_000;

let issuer: CheckedIssuer;
let bundlePem: string;
let valid: { certPem: string; keyPem: string };

beforeAll(async () => {
  const key = generateKeyPair('p256');
  const der = await createRootCertificate({ trustDomain: 'example.org', privateKey: key.privateKey, serial: randomSerial(), notBefore: new Date(Date.now() - DAY), notAfter: new Date(Date.now() + 30 * DAY) });
  bundlePem = certificatesToPem([der]);
  issuer = { certificate: new X509Certificate(der), chainPem: bundlePem, privateKey: key.privateKey };
  valid = mintFromIssuer(issuer, ID, 'current', new Date());
});

function codeOf(run: () => unknown): { code: string; message: string } {
  try {
    run();
  } catch (error) {
    if (isTlsmeshError(error)) return { code: error.code, message: error.message };
    throw error;
  }
  throw new Error('did not throw');
}

describe('parseTarget', () => {
  it.each([
    ['api.internal:8443', { host: 'api.internal', port: 8443, servername: 'api.internal', label: 'api.internal:8443' }],
    ['127.0.0.1:443', { host: '127.0.0.1', port: 443, servername: undefined, label: '127.0.0.1:443' }],
    ['[::1]:8443', { host: '::1', port: 8443, servername: undefined, label: '[::1]:8443' }],
  ])('ok/%s', (text, expected) => {
    expect(parseTarget(text)).toEqual(expected);
  });

  it.each(['api.internal', 'api.internal:0', 'api.internal:70000', 'https://api.internal:443', '[nope]:443', ' host:1'])('fail/%s → ERR_CONFIG', (text) => {
    expect(codeOf(() => parseTarget(text)).code).toBe('ERR_CONFIG');
  });
});

describe('checkMaterial', () => {
  it('ok: valid material, with an issuer', () => {
    const checked = checkMaterial({ bundlePem, client: valid, issuer: { certPem: bundlePem, keyPem: issuer.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string } });
    expect(checked.clientSpiffeId).toBe(ID);
    expect(checked.issuer?.certificate.ca).toBe(true);
  });

  it.each([
    ['fail/a bundle without certificates', () => ({ bundlePem: 'nothing here', client: valid }), /--ca holds no CERTIFICATE/],
    ['fail/a key that is not the certificate’s', () => ({ bundlePem, client: { ...valid, keyPem: generateKeyPair('p256').privateKey.export({ format: 'pem', type: 'pkcs8' }) as string } }), /--key is not the key of the first certificate in --cert/],
    ['fail/an encrypted key', () => ({ bundlePem, client: { ...valid, keyPem: '-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n' } }), /--key is encrypted/],
    ['fail/garbage as a key', () => ({ bundlePem, client: { ...valid, keyPem: '-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END PRIVATE KEY-----\n' } }), /--key is not a PEM private key that can be read$/],
    ['fail/an issuer that is not a CA', () => ({ bundlePem, client: valid, issuer: valid }), /--issuer-cert is not a CA certificate/],
  ])('%s → ERR_CONFIG naming the flag', (_name, material, message) => {
    const error = codeOf(() => checkMaterial(material()));
    expect(error.code).toBe('ERR_CONFIG');
    expect(error.message).toMatch(message);
    // Key material never appears in messages.
    expect(error.message).not.toMatch(/c2VjcmV0|BEGIN|AAAA/);
  });
});

describe('--expect-id', () => {
  it('an exact ID matches itself only; a trust domain matches every ID in it', () => {
    expect(expectedId(ID).matches(ID)).toBe(true);
    expect(expectedId(ID).matches(`${ID}2`)).toBe(false);
    expect(expectedId('spiffe://example.org').matches(ID)).toBe(true);
    expect(expectedId('spiffe://example.org').matches('spiffe://example.com/x')).toBe(false);
    expect(codeOf(() => expectedId('https://example.org/x')).code).toBe('ERR_SPIFFE_ID_INVALID');
  });

  it('the server leaf must carry exactly one SPIFFE ID, one expected', () => {
    const leaf = new X509Certificate(valid.certPem);
    expect(checkServerId(leaf, [expectedId(ID)])).toEqual({ ok: true, id: ID });
    expect(checkServerId(leaf, [expectedId('spiffe://example.org/other'), expectedId('spiffe://example.com')])).toEqual({
      ok: false,
      problem: `the server is ${ID}, expected spiffe://example.org/other or any ID in example.com`,
    });
    expect(checkServerId(issuer.certificate, [expectedId(ID)])).toEqual({ ok: false, problem: 'the server certificate names no SPIFFE ID' });
  });
});

describe('the minted client certificates, judged by OpenSSL', () => {
  /** `openssl verify` as a TLS server verifies a client: chain, dates and purpose sslclient. */
  function opensslVerdict(certPem: string): string {
    const [leaf, ...chain] = certPem.split(/(?=-----BEGIN CERTIFICATE-----)/);
    return runWithFiles('openssl', (dir) => ['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', `${dir}/bundle.pem`, '-untrusted', `${dir}/chain.pem`, `${dir}/leaf.pem`], {
      'bundle.pem': bundlePem,
      'chain.pem': chain.join('') || bundlePem,
      'leaf.pem': leaf!,
    }).output;
  }

  it('a current leaf verifies, and names the client SPIFFE ID', () => {
    expect(opensslVerdict(valid.certPem)).toMatch(/: OK/);
    expect(spiffeIdsOf(new X509Certificate(valid.certPem).subjectAltName)).toEqual([ID]);
  });

  it('the expired leaf fails only on its dates', () => {
    const output = opensslVerdict(mintFromIssuer(issuer, ID, 'expired', new Date()).certPem);
    expect(output).toMatch(/certificate has expired/);
    expect(output).not.toMatch(/unsuitable certificate purpose|unable to get/);
  });

  it('the not-yet-valid leaf fails only on its dates', () => {
    const output = opensslVerdict(mintFromIssuer(issuer, ID, 'not-yet-valid', new Date()).certPem);
    expect(output).toMatch(/certificate is not yet valid/);
    expect(output).not.toMatch(/unsuitable certificate purpose|unable to get/);
  });

  it('the serverAuth-only leaf fails only on its purpose', async () => {
    const minted = await mintServerAuthOnly(issuer, ID, new Date());
    expect(opensslVerdict(minted.certPem)).toMatch(/unsuitable certificate purpose/);
    expect(new X509Certificate(minted.certPem).keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    expect(spiffeIdsOf(new X509Certificate(minted.certPem).subjectAltName)).toEqual([ID]);
  });

  it("the stranger's leaf comes with its own CA, which the bundle does not hold", async () => {
    const minted = await mintFromUnknownCa(ID, new Date());
    expect(opensslVerdict(minted.certPem)).toMatch(/self-signed certificate in certificate chain|unable to get local issuer certificate/);
    expect(spiffeIdsOf(new X509Certificate(minted.certPem).subjectAltName)).toEqual([ID]);
  });
});

describe('verifyServerChain', () => {
  const chainOf = (pem: string): X509Certificate[] => pem.split(/(?=-----BEGIN CERTIFICATE-----)/).map((block) => new X509Certificate(block));
  const bundle = (): X509Certificate[] => [issuer.certificate];

  it('ok: leaf ← root in the bundle', () => {
    expect(verifyServerChain(chainOf(valid.certPem), bundle(), new Date())).toEqual({ ok: true, path: `${ID} ← O=tlsmesh, OU=example.org, CN=tlsmesh root CA example.org (in the bundle)` });
  });

  it('fail: outside the validity window', () => {
    const expired = mintFromIssuer(issuer, ID, 'expired', new Date());
    expect(verifyServerChain(chainOf(expired.certPem), bundle(), new Date())).toMatchObject({ ok: false, problem: expect.stringMatching(/depth 0\) expired at/) as unknown });
  });

  it('fail: a chain to another root', async () => {
    const stranger = await mintFromUnknownCa(ID, new Date());
    expect(verifyServerChain(chainOf(stranger.certPem), bundle(), new Date())).toMatchObject({ ok: false, problem: expect.stringMatching(/^no issuer for "O=tlsmesh probe, CN=untrusted CA made by tlsmesh probe"/) as unknown });
  });

  it('fail: a leaf whose extendedKeyUsage excludes serverAuth', async () => {
    const key = generateKeyPair('p256');
    const der = await issueWithLibrary({
      issuerCertDer: issuer.certificate.raw,
      issuerPrivateKey: issuer.privateKey,
      subjectPublicKey: key.publicKey,
      serial: randomSerial(),
      subject: 'O=client only',
      notBefore: new Date(Date.now() - DAY),
      notAfter: new Date(Date.now() + DAY),
      extensions: (x509) => [new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]), new x509.SubjectAlternativeNameExtension([{ type: 'url', value: ID }])],
    });
    expect(verifyServerChain([new X509Certificate(der)], bundle(), new Date())).toEqual({ ok: false, problem: "the leaf's extendedKeyUsage (1.3.6.1.5.5.7.3.2) does not allow serverAuth" });
  });
});
