/**
 * The OCSP responder core (src/pki/ocsp.ts) and the delegated responder certificate
 * (src/pki/ocsp-responder-certificate.ts) against second implementations: `openssl ocsp` makes
 * the requests we parse and verifies the responses we sign (signature, signer authorisation,
 * nonce, CertID matching, statuses), @peculiar/asn1-ocsp decodes our DER field by field and
 * encodes the odd requests OpenSSL will not make, and `openssl x509`/`openssl verify` check the
 * responder certificate profile. No network: everything goes through files.
 */
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  BasicOCSPResponse,
  CertID,
  KeyHash,
  OCSPRequest,
  OCSPResponse,
  OCSPResponseStatus,
  Request,
  ResponderID,
  TBSRequest,
  type Version,
  id_pkix_ocsp_basic,
  id_pkix_ocsp_nonce,
} from '@peculiar/asn1-ocsp';
import { AlgorithmIdentifier, Certificate, CRLReasons, ExtendedKeyUsage, Extension, Extensions, Name } from '@peculiar/asn1-x509';
import { spawnSync } from 'node:child_process';
import { createHash, sign, verify, type KeyObject } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIntermediateCertificate, createRootCertificate } from '../../src/pki/authority-certificates.js';
import type { KeyPair } from '../../src/pki/keys.js';
import { LeafIssuer } from '../../src/pki/leaf.js';
import { createOcspResponderCertificate } from '../../src/pki/ocsp-responder-certificate.js';
import {
  createOcspRequest,
  MAX_OCSP_REQUEST_BYTES,
  ocspErrorResponse,
  OcspResponder,
  parseOcspRequest,
  parseOcspResponse,
  verifyOcspResponse,
  type CertId,
  type OcspCertStatus,
  type OcspErrorStatus,
} from '../../src/pki/ocsp.js';
import { randomSerial } from '../../src/pki/serial.js';
import { makeCa, openssl, pem, scratchDir, testKey, thrownBy, validityAroundNow, type CaFixture, type Scratch, type TestKeyType } from './support.js';

// Written out here rather than imported from src/pki/oids.ts, so the tests do not share the
// constants under test.
const SHA1 = '1.3.14.3.2.26';
const SHA256 = '2.16.840.1.101.3.4.2.1';
const MD5 = '1.2.840.113549.2.5';
const OCSP_SIGNING = '1.3.6.1.5.5.7.3.9';
const OCSP_NOCHECK = '1.3.6.1.5.5.7.48.1.5';
const ECDSA_SHA256 = '1.2.840.10045.4.3.2';
const UNKNOWN_EXTENSION = '1.3.6.1.4.1.55555.1';

const TRUST_DOMAIN = 'example.org';
/** CA key types exercised end to end (the responder key is P-256 for all, plus the CA-signed case). */
const CA_TYPES = ['p256', 'rsa2048', 'ed25519', 'p384'] as const satisfies readonly TestKeyType[];
type CaType = (typeof CA_TYPES)[number];

const HOUR = 3600_000;

interface Fixture {
  type: CaType;
  ca: CaFixture;
  responderDer: Buffer;
  responderKey: KeyPair;
  responder: OcspResponder;
  leafDer: Buffer;
  leafSerial: Buffer;
  /** A second leaf, for multi-CertID requests. */
  leaf2Der: Buffer;
  leaf2Serial: Buffer;
  files: { root: string; intermediate: string; responder: string; leaf: string; leaf2: string };
}

interface OtherCa {
  rootDer: Buffer;
  intermediateDer: Buffer;
  intermediateKey: KeyPair;
  responderDer: Buffer;
  responderKey: KeyPair;
  leafDer: Buffer;
  files: { root: string; intermediate: string; leaf: string };
}

let scratch: Scratch;
const fixtures = new Map<CaType, Fixture>();
let other: OtherCa;

const fixture = (type: CaType): Fixture => fixtures.get(type)!;

function issueLeaf(ca: { intermediateDer: Buffer; intermediateKey: KeyPair; notAfter: Date }, serial: Buffer, trustDomain = TRUST_DOMAIN): Buffer {
  const issuer = new LeafIssuer({ issuerCertDer: ca.intermediateDer, issuerNotAfter: ca.notAfter, issuerPrivateKey: ca.intermediateKey.privateKey, ocspUrl: 'http://ca.example.org/v1/ocsp' });
  return issuer.issue({
    serial,
    spki: testKey('p256', 3).publicKey.export({ format: 'der', type: 'spki' }),
    rsaKey: false,
    spiffeId: `spiffe://${trustDomain}/ns/prod/sa/api`,
    dnsNames: [],
    ipAddresses: [],
    ...validityAroundNow(),
  });
}

/** A serial whose first octet has the top bit set: the CertID INTEGER carries a leading 00. */
function highBitSerial(): Buffer {
  const serial = randomSerial();
  serial[0] = serial[0]! | 0x80;
  return serial;
}

beforeAll(async () => {
  scratch = scratchDir();
  const { notBefore, notAfter } = validityAroundNow();
  for (const type of CA_TYPES) {
    const ca = await makeCa(type, type, TRUST_DOMAIN);
    const responderKey = testKey('p256', 4);
    const responderDer = await createOcspResponderCertificate({
      issuerCertDer: ca.intermediateDer,
      issuerPrivateKey: ca.intermediateKey.privateKey,
      responderPublicKey: responderKey.publicKey,
      serial: randomSerial(),
      notBefore,
      notAfter,
      trustDomain: TRUST_DOMAIN,
    });
    const leafSerial = highBitSerial();
    const leaf2Serial = randomSerial();
    const files = {
      root: `${type}-root.pem`,
      intermediate: `${type}-int.pem`,
      responder: `${type}-responder.pem`,
      leaf: `${type}-leaf.pem`,
      leaf2: `${type}-leaf2.pem`,
    };
    const leafDer = issueLeaf(ca, leafSerial);
    const leaf2Der = issueLeaf(ca, leaf2Serial);
    scratch.write(files.root, pem(ca.rootDer, 'CERTIFICATE'));
    scratch.write(files.intermediate, pem(ca.intermediateDer, 'CERTIFICATE'));
    scratch.write(files.responder, pem(responderDer, 'CERTIFICATE'));
    scratch.write(files.leaf, pem(leafDer, 'CERTIFICATE'));
    scratch.write(files.leaf2, pem(leaf2Der, 'CERTIFICATE'));
    const responder = new OcspResponder({ issuerCertDer: ca.intermediateDer, responderCertDer: responderDer, responderPrivateKey: responderKey.privateKey });
    fixtures.set(type, { type, ca, responderDer, responderKey, responder, leafDer, leafSerial, leaf2Der, leaf2Serial, files });
  }

  // Another CA of the same key type as the p256 one, with its own keys (slots 5-7) and trust domain.
  const rootKey = testKey('p256', 5);
  const intermediateKey = testKey('p256', 6);
  const responderKey = testKey('p256', 7);
  const rootDer = await createRootCertificate({ trustDomain: 'other.org', privateKey: rootKey.privateKey, serial: randomSerial(), notBefore, notAfter });
  const intermediateDer = await createIntermediateCertificate({
    trustDomain: 'other.org',
    publicKey: intermediateKey.publicKey,
    label: 'g1',
    issuerCertDer: rootDer,
    issuerPrivateKey: rootKey.privateKey,
    serial: randomSerial(),
    notBefore,
    notAfter,
  });
  const responderDer = await createOcspResponderCertificate({
    issuerCertDer: intermediateDer,
    issuerPrivateKey: intermediateKey.privateKey,
    responderPublicKey: responderKey.publicKey,
    serial: randomSerial(),
    notBefore,
    notAfter,
    trustDomain: 'other.org',
  });
  const leafDer = issueLeaf({ intermediateDer, intermediateKey, notAfter }, randomSerial(), 'other.org');
  const files = { root: 'other-root.pem', intermediate: 'other-int.pem', leaf: 'other-leaf.pem' };
  scratch.write(files.root, pem(rootDer, 'CERTIFICATE'));
  scratch.write(files.intermediate, pem(intermediateDer, 'CERTIFICATE'));
  scratch.write(files.leaf, pem(leafDer, 'CERTIFICATE'));
  other = { rootDer, intermediateDer, intermediateKey, responderDer, responderKey, leafDer, files };
});

afterAll(() => scratch?.remove());

// ---------------------------------------------------------------------------------------------
// Helpers

/** Runs openssl and returns stdout and stderr together: `openssl ocsp` reports verification on stderr. */
function ocspTool(args: readonly string[]): { status: number; out: string } {
  const result = spawnSync('openssl', args, { cwd: scratch.dir, encoding: 'utf8' });
  if (result.error) throw result.error;
  return { status: result.status ?? -1, out: `${result.stdout}${result.stderr}` };
}

/** `openssl ocsp -reqout`; returns the request DER. */
function opensslRequest(name: string, args: readonly string[]): Buffer {
  openssl(['ocsp', ...args, '-reqout', name], scratch.dir);
  return scratch.read(name);
}

/** What ASN1_TIME_print shows: "Nov  2 10:32:56 2026 GMT". */
function opensslDate(date: Date): string {
  const month = date.toUTCString().slice(8, 11);
  const time = date.toISOString().slice(11, 19);
  return `${month} ${String(date.getUTCDate()).padStart(2, ' ')} ${time} ${date.getUTCFullYear()} GMT`;
}

/** A whole-second "now": OCSP times are whole seconds. */
const nowSeconds = (): Date => new Date(Math.floor(Date.now() / 1000) * 1000);

function answer(certId: CertId, status: OcspCertStatus, thisUpdate = nowSeconds()): { certId: CertId; status: OcspCertStatus; thisUpdate: Date; nextUpdate: Date } {
  return { certId, status, thisUpdate, nextUpdate: new Date(thisUpdate.getTime() + HOUR) };
}

const certificateOf = (der: Buffer): Certificate => AsnConvert.parse(der, Certificate);
const keyBitsOf = (der: Buffer): Buffer => Buffer.from(certificateOf(der).tbsCertificate.subjectPublicKeyInfo.subjectPublicKey);
const subjectOf = (der: Buffer): Buffer => Buffer.from(AsnConvert.serialize(certificateOf(der).tbsCertificate.subject));
const digest = (name: 'sha1' | 'sha256', data: Buffer): Buffer => createHash(name).update(data).digest();

/** The serial as our API spells it: lowercase hex of the magnitude. */
const hexOf = (serial: Buffer): string => serial.toString('hex').replace(/^(00)+(?=..)/, '');

function expectMalformed(fn: () => unknown, message?: RegExp): void {
  const error = thrownBy(fn);
  expect(error.code).toBe('ERR_OCSP_MALFORMED');
  if (message) expect(error.message).toMatch(message);
}

/**
 * Re-signs one of our responses as another signer would, with @peculiar/asn1-ocsp as the encoder:
 * ResponderID byKey of the signer, its certificate in certs, an ECDSA P-256 signature. Used to
 * show that openssl and verifyOcspResponse refuse signers that are not authorised.
 */
function resign(responseDer: Buffer, signerCertDer: Buffer, signerKey: KeyObject): Buffer {
  const response = AsnConvert.parse(responseDer, OCSPResponse);
  const basic = AsnConvert.parse(response.responseBytes!.response, BasicOCSPResponse);
  basic.tbsResponseData.responderID = new ResponderID({ byKey: new KeyHash(digest('sha1', keyBitsOf(signerCertDer))) });
  const tbs = Buffer.from(AsnConvert.serialize(basic.tbsResponseData));
  basic.signatureAlgorithm = new AlgorithmIdentifier({ algorithm: ECDSA_SHA256 });
  basic.signature = new Uint8Array(sign('sha256', tbs, signerKey)).buffer;
  basic.certs = [certificateOf(signerCertDer)];
  response.responseBytes!.response = new OctetString(AsnConvert.serialize(basic));
  return Buffer.from(AsnConvert.serialize(response));
}

/** One DER TLV, lengths up to 65535 (enough for test requests). */
function tlvOf(tag: number, content: Buffer): Buffer {
  const length =
    content.length < 0x80 ? Buffer.from([content.length]) : content.length < 0x100 ? Buffer.from([0x81, content.length]) : Buffer.from([0x82, content.length >> 8, content.length & 0xff]);
  return Buffer.concat([Buffer.from([tag]), length, content]);
}

/**
 * An OCSPRequest encoded by @peculiar/asn1-ocsp, for the shapes OpenSSL will not produce.
 * Requests with singleRequestExtensions are assembled by hand around its CertID and Extensions
 * encodings: asn1-ocsp 2.6.1 declares Request.singleRequestExtensions without its [0] tag.
 */
function oracleRequest(options: {
  issuerDer: Buffer;
  hashOid?: string;
  serials?: Uint8Array[];
  requestExtensions?: Extension[];
  singleExtensions?: Extension[];
  hashLength?: number;
  /** DER of the hash AlgorithmIdentifier parameters (NULL unless given). */
  hashParameters?: Uint8Array;
}): Buffer {
  const hashOid = options.hashOid ?? SHA1;
  const hashName = hashOid === SHA256 ? 'sha256' : 'sha1';
  const length = options.hashLength ?? (hashOid === SHA256 ? 32 : 20);
  const nameHash = digest(hashName, subjectOf(options.issuerDer)).subarray(0, length);
  const keyHash = digest(hashName, keyBitsOf(options.issuerDer)).subarray(0, length);
  const serials = options.serials ?? [new Uint8Array([0x01, 0x02, 0x03])];
  const certIds = serials.map(
    (serial) =>
      new CertID({
        hashAlgorithm: new AlgorithmIdentifier({ algorithm: hashOid, parameters: new Uint8Array(options.hashParameters ?? [0x05, 0x00]).buffer }),
        issuerNameHash: new OctetString(nameHash),
        issuerKeyHash: new OctetString(keyHash),
        serialNumber: new Uint8Array(serial).buffer,
      }),
  );
  if (options.singleExtensions) {
    const single = tlvOf(0xa0, Buffer.from(AsnConvert.serialize(new Extensions(options.singleExtensions))));
    const requests = certIds.map((certId) => tlvOf(0x30, Buffer.concat([Buffer.from(AsnConvert.serialize(certId)), single])));
    return tlvOf(0x30, tlvOf(0x30, tlvOf(0x30, Buffer.concat(requests))));
  }
  const requestList = certIds.map((reqCert) => new Request({ reqCert }));
  const tbsRequest = new TBSRequest({ requestList, ...(options.requestExtensions ? { requestExtensions: options.requestExtensions } : {}) });
  return Buffer.from(AsnConvert.serialize(new OCSPRequest({ tbsRequest })));
}

const extension = (extnID: string, critical: boolean, value: Uint8Array): Extension => new Extension({ extnID, critical, extnValue: new OctetString(value) });
const nonceExtension = (nonce: Uint8Array): Extension => extension(id_pkix_ocsp_nonce, false, new Uint8Array(AsnConvert.serialize(new OctetString(nonce))));

// ---------------------------------------------------------------------------------------------

describe('parseOcspRequest on requests made by openssl ocsp', () => {
  it('ok/default (SHA-1 CertID, nonce): serial, hashes and nonce as OpenSSL encoded them', () => {
    const { ca, files, leafSerial } = fixture('p256');
    const der = opensslRequest('req-default.der', ['-issuer', files.intermediate, '-cert', files.leaf]);
    const parsed = parseOcspRequest(der);
    expect(parsed.certIds).toHaveLength(1);
    const [certId] = parsed.certIds;
    expect(certId!.hashAlgorithmOid).toBe(SHA1);
    expect(certId!.serial).toBe(hexOf(leafSerial));
    expect(certId!.serial).toMatch(/^[89a-f]/); // the 00 pad of the INTEGER is stripped
    expect(certId!.issuerNameHash).toEqual(digest('sha1', subjectOf(ca.intermediateDer)));
    expect(certId!.issuerKeyHash).toEqual(digest('sha1', keyBitsOf(ca.intermediateDer)));
    // The CertID is kept verbatim, and the nonce is the inner OCTET STRING of the extension.
    const oracleRequestDecoded = AsnConvert.parse(der, OCSPRequest);
    expect(certId!.raw).toEqual(Buffer.from(AsnConvert.serialize(oracleRequestDecoded.tbsRequest.requestList[0]!.reqCert)));
    const nonceValue = oracleRequestDecoded.tbsRequest.requestExtensions!.find((e) => e.extnID === id_pkix_ocsp_nonce)!.extnValue.buffer;
    const inner = AsnConvert.parse(nonceValue, OctetString);
    expect(parsed.nonce).toEqual(Buffer.from(inner.buffer));
    expect(parsed.nonce).toHaveLength(16);
  });

  it('ok/-sha256 -no_nonce: SHA-256 CertID and no nonce', () => {
    const { ca, files, leafSerial } = fixture('p256');
    const parsed = parseOcspRequest(opensslRequest('req-sha256.der', ['-issuer', files.intermediate, '-sha256', '-cert', files.leaf, '-no_nonce']));
    expect(parsed.nonce).toBeUndefined();
    expect(parsed.certIds[0]!.hashAlgorithmOid).toBe(SHA256);
    expect(parsed.certIds[0]!.serial).toBe(hexOf(leafSerial));
    expect(parsed.certIds[0]!.issuerNameHash).toEqual(digest('sha256', subjectOf(ca.intermediateDer)));
    expect(parsed.certIds[0]!.issuerKeyHash).toEqual(digest('sha256', keyBitsOf(ca.intermediateDer)));
    expect(fixture('p256').responder.covers(parsed.certIds[0]!)).toBe(true);
  });

  it('ok/two -cert: two CertIDs in request order', () => {
    const { files, leafSerial, leaf2Serial } = fixture('rsa2048');
    const parsed = parseOcspRequest(opensslRequest('req-two.der', ['-issuer', files.intermediate, '-cert', files.leaf, '-cert', files.leaf2]));
    expect(parsed.certIds.map((id) => id.serial)).toEqual([hexOf(leafSerial), hexOf(leaf2Serial)]);
  });

  it('ok/signed request (requestorName + optionalSignature): accepted, signature ignored', () => {
    const { files, leafSerial } = fixture('p256');
    scratch.write('signer.key', testKey('p256', 4).privateKey.export({ format: 'pem', type: 'pkcs8' }));
    const der = opensslRequest('req-signed.der', ['-issuer', files.intermediate, '-cert', files.leaf, '-signer', files.responder, '-signkey', 'signer.key']);
    const decoded = AsnConvert.parse(der, OCSPRequest);
    expect(decoded.optionalSignature).toBeDefined();
    expect(decoded.tbsRequest.requestorName).toBeDefined();
    const parsed = parseOcspRequest(der);
    expect(parsed.certIds[0]!.serial).toBe(hexOf(leafSerial));
    expect(parsed.nonce).toHaveLength(16);
  });

  it('ok/covers: true for our issuer (every key type), false for another CA and for our responder', () => {
    for (const type of CA_TYPES) {
      const { files, responder } = fixture(type);
      const [ours] = parseOcspRequest(opensslRequest(`req-covers-${type}.der`, ['-issuer', files.intermediate, '-cert', files.leaf])).certIds;
      expect(responder.covers(ours!), type).toBe(true);
    }
    const [foreign] = parseOcspRequest(opensslRequest('req-foreign.der', ['-issuer', other.files.intermediate, '-cert', other.files.leaf])).certIds;
    expect(fixture('p256').responder.covers(foreign!)).toBe(false);
    // Same serial and name hash, another key: the key hash alone must make it foreign.
    const p256 = fixture('p256');
    const [ours] = parseOcspRequest(opensslRequest('req-covers-mixed.der', ['-issuer', p256.files.intermediate, '-cert', p256.files.leaf])).certIds;
    expect(p256.responder.covers({ ...ours!, issuerKeyHash: foreign!.issuerKeyHash })).toBe(false);
    expect(p256.responder.covers({ ...ours!, issuerNameHash: foreign!.issuerNameHash })).toBe(false);
    // A CertID naming the p384 CA is not covered by the p256 responder.
    const [p384] = parseOcspRequest(opensslRequest('req-covers-p384.der', ['-issuer', fixture('p384').files.intermediate, '-cert', fixture('p384').files.leaf])).certIds;
    expect(p256.responder.covers(p384!)).toBe(false);
  });

  it('ok/16 CertIDs are accepted, 17 are ERR_OCSP_MALFORMED naming the limit', () => {
    const { files } = fixture('p256');
    const serials = (count: number): string[] => Array.from({ length: count }, (_, i) => ['-serial', `0x${(i + 1).toString(16)}`]).flat();
    const sixteen = parseOcspRequest(opensslRequest('req-16.der', ['-issuer', files.intermediate, ...serials(16)]));
    expect(sixteen.certIds.map((id) => id.serial)).toEqual(Array.from({ length: 16 }, (_, i) => (i + 1).toString(16).padStart(2, '0')));
    const seventeen = opensslRequest('req-17.der', ['-issuer', files.intermediate, ...serials(17)]);
    expectMalformed(() => parseOcspRequest(seventeen), /17 CertIDs; at most 16/);
  });
});

describe('createOcspRequest, decoded by openssl ocsp -req_text and parseOcspRequest', () => {
  it('ok/two serials, SHA-256, nonce: openssl shows the same serials, hash and nonce', () => {
    const { ca } = fixture('p256');
    const nonce = Buffer.from('00112233445566778899aabbccddeeff0123456789abcdef', 'hex');
    const serials = [Buffer.from('00ff01', 'hex'), randomSerial()];
    const der = createOcspRequest({ issuerCertDer: ca.intermediateDer, serials, nonce, hash: 'sha256' });
    scratch.write('created.der', der);
    const text = openssl(['ocsp', '-reqin', 'created.der', '-req_text'], scratch.dir);
    expect(text.match(/Hash Algorithm: sha256/g)).toHaveLength(2);
    expect(text).toContain('Serial Number: FF01');
    expect(text).toContain(`Serial Number: ${serials[1]!.toString('hex').toUpperCase()}`);
    expect(text).toContain(`Issuer Name Hash: ${digest('sha256', subjectOf(ca.intermediateDer)).toString('hex').toUpperCase()}`);
    expect(text).toContain(`Issuer Key Hash: ${digest('sha256', keyBitsOf(ca.intermediateDer)).toString('hex').toUpperCase()}`);
    // OpenSSL prints the nonce extnValue: OCTET STRING (04, length) wrapping the nonce.
    expect(text).toMatch(new RegExp(`OCSP Nonce: ?\\s+0418${nonce.toString('hex').toUpperCase()}`));

    const parsed = parseOcspRequest(der);
    expect(parsed.nonce).toEqual(nonce);
    expect(parsed.certIds.map((id) => id.serial)).toEqual(['ff01', serials[1]!.toString('hex')]);
    expect(fixture('p256').responder.covers(parsed.certIds[0]!)).toBe(true);
  });

  it('ok/default SHA-1 without nonce: byte for byte what openssl ocsp -no_nonce makes', () => {
    const { ca, files, leafSerial } = fixture('ed25519');
    const ours = createOcspRequest({ issuerCertDer: ca.intermediateDer, serials: [leafSerial] });
    const theirs = opensslRequest('req-compare.der', ['-issuer', files.intermediate, '-cert', files.leaf, '-no_nonce']);
    expect(ours).toEqual(theirs);
  });

  it('fail/no serials, 17 serials, empty serial, empty or oversized nonce: TypeError', () => {
    const { ca } = fixture('p256');
    expect(() => createOcspRequest({ issuerCertDer: ca.intermediateDer, serials: [] })).toThrow(TypeError);
    expect(() => createOcspRequest({ issuerCertDer: ca.intermediateDer, serials: Array.from({ length: 17 }, () => randomSerial()) })).toThrow(TypeError);
    expect(() => createOcspRequest({ issuerCertDer: ca.intermediateDer, serials: [Buffer.alloc(0)] })).toThrow(TypeError);
    expect(() => createOcspRequest({ issuerCertDer: ca.intermediateDer, serials: [randomSerial()], nonce: Buffer.alloc(0) })).toThrow(TypeError);
    expect(() => createOcspRequest({ issuerCertDer: ca.intermediateDer, serials: [randomSerial()], nonce: Buffer.alloc(129) })).toThrow(TypeError);
  });
});

describe('responses verified by openssl ocsp', () => {
  /**
   * Two runs per response, because `-cert` makes openssl build a fresh request (with its own nonce)
   * and ignore -reqin: (1) `-reqin` with the request the response answers, so the nonce is
   * compared, plus `-resp_text`; (2) `-cert leaf.pem -no_nonce`, so openssl matches the CertID it
   * computes itself and prints the per-certificate status.
   */
  function checkWithOpenssl(
    type: CaType,
    name: string,
    responseDer: Buffer,
    requestFile: string,
    certArgs: readonly string[],
  ): { withRequest: { status: number; out: string }; withCert: { status: number; out: string } } {
    const { files } = fixture(type);
    scratch.write(name, responseDer);
    const withRequest = ocspTool(['ocsp', '-respin', name, '-reqin', requestFile, '-issuer', files.intermediate, '-CAfile', files.root, '-resp_text']);
    const withCert = ocspTool(['ocsp', '-respin', name, '-issuer', files.intermediate, '-CAfile', files.root, ...certArgs, '-no_nonce']);
    return { withRequest, withCert };
  }

  function expectVerified(result: { status: number; out: string }): void {
    expect(result.out).toContain('Response verify OK');
    expect(result.out).not.toContain('Response Verify Failure');
    expect(result.out).not.toContain('Nonce Verify error');
    expect(result.out).not.toContain('WARNING: no nonce in response');
    expect(result.status).toBe(0);
  }

  it.each(CA_TYPES)('ok/ca=%s good, revoked (keyCompromise) and unknown, nonce echoed', (type) => {
    const { files, responder } = fixture(type);
    const requestFile = `req-resp-${type}.der`;
    const request = parseOcspRequest(opensslRequest(requestFile, ['-issuer', files.intermediate, '-cert', files.leaf]));
    const certId = request.certIds[0]!;
    const producedAt = nowSeconds();
    const revokedAt = new Date(producedAt.getTime() - 7 * 60_000);

    const good = checkWithOpenssl(type, `good-${type}.der`, responder.respond([answer(certId, { kind: 'good' }, producedAt)], { producedAt, nonce: request.nonce }), requestFile, ['-cert', files.leaf]);
    expectVerified(good.withRequest);
    expect(good.withRequest.out).toContain('Cert Status: good');
    expect(good.withRequest.out).toContain(`Produced At: ${opensslDate(producedAt)}`);
    expect(good.withRequest.out).toContain(`Next Update: ${opensslDate(new Date(producedAt.getTime() + HOUR))}`);
    expectVerified(good.withCert);
    expect(good.withCert.out).toContain(`${files.leaf}: good`);

    const revoked = checkWithOpenssl(
      type,
      `revoked-${type}.der`,
      responder.respond([answer(certId, { kind: 'revoked', revokedAt, reason: 'keyCompromise' }, producedAt)], { producedAt, nonce: request.nonce }),
      requestFile,
      ['-cert', files.leaf],
    );
    expectVerified(revoked.withRequest);
    expect(revoked.withRequest.out).toContain('Revocation Reason: keyCompromise (0x1)');
    expectVerified(revoked.withCert);
    expect(revoked.withCert.out).toContain(`${files.leaf}: revoked`);
    expect(revoked.withCert.out).toContain('Reason: keyCompromise');
    expect(revoked.withCert.out).toContain(`Revocation Time: ${opensslDate(revokedAt)}`);

    const unknown = checkWithOpenssl(type, `unknown-${type}.der`, responder.respond([answer(certId, { kind: 'unknown' }, producedAt)], { producedAt, nonce: request.nonce }), requestFile, ['-cert', files.leaf]);
    expectVerified(unknown.withRequest);
    expectVerified(unknown.withCert);
    expect(unknown.withCert.out).toContain(`${files.leaf}: unknown`);
  });

  it('ok/revoked with reason unspecified: no revocationReason at all', () => {
    const { files, responder } = fixture('p256');
    const request = parseOcspRequest(opensslRequest('req-unspecified.der', ['-issuer', files.intermediate, '-cert', files.leaf]));
    const response = responder.respond([answer(request.certIds[0]!, { kind: 'revoked', revokedAt: nowSeconds(), reason: 'unspecified' })], { producedAt: nowSeconds(), nonce: request.nonce });
    const { withRequest, withCert } = checkWithOpenssl('p256', 'unspecified.der', response, 'req-unspecified.der', ['-cert', files.leaf]);
    expectVerified(withRequest);
    expect(withRequest.out).toContain('Cert Status: revoked');
    expect(withRequest.out).not.toContain('Revocation Reason');
    expect(withCert.out).toContain(`${files.leaf}: revoked`);
    expect(withCert.out).not.toContain('Reason:');
    const basic = AsnConvert.parse(AsnConvert.parse(response, OCSPResponse).responseBytes!.response, BasicOCSPResponse);
    expect(basic.tbsResponseData.responses[0]!.certStatus.revoked!.revocationReason).toBeUndefined();
  });

  it('ok/SHA-256 CertIDs for two certificates: echoed, both statuses matched by openssl', () => {
    const { files, responder } = fixture('rsa2048');
    const request = parseOcspRequest(opensslRequest('req-two-sha256.der', ['-issuer', files.intermediate, '-sha256', '-cert', files.leaf, '-cert', files.leaf2]));
    const response = responder.respond(
      [answer(request.certIds[0]!, { kind: 'good' }), answer(request.certIds[1]!, { kind: 'revoked', revokedAt: nowSeconds(), reason: 'superseded' })],
      { producedAt: nowSeconds(), nonce: request.nonce },
    );
    const { withRequest, withCert } = checkWithOpenssl('rsa2048', 'two-sha256.der', response, 'req-two-sha256.der', ['-sha256', '-cert', files.leaf, '-cert', files.leaf2]);
    expectVerified(withRequest);
    expect(withRequest.out.match(/Hash Algorithm: sha256/g)).toHaveLength(2);
    expectVerified(withCert);
    expect(withCert.out).toContain(`${files.leaf}: good`);
    expect(withCert.out).toContain(`${files.leaf2}: revoked`);
    expect(withCert.out).toContain('Reason: superseded');
  });

  it('ok/signed by the intermediate itself (no delegated certificate, no certs field)', () => {
    const { ca, files } = fixture('p384');
    const responder = new OcspResponder({ issuerCertDer: ca.intermediateDer, responderCertDer: ca.intermediateDer, responderPrivateKey: ca.intermediateKey.privateKey });
    const request = parseOcspRequest(opensslRequest('req-direct.der', ['-issuer', files.intermediate, '-cert', files.leaf]));
    const response = responder.respond([answer(request.certIds[0]!, { kind: 'good' })], { producedAt: nowSeconds(), nonce: request.nonce });
    expect(AsnConvert.parse(AsnConvert.parse(response, OCSPResponse).responseBytes!.response, BasicOCSPResponse).certs).toBeUndefined();
    const { withRequest, withCert } = checkWithOpenssl('p384', 'direct.der', response, 'req-direct.der', ['-cert', files.leaf]);
    expectVerified(withRequest);
    expectVerified(withCert);
    expect(withCert.out).toContain(`${files.leaf}: good`);
  });

  it('fail/a different nonce: openssl reports "Nonce Verify error"; none: "WARNING: no nonce in response"', () => {
    const { files, responder } = fixture('p256');
    const request = parseOcspRequest(opensslRequest('req-nonce.der', ['-issuer', files.intermediate, '-cert', files.leaf]));
    const wrongNonce = Buffer.from(request.nonce!);
    wrongNonce[0]! ^= 1;
    const wrong = checkWithOpenssl('p256', 'nonce-wrong.der', responder.respond([answer(request.certIds[0]!, { kind: 'good' })], { producedAt: nowSeconds(), nonce: wrongNonce }), 'req-nonce.der', ['-cert', files.leaf]);
    expect(wrong.withRequest.out).toContain('Nonce Verify error');
    const none = checkWithOpenssl('p256', 'nonce-none.der', responder.respond([answer(request.certIds[0]!, { kind: 'good' })], { producedAt: nowSeconds() }), 'req-nonce.der', ['-cert', files.leaf]);
    expect(none.withRequest.out).toContain('WARNING: no nonce in response');
  });

  it('ok/control: the re-signing helper with our own responder certificate and key verifies', () => {
    const { files, responder, responderDer, responderKey } = fixture('p256');
    const request = parseOcspRequest(opensslRequest('req-control.der', ['-issuer', files.intermediate, '-cert', files.leaf]));
    const response = resign(responder.respond([answer(request.certIds[0]!, { kind: 'good' })], { producedAt: nowSeconds(), nonce: request.nonce }), responderDer, responderKey.privateKey);
    const { withRequest, withCert } = checkWithOpenssl('p256', 'control.der', response, 'req-control.der', ['-cert', files.leaf]);
    expectVerified(withRequest);
    expect(withCert.out).toContain(`${files.leaf}: good`);
  });

  it('fail/signed by the OCSP responder of another CA: "Response Verify Failure"', () => {
    const { files, responder } = fixture('p256');
    const request = parseOcspRequest(opensslRequest('req-foreign-signer.der', ['-issuer', files.intermediate, '-cert', files.leaf]));
    const response = resign(responder.respond([answer(request.certIds[0]!, { kind: 'good' })], { producedAt: nowSeconds(), nonce: request.nonce }), other.responderDer, other.responderKey.privateKey);
    // Even with the other CA's chain available to openssl, its responder is not authorised for our issuer.
    scratch.write('both-roots.pem', pem(fixture('p256').ca.rootDer, 'CERTIFICATE') + pem(other.rootDer, 'CERTIFICATE'));
    scratch.write('foreign-signer.der', response);
    const rerun = ocspTool(['ocsp', '-respin', 'foreign-signer.der', '-reqin', 'req-foreign-signer.der', '-issuer', files.intermediate, '-verify_other', other.files.intermediate, '-CAfile', 'both-roots.pem']);
    expect(rerun.out).toContain('Response Verify Failure');
    expect(rerun.out).not.toContain('Response verify OK');
  });

  it('fail/signed by a certificate of our issuer without the OCSPSigning EKU: "Response Verify Failure"', () => {
    const { files, responder, leaf2Der } = fixture('p256');
    const request = parseOcspRequest(opensslRequest('req-no-eku.der', ['-issuer', files.intermediate, '-cert', files.leaf]));
    // leaf2 is a workload certificate (serverAuth + clientAuth) of the same intermediate; its key is testKey('p256', 3).
    const response = resign(responder.respond([answer(request.certIds[0]!, { kind: 'good' })], { producedAt: nowSeconds(), nonce: request.nonce }), leaf2Der, testKey('p256', 3).privateKey);
    const { withRequest } = checkWithOpenssl('p256', 'no-eku.der', response, 'req-no-eku.der', ['-cert', files.leaf]);
    expect(withRequest.out).toContain('Response Verify Failure');
    expect(withRequest.out).not.toContain('Response verify OK');
  });
});

describe('ocspErrorResponse', () => {
  const cases: Array<{ status: OcspErrorStatus; code: number; shown: string }> = [
    { status: 'malformedRequest', code: 1, shown: 'malformedrequest (1)' },
    { status: 'internalError', code: 2, shown: 'internalerror (2)' },
    { status: 'tryLater', code: 3, shown: 'trylater (3)' },
    { status: 'unauthorized', code: 6, shown: 'unauthorized (6)' },
  ];

  it.each(cases)('ok/$status: openssl shows "Responder Error: $shown"; no responseBytes', ({ status, code, shown }) => {
    const der = ocspErrorResponse(status);
    scratch.write(`error-${status}.der`, der);
    const result = ocspTool(['ocsp', '-respin', `error-${status}.der`]);
    expect(result.out).toContain(`Responder Error: ${shown}`);
    const decoded = AsnConvert.parse(der, OCSPResponse);
    expect(decoded.responseStatus).toBe(code);
    expect(decoded.responseBytes).toBeUndefined();
    expect(parseOcspResponse(der)).toEqual({ status, answers: [] });
    expect(verifyOcspResponse(parseOcspResponse(der), fixture('p256').ca.intermediateDer)).toBe(false);
  });

  it('fail/unknown status names: TypeError', () => {
    expect(() => ocspErrorResponse('successful' as OcspErrorStatus)).toThrow(TypeError);
    expect(() => ocspErrorResponse('toString' as OcspErrorStatus)).toThrow(TypeError);
  });
});

describe('responses decoded by @peculiar/asn1-ocsp', () => {
  it.each(['p256', 'rsa2048'] as const)('ok/ca=%s every field of a two-answer response with nonce', (type) => {
    const { ca, responder, responderDer, responderKey, leafSerial, leaf2Serial } = fixture(type);
    const nonce = Buffer.from('a1'.repeat(32), 'hex');
    const request = parseOcspRequest(createOcspRequest({ issuerCertDer: ca.intermediateDer, serials: [leafSerial, leaf2Serial], nonce }));
    const producedAt = nowSeconds();
    const revokedAt = new Date('2026-01-02T03:04:05Z');
    const der = responder.respond(
      [answer(request.certIds[0]!, { kind: 'good' }, producedAt), answer(request.certIds[1]!, { kind: 'revoked', revokedAt, reason: 'cessationOfOperation' }, producedAt)],
      { producedAt, nonce: request.nonce },
    );
    const response = AsnConvert.parse(der, OCSPResponse);
    expect(response.responseStatus).toBe(OCSPResponseStatus.successful);
    expect(response.responseBytes!.responseType).toBe(id_pkix_ocsp_basic);
    const basic = AsnConvert.parse(response.responseBytes!.response, BasicOCSPResponse);
    const data = basic.tbsResponseData;
    expect(data.version).toBe(0);
    // DEFAULT v1 is omitted: ResponseData starts with the [2] ResponderID.
    const tbsRaw = new Uint8Array(basic.tbsResponseDataRaw!);
    expect(tbsRaw[tbsRaw[1]! < 0x80 ? 2 : 2 + (tbsRaw[1]! & 0x7f)]).toBe(0xa2);
    expect(Buffer.from(data.responderID.byKey!.buffer)).toEqual(digest('sha1', keyBitsOf(responderDer)));
    expect(data.producedAt).toEqual(producedAt);
    expect(data.responses).toHaveLength(2);
    const [first, second] = data.responses;
    expect(Buffer.from(first!.certID.serialNumber).toString('hex').replace(/^00/, '')).toBe(leafSerial.toString('hex'));
    expect(first!.certID.hashAlgorithm.algorithm).toBe(SHA1);
    expect(first!.certStatus.good).toBeNull();
    expect(first!.thisUpdate).toEqual(producedAt);
    expect(first!.nextUpdate).toEqual(new Date(producedAt.getTime() + HOUR));
    expect(Buffer.from(second!.certID.serialNumber).toString('hex')).toBe(leaf2Serial.toString('hex'));
    expect(second!.certStatus.revoked!.revocationTime).toEqual(revokedAt);
    expect(second!.certStatus.revoked!.revocationReason!.reason).toBe(CRLReasons.cessationOfOperation);
    const nonceExt = data.responseExtensions!.find((e) => e.extnID === id_pkix_ocsp_nonce)!;
    expect(nonceExt.critical).toBe(false);
    expect(Buffer.from(AsnConvert.parse(nonceExt.extnValue.buffer, OctetString).buffer)).toEqual(nonce);
    expect(data.responseExtensions).toHaveLength(1);
    expect(basic.certs).toHaveLength(1);
    expect(Buffer.from(AsnConvert.serialize(basic.certs![0]!))).toEqual(responderDer);
    expect(basic.signatureAlgorithm.algorithm).toBe(ECDSA_SHA256); // the responder key is P-256 whatever the CA key
    expect(verify('sha256', Buffer.from(basic.tbsResponseDataRaw!), responderKey.publicKey, Buffer.from(basic.signature))).toBe(true);
    // Times are GeneralizedTime (tag 0x18) even before 2050.
    const raw = Buffer.from(basic.tbsResponseDataRaw!);
    const producedAtText = `${producedAt.toISOString().slice(0, 19).replace(/[-T:]/g, '')}Z`;
    expect(raw.includes(Buffer.concat([Buffer.from([0x18, 15]), Buffer.from(producedAtText)]))).toBe(true);
  });
});

describe('parseOcspResponse and verifyOcspResponse', () => {
  function goodResponse(type: CaType, nonce?: Buffer): { der: Buffer; certId: CertId; producedAt: Date } {
    const { ca, responder, leafSerial } = fixture(type);
    const [certId] = parseOcspRequest(createOcspRequest({ issuerCertDer: ca.intermediateDer, serials: [leafSerial] })).certIds;
    const producedAt = nowSeconds();
    return { der: responder.respond([answer(certId!, { kind: 'good' }, producedAt)], { producedAt, nonce }), certId: certId!, producedAt };
  }

  it.each(CA_TYPES)('ok/ca=%s round trip: parsed fields and a verified signature', (type) => {
    const { ca, responderDer, leafSerial } = fixture(type);
    const nonce = Buffer.from('0f'.repeat(20), 'hex');
    const { der, producedAt } = goodResponse(type, nonce);
    const parsed = parseOcspResponse(der);
    expect(parsed.status).toBe('successful');
    expect(parsed.producedAt).toEqual(producedAt);
    expect(parsed.nonce).toEqual(nonce);
    expect(parsed.answers).toEqual([{ serial: hexOf(leafSerial), status: { kind: 'good' }, thisUpdate: producedAt, nextUpdate: new Date(producedAt.getTime() + HOUR) }]);
    expect(parsed.responderCertDer).toEqual(responderDer);
    expect(parsed.signatureOid).toBe(ECDSA_SHA256);
    expect(verifyOcspResponse(parsed, ca.intermediateDer)).toBe(true);
  });

  it('ok/revoked reason and time parsed back; unspecified when the reason is absent', () => {
    const { responder, ca, leafSerial, leaf2Serial } = fixture('p256');
    const ids = parseOcspRequest(createOcspRequest({ issuerCertDer: ca.intermediateDer, serials: [leafSerial, leaf2Serial] })).certIds;
    const revokedAt = new Date('2026-02-03T04:05:06Z');
    const parsed = parseOcspResponse(
      responder.respond(
        [answer(ids[0]!, { kind: 'revoked', revokedAt, reason: 'aACompromise' }), answer(ids[1]!, { kind: 'revoked', revokedAt, reason: 'unspecified' })],
        { producedAt: nowSeconds() },
      ),
    );
    expect(parsed.answers.map((a) => a.status)).toEqual([
      { kind: 'revoked', revokedAt, reason: 'aACompromise' },
      { kind: 'revoked', revokedAt, reason: 'unspecified' },
    ]);
    expect(parsed.nonce).toBeUndefined();
  });

  it('ok/issuer-signed response (no certs) verifies with the issuer', () => {
    const { ca, leafSerial } = fixture('ed25519');
    const responder = new OcspResponder({ issuerCertDer: ca.intermediateDer, responderCertDer: ca.intermediateDer, responderPrivateKey: ca.intermediateKey.privateKey });
    const [certId] = parseOcspRequest(createOcspRequest({ issuerCertDer: ca.intermediateDer, serials: [leafSerial] })).certIds;
    const parsed = parseOcspResponse(responder.respond([answer(certId!, { kind: 'good' })], { producedAt: nowSeconds() }));
    expect(parsed.responderCertDer).toBeUndefined();
    expect(parsed.signatureOid).toBe('1.3.101.112');
    expect(verifyOcspResponse(parsed, ca.intermediateDer)).toBe(true);
    expect(verifyOcspResponse(parsed, fixture('p256').ca.intermediateDer)).toBe(false);
  });

  it('fail/a flipped bit in the signature or in the signed data', () => {
    const { ca } = fixture('p256');
    const parsed = parseOcspResponse(goodResponse('p256').der);
    expect(verifyOcspResponse(parsed, ca.intermediateDer)).toBe(true);
    for (const index of [0, 10, parsed.signature!.length - 1]) {
      const signature = Buffer.from(parsed.signature!);
      signature[index]! ^= 0x01;
      expect(verifyOcspResponse({ ...parsed, signature }, ca.intermediateDer), `signature byte ${index}`).toBe(false);
    }
    // good [0] → unknown [2] inside the signed ResponseData: still parses, no longer verifies.
    const tbsDer = Buffer.from(parsed.tbsDer!);
    const at = tbsDer.indexOf(Buffer.from([0x80, 0x00, 0x18]));
    expect(at).toBeGreaterThan(0);
    tbsDer[at] = 0x82;
    expect(verifyOcspResponse({ ...parsed, tbsDer }, ca.intermediateDer)).toBe(false);
    // And in the raw response: the last byte of the signature BIT STRING (certs follow it).
    const der = Buffer.from(goodResponse('p256').der);
    const signature = parseOcspResponse(der).signature!;
    const signatureEnd = der.indexOf(signature) + signature.length - 1;
    der[signatureEnd]! ^= 0x01;
    expect(verifyOcspResponse(parseOcspResponse(der), ca.intermediateDer)).toBe(false);
  });

  it('fail/responder certificate of another CA, one without OCSPSigning, the wrong issuer, an expired responder', () => {
    const { ca, responderDer, responderKey, leaf2Der } = fixture('p256');
    const { der } = goodResponse('p256');
    expect(verifyOcspResponse(parseOcspResponse(resign(der, responderDer, responderKey.privateKey)), ca.intermediateDer)).toBe(true); // control
    expect(verifyOcspResponse(parseOcspResponse(resign(der, other.responderDer, other.responderKey.privateKey)), ca.intermediateDer)).toBe(false);
    expect(verifyOcspResponse(parseOcspResponse(resign(der, leaf2Der, testKey('p256', 3).privateKey)), ca.intermediateDer)).toBe(false);
    // A response about our certificates checked against another issuer.
    expect(verifyOcspResponse(parseOcspResponse(der), other.intermediateDer)).toBe(false);
    // The other CA's responder may speak for the other CA (control), but not about our CertIDs even
    // when checked against the other CA, whose responder it is.
    const otherResponder = new OcspResponder({ issuerCertDer: other.intermediateDer, responderCertDer: other.responderDer, responderPrivateKey: other.responderKey.privateKey });
    const [otherCertId] = parseOcspRequest(createOcspRequest({ issuerCertDer: other.intermediateDer, serials: [randomSerial()] })).certIds;
    expect(verifyOcspResponse(parseOcspResponse(otherResponder.respond([answer(otherCertId!, { kind: 'good' })], { producedAt: nowSeconds() })), other.intermediateDer)).toBe(true);
    expect(verifyOcspResponse(parseOcspResponse(resign(der, other.responderDer, other.responderKey.privateKey)), other.intermediateDer)).toBe(false);
    // The responder certificate is valid for 24h around now; a week later it has expired.
    expect(verifyOcspResponse(parseOcspResponse(der), ca.intermediateDer, new Date(Date.now() + 7 * 24 * HOUR))).toBe(false);
    expect(verifyOcspResponse(parseOcspResponse(der), ca.intermediateDer, new Date(Date.now() - 7 * 24 * HOUR))).toBe(false);
  });

  it('fail/a response signed by our responder but naming another ResponderID', () => {
    const { ca } = fixture('p256');
    const { der } = goodResponse('p256');
    // Re-sign with the right key and certificate, but put the intermediate's key hash in ResponderID.
    const response = AsnConvert.parse(der, OCSPResponse);
    const basic = AsnConvert.parse(response.responseBytes!.response, BasicOCSPResponse);
    basic.tbsResponseData.responderID = new ResponderID({ byKey: new KeyHash(digest('sha1', keyBitsOf(ca.intermediateDer))) });
    const tbs = Buffer.from(AsnConvert.serialize(basic.tbsResponseData));
    basic.signature = new Uint8Array(sign('sha256', tbs, fixture('p256').responderKey.privateKey)).buffer;
    response.responseBytes!.response = new OctetString(AsnConvert.serialize(basic));
    expect(verifyOcspResponse(parseOcspResponse(Buffer.from(AsnConvert.serialize(response))), ca.intermediateDer)).toBe(false);
  });

  it('fail/malformed responses: ERR_OCSP_MALFORMED', () => {
    const { der } = goodResponse('p256');
    expectMalformed(() => parseOcspResponse(Buffer.alloc(0)));
    expectMalformed(() => parseOcspResponse(der.subarray(0, der.length - 1)));
    expectMalformed(() => parseOcspResponse(Buffer.concat([der, Buffer.from([0])])));
    // successful without responseBytes; an error status with them; an unknown status (4).
    expectMalformed(() => parseOcspResponse(Buffer.from('30030a0100', 'hex')), /must carry responseBytes/);
    expectMalformed(() => parseOcspResponse(Buffer.from('30070a0101a0023000', 'hex')), /must not carry responseBytes/);
    expectMalformed(() => parseOcspResponse(Buffer.from('30030a0104', 'hex')), /unknown responseStatus/);
  });
});

describe('parseOcspRequest refuses malformed requests with ERR_OCSP_MALFORMED', () => {
  const valid = (): Buffer => createOcspRequest({ issuerCertDer: fixture('p256').ca.intermediateDer, serials: [randomSerial()], nonce: Buffer.alloc(16, 7) });
  const issuerDer = (): Buffer => fixture('p256').ca.intermediateDer;

  it('fail/empty, truncated, trailing bytes', () => {
    expect(() => parseOcspRequest(valid())).not.toThrow();
    expectMalformed(() => parseOcspRequest(Buffer.alloc(0)));
    expectMalformed(() => parseOcspRequest(valid().subarray(0, -1)));
    expectMalformed(() => parseOcspRequest(valid().subarray(0, 10)));
    expectMalformed(() => parseOcspRequest(Buffer.concat([valid(), Buffer.from([0x00])])), /trailing/);
  });

  it(`fail/bigger than MAX_OCSP_REQUEST_BYTES (${MAX_OCSP_REQUEST_BYTES}), even if well formed`, () => {
    const padded = (size: number): Buffer => oracleRequest({ issuerDer: issuerDer(), requestExtensions: [extension(UNKNOWN_EXTENSION, false, new Uint8Array(size))] });
    const fits = padded(MAX_OCSP_REQUEST_BYTES - 200);
    expect(fits.length).toBeLessThanOrEqual(MAX_OCSP_REQUEST_BYTES);
    expect(parseOcspRequest(fits).certIds).toHaveLength(1); // control: unknown non-critical extensions are ignored
    const tooBig = padded(MAX_OCSP_REQUEST_BYTES);
    expect(tooBig.length).toBeGreaterThan(MAX_OCSP_REQUEST_BYTES);
    expectMalformed(() => parseOcspRequest(tooBig), new RegExp(`larger than ${MAX_OCSP_REQUEST_BYTES} bytes`));
  });

  it('fail/md5 CertID (the message names the OID); SHA-1 from the same encoder is accepted', () => {
    expect(parseOcspRequest(oracleRequest({ issuerDer: issuerDer(), hashOid: SHA1 })).certIds[0]!.serial).toBe('010203');
    expect(parseOcspRequest(oracleRequest({ issuerDer: issuerDer(), hashOid: SHA256 })).certIds[0]!.hashAlgorithmOid).toBe(SHA256);
    expectMalformed(() => parseOcspRequest(oracleRequest({ issuerDer: issuerDer(), hashOid: MD5, hashLength: 16 })), new RegExp(MD5.replace(/\./g, '\\.')));
  });

  it('fail/hash length not matching the algorithm, hash parameters other than NULL', () => {
    expectMalformed(() => parseOcspRequest(oracleRequest({ issuerDer: issuerDer(), hashOid: SHA1, hashLength: 16 })), /20 octets/);
    expectMalformed(() => parseOcspRequest(oracleRequest({ issuerDer: issuerDer(), hashParameters: new Uint8Array([0x04, 0x00]) })), /parameters/);
  });

  it('fail/unknown critical request extension or single request extension; non-critical ones are ignored', () => {
    const value = new Uint8Array([0x05, 0x00]);
    expect(parseOcspRequest(oracleRequest({ issuerDer: issuerDer(), requestExtensions: [extension(UNKNOWN_EXTENSION, false, value)] })).nonce).toBeUndefined();
    expectMalformed(() => parseOcspRequest(oracleRequest({ issuerDer: issuerDer(), requestExtensions: [extension(UNKNOWN_EXTENSION, true, value)] })), /critical extension 1\.3\.6\.1\.4\.1\.55555\.1/);
    expect(parseOcspRequest(oracleRequest({ issuerDer: issuerDer(), singleExtensions: [extension(UNKNOWN_EXTENSION, false, value)] })).certIds).toHaveLength(1);
    expectMalformed(() => parseOcspRequest(oracleRequest({ issuerDer: issuerDer(), singleExtensions: [extension(UNKNOWN_EXTENSION, true, value)] })), /critical/);
    // singleRequestExtensions without their [0] tag (what asn1-ocsp 2.6.1 itself encodes).
    const bare = AsnConvert.parse(valid(), OCSPRequest);
    bare.tbsRequest.requestList[0]!.singleRequestExtensions = [extension(UNKNOWN_EXTENSION, false, value)];
    expectMalformed(() => parseOcspRequest(Buffer.from(AsnConvert.serialize(bare))), /singleRequestExtensions must be \[0\]/);
    // A critical nonce is understood, so it is fine.
    const criticalNonce = extension(id_pkix_ocsp_nonce, true, new Uint8Array(AsnConvert.serialize(new OctetString(new Uint8Array(16).fill(9)))));
    expect(parseOcspRequest(oracleRequest({ issuerDer: issuerDer(), requestExtensions: [criticalNonce] })).nonce).toEqual(Buffer.alloc(16, 9));
  });

  it('fail/negative serial, non-minimal serial, empty serial', () => {
    expect(parseOcspRequest(oracleRequest({ issuerDer: issuerDer(), serials: [new Uint8Array([0x00, 0x85, 0x01])] })).certIds[0]!.serial).toBe('8501');
    expectMalformed(() => parseOcspRequest(oracleRequest({ issuerDer: issuerDer(), serials: [new Uint8Array([0x85, 0x01])] })), /negative/);
    expectMalformed(() => parseOcspRequest(oracleRequest({ issuerDer: issuerDer(), serials: [new Uint8Array([0x00, 0x05])] })), /minimally/);
  });

  it('fail/nonce of 0 or more than 128 octets, or not an OCTET STRING (RFC 9654)', () => {
    const withNonce = (nonce: Uint8Array): Buffer => oracleRequest({ issuerDer: issuerDer(), requestExtensions: [nonceExtension(nonce)] });
    expect(parseOcspRequest(withNonce(new Uint8Array(1).fill(1))).nonce).toEqual(Buffer.from([1]));
    expect(parseOcspRequest(withNonce(new Uint8Array(128).fill(2))).nonce).toEqual(Buffer.alloc(128, 2));
    expectMalformed(() => parseOcspRequest(withNonce(new Uint8Array(0))), /nonce/);
    expectMalformed(() => parseOcspRequest(withNonce(new Uint8Array(129))), /nonce/);
    // The raw nonce bytes as extnValue, without the inner OCTET STRING.
    const bare = oracleRequest({ issuerDer: issuerDer(), requestExtensions: [extension(id_pkix_ocsp_nonce, false, new Uint8Array(16).fill(0x30))] });
    expectMalformed(() => parseOcspRequest(bare));
  });

  it('fail/duplicate extension, empty request list, version v2, trailing field in TBSRequest', () => {
    const nonce = nonceExtension(new Uint8Array(16));
    expectMalformed(() => parseOcspRequest(oracleRequest({ issuerDer: issuerDer(), requestExtensions: [nonce, nonce] })), /twice/);
    expectMalformed(() => parseOcspRequest(oracleRequest({ issuerDer: issuerDer(), serials: [] })), /empty/);
    const request = AsnConvert.parse(valid(), OCSPRequest);
    request.tbsRequest.version = 1 as Version; // v2: not defined by RFC 6960
    expectMalformed(() => parseOcspRequest(Buffer.from(AsnConvert.serialize(request))), /version/);
    // [0] version 0 written out (DEFAULT, so not DER, but harmless) is accepted.
    const explicitV1 = Buffer.from(valid());
    const withVersion = Buffer.concat([Buffer.from('a003020100', 'hex'), readTbsContent(explicitV1)]);
    expect(parseOcspRequest(wrapRequest(withVersion)).certIds).toHaveLength(1);
    expectMalformed(() => parseOcspRequest(wrapRequest(Buffer.concat([readTbsContent(explicitV1), Buffer.from('0500', 'hex')]))), /unexpected field/);
  });

  it('fail/a requestorName is fine, but not two names', () => {
    const name = Buffer.from(AsnConvert.serialize(new Name([])));
    const generalName = Buffer.concat([Buffer.from([0xa4, name.length]), name]); // directoryName
    const tbs = readTbsContent(valid());
    expect(parseOcspRequest(wrapRequest(Buffer.concat([Buffer.from([0xa1, generalName.length]), generalName, tbs]))).certIds).toHaveLength(1);
    const two = Buffer.concat([generalName, generalName]);
    expectMalformed(() => parseOcspRequest(wrapRequest(Buffer.concat([Buffer.from([0xa1, two.length]), two, tbs]))), /requestorName/);
  });
});

/** The content octets of the TBSRequest of a small request (short-form lengths only). */
function readTbsContent(request: Buffer): Buffer {
  expect(request[0]).toBe(0x30);
  const outerHeader = request[1]! < 0x80 ? 2 : 2 + (request[1]! & 0x7f);
  const tbsLengthByte = request[outerHeader + 1]!;
  const tbsHeader = tbsLengthByte < 0x80 ? 2 : 2 + (tbsLengthByte & 0x7f);
  return request.subarray(outerHeader + tbsHeader);
}

/** OCSPRequest { TBSRequest { content } }. */
const wrapRequest = (tbsContent: Buffer): Buffer => tlvOf(0x30, tlvOf(0x30, tbsContent));

describe('OcspResponder argument checks', () => {
  it('fail/constructor: key not matching the certificate, responder of another CA, certificate without OCSPSigning', () => {
    const { ca, responderDer, leaf2Der } = fixture('p256');
    expect(() => new OcspResponder({ issuerCertDer: ca.intermediateDer, responderCertDer: responderDer, responderPrivateKey: testKey('p256', 9).privateKey })).toThrow(/private key does not belong/);
    expect(() => new OcspResponder({ issuerCertDer: ca.intermediateDer, responderCertDer: other.responderDer, responderPrivateKey: other.responderKey.privateKey })).toThrow(/not issued by the issuer/);
    expect(() => new OcspResponder({ issuerCertDer: ca.intermediateDer, responderCertDer: leaf2Der, responderPrivateKey: testKey('p256', 3).privateKey })).toThrow(/OCSPSigning/);
  });

  it('fail/respond: good or revoked for another CA (unknown is allowed), bad reason, bad times, no answers', () => {
    const { responder } = fixture('p256');
    const [foreign] = parseOcspRequest(createOcspRequest({ issuerCertDer: other.intermediateDer, serials: [randomSerial()] })).certIds;
    const [ours] = parseOcspRequest(createOcspRequest({ issuerCertDer: fixture('p256').ca.intermediateDer, serials: [randomSerial()] })).certIds;
    const producedAt = nowSeconds();
    expect(() => responder.respond([answer(foreign!, { kind: 'good' })], { producedAt })).toThrow(/not from this issuer/);
    expect(() => responder.respond([answer(foreign!, { kind: 'revoked', revokedAt: producedAt, reason: 'keyCompromise' })], { producedAt })).toThrow(TypeError);
    expect(parseOcspResponse(responder.respond([answer(foreign!, { kind: 'unknown' })], { producedAt })).answers[0]!.status).toEqual({ kind: 'unknown' });
    expect(() => responder.respond([answer(ours!, { kind: 'revoked', revokedAt: producedAt, reason: 'removeFromCRL' })], { producedAt })).toThrow(/reason/);
    expect(() => responder.respond([{ ...answer(ours!, { kind: 'good' }), nextUpdate: producedAt, thisUpdate: producedAt }], { producedAt })).toThrow(/nextUpdate/);
    expect(() => responder.respond([answer(ours!, { kind: 'good' })], { producedAt: new Date(Number.NaN) })).toThrow(TypeError);
    expect(() => responder.respond([], { producedAt })).toThrow(TypeError);
  });
});

describe('the OCSP responder certificate', () => {
  it.each(CA_TYPES)('ok/ca=%s openssl x509 -text: OCSP Signing only, OCSP No Check, CA:FALSE critical, digital signature critical, no SAN', (type) => {
    const { files } = fixture(type);
    const text = openssl(['x509', '-in', files.responder, '-noout', '-text'], scratch.dir);
    expect(text).toMatch(/Subject: O ?= ?tlsmesh, OU ?= ?example\.org, CN ?= ?tlsmesh OCSP responder\n/);
    expect(text).toMatch(/Issuer: O ?= ?tlsmesh, OU ?= ?example\.org, CN ?= ?tlsmesh intermediate CA example\.org g1\n/);
    expect(text).toMatch(/X509v3 Extended Key Usage: ?\n\s+OCSP Signing\n/);
    expect(text).toMatch(/OCSP No Check: ?\n/);
    expect(text).not.toMatch(/OCSP No Check: critical/);
    expect(text).toMatch(/X509v3 Basic Constraints: critical\n\s+CA:FALSE\n/);
    expect(text).toMatch(/X509v3 Key Usage: critical\n\s+Digital Signature\n/);
    expect(text).toMatch(/X509v3 Subject Key Identifier:/);
    expect(text).toMatch(/X509v3 Authority Key Identifier:/);
    expect(text).not.toContain('Subject Alternative Name');
  });

  it.each(CA_TYPES)('ok/ca=%s openssl verify -x509_strict (default and -purpose ocsphelper) through the name-constrained intermediate', (type) => {
    const { files } = fixture(type);
    for (const purpose of [[], ['-purpose', 'ocsphelper']]) {
      const out = openssl(['verify', '-x509_strict', ...purpose, '-CAfile', files.root, '-untrusted', files.intermediate, files.responder], scratch.dir);
      expect(out).toContain(`${files.responder}: OK`);
    }
  });

  it('ok/extensions decoded by @peculiar/asn1-x509: exact set, criticality and values', () => {
    const { ca, responderDer, responderKey } = fixture('p256');
    const certificate = certificateOf(responderDer);
    const tbs = certificate.tbsCertificate;
    expect(Buffer.from(AsnConvert.serialize(tbs.issuer))).toEqual(subjectOf(ca.intermediateDer));
    expect(Buffer.from(AsnConvert.serialize(tbs.subjectPublicKeyInfo))).toEqual(responderKey.publicKey.export({ format: 'der', type: 'spki' }));
    const extensions = new Map(tbs.extensions!.map((e) => [e.extnID, e]));
    expect([...extensions.keys()].sort()).toEqual(['2.5.29.14', '2.5.29.15', '2.5.29.19', '2.5.29.35', '2.5.29.37', OCSP_NOCHECK].sort());
    expect(Buffer.from(extensions.get(OCSP_NOCHECK)!.extnValue.buffer)).toEqual(Buffer.from('0500', 'hex'));
    expect(extensions.get(OCSP_NOCHECK)!.critical).toBe(false);
    expect([...AsnConvert.parse(extensions.get('2.5.29.37')!.extnValue.buffer, ExtendedKeyUsage)]).toEqual([OCSP_SIGNING]);
    expect(extensions.get('2.5.29.37')!.critical).toBe(false);
    expect(extensions.get('2.5.29.19')!.critical).toBe(true);
    expect(Buffer.from(extensions.get('2.5.29.19')!.extnValue.buffer)).toEqual(Buffer.from('3000', 'hex'));
    expect(extensions.get('2.5.29.15')!.critical).toBe(true);
    expect(Buffer.from(extensions.get('2.5.29.15')!.extnValue.buffer)).toEqual(Buffer.from('03020780', 'hex'));
  });

  it('ok/serial and validity as requested; fail/notAfter not after notBefore', async () => {
    const { ca } = fixture('p256');
    const serial = randomSerial();
    const notBefore = new Date('2026-04-01T00:00:00Z');
    const notAfter = new Date('2026-04-04T00:00:00Z');
    const request = { issuerCertDer: ca.intermediateDer, issuerPrivateKey: ca.intermediateKey.privateKey, responderPublicKey: testKey('p256', 4).publicKey, serial, notBefore, notAfter, trustDomain: TRUST_DOMAIN };
    const tbs = certificateOf(await createOcspResponderCertificate(request)).tbsCertificate;
    expect(Buffer.from(tbs.serialNumber).toString('hex')).toBe(serial.toString('hex'));
    expect(tbs.validity.notBefore.getTime()).toEqual(notBefore);
    expect(tbs.validity.notAfter.getTime()).toEqual(notAfter);
    await expect(createOcspResponderCertificate({ ...request, notAfter: notBefore })).rejects.toThrow(TypeError);
  });
});

describe('throughput', () => {
  it('ok/respond() with a P-256 responder key (logged, not asserted)', () => {
    const { ca, responder, leafSerial } = fixture('p256');
    const request = parseOcspRequest(createOcspRequest({ issuerCertDer: ca.intermediateDer, serials: [leafSerial], nonce: Buffer.alloc(32, 1) }));
    const calls = 2000;
    const started = process.hrtime.bigint();
    let bytes = 0;
    for (let i = 0; i < calls; i++) {
      const producedAt = new Date();
      bytes += responder.respond([{ certId: request.certIds[0]!, status: { kind: 'good' }, thisUpdate: producedAt, nextUpdate: new Date(producedAt.getTime() + HOUR) }], { producedAt, nonce: request.nonce }).length;
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    console.info(`OCSP respond(): ${Math.round(calls / seconds)} responses/s with P-256 (${calls} calls, ${Math.round(bytes / calls)} bytes each)`);
    expect(bytes).toBeGreaterThan(0);
  });
});
