/**
 * The hand-written leaf encoder (src/pki/leaf.ts) against @peculiar/x509 as the oracle: the same
 * serial, validity, subject, SPKI and extensions in the same order must give the same
 * TBSCertificate, byte for byte. Signatures differ between runs for ECDSA, so the TBS is what is
 * compared; the signature itself is checked with node:crypto.
 */
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate, SubjectPublicKeyInfo, TBSCertificate } from '@peculiar/asn1-x509';
import { createHash, X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { fingerprintOf, LEAF_SUBJECT_DER, LeafIssuer, type LeafRequest } from '../../src/pki/leaf.js';
import {
  KEY_TYPES_UNDER_TEST,
  makeCa,
  oracle,
  oracleSigningKey,
  ORACLE_SIGNING,
  testKey,
  type CaFixture,
  type TestKeyType,
} from './support.js';

const CRL_URL = 'https://ca.example.org:8443/v1/crl';
const OCSP_URL = 'https://ca.example.org:8443/v1/ocsp';
const SPIFFE_ID = 'spiffe://example.org/ns/prod/sa/api';
const NOT_BEFORE = new Date('2026-03-01T10:00:00Z');
const NOT_AFTER = new Date('2026-03-02T10:00:00Z');
const SERIAL = Buffer.from('5a0c4b1e9d3f7a2c81e6b0d4c3a29f10', 'hex');

const x509 = oracle();
const cas = new Map<TestKeyType, CaFixture>();

beforeAll(async () => {
  for (const type of KEY_TYPES_UNDER_TEST) cas.set(type, await makeCa('p256', type));
});

function ca(type: TestKeyType): CaFixture {
  const fixture = cas.get(type);
  if (fixture === undefined) throw new Error(`no CA fixture for ${type}`);
  return fixture;
}

function issuerFor(type: TestKeyType, urls: { crlUrl?: string; ocspUrl?: string } = { crlUrl: CRL_URL, ocspUrl: OCSP_URL }): LeafIssuer {
  const fixture = ca(type);
  return new LeafIssuer({
    issuerCertDer: fixture.intermediateDer,
    issuerNotAfter: fixture.notAfter,
    issuerPrivateKey: fixture.intermediateKey.privateKey,
    crlUrl: urls.crlUrl,
    ocspUrl: urls.ocspUrl,
  });
}

function leafRequest(leafType: TestKeyType, overrides: Partial<LeafRequest> = {}): LeafRequest {
  return {
    serial: SERIAL,
    spki: testKey(leafType, 3).publicKey.export({ format: 'der', type: 'spki' }),
    rsaKey: leafType === 'rsa2048',
    spiffeId: SPIFFE_ID,
    dnsNames: ['api.example.org', 'api.prod.svc.cluster.local'],
    ipAddresses: ['10.1.2.3', '2001:db8::1'],
    notBefore: NOT_BEFORE,
    notAfter: NOT_AFTER,
    ...overrides,
  };
}

/** The same leaf built by @peculiar/x509, returned as TBSCertificate DER. */
async function oracleTbs(
  issuerType: TestKeyType,
  request: LeafRequest,
  urls: { crlUrl?: string; ocspUrl?: string } = { crlUrl: CRL_URL, ocspUrl: OCSP_URL },
): Promise<Buffer> {
  const fixture = ca(issuerType);
  const issuerCert = new x509.X509Certificate(fixture.intermediateDer);
  const leafPublicKey = new x509.PublicKey(new Uint8Array(request.spki));
  const usages = x509.KeyUsageFlags.digitalSignature | (request.rsaKey ? x509.KeyUsageFlags.keyEncipherment : 0);
  const names: { type: 'url' | 'dns' | 'ip'; value: string }[] = [
    { type: 'url', value: request.spiffeId },
    ...request.dnsNames.map((value) => ({ type: 'dns' as const, value })),
    ...request.ipAddresses.map((value) => ({ type: 'ip' as const, value })),
  ];
  const extensions: InstanceType<typeof x509.Extension>[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(usages, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth], false),
    await x509.SubjectKeyIdentifierExtension.create(leafPublicKey),
    await x509.AuthorityKeyIdentifierExtension.create(issuerCert.publicKey),
    new x509.SubjectAlternativeNameExtension(names),
  ];
  if (urls.crlUrl !== undefined) extensions.push(new x509.CRLDistributionPointsExtension([urls.crlUrl]));
  if (urls.ocspUrl !== undefined) extensions.push(new x509.AuthorityInfoAccessExtension({ ocsp: [urls.ocspUrl] }));
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: request.serial.toString('hex'),
    subject: new x509.Name([{ O: [{ utf8String: 'tlsmesh' }] }]),
    issuer: issuerCert.subjectName,
    notBefore: request.notBefore,
    notAfter: request.notAfter,
    publicKey: leafPublicKey,
    signingKey: await oracleSigningKey(issuerType, fixture.intermediateKey),
    signingAlgorithm: ORACLE_SIGNING[issuerType],
    extensions,
  });
  const parsed = AsnConvert.parse(certificate.rawData, Certificate);
  return Buffer.from(AsnConvert.serialize(parsed.tbsCertificate));
}

const parseTbs = (der: Buffer): TBSCertificate => AsnConvert.parse(der, TBSCertificate);
const extensionOids = (der: Buffer): string[] => (parseTbs(der).extensions ?? []).map((extension) => extension.extnID);

const OID = {
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  subjectAltName: '2.5.29.17',
  crlDistributionPoints: '2.5.29.31',
  authorityInfoAccess: '1.3.6.1.5.5.7.1.1',
};

describe('LeafIssuer.encodeTbs vs @peculiar/x509, field for field', () => {
  const matrix = KEY_TYPES_UNDER_TEST.flatMap((issuer) => KEY_TYPES_UNDER_TEST.map((leaf) => ({ issuer, leaf })));

  it.each(matrix)('ok/issuer=$issuer leaf=$leaf', async ({ issuer, leaf }) => {
    const request = leafRequest(leaf);
    const ours = issuerFor(issuer).encodeTbs(request);
    expect(ours.toString('hex')).toBe((await oracleTbs(issuer, request)).toString('hex'));
    expect(extensionOids(ours)).toEqual([
      OID.basicConstraints,
      OID.keyUsage,
      OID.extKeyUsage,
      OID.subjectKeyIdentifier,
      OID.authorityKeyIdentifier,
      OID.subjectAltName,
      OID.crlDistributionPoints,
      OID.authorityInfoAccess,
    ]);
  });

  const variants: { name: string; urls: { crlUrl?: string; ocspUrl?: string }; extra: string[] }[] = [
    { name: 'ok/no CRL and no OCSP URL: both extensions omitted', urls: {}, extra: [] },
    { name: 'ok/CRL URL only', urls: { crlUrl: CRL_URL }, extra: [OID.crlDistributionPoints] },
    { name: 'ok/OCSP URL only', urls: { ocspUrl: OCSP_URL }, extra: [OID.authorityInfoAccess] },
  ];
  it.each(variants)('$name', async ({ urls, extra }) => {
    const request = leafRequest('p256');
    const ours = issuerFor('p256', urls).encodeTbs(request);
    expect(ours.toString('hex')).toBe((await oracleTbs('p256', request, urls)).toString('hex'));
    expect(extensionOids(ours)).toEqual([
      OID.basicConstraints,
      OID.keyUsage,
      OID.extKeyUsage,
      OID.subjectKeyIdentifier,
      OID.authorityKeyIdentifier,
      OID.subjectAltName,
      ...extra,
    ]);
  });

  const requests: { name: string; overrides: Partial<LeafRequest> }[] = [
    { name: 'ok/URI SAN only', overrides: { dnsNames: [], ipAddresses: [] } },
    { name: 'ok/IPv6-only and IPv4-only SANs', overrides: { dnsNames: [], ipAddresses: ['::1', '192.0.2.7', 'fe80::1:2'] } },
    // Leading zero octets are stripped and a 0x00 pad added because the next octet has its high bit set.
    { name: 'ok/serial with leading zeros and the high bit set', overrides: { serial: Buffer.from('00009fab01020304050607080910', 'hex') } },
    { name: 'ok/notAfter in 2051 (GeneralizedTime)', overrides: { notAfter: new Date('2051-06-30T12:34:56Z') } },
    {
      name: 'ok/validity either side of the 2050 switch',
      overrides: { notBefore: new Date('2049-12-31T23:59:59Z'), notAfter: new Date('2050-01-01T00:00:00Z') },
    },
    { name: 'ok/milliseconds are dropped', overrides: { notBefore: new Date('2026-03-01T10:00:00.999Z') } },
  ];
  it.each(requests)('$name', async ({ overrides }) => {
    const request = leafRequest('p256', overrides);
    const ours = issuerFor('p384').encodeTbs(request);
    expect(ours.toString('hex')).toBe((await oracleTbs('p384', request)).toString('hex'));
  });

  it('ok/subject is O=tlsmesh as a UTF8String', () => {
    const expected = Buffer.from(new x509.Name([{ O: [{ utf8String: 'tlsmesh' }] }]).toArrayBuffer());
    expect(LEAF_SUBJECT_DER.toString('hex')).toBe(expected.toString('hex'));
    expect(LEAF_SUBJECT_DER.includes(Buffer.from([0x0c, 0x07]))).toBe(true); // UTF8String, 7 octets
  });
});

describe('validity encoding (RFC 5280 §4.1.2.5)', () => {
  const cases = [
    { name: 'ok/2049-12-31T23:59:59Z is UTCTime', date: '2049-12-31T23:59:59Z', utc: true },
    { name: 'ok/2050-01-01T00:00:00Z is GeneralizedTime', date: '2050-01-01T00:00:00Z', utc: false },
    { name: 'ok/2051 is GeneralizedTime', date: '2051-01-01T00:00:00Z', utc: false },
    { name: 'ok/2026 is UTCTime', date: '2026-03-02T10:00:00Z', utc: true },
  ];
  it.each(cases)('$name', ({ date, utc }) => {
    const notAfter = new Date(date);
    const tbs = parseTbs(issuerFor('p256').encodeTbs(leafRequest('p256', { notAfter })));
    const field = tbs.validity.notAfter;
    expect(field.utcTime !== undefined).toBe(utc);
    expect(field.generalTime !== undefined).toBe(!utc);
    expect(field.getTime().getTime()).toBe(notAfter.getTime());
  });

  it('ok/node:crypto reads a 2051 notAfter back', () => {
    const der = issuerFor('p256').issue(leafRequest('p256', { notAfter: new Date('2051-06-30T12:34:56Z') }));
    expect(new Date(new X509Certificate(der).validTo).toISOString()).toBe('2051-06-30T12:34:56.000Z');
  });
});

describe('LeafIssuer.issue signatures', () => {
  it.each(KEY_TYPES_UNDER_TEST.flatMap((issuer) => KEY_TYPES_UNDER_TEST.map((leaf) => ({ issuer, leaf }))))(
    'ok/issuer=$issuer leaf=$leaf verifies with the issuer key and only with it',
    ({ issuer, leaf }) => {
      const der = issuerFor(issuer).issue(leafRequest(leaf));
      const certificate = new X509Certificate(der);
      expect(certificate.verify(ca(issuer).intermediateKey.publicKey)).toBe(true);
      expect(certificate.checkIssued(new X509Certificate(ca(issuer).intermediateDer))).toBe(true);
      const stranger = testKey(issuer, 9); // same type, another key
      expect(certificate.verify(stranger.publicKey)).toBe(false);
      // Certificate.signatureAlgorithm must repeat TBSCertificate.signature.
      const parsed = AsnConvert.parse(der, Certificate);
      expect(Buffer.from(AsnConvert.serialize(parsed.signatureAlgorithm))).toEqual(Buffer.from(AsnConvert.serialize(parsed.tbsCertificate.signature)));
    },
  );

  it.each(KEY_TYPES_UNDER_TEST)('ok/issuer=%s: issueAsync (signed on the thread pool) gives the same TBS as issue, signed by the issuer', async (issuer) => {
    const request = leafRequest('p256');
    const sync = AsnConvert.parse(issuerFor(issuer).issue(request), Certificate);
    const der = await issuerFor(issuer).issueAsync(request);
    const parsed = AsnConvert.parse(der, Certificate);
    expect(Buffer.from(AsnConvert.serialize(parsed.tbsCertificate))).toEqual(Buffer.from(AsnConvert.serialize(sync.tbsCertificate)));
    expect(Buffer.from(AsnConvert.serialize(parsed.tbsCertificate))).toEqual(issuerFor(issuer).encodeTbs(request));
    expect(new X509Certificate(der).verify(ca(issuer).intermediateKey.publicKey)).toBe(true);
    expect(new X509Certificate(der).verify(testKey(issuer, 9).publicKey)).toBe(false);
  });

  it('fail/a certificate with one TBS byte changed does not verify', () => {
    const der = Buffer.from(issuerFor('p256').issue(leafRequest('p256')));
    const at = der.indexOf(Buffer.from('api.example.org'));
    der[at] = der[at]! ^ 0x01;
    expect(new X509Certificate(der).verify(ca('p256').intermediateKey.publicKey)).toBe(false);
  });

  it('ok/fingerprintOf is the SHA-256 fingerprint node:crypto shows', () => {
    const der = issuerFor('ed25519').issue(leafRequest('p256'));
    expect(fingerprintOf(der)).toBe(new X509Certificate(der).fingerprint256.replaceAll(':', '').toLowerCase());
  });
});

describe('issuer without a subjectKeyIdentifier', () => {
  it('ok/AKI falls back to the RFC 5280 method-1 key identifier', async () => {
    const keys = testKey('p256', 7);
    const signingKey = await oracleSigningKey('p256', keys);
    const publicKey = new x509.PublicKey(new Uint8Array(keys.publicKey.export({ format: 'der', type: 'spki' })));
    const ca = await x509.X509CertificateGenerator.create({
      serialNumber: '01',
      subject: 'CN=no ski',
      issuer: 'CN=no ski',
      notBefore: NOT_BEFORE,
      notAfter: NOT_AFTER,
      publicKey,
      signingKey,
      signingAlgorithm: ORACLE_SIGNING.p256,
      extensions: [new x509.BasicConstraintsExtension(true, 0, true)],
    });
    const issuer = new LeafIssuer({ issuerCertDer: Buffer.from(ca.rawData), issuerNotAfter: NOT_AFTER, issuerPrivateKey: keys.privateKey });
    const tbs = parseTbs(issuer.encodeTbs(leafRequest('p256')));
    const aki = tbs.extensions?.find((extension) => extension.extnID === OID.authorityKeyIdentifier);
    const expected = Buffer.from(await publicKey.getKeyIdentifier());
    const spki = AsnConvert.parse(Buffer.from(publicKey.rawData), SubjectPublicKeyInfo);
    expect(expected).toEqual(createHash('sha1').update(Buffer.from(spki.subjectPublicKey)).digest());
    // AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING }
    expect(Buffer.from(aki!.extnValue.buffer).toString('hex')).toBe(Buffer.concat([Buffer.from([0x30, 22, 0x80, 20]), expected]).toString('hex'));
  });
});
