/**
 * The CRL encoder, parser and signature check (src/pki/crl.ts) against second implementations:
 *
 * - @peculiar/x509 as the oracle: it parses and verifies every CRL we issue, and its
 *   X509CrlGenerator builds the same CRL, whose TBSCertList must equal ours byte for byte;
 * - OpenSSL: `crl -text` / `crl -verify` read and verify our CRLs, `verify -crl_check_all` refuses
 *   a revoked leaf (and a leaf under a revoked intermediate) with both CRLs, and `ca -gencrl`
 *   makes CRLs for the parser;
 * - GnuTLS: `certtool --crl-info` and `--verify-crl` (and `--verify --load-crl`).
 *
 * Malformed inputs are built from a DER template that, untouched, is byte-identical to what
 * CrlIssuer writes, so each case differs from a valid CRL only by the defect it names.
 */
import 'reflect-metadata';
import { AsnConvert, AsnIntegerBigIntConverter, AsnProp, AsnPropTypes, AsnType, AsnTypeTypes } from '@peculiar/asn1-schema';
import { CertificateList } from '@peculiar/asn1-x509';
import { spawnSync } from 'node:child_process';
import { sign, X509Certificate } from 'node:crypto';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { connect, createServer, type Server } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIntermediateCertificate, createRootCertificate } from '../../src/pki/authority-certificates.js';
import {
  CrlIssuer,
  crlToPem,
  isRevocationReason,
  parseCrl,
  REVOCATION_REASONS,
  serialKey,
  verifyCrlSignature,
  type CrlRequest,
  type RevocationReason,
  type RevokedEntry,
} from '../../src/pki/crl.js';
import { booleanTrue, explicit, nullValue, octetString, oid, readChildren, readWhole, sequence, smallInteger, TAG, time, tlv } from '../../src/pki/der.js';
import { LeafIssuer } from '../../src/pki/leaf.js';
import { randomSerial, serialHex } from '../../src/pki/serial.js';
import {
  describeCerttool,
  expectCode,
  KEY_TYPES_UNDER_TEST,
  makeCa,
  openssl,
  oracle,
  oracleSigningKey,
  ORACLE_SIGNING,
  pem,
  run,
  scratchDir,
  testKey,
  validityAroundNow,
  type CaFixture,
  type Scratch,
  type TestKeyType,
} from './support.js';

const x509 = oracle();

// OIDs written out here rather than taken from src/pki/oids.ts.
const OIDS = {
  authorityKeyIdentifier: '2.5.29.35',
  subjectKeyIdentifier: '2.5.29.14',
  cRLNumber: '2.5.29.20',
  reasonCode: '2.5.29.21',
  invalidityDate: '2.5.29.24',
  deltaCRLIndicator: '2.5.29.27',
  issuingDistributionPoint: '2.5.29.28',
  certificateIssuer: '2.5.29.29',
  issuerAltName: '2.5.29.18',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  sha1WithRsa: '1.2.840.113549.1.1.5',
};

/** RFC 5280 §5.3.1 codes, written out as the expectation. */
const REASON_CODES: Readonly<Record<RevocationReason, number>> = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  privilegeWithdrawn: 9,
  aACompromise: 10,
};

/** How `openssl crl -text` names each reason (unspecified: no reasonCode, so nothing is shown). */
const OPENSSL_REASON_TEXT: Readonly<Record<RevocationReason, string | undefined>> = {
  unspecified: undefined,
  keyCompromise: 'Key Compromise',
  cACompromise: 'CA Compromise',
  affiliationChanged: 'Affiliation Changed',
  superseded: 'Superseded',
  cessationOfOperation: 'Cessation Of Operation',
  certificateHold: 'Certificate Hold',
  privilegeWithdrawn: 'Privilege Withdrawn',
  aACompromise: 'AA Compromise',
};

/** A CRLNumber-style bare INTEGER that takes a bigint (asn1-x509's CRLNumber holds a JS number). */
@AsnType({ type: AsnTypeTypes.Choice })
class BigInteger {
  @AsnProp({ type: AsnPropTypes.Integer, converter: AsnIntegerBigIntConverter })
  value: bigint;

  constructor(value = 0n) {
    this.value = value;
  }
}

const THIS_UPDATE = new Date('2026-03-01T10:00:00Z');
const NEXT_UPDATE = new Date('2026-03-02T10:00:00Z');

/**
 * One entry per reason, plus serials that exercise the INTEGER encoding: leading zero octets to
 * strip, a high bit that needs a 0x00 pad, a one-octet serial, and a revocation date in 2050.
 */
const ENTRIES: readonly RevokedEntry[] = [
  ...REVOCATION_REASONS.map((reason, i) => ({
    serial: Buffer.from(`5a0c4b1e9d3f7a2c81e6b0d4c3a29f${(0x10 + i).toString(16)}`, 'hex'),
    revokedAt: new Date(Date.UTC(2026, 1, 20 + i, 8, 30, 15)),
    reason,
  })),
  { serial: Buffer.from('0000c0ffee00112233445566778899aa', 'hex'), revokedAt: new Date('2026-02-28T23:59:59Z'), reason: 'keyCompromise' },
  { serial: Buffer.from('01', 'hex'), revokedAt: new Date('2026-01-01T00:00:00Z'), reason: 'unspecified' },
  { serial: Buffer.from('7fffffffffffffffffffffffffffffffffffff', 'hex'), revokedAt: new Date('2050-01-01T00:00:00Z'), reason: 'superseded' },
];

/** The entries X509CrlGenerator encodes exactly as we do (see the oracle tests for why). */
const ENTRIES_WITH_REASON = ENTRIES.filter((entry) => entry.reason !== 'unspecified');

const request = (overrides: Partial<CrlRequest> = {}): CrlRequest => ({
  crlNumber: 42n,
  thisUpdate: THIS_UPDATE,
  nextUpdate: NEXT_UPDATE,
  entries: ENTRIES,
  ...overrides,
});

let scratch: Scratch;
const cas = new Map<TestKeyType, CaFixture>();
/** Another trust domain's CA: a different issuer name and key. */
let otherCa: CaFixture;

beforeAll(async () => {
  scratch = scratchDir();
  for (const type of KEY_TYPES_UNDER_TEST) cas.set(type, await makeCa(type, type));
  otherCa = await makeCa('p256', 'p256', 'other.org');
});

afterAll(() => scratch?.remove());

function ca(type: TestKeyType): CaFixture {
  const fixture = cas.get(type);
  if (fixture === undefined) throw new Error(`no CA fixture for ${type}`);
  return fixture;
}

const intermediateCrlIssuer = (type: TestKeyType): CrlIssuer =>
  new CrlIssuer({ issuerCertDer: ca(type).intermediateDer, issuerPrivateKey: ca(type).intermediateKey.privateKey });
const rootCrlIssuer = (type: TestKeyType): CrlIssuer => new CrlIssuer({ issuerCertDer: ca(type).rootDer, issuerPrivateKey: ca(type).rootKey.privateKey });

const oracleReason = (reason: RevocationReason): number | undefined => (reason === 'unspecified' ? undefined : REASON_CODES[reason]);
/** @peculiar/x509's serial form: lowercase hex without the sign pad or leading zeros. */
const oracleSerial = (serial: Buffer): string => serial.toString('hex').replace(/^(00)+(?=..)/, '');
const wholeSeconds = (date: Date): number => Math.floor(date.getTime() / 1000) * 1000;

function subjectKeyIdOf(certDer: Buffer): string {
  const ski = new x509.X509Certificate(certDer).getExtension(x509.SubjectKeyIdentifierExtension);
  if (ski === null) throw new Error('issuer has no subjectKeyIdentifier');
  return ski.keyId;
}

/** The same CRL built by @peculiar/x509's X509CrlGenerator. */
async function oracleCrl(type: TestKeyType, crlRequest: CrlRequest): Promise<InstanceType<typeof x509.X509Crl>> {
  const fixture = ca(type);
  const issuerCert = new x509.X509Certificate(fixture.intermediateDer);
  return x509.X509CrlGenerator.create({
    issuer: issuerCert.subjectName,
    thisUpdate: crlRequest.thisUpdate,
    nextUpdate: crlRequest.nextUpdate,
    signingAlgorithm: ORACLE_SIGNING[type],
    signingKey: await oracleSigningKey(type, fixture.intermediateKey),
    extensions: [
      new x509.AuthorityKeyIdentifierExtension(subjectKeyIdOf(fixture.intermediateDer)),
      new x509.Extension(OIDS.cRLNumber, false, AsnConvert.serialize(new BigInteger(crlRequest.crlNumber))),
    ],
    entries: crlRequest.entries.map((entry) => {
      const reason = oracleReason(entry.reason);
      return { serialNumber: entry.serial.toString('hex'), revocationDate: entry.revokedAt, ...(reason === undefined ? {} : { reason }) };
    }),
  });
}

/** TBSCertList exactly as the CRL carries it (read with the shared DER reader, not re-encoded). */
const rawTbsOf = (der: ArrayBuffer): Buffer => Buffer.from(readChildren(readWhole(Buffer.from(der), 'ERR_INTERNAL'), 'ERR_INTERNAL')[0]!.raw);
/** TBSCertList parsed and re-encoded by asn1-schema, which leaves out an empty crlEntryExtensions. */
const reencodedTbsOf = (der: ArrayBuffer): Buffer => Buffer.from(AsnConvert.serialize(AsnConvert.parse(der, CertificateList).tbsCertList));

// ---------------------------------------------------------------------------------------------

describe('CrlIssuer against @peculiar/x509', () => {
  it.each(KEY_TYPES_UNDER_TEST)('ok/%s: the oracle reads back issuer, dates, entries, cRLNumber and AKI, and verifies the signature', async (type) => {
    const fixture = ca(type);
    const crl = new x509.X509Crl(intermediateCrlIssuer(type).issue(request()));
    const issuerCert = new x509.X509Certificate(fixture.intermediateDer);
    expect(crl.version).toBe(1);
    expect(crl.issuer).toBe(issuerCert.subject);
    expect(Buffer.from(crl.issuerName.toArrayBuffer())).toEqual(Buffer.from(issuerCert.subjectName.toArrayBuffer()));
    expect(crl.thisUpdate.getTime()).toBe(THIS_UPDATE.getTime());
    expect(crl.nextUpdate?.getTime()).toBe(NEXT_UPDATE.getTime());
    expect(crl.entries.map((entry) => ({ serial: entry.serialNumber, date: entry.revocationDate.getTime(), reason: entry.reason }))).toEqual(
      ENTRIES.map((entry) => ({ serial: oracleSerial(entry.serial), date: entry.revokedAt.getTime(), reason: oracleReason(entry.reason) })),
    );
    // Unspecified is left out (RFC 5280 §5.3.1 SHOULD), so those entries carry no extensions at all.
    for (const [i, entry] of crl.entries.entries()) {
      expect(entry.extensions.map((extension) => [extension.type, extension.critical])).toEqual(
        ENTRIES[i]!.reason === 'unspecified' ? [] : [[OIDS.reasonCode, false]],
      );
    }
    expect(crl.extensions.map((extension) => [extension.type, extension.critical])).toEqual([
      [OIDS.authorityKeyIdentifier, false],
      [OIDS.cRLNumber, false],
    ]);
    expect(crl.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId).toBe(subjectKeyIdOf(fixture.intermediateDer));
    expect(AsnConvert.parse(crl.getExtension(OIDS.cRLNumber)!.value, BigInteger).value).toBe(42n);
    expect(await crl.verify({ publicKey: issuerCert })).toBe(true);
    expect(await crl.verify({ publicKey: new x509.X509Certificate(fixture.rootDer) })).toBe(false);
  });

  it.each(KEY_TYPES_UNDER_TEST)('ok/%s: TBSCertList equals X509CrlGenerator output byte for byte (every entry with a reason)', async (type) => {
    const crlRequest = request({ entries: ENTRIES_WITH_REASON });
    const ours = intermediateCrlIssuer(type).encodeTbs(crlRequest);
    expect(ours.toString('hex')).toBe(rawTbsOf((await oracleCrl(type, crlRequest)).rawData).toString('hex'));
  });

  // The one legitimate difference: for an entry without a reason X509CrlGenerator writes an empty
  // crlEntryExtensions SEQUENCE (30 00), which Extensions' SIZE (1..MAX) does not allow; we leave
  // the field out. So these are compared after asn1-schema re-encodes the oracle's TBSCertList
  // (its parser drops the empty list), and the raw oracle bytes are checked to differ by exactly
  // those empty lists.
  it.each(KEY_TYPES_UNDER_TEST)('ok/%s: with unspecified entries, equal but for the empty crlEntryExtensions X509CrlGenerator writes', async (type) => {
    const ours = intermediateCrlIssuer(type).encodeTbs(request());
    const made = await oracleCrl(type, request());
    expect(ours.toString('hex')).toBe(reencodedTbsOf(made.rawData).toString('hex'));
    const raw = rawTbsOf(made.rawData);
    const unspecified = ENTRIES.filter((entry) => entry.reason === 'unspecified');
    expect(unspecified.length).toBeGreaterThan(0);
    for (const entry of unspecified) {
      // These serials need no 0x00 pad, so the INTEGER content is the serial itself.
      expect(raw.includes(sequence(tlv(TAG.INTEGER, entry.serial), time(entry.revokedAt), sequence()))).toBe(true);
    }
    expect(raw.length - ours.length).toBe(2 * unspecified.length);
  });

  const variants: { name: string; overrides: Partial<CrlRequest> }[] = [
    { name: 'ok/no entries: revokedCertificates absent', overrides: { entries: [] } },
    { name: 'ok/nextUpdate in 2051 (GeneralizedTime), thisUpdate 2049 (UTCTime)', overrides: { thisUpdate: new Date('2049-12-31T23:59:59Z'), nextUpdate: new Date('2051-06-30T12:34:56Z') } },
    { name: 'ok/milliseconds are dropped', overrides: { thisUpdate: new Date('2026-03-01T10:00:00.999Z') } },
    { name: 'ok/cRLNumber 0', overrides: { crlNumber: 0n } },
    { name: 'ok/cRLNumber 128 (0x00 pad)', overrides: { crlNumber: 128n } },
    { name: 'ok/cRLNumber 2^64', overrides: { crlNumber: 2n ** 64n } },
    { name: 'ok/cRLNumber 2^159 - 1 (20 octets, the RFC 5280 maximum)', overrides: { crlNumber: 2n ** 159n - 1n } },
  ];
  it.each(variants)('$name', async ({ overrides }) => {
    const crlRequest = request({ entries: ENTRIES_WITH_REASON, ...overrides });
    const ours = intermediateCrlIssuer('p384').encodeTbs(crlRequest);
    expect(ours.toString('hex')).toBe(rawTbsOf((await oracleCrl('p384', crlRequest)).rawData).toString('hex'));
  });

  // Read with the shared DER reader: asn1-schema's parser would hide an empty SEQUENCE here.
  it('ok/an empty CRL has no revokedCertificates field at all (not an empty SEQUENCE)', () => {
    const tbs = readWhole(intermediateCrlIssuer('p256').encodeTbs(request({ entries: [] })), 'ERR_INTERNAL');
    expect(readChildren(tbs, 'ERR_INTERNAL').map((field) => field.tag)).toEqual([TAG.INTEGER, TAG.SEQUENCE, TAG.SEQUENCE, TAG.UTC_TIME, TAG.UTC_TIME, 0xa0]);
    const withEntries = readWhole(intermediateCrlIssuer('p256').encodeTbs(request()), 'ERR_INTERNAL');
    expect(readChildren(withEntries, 'ERR_INTERNAL').map((field) => field.tag)).toEqual([TAG.INTEGER, TAG.SEQUENCE, TAG.SEQUENCE, TAG.UTC_TIME, TAG.UTC_TIME, TAG.SEQUENCE, 0xa0]);
  });

  it('ok/CertificateList.signatureAlgorithm repeats TBSCertList.signature', () => {
    for (const type of KEY_TYPES_UNDER_TEST) {
      const parsed = AsnConvert.parse(intermediateCrlIssuer(type).issue(request()), CertificateList);
      expect(Buffer.from(AsnConvert.serialize(parsed.signatureAlgorithm))).toEqual(Buffer.from(AsnConvert.serialize(parsed.tbsCertList.signature)));
    }
  });
});

describe('CrlIssuer input checks', () => {
  const entry = ENTRIES[0]!;
  const cases: { name: string; overrides: Partial<CrlRequest> }[] = [
    { name: 'fail/zero serial', overrides: { entries: [{ ...entry, serial: Buffer.from([0, 0]) }] } },
    { name: 'fail/empty serial', overrides: { entries: [{ ...entry, serial: Buffer.alloc(0) }] } },
    { name: 'fail/serial longer than 20 octets', overrides: { entries: [{ ...entry, serial: Buffer.alloc(20, 0xff) }] } },
    { name: 'fail/the same serial twice (once with a leading zero)', overrides: { entries: [entry, { ...entry, serial: Buffer.concat([Buffer.from([0]), entry.serial]) }] } },
    { name: 'fail/unknown reason', overrides: { entries: [{ ...entry, reason: 'removeFromCRL' as RevocationReason }] } },
    { name: 'fail/invalid revocation date', overrides: { entries: [{ ...entry, revokedAt: new Date(NaN) }] } },
    { name: 'fail/revocation date after 9999', overrides: { entries: [{ ...entry, revokedAt: new Date('+010000-01-01T00:00:00Z') }] } },
    { name: 'fail/nextUpdate before thisUpdate', overrides: { nextUpdate: new Date(THIS_UPDATE.getTime() - 1000) } },
    { name: 'fail/negative cRLNumber', overrides: { crlNumber: -1n } },
    { name: 'fail/cRLNumber of 2^159 needs 21 octets', overrides: { crlNumber: 2n ** 159n } },
  ];
  it.each(cases)('$name is a TypeError', ({ overrides }) => {
    expect(() => intermediateCrlIssuer('p256').encodeTbs(request(overrides))).toThrow(TypeError);
  });
});

// ---------------------------------------------------------------------------------------------

/** `openssl crl -text` entries: serial key → reason text (undefined without a reason). */
function opensslEntries(text: string): Map<string, string | undefined> {
  const entries = new Map<string, string | undefined>();
  for (const block of text.split(/\n {4}Serial Number: /).slice(1)) {
    const [serial] = block.split('\n');
    entries.set(serialKey(serial!.trim()), /X509v3 CRL Reason Code: *\n *(\S.*)/.exec(block)?.[1]?.trim());
  }
  return entries;
}

/** Like support's run(), but keeps stderr on success too: `openssl crl -verify` says "verify OK" there. */
function runCapturing(command: string, args: readonly string[]): { status: number | null; output: string } {
  const result = spawnSync(command, args, { cwd: scratch.dir, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (result.error) throw result.error;
  return { status: result.status, output: result.stdout + result.stderr };
}

const opensslCrlVerify = (crlFile: string, caFile: string) => runCapturing('openssl', ['crl', '-inform', 'DER', '-in', crlFile, '-CAfile', caFile, '-noout', '-verify']);

describe('OpenSSL reads and verifies our CRLs', () => {
  it.each(KEY_TYPES_UNDER_TEST)('ok/%s: crl -text shows every entry with its reason, the CRL number and AKI; crl -verify says verify OK', (type) => {
    const fixture = ca(type);
    scratch.write(`ossl-${type}.der`, intermediateCrlIssuer(type).issue(request()));
    scratch.write(`ossl-${type}-int.pem`, pem(fixture.intermediateDer, 'CERTIFICATE'));
    const text = openssl(['crl', '-inform', 'DER', '-in', `ossl-${type}.der`, '-noout', '-text'], scratch.dir);
    expect(text).toContain('Version 2 (0x1)');
    expect(text).toMatch(/X509v3 CRL Number:\s*\n\s*42\n/);
    const aki = subjectKeyIdOf(fixture.intermediateDer).toUpperCase().match(/../g)!.join(':');
    expect(text).toMatch(new RegExp(`X509v3 Authority Key Identifier:\\s*\\n\\s*(keyid:)?${aki}\\n`));
    expect(text).toMatch(/Last Update: Mar {2}1 10:00:00 2026 GMT\n\s*Next Update: Mar {2}2 10:00:00 2026 GMT/);
    expect((text.match(/^ {4}Serial Number: /gm) ?? []).length).toBe(ENTRIES.length);
    expect(opensslEntries(text)).toEqual(new Map(ENTRIES.map((entry) => [serialKey(entry.serial), OPENSSL_REASON_TEXT[entry.reason]])));
    const verified = opensslCrlVerify(`ossl-${type}.der`, `ossl-${type}-int.pem`);
    expect(verified.status, verified.output).toBe(0);
    expect(verified.output).toContain('verify OK');
  });

  it('ok/empty CRL: "No Revoked Certificates.", verify OK, and parseCrl gives an empty map', () => {
    const der = intermediateCrlIssuer('p256').issue(request({ entries: [] }));
    scratch.write('ossl-empty.der', der);
    scratch.write('ossl-empty-int.pem', pem(ca('p256').intermediateDer, 'CERTIFICATE'));
    expect(openssl(['crl', '-inform', 'DER', '-in', 'ossl-empty.der', '-noout', '-text'], scratch.dir)).toContain('No Revoked Certificates.');
    const verified = opensslCrlVerify('ossl-empty.der', 'ossl-empty-int.pem');
    expect(verified.status, verified.output).toBe(0);
    expect(verified.output).toContain('verify OK');
    expect(parseCrl(der).revoked.size).toBe(0);
  });

  it('fail/a CRL naming our intermediate but signed by another key (same subject) fails crl -verify', async () => {
    const forged = await sameNameOtherKey('p256');
    scratch.write('ossl-forged.der', forged.crlIssuer.issue(request()));
    scratch.write('ossl-forged-int.pem', pem(ca('p256').intermediateDer, 'CERTIFICATE'));
    const verified = opensslCrlVerify('ossl-forged.der', 'ossl-forged-int.pem');
    // OpenSSL 3.0 `crl -verify` prints "verify failure" but still exits 0: the message is the verdict.
    expect(verified.output).toContain('verify failure');
    expect(verified.output).not.toContain('verify OK');
  });

  it('fail/a CRL checked against another CA is refused by crl -verify', () => {
    scratch.write('ossl-other.der', intermediateCrlIssuer('p256').issue(request()));
    scratch.write('ossl-other-int.pem', pem(otherCa.intermediateDer, 'CERTIFICATE'));
    const verified = opensslCrlVerify('ossl-other.der', 'ossl-other-int.pem');
    expect(verified.status).not.toBe(0);
    expect(verified.output).toMatch(/Error getting CRL issuer certificate|verify failure/);
    expect(verified.output).not.toContain('verify OK');
  });
});

/** A CA with the same subject names as ca(type) but other keys: what a forged CRL would claim. */
async function sameNameOtherKey(type: TestKeyType): Promise<{ intermediateDer: Buffer; crlIssuer: CrlIssuer }> {
  const { notBefore, notAfter } = validityAroundNow();
  const rootKey = testKey(type, 5);
  const intermediateKey = testKey(type, 6);
  const rootDer = await createRootCertificate({ trustDomain: ca(type).trustDomain, privateKey: rootKey.privateKey, serial: randomSerial(), notBefore, notAfter });
  const intermediateDer = await createIntermediateCertificate({
    trustDomain: ca(type).trustDomain,
    publicKey: intermediateKey.publicKey,
    label: 'g1',
    issuerCertDer: rootDer,
    issuerPrivateKey: rootKey.privateKey,
    serial: randomSerial(),
    notBefore,
    notAfter,
  });
  expect(new X509Certificate(intermediateDer).subject).toBe(new X509Certificate(ca(type).intermediateDer).subject);
  return { intermediateDer, crlIssuer: new CrlIssuer({ issuerCertDer: intermediateDer, issuerPrivateKey: intermediateKey.privateKey }) };
}

function issueLeaf(type: TestKeyType, serial = randomSerial()): Buffer {
  const fixture = ca(type);
  return new LeafIssuer({ issuerCertDer: fixture.intermediateDer, issuerNotAfter: fixture.notAfter, issuerPrivateKey: fixture.intermediateKey.privateKey }).issue({
    serial,
    spki: testKey('p256', 3).publicKey.export({ format: 'der', type: 'spki' }),
    rsaKey: false,
    spiffeId: 'spiffe://example.org/ns/prod/sa/api',
    dnsNames: [],
    ipAddresses: [],
    ...validityAroundNow(),
  });
}

/** CRL dates around the real clock: OpenSSL and GnuTLS refuse CRLs not yet valid or expired. */
function liveRequest(entries: readonly RevokedEntry[]): CrlRequest {
  const now = Math.floor(Date.now() / 1000) * 1000;
  return { crlNumber: 7n, thisUpdate: new Date(now - 60_000), nextUpdate: new Date(now + 3600_000), entries };
}

describe('openssl verify -x509_strict -crl_check_all with our CRLs', () => {
  it.each(KEY_TYPES_UNDER_TEST)('%s: a revoked leaf is refused, an unrevoked one accepted; the root CRL is needed too; a revoked intermediate is refused', (type) => {
    const fixture = ca(type);
    const revokedSerial = randomSerial();
    const files = {
      root: scratch.write(`chain-${type}-root.pem`, pem(fixture.rootDer, 'CERTIFICATE')),
      intermediate: scratch.write(`chain-${type}-int.pem`, pem(fixture.intermediateDer, 'CERTIFICATE')),
      revoked: scratch.write(`chain-${type}-revoked.pem`, pem(issueLeaf(type, revokedSerial), 'CERTIFICATE')),
      good: scratch.write(`chain-${type}-good.pem`, pem(issueLeaf(type), 'CERTIFICATE')),
    };
    const now = new Date(Math.floor(Date.now() / 1000) * 1000 - 30_000);
    const others = [randomSerial(), randomSerial()].map((serial) => ({ serial, revokedAt: now, reason: 'superseded' as const }));
    const rootCrl = crlToPem(rootCrlIssuer(type).issue(liveRequest(others.slice(0, 1))));
    const intermediateCrl = crlToPem(intermediateCrlIssuer(type).issue(liveRequest([others[1]!, { serial: revokedSerial, revokedAt: now, reason: 'keyCompromise' }])));
    const bothCrls = scratch.write(`chain-${type}-crls.pem`, rootCrl + intermediateCrl);
    const intermediateOnly = scratch.write(`chain-${type}-int-crl.pem`, intermediateCrl);
    const verify = (crlFile: string, leaf: string) =>
      run('openssl', ['verify', '-x509_strict', '-crl_check_all', '-CAfile', files.root, '-untrusted', files.intermediate, '-CRLfile', crlFile, leaf], scratch.dir);

    const good = verify(bothCrls, files.good);
    expect(good.status, good.stderr).toBe(0);
    expect(good.stdout).toContain(': OK');

    const revoked = verify(bothCrls, files.revoked);
    expect(revoked.status).not.toBe(0);
    expect(revoked.stderr).toMatch(/error 23 at 0 depth lookup: certificate revoked/);

    const withoutRootCrl = verify(intermediateOnly, files.good);
    expect(withoutRootCrl.status).not.toBe(0);
    expect(withoutRootCrl.stderr).toMatch(/error 3 at 1 depth lookup: unable to get certificate CRL/);

    const intermediateSerial = Buffer.from(new X509Certificate(fixture.intermediateDer).serialNumber, 'hex');
    const revokingRootCrl = crlToPem(rootCrlIssuer(type).issue(liveRequest([{ serial: intermediateSerial, revokedAt: now, reason: 'cACompromise' }])));
    const underRevokedIntermediate = verify(scratch.write(`chain-${type}-int-revoked.pem`, revokingRootCrl + intermediateCrl), files.good);
    expect(underRevokedIntermediate.status).not.toBe(0);
    expect(underRevokedIntermediate.stderr).toMatch(/error 23 at 1 depth lookup: certificate revoked/);
  });
});

// ---------------------------------------------------------------------------------------------

describe('parseCrl on CRLs made by other implementations', () => {
  it('ok/openssl ca -gencrl: entries (sorted by serial), reasons incl. explicit unspecified, invalidityDate ignored, CRL number, AKI, signature', () => {
    const fixture = ca('p256');
    const dir = scratch.dir;
    scratch.write('gencrl-int.pem', pem(fixture.intermediateDer, 'CERTIFICATE'));
    scratch.write('gencrl-int.key', fixture.intermediateKey.privateKey.export({ format: 'pem', type: 'pkcs8' }));
    // index.txt: status, expiry, revocation date[,reason[,compromise time]], serial, file, subject.
    const index = [
      ['R', '261231000000Z', '260101120000Z,keyTime,20251231100000Z', '0AF1'],
      ['R', '261231000000Z', '260101120001Z,certificateHold', '00C0FFEE'],
      ['R', '261231000000Z', '260101120002Z', '1234'],
      ['R', '261231000000Z', '260101120003Z,unspecified', '5678'],
      ['V', '261231000000Z', '', '9999'],
      ['R', '261231000000Z', '260101120004Z,superseded', 'ABCDEF0123'],
      ['R', '261231000000Z', '260101120005Z,CACompromise', '5A0C4B1E9D3F7A2C81E6B0D4C3A29F10'],
    ];
    scratch.write('gencrl-index.txt', index.map((fields) => [...fields, 'unknown', '/O=tlsmesh'].join('\t') + '\n').join(''));
    scratch.write('gencrl-crlnumber', '1000\n');
    scratch.write(
      'gencrl.cnf',
      [
        '[ ca ]',
        'default_ca = test',
        '[ test ]',
        `database = ${join(dir, 'gencrl-index.txt')}`,
        `crlnumber = ${join(dir, 'gencrl-crlnumber')}`,
        'default_md = sha256',
        'default_crl_hours = 1',
        'crl_extensions = crl_ext',
        '[ crl_ext ]',
        'authorityKeyIdentifier = keyid:always',
        '',
      ].join('\n'),
    );
    openssl(['ca', '-config', 'gencrl.cnf', '-gencrl', '-keyfile', 'gencrl-int.key', '-cert', 'gencrl-int.pem', '-out', 'gencrl.pem'], dir);
    const text = readFileSync(join(dir, 'gencrl.pem'), 'utf8');
    expect(openssl(['crl', '-in', 'gencrl.pem', '-noout', '-text'], dir)).toContain('Invalidity Date'); // the non-critical extension is there

    const crl = parseCrl(text);
    // OpenSSL sorts entries by serial: magnitude length first, then value.
    expect([...crl.revoked].map(([serial, entry]) => [serial, entry.revokedAt.toISOString(), entry.reason])).toEqual([
      ['0af1', '2026-01-01T12:00:00.000Z', 'keyCompromise'],
      ['1234', '2026-01-01T12:00:02.000Z', 'unspecified'],
      ['5678', '2026-01-01T12:00:03.000Z', 'unspecified'],
      ['c0ffee', '2026-01-01T12:00:01.000Z', 'certificateHold'],
      ['abcdef0123', '2026-01-01T12:00:04.000Z', 'superseded'],
      ['5a0c4b1e9d3f7a2c81e6b0d4c3a29f10', '2026-01-01T12:00:05.000Z', 'cACompromise'],
    ]);
    expect(crl.crlNumber).toBe(0x1000n);
    expect(crl.authorityKeyId?.toString('hex')).toBe(subjectKeyIdOf(fixture.intermediateDer));
    expect(crl.nextUpdate.getTime() - crl.thisUpdate.getTime()).toBe(3600_000);
    expect(crl.signatureOid).toBe(OIDS.ecdsaWithSha256);
    expect(verifyCrlSignature(crl, fixture.intermediateDer)).toBe(true);
    expect(verifyCrlSignature(crl, fixture.rootDer)).toBe(false);
  });

  // Its unspecified entries carry an empty crlEntryExtensions (see above): parsed as unspecified.
  it.each(KEY_TYPES_UNDER_TEST)('ok/%s: X509CrlGenerator output parses to the same entries and verifies', async (type) => {
    const made = await oracleCrl(type, request());
    const crl = parseCrl(made.toString('pem'));
    expect(crl.der).toEqual(Buffer.from(made.rawData));
    expect(crl.revoked).toEqual(new Map(ENTRIES.map((entry) => [serialKey(entry.serial), { revokedAt: entry.revokedAt, reason: entry.reason }])));
    expect(crl.crlNumber).toBe(42n);
    expect(verifyCrlSignature(crl, ca(type).intermediateDer)).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------

describeCerttool('GnuTLS certtool reads and verifies our CRLs', () => {
  it.each(KEY_TYPES_UNDER_TEST)('ok/%s: --crl-info lists every serial, CRL number and AKI; --verify-crl verifies', (type) => {
    const fixture = ca(type);
    scratch.write(`gnutls-${type}.der`, intermediateCrlIssuer(type).issue(request()));
    // --verify-crl also checks thisUpdate/nextUpdate against the clock.
    scratch.write(`gnutls-${type}.pem`, crlToPem(intermediateCrlIssuer(type).issue(liveRequest(ENTRIES))));
    scratch.write(`gnutls-${type}-int.pem`, pem(fixture.intermediateDer, 'CERTIFICATE'));
    // certtool 3.7 reads DER with --inder (it has no --inform).
    const info = run('certtool', ['--crl-info', '--inder', '--infile', `gnutls-${type}.der`], scratch.dir);
    expect(info.status, info.stderr).toBe(0);
    expect(info.stdout).toContain('Version: 2');
    expect(info.stdout).toContain(`Revoked certificates (${ENTRIES.length}):`);
    const serials = [...info.stdout.matchAll(/Serial Number \(hex\): ([0-9a-f]+)/g)].map((match) => serialKey(match[1]!));
    expect(serials).toEqual(ENTRIES.map((entry) => serialKey(entry.serial)));
    expect(info.stdout).toMatch(/CRL Number \(not critical\): 2a\n/);
    expect(info.stdout).toContain(subjectKeyIdOf(fixture.intermediateDer));
    const verified = run('certtool', ['--verify-crl', '--load-ca-certificate', `gnutls-${type}-int.pem`, '--infile', `gnutls-${type}.pem`], scratch.dir);
    expect(verified.status, verified.stdout + verified.stderr).toBe(0);
    expect(verified.stdout).toContain('Verification output: Verified.');
  });

  it('ok/empty CRL: --crl-info says "No revoked certificates." and --verify-crl verifies', () => {
    scratch.write('gnutls-empty.pem', crlToPem(intermediateCrlIssuer('p256').issue(liveRequest([]))));
    scratch.write('gnutls-empty-int.pem', pem(ca('p256').intermediateDer, 'CERTIFICATE'));
    expect(run('certtool', ['--crl-info', '--infile', 'gnutls-empty.pem'], scratch.dir).stdout).toContain('No revoked certificates.');
    const verified = run('certtool', ['--verify-crl', '--load-ca-certificate', 'gnutls-empty-int.pem', '--infile', 'gnutls-empty.pem'], scratch.dir);
    expect(verified.status, verified.stdout + verified.stderr).toBe(0);
    expect(verified.stdout).toContain('Verification output: Verified.');
  });

  it('fail/--verify-crl refuses a CRL signed by another key under the same issuer name', async () => {
    scratch.write('gnutls-forged.pem', crlToPem((await sameNameOtherKey('p256')).crlIssuer.issue(liveRequest(ENTRIES))));
    scratch.write('gnutls-forged-int.pem', pem(ca('p256').intermediateDer, 'CERTIFICATE'));
    const verified = run('certtool', ['--verify-crl', '--load-ca-certificate', 'gnutls-forged-int.pem', '--infile', 'gnutls-forged.pem'], scratch.dir);
    expect(verified.status).not.toBe(0);
    expect(verified.stdout).not.toContain('Verification output: Verified.');
    expect(verified.stdout).toContain('The signature in the certificate is invalid.');
  });

  it('fail/--verify --load-crl refuses a leaf our CRL revokes and accepts one it does not', () => {
    const fixture = ca('p256');
    const revokedSerial = randomSerial();
    const now = new Date(Math.floor(Date.now() / 1000) * 1000 - 30_000);
    scratch.write('gnutls-chain-root.pem', pem(fixture.rootDer, 'CERTIFICATE'));
    scratch.write('gnutls-chain-crl.pem', crlToPem(intermediateCrlIssuer('p256').issue(liveRequest([{ serial: revokedSerial, revokedAt: now, reason: 'keyCompromise' }]))));
    const chain = (leaf: Buffer) => pem(leaf, 'CERTIFICATE') + pem(fixture.intermediateDer, 'CERTIFICATE');
    scratch.write('gnutls-chain-revoked.pem', chain(issueLeaf('p256', revokedSerial)));
    scratch.write('gnutls-chain-good.pem', chain(issueLeaf('p256')));
    const verify = (file: string) =>
      run('certtool', ['--verify', '--load-ca-certificate', 'gnutls-chain-root.pem', '--load-crl', 'gnutls-chain-crl.pem', '--infile', file], scratch.dir);
    const good = verify('gnutls-chain-good.pem');
    expect(good.status, good.stdout + good.stderr).toBe(0);
    expect(good.stdout).toContain('Chain verification output: Verified.');
    const revoked = verify('gnutls-chain-revoked.pem');
    expect(revoked.status).not.toBe(0);
    expect(revoked.stdout).toMatch(/revoked/i);
  });
});

// ---------------------------------------------------------------------------------------------

describe('large CRLs', () => {
  const entriesOf = (count: number): RevokedEntry[] => {
    const base = Date.UTC(2026, 0, 1);
    return Array.from({ length: count }, (_, i) => ({ serial: randomSerial(), revokedAt: new Date(base + i * 1000), reason: REVOCATION_REASONS[i % REVOCATION_REASONS.length]! }));
  };

  function measure(count: number): { der: Buffer; entries: RevokedEntry[] } {
    const entries = entriesOf(count);
    const issuer = intermediateCrlIssuer('p256');
    issuer.issue(request({ entries: entries.slice(0, 1000) })); // warm up
    let started = performance.now();
    const der = issuer.issue(request({ entries }));
    const encodeMs = performance.now() - started;
    parseCrl(der.subarray(0)); // warm up
    started = performance.now();
    const parsed = parseCrl(der);
    const parseMs = performance.now() - started;
    console.info(`CRL with ${count} entries (p256): ${der.length} bytes, encode+sign ${encodeMs.toFixed(1)} ms, parse ${parseMs.toFixed(1)} ms`);
    expect(parsed.revoked.size).toBe(count);
    return { der, entries };
  }

  it('ok/10,000 entries: parseCrl returns them all', () => {
    const { der, entries } = measure(10_000);
    const parsed = parseCrl(der);
    for (const entry of entries) {
      expect(parsed.revoked.get(serialHex(entry.serial))).toEqual({ revokedAt: entry.revokedAt, reason: entry.reason });
    }
  });

  it('ok/100,000 entries: OpenSSL verifies the CRL and counts 100,000 serials; parseCrl returns them all', () => {
    const { der, entries } = measure(100_000);
    scratch.write('large.der', der);
    scratch.write('large-int.pem', pem(ca('p256').intermediateDer, 'CERTIFICATE'));
    const verified = opensslCrlVerify('large.der', 'large-int.pem');
    expect(verified.status, verified.output).toBe(0);
    expect(verified.output).toContain('verify OK');
    // The text is ~15 MB: straight to a file rather than through a pipe buffer.
    const out = openSync(join(scratch.dir, 'large.txt'), 'w');
    try {
      const listed = spawnSync('openssl', ['crl', '-inform', 'DER', '-in', 'large.der', '-noout', '-text'], { cwd: scratch.dir, stdio: ['ignore', out, 'pipe'] });
      expect(listed.status, String(listed.stderr)).toBe(0);
    } finally {
      closeSync(out);
    }
    const text = scratch.read('large.txt').toString('latin1');
    expect((text.match(/^ {4}Serial Number: /gm) ?? []).length).toBe(100_000);
    const parsed = parseCrl(der);
    expect(parsed.revoked.size).toBe(100_000);
    for (const i of [0, 1, 49_999, 99_998, 99_999]) {
      const entry = entries[i]!;
      expect(parsed.revoked.get(serialKey(entry.serial))).toEqual({ revokedAt: entry.revokedAt, reason: entry.reason });
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('parseCrl round trip', () => {
  it.each(KEY_TYPES_UNDER_TEST)('ok/%s: entries, number, dates (whole seconds), AKI, signature OID and issuer come back', (type) => {
    const entries = ENTRIES.map((entry, i) => ({ ...entry, revokedAt: new Date(entry.revokedAt.getTime() + (i % 2 === 0 ? 999 : 1)) }));
    const der = intermediateCrlIssuer(type).issue(request({ entries, crlNumber: 2n ** 100n + 3n, thisUpdate: new Date(THIS_UPDATE.getTime() + 500) }));
    const crl = parseCrl(der);
    expect(crl.revoked).toEqual(new Map(entries.map((entry) => [serialKey(entry.serial), { revokedAt: new Date(wholeSeconds(entry.revokedAt)), reason: entry.reason }])));
    expect([...crl.revoked.keys()]).toEqual(entries.map((entry) => serialKey(entry.serial))); // order kept
    expect(crl.crlNumber).toBe(2n ** 100n + 3n);
    expect(crl.thisUpdate).toEqual(THIS_UPDATE);
    expect(crl.nextUpdate).toEqual(NEXT_UPDATE);
    expect(crl.authorityKeyId?.toString('hex')).toBe(subjectKeyIdOf(ca(type).intermediateDer));
    expect(crl.issuerDer).toEqual(Buffer.from(new x509.X509Certificate(ca(type).intermediateDer).subjectName.toArrayBuffer()));
    const oracleCrlParsed = AsnConvert.parse(der, CertificateList);
    expect(crl.signatureOid).toBe(oracleCrlParsed.signatureAlgorithm.algorithm);
    expect(crl.signature).toEqual(Buffer.from(oracleCrlParsed.signature));
    expect(crl.tbsDer).toEqual(Buffer.from(AsnConvert.serialize(oracleCrlParsed.tbsCertList)));
    expect(crl.der).toEqual(der);
  });

  it('ok/PEM: "X509 CRL" (crlToPem) and "CRL" labels, as a string or as bytes, with text around the block', () => {
    const der = intermediateCrlIssuer('p256').issue(request());
    const expected = parseCrl(der);
    expect(crlToPem(der)).toBe(pem(der, 'X509 CRL'));
    expect(parseCrl(crlToPem(der))).toEqual(expected);
    expect(parseCrl(pem(der, 'CRL'))).toEqual(expected);
    expect(parseCrl(Buffer.from(crlToPem(der)))).toEqual(expected);
    expect(parseCrl(`issued by tlsmesh\n${crlToPem(der).replaceAll('\n', '\r\n')}trailing text\n`)).toEqual(expected);
  });

  it('ok/the parsed CRL does not share memory with the caller’s buffer', () => {
    const der = Buffer.from(intermediateCrlIssuer('p256').issue(request()));
    const crl = parseCrl(der);
    const before = Buffer.from(crl.tbsDer);
    der.fill(0);
    expect(crl.tbsDer).toEqual(before);
    expect(verifyCrlSignature(crl, ca('p256').intermediateDer)).toBe(true);
  });

  it('ok/a CRL without AKI and cRLNumber (no crlExtensions) parses with both undefined', () => {
    const crl = parseCrl(signTemplate({ ...template(), crlExtensions: null }));
    expect(crl.authorityKeyId).toBeUndefined();
    expect(crl.crlNumber).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------------
// Malformed CRLs, from a template that is what CrlIssuer writes (checked first)

const SERIAL_A = Buffer.from('5a0c4b1e9d3f7a2c81e6b0d4c3a29f10', 'hex');
const SERIAL_B = Buffer.from('6b1d5c2fae4081', 'hex');
const REVOKED_AT = new Date('2026-02-20T08:30:15Z');

interface Template {
  version: Buffer | null;
  innerAlgorithm: Buffer;
  outerAlgorithm: Buffer;
  thisUpdate: Buffer;
  nextUpdate: Buffer | null;
  revoked: Buffer[] | null;
  crlExtensions: Buffer[] | null;
  /** Replaces the signature BIT STRING. */
  signature?: Buffer;
  /** Appended inside CertificateList after the signature. */
  extraField?: Buffer;
}

function extensionDer(extnOid: string, critical: boolean | 'explicit false', value: Buffer): Buffer {
  const flag = critical === true ? [booleanTrue()] : critical === 'explicit false' ? [tlv(TAG.BOOLEAN, Buffer.from([0]))] : [];
  return sequence(oid(extnOid), ...flag, octetString(value));
}

const reasonExtension = (code: number): Buffer => extensionDer(OIDS.reasonCode, false, tlv(0x0a, Buffer.from([code])));

function entryDer(serialContent: Buffer, extensions?: Buffer[], revokedAt: Buffer = time(REVOKED_AT)): Buffer {
  return sequence(tlv(TAG.INTEGER, serialContent), revokedAt, ...(extensions === undefined ? [] : [sequence(...extensions)]));
}

function template(): Template {
  const akiValue = sequence(tlv(0x80, Buffer.from(subjectKeyIdOf(ca('p256').intermediateDer), 'hex')));
  return {
    version: smallInteger(1),
    innerAlgorithm: sequence(oid(OIDS.ecdsaWithSha256)),
    outerAlgorithm: sequence(oid(OIDS.ecdsaWithSha256)),
    thisUpdate: time(THIS_UPDATE),
    nextUpdate: time(NEXT_UPDATE),
    revoked: [entryDer(SERIAL_A, [reasonExtension(1)]), entryDer(SERIAL_B)],
    crlExtensions: [extensionDer(OIDS.authorityKeyIdentifier, false, akiValue), extensionDer(OIDS.cRLNumber, false, smallInteger(7))],
  };
}

const TEMPLATE_REQUEST = (): CrlRequest =>
  request({
    crlNumber: 7n,
    entries: [
      { serial: SERIAL_A, revokedAt: REVOKED_AT, reason: 'keyCompromise' },
      { serial: SERIAL_B, revokedAt: REVOKED_AT, reason: 'unspecified' },
    ],
  });

function templateTbs(parts: Template): Buffer {
  const issuer = Buffer.from(new x509.X509Certificate(ca('p256').intermediateDer).subjectName.toArrayBuffer());
  return sequence(
    ...(parts.version === null ? [] : [parts.version]),
    parts.innerAlgorithm,
    issuer,
    parts.thisUpdate,
    ...(parts.nextUpdate === null ? [] : [parts.nextUpdate]),
    ...(parts.revoked === null ? [] : [sequence(...parts.revoked)]),
    ...(parts.crlExtensions === null ? [] : [explicit(0, sequence(...parts.crlExtensions))]),
  );
}

/** Signed with the p256 intermediate key, so only the named defect is wrong. */
function signTemplate(parts: Template): Buffer {
  const tbs = templateTbs(parts);
  const signature = parts.signature ?? tlv(TAG.BIT_STRING, Buffer.from([0]), sign('sha256', tbs, ca('p256').intermediateKey.privateKey));
  return sequence(tbs, parts.outerAlgorithm, signature, ...(parts.extraField === undefined ? [] : [parts.extraField]));
}

const withParts = (change: Partial<Template>): Buffer => signTemplate({ ...template(), ...change });

describe('parseCrl refuses malformed CRLs with ERR_CRL_MALFORMED', () => {
  it('ok/the untouched template is what CrlIssuer writes, parses, and verifies', () => {
    const tbs = templateTbs(template());
    expect(tbs.toString('hex')).toBe(intermediateCrlIssuer('p256').encodeTbs(TEMPLATE_REQUEST()).toString('hex'));
    const crl = parseCrl(signTemplate(template()));
    expect(crl.revoked.get(serialKey(SERIAL_A))?.reason).toBe('keyCompromise');
    expect(verifyCrlSignature(crl, ca('p256').intermediateDer)).toBe(true);
  });

  const valid = (): Buffer => signTemplate(template());
  const cases: { name: string; input: () => Buffer | string }[] = [
    { name: 'empty Buffer', input: () => Buffer.alloc(0) },
    { name: 'empty string', input: () => '' },
    { name: 'truncated to 1 byte', input: () => valid().subarray(0, 1) },
    { name: 'truncated to 2 bytes', input: () => valid().subarray(0, 2) },
    { name: 'truncated inside the TBSCertList header', input: () => valid().subarray(0, 5) },
    { name: 'truncated in the issuer', input: () => valid().subarray(0, 40) },
    { name: 'truncated in the revoked list', input: () => { const der = valid(); return der.subarray(0, der.indexOf(SERIAL_B) + 2); } },
    { name: 'truncated by the last byte', input: () => valid().subarray(0, -1) },
    { name: 'a trailing byte', input: () => Buffer.concat([valid(), Buffer.from([0])]) },
    { name: 'a field after the signature', input: () => withParts({ extraField: nullValue() }) },
    { name: 'indefinite length', input: () => { const der = Buffer.from(valid()); der[1] = 0x80; return der; } },
    { name: 'v1 (version absent)', input: () => withParts({ version: null }) },
    { name: 'version 0 written out', input: () => withParts({ version: smallInteger(0) }) },
    { name: 'version 2 (v3)', input: () => withParts({ version: smallInteger(2) }) },
    { name: 'inner and outer algorithm differ', input: () => withParts({ outerAlgorithm: sequence(oid(OIDS.ecdsaWithSha384)) }) },
    { name: 'inner and outer algorithm differ only by NULL parameters', input: () => withParts({ outerAlgorithm: sequence(oid(OIDS.ecdsaWithSha256), nullValue()) }) },
    { name: 'sha1WithRSAEncryption', input: () => withParts({ innerAlgorithm: sequence(oid(OIDS.sha1WithRsa), nullValue()), outerAlgorithm: sequence(oid(OIDS.sha1WithRsa), nullValue()) }) },
    { name: 'algorithm parameters other than NULL', input: () => { const alg = sequence(oid(OIDS.ecdsaWithSha256), oid(OIDS.ecdsaWithSha256)); return withParts({ innerAlgorithm: alg, outerAlgorithm: alg }); } },
    { name: 'signature BIT STRING with unused bits', input: () => withParts({ signature: tlv(TAG.BIT_STRING, Buffer.from([1, 0x30, 0x00])) }) },
    { name: 'no nextUpdate', input: () => withParts({ nextUpdate: null }) },
    { name: 'no nextUpdate, with revoked entries following thisUpdate', input: () => withParts({ nextUpdate: null, crlExtensions: null }) },
    { name: 'UTCTime without seconds', input: () => withParts({ thisUpdate: tlv(TAG.UTC_TIME, Buffer.from('2603011000Z')) }) },
    { name: 'UTCTime with an offset', input: () => withParts({ thisUpdate: tlv(TAG.UTC_TIME, Buffer.from('260301100000+0100')) }) },
    { name: 'GeneralizedTime with fractional seconds', input: () => withParts({ nextUpdate: tlv(TAG.GENERALIZED_TIME, Buffer.from('20510301100000.5Z')) }) },
    { name: 'GeneralizedTime for a date before 2050', input: () => withParts({ nextUpdate: tlv(TAG.GENERALIZED_TIME, Buffer.from('20260302100000Z')) }) },
    { name: 'February 30th', input: () => withParts({ thisUpdate: tlv(TAG.UTC_TIME, Buffer.from('260230100000Z')) }) },
    { name: 'hour 24', input: () => withParts({ thisUpdate: tlv(TAG.UTC_TIME, Buffer.from('260301240000Z')) }) },
    { name: 'negative serial', input: () => withParts({ revoked: [entryDer(Buffer.from([0xff]))] }) },
    { name: 'zero serial', input: () => withParts({ revoked: [entryDer(Buffer.from([0x00]))] }) },
    { name: 'non-minimal serial (leading 0x00 before a low octet)', input: () => withParts({ revoked: [entryDer(Buffer.from([0x00, 0x12, 0x34]))] }) },
    { name: 'empty serial INTEGER', input: () => withParts({ revoked: [entryDer(Buffer.alloc(0))] }) },
    { name: 'duplicate serial', input: () => withParts({ revoked: [entryDer(SERIAL_A), entryDer(SERIAL_B), entryDer(SERIAL_A, [reasonExtension(4)])] }) },
    { name: 'entry without a revocation date', input: () => withParts({ revoked: [sequence(tlv(TAG.INTEGER, SERIAL_A))] }) },
    { name: 'entry field running past its entry', input: () => withParts({ revoked: [tlv(TAG.SEQUENCE, Buffer.from([TAG.INTEGER, 0x20, 0x01]))] }) },
    { name: 'entry with a field after crlEntryExtensions', input: () => withParts({ revoked: [sequence(tlv(TAG.INTEGER, SERIAL_A), time(REVOKED_AT), sequence(reasonExtension(1)), nullValue())] }) },
    { name: 'unknown reason code 7', input: () => withParts({ revoked: [entryDer(SERIAL_A, [reasonExtension(7)])] }) },
    { name: 'removeFromCRL (8): delta CRLs only', input: () => withParts({ revoked: [entryDer(SERIAL_A, [reasonExtension(8)])] }) },
    { name: 'reason code 11', input: () => withParts({ revoked: [entryDer(SERIAL_A, [reasonExtension(11)])] }) },
    { name: 'reasonCode as INTEGER, not ENUMERATED', input: () => withParts({ revoked: [entryDer(SERIAL_A, [extensionDer(OIDS.reasonCode, false, smallInteger(1))])] }) },
    { name: 'reasonCode twice in one entry', input: () => withParts({ revoked: [entryDer(SERIAL_A, [reasonExtension(1), reasonExtension(1)])] }) },
    { name: 'unknown critical entry extension (certificateIssuer)', input: () => withParts({ revoked: [entryDer(SERIAL_A, [reasonExtension(1), extensionDer(OIDS.certificateIssuer, true, sequence())])] }) },
    { name: 'critical FALSE written out (not DER)', input: () => withParts({ revoked: [entryDer(SERIAL_A, [extensionDer(OIDS.reasonCode, 'explicit false', tlv(0x0a, Buffer.from([1])))])] }) },
    { name: 'unknown critical CRL extension (issuingDistributionPoint)', input: () => withParts({ crlExtensions: [...template().crlExtensions!, extensionDer(OIDS.issuingDistributionPoint, true, sequence())] }) },
    { name: 'deltaCRLIndicator (critical)', input: () => withParts({ crlExtensions: [...template().crlExtensions!, extensionDer(OIDS.deltaCRLIndicator, true, smallInteger(6))] }) },
    { name: 'cRLNumber twice', input: () => withParts({ crlExtensions: [...template().crlExtensions!, extensionDer(OIDS.cRLNumber, false, smallInteger(8))] }) },
    { name: 'negative cRLNumber', input: () => withParts({ crlExtensions: [extensionDer(OIDS.cRLNumber, false, tlv(TAG.INTEGER, Buffer.from([0xff])))] }) },
    { name: 'cRLNumber of 21 octets', input: () => withParts({ crlExtensions: [extensionDer(OIDS.cRLNumber, false, tlv(TAG.INTEGER, Buffer.concat([Buffer.from([0]), Buffer.alloc(20, 0xff)])))] }) },
    { name: 'cRLNumber with trailing bytes in extnValue', input: () => withParts({ crlExtensions: [extensionDer(OIDS.cRLNumber, false, Buffer.concat([smallInteger(7), nullValue()]))] }) },
    { name: 'authorityKeyIdentifier fields out of order', input: () => withParts({ crlExtensions: [extensionDer(OIDS.authorityKeyIdentifier, false, sequence(tlv(0x82, Buffer.from([1])), tlv(0x80, Buffer.alloc(20, 1))))] }) },
    { name: 'empty crlExtensions', input: () => withParts({ crlExtensions: [] }) },
    { name: 'a field after crlExtensions', input: () => { const parts = template(); const tbs = templateTbs(parts); return sequence(sequence(tbs.subarray(2 + (tbs[1]! & 0x7f)), nullValue()), parts.outerAlgorithm, tlv(TAG.BIT_STRING, Buffer.from([0, 1]))); } },
    { name: 'PEM with a CERTIFICATE label', input: () => pem(valid(), 'CERTIFICATE') },
    { name: 'two X509 CRL PEM blocks', input: () => pem(valid(), 'X509 CRL') + pem(valid(), 'X509 CRL') },
    { name: 'a CRL PEM block and a CERTIFICATE block', input: () => pem(valid(), 'X509 CRL') + pem(ca('p256').intermediateDer, 'CERTIFICATE') },
    { name: 'PEM with characters outside base64', input: () => '-----BEGIN X509 CRL-----\nMIIB*not base64*\n-----END X509 CRL-----\n' },
    { name: 'PEM whose base64 is not DER', input: () => '-----BEGIN X509 CRL-----\nQUJDREVGRw==\n-----END X509 CRL-----\n' },
    { name: 'text without any PEM block', input: () => 'hello' },
    { name: 'a certificate given as DER', input: () => ca('p256').intermediateDer },
  ];
  it.each(cases)('fail/$name', ({ input }) => {
    expectCode(() => parseCrl(input()), 'ERR_CRL_MALFORMED');
  });

  const accepted: { name: string; parts: () => Partial<Template>; check: (crl: ReturnType<typeof parseCrl>) => void }[] = [
    {
      name: 'ok/non-critical unknown entry extension (invalidityDate) is ignored',
      parts: () => ({ revoked: [entryDer(SERIAL_A, [reasonExtension(1), extensionDer(OIDS.invalidityDate, false, tlv(TAG.GENERALIZED_TIME, Buffer.from('20260219000000Z')))])] }),
      check: (crl) => expect(crl.revoked.get(serialKey(SERIAL_A))?.reason).toBe('keyCompromise'),
    },
    {
      name: 'ok/non-critical unknown CRL extension (issuerAltName) is ignored',
      parts: () => ({ crlExtensions: [...template().crlExtensions!, extensionDer(OIDS.issuerAltName, false, sequence(tlv(0x82, Buffer.from('ca.example.org'))))] }),
      check: (crl) => expect(crl.crlNumber).toBe(7n),
    },
    {
      name: 'ok/reasonCode unspecified (0) written out reads as unspecified',
      parts: () => ({ revoked: [entryDer(SERIAL_A, [reasonExtension(0)])] }),
      check: (crl) => expect(crl.revoked.get(serialKey(SERIAL_A))?.reason).toBe('unspecified'),
    },
    {
      name: 'ok/an empty crlEntryExtensions (as X509CrlGenerator writes) reads as unspecified',
      parts: () => ({ revoked: [entryDer(SERIAL_A, [])] }),
      check: (crl) => expect(crl.revoked.get(serialKey(SERIAL_A))?.reason).toBe('unspecified'),
    },
    {
      name: 'ok/an empty revokedCertificates SEQUENCE (legal ASN.1, though RFC 5280 says omit it)',
      parts: () => ({ revoked: [] }),
      check: (crl) => expect(crl.revoked.size).toBe(0),
    },
    {
      name: 'ok/serial with the high bit set (0x00 pad) keys without the pad',
      parts: () => ({ revoked: [entryDer(Buffer.from('00c0ffee', 'hex'))] }),
      check: (crl) => expect([...crl.revoked.keys()]).toEqual(['c0ffee']),
    },
    {
      name: 'ok/RSA-style NULL parameters on both algorithm identifiers (the signature then fails, the parse does not)',
      parts: () => ({ innerAlgorithm: sequence(oid(OIDS.ecdsaWithSha256), nullValue()), outerAlgorithm: sequence(oid(OIDS.ecdsaWithSha256), nullValue()) }),
      check: (crl) => expect(crl.signatureOid).toBe(OIDS.ecdsaWithSha256),
    },
    {
      name: 'ok/a 2050 revocation date as GeneralizedTime',
      parts: () => ({ revoked: [entryDer(SERIAL_A, undefined, tlv(TAG.GENERALIZED_TIME, Buffer.from('20500101000000Z')))] }),
      check: (crl) => expect(crl.revoked.get(serialKey(SERIAL_A))?.revokedAt.toISOString()).toBe('2050-01-01T00:00:00.000Z'),
    },
    {
      name: 'ok/29 February in a leap year',
      parts: () => ({ thisUpdate: tlv(TAG.UTC_TIME, Buffer.from('280229235959Z')) }),
      check: (crl) => expect(crl.thisUpdate.toISOString()).toBe('2028-02-29T23:59:59.000Z'),
    },
  ];
  it.each(accepted)('$name', ({ parts, check }) => {
    check(parseCrl(withParts(parts())));
  });

  it('fail/a TypeError, not a parse, for a non-Buffer non-string', () => {
    expect(() => parseCrl(42 as unknown as string)).toThrow(TypeError);
  });
});

// ---------------------------------------------------------------------------------------------

describe('verifyCrlSignature', () => {
  it.each(KEY_TYPES_UNDER_TEST)('ok/%s: true for the issuing CA, false for its root and for another CA', (type) => {
    const crl = parseCrl(intermediateCrlIssuer(type).issue(request()));
    expect(verifyCrlSignature(crl, ca(type).intermediateDer)).toBe(true);
    expect(verifyCrlSignature(crl, ca(type).rootDer)).toBe(false);
    expect(verifyCrlSignature(crl, otherCa.intermediateDer)).toBe(false);
    const rootCrl = parseCrl(rootCrlIssuer(type).issue(request()));
    expect(verifyCrlSignature(rootCrl, ca(type).rootDer)).toBe(true);
    expect(verifyCrlSignature(rootCrl, ca(type).intermediateDer)).toBe(false);
  });

  it('fail/the same issuer name with another key (a forged CRL)', async () => {
    const forged = await sameNameOtherKey('p256');
    const crl = parseCrl(forged.crlIssuer.issue(request()));
    expect(crl.issuerDer).toEqual(parseCrl(intermediateCrlIssuer('p256').issue(request())).issuerDer);
    expect(verifyCrlSignature(crl, ca('p256').intermediateDer)).toBe(false);
    expect(verifyCrlSignature(crl, forged.intermediateDer)).toBe(true);
  });

  it.each(KEY_TYPES_UNDER_TEST)('fail/%s: one bit flipped in the TBS (an entry serial) or in the signature', (type) => {
    const der = intermediateCrlIssuer(type).issue(request());
    const inTbs = Buffer.from(der);
    const at = inTbs.indexOf(ENTRIES[3]!.serial);
    inTbs[at + 5] = inTbs[at + 5]! ^ 0x01;
    expect(verifyCrlSignature(parseCrl(inTbs), ca(type).intermediateDer)).toBe(false);
    const inSignature = Buffer.from(der);
    inSignature[inSignature.length - 3] = inSignature[inSignature.length - 3]! ^ 0x01;
    expect(verifyCrlSignature(parseCrl(inSignature), ca(type).intermediateDer)).toBe(false);
  });

  it('fail/issuer name mismatch: the key matches but the CRL names another subject', async () => {
    // A second certificate for the intermediate's own key, with another subject (label g2).
    const fixture = ca('p256');
    const sameKeyOtherName = await createIntermediateCertificate({
      trustDomain: fixture.trustDomain,
      publicKey: fixture.intermediateKey.publicKey,
      label: 'g2',
      issuerCertDer: fixture.rootDer,
      issuerPrivateKey: fixture.rootKey.privateKey,
      serial: randomSerial(),
      ...validityAroundNow(),
    });
    const crl = parseCrl(new CrlIssuer({ issuerCertDer: sameKeyOtherName, issuerPrivateKey: fixture.intermediateKey.privateKey }).issue(request()));
    expect(verifyCrlSignature(crl, sameKeyOtherName)).toBe(true);
    expect(verifyCrlSignature(crl, fixture.intermediateDer)).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------

describe('serialKey', () => {
  const serials = [
    { name: 'a randomSerial()', serial: randomSerial() },
    { name: 'a serial with the high bit set', serial: Buffer.from('c0ffee00112233445566778899aabbcc', 'hex') },
    { name: 'leading zero octets', serial: Buffer.from('00000f1e2d3c4b5a', 'hex') },
  ];
  it.each(serials)('ok/$name: the Buffer and node:crypto X509Certificate.serialNumber give the same key, which the CRL map uses', ({ serial }) => {
    const leaf = issueLeaf('p256', serial);
    const nodeSerial = new X509Certificate(leaf).serialNumber;
    expect(serialKey(nodeSerial)).toBe(serialKey(serial));
    expect(serialKey(new x509.X509Certificate(leaf).serialNumber)).toBe(serialKey(serial));
    const crl = parseCrl(intermediateCrlIssuer('p256').issue(request({ entries: [{ serial, revokedAt: REVOKED_AT, reason: 'superseded' }] })));
    expect(crl.revoked.has(serialKey(nodeSerial))).toBe(true);
  });

  it('ok/equals serialHex for our serials', () => {
    for (let i = 0; i < 50; i++) {
      const serial = randomSerial();
      expect(serialKey(serial)).toBe(serialHex(serial));
    }
  });

  it('ok/TLS getPeerCertificate().serialNumber gives the same key', async () => {
    const serial = randomSerial();
    const leaf = issueLeaf('p256', serial);
    const server: Server = createServer({
      key: testKey('p256', 3).privateKey.export({ format: 'pem', type: 'pkcs8' }),
      cert: pem(leaf, 'CERTIFICATE') + pem(ca('p256').intermediateDer, 'CERTIFICATE'),
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const address = server.address();
      if (address === null || typeof address === 'string') throw new Error('no port');
      const peerSerial = await new Promise<string>((resolve, reject) => {
        const socket = connect({ host: '127.0.0.1', port: address.port, rejectUnauthorized: false }, () => {
          resolve(socket.getPeerCertificate().serialNumber);
          socket.end();
        });
        socket.on('error', reject);
      });
      expect(serialKey(peerSerial)).toBe(serialHex(serial));
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  const forms = [
    { name: 'uppercase', input: '4F1C0A', key: '4f1c0a' },
    { name: 'colons', input: '4f:1c:0a', key: '4f1c0a' },
    { name: 'uppercase with colons', input: '4F:1C:0A', key: '4f1c0a' },
    { name: 'odd length', input: 'F1C0A', key: '0f1c0a' },
    { name: 'one digit', input: '1', key: '01' },
    { name: 'leading zero octets in text', input: '00004F1C', key: '4f1c' },
    { name: 'OpenSSL-style 00 pad before a high bit', input: '00C0FFEE', key: 'c0ffee' },
    { name: 'zero keeps one octet', input: '0000', key: '00' },
  ];
  it.each(forms)('ok/$name: $input → $key', ({ input, key }) => {
    expect(serialKey(input)).toBe(key);
  });

  it('ok/Buffers: leading zero octets stripped, case and length kept otherwise', () => {
    expect(serialKey(Buffer.from('0000c0ffee', 'hex'))).toBe('c0ffee');
    expect(serialKey(Buffer.from('00', 'hex'))).toBe('00');
    expect(serialKey(Buffer.from('0100', 'hex'))).toBe('0100');
  });

  it.each(['', 'xyz', '-01', '0x4f', '4f 1c', ':'])('fail/%j is a TypeError', (input) => {
    expect(() => serialKey(input)).toThrow(TypeError);
  });
});

describe('isRevocationReason', () => {
  it('ok/every RFC 5280 reason we support, and nothing else', () => {
    expect(REVOCATION_REASONS.every((reason) => isRevocationReason(reason))).toBe(true);
    expect(Object.keys(REASON_CODES).sort()).toEqual([...REVOCATION_REASONS].sort());
    for (const value of ['removeFromCRL', 'toString', 'constructor', '', 'KeyCompromise', 'unspecified ']) expect(isRevocationReason(value)).toBe(false);
  });
});
