/**
 * The CSR parser (src/pki/csr.ts) against @peculiar/x509's Pkcs10CertificateRequest as the
 * oracle, on CSRs made by createCsr and by `openssl req`, and every refusal by its error code.
 */
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ErrorCode } from '../../src/errors.js';
import { createCsr, csrDer, MAX_CSR_BYTES, parseCsr, parseCsrAsync, type ParsedCsr } from '../../src/pki/csr.js';
import { bitString, readChildren, readWhole, sequence } from '../../src/pki/der.js';
import type { KeyDescription } from '../../src/pki/keys.js';
import * as keysModule from '../../src/pki/keys.js';
import { expectCode, KEY_TYPES_UNDER_TEST, openssl, oracle, pem, scratchDir, testKey, type Scratch } from './support.js';

const x509 = oracle();
let scratch: Scratch;

beforeAll(() => {
  scratch = scratchDir();
});
afterAll(() => scratch?.remove());

// ---------------------------------------------------------------------------------------------
// Making CSRs

const OPENSSL_KEYS = {
  p256: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
  p384: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384'],
  ed25519: ['-algorithm', 'ED25519'],
  rsa2048: ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'],
  rsa1024: ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024'],
  rsa2048e3: ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-pkeyopt', 'rsa_keygen_pubexp:3'],
  rsapss: ['-algorithm', 'RSA-PSS', '-pkeyopt', 'rsa_keygen_bits:2048'],
  secp256k1: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:secp256k1'],
  p521: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-521'],
  ed448: ['-algorithm', 'ED448'],
} as const;
type OpensslKey = keyof typeof OPENSSL_KEYS;

const opensslKeyFiles = new Map<OpensslKey, string>();

function opensslKey(type: OpensslKey): string {
  let file = opensslKeyFiles.get(type);
  if (file === undefined) {
    file = `${type}.key.pem`;
    openssl(['genpkey', ...OPENSSL_KEYS[type], '-out', file], scratch.dir);
    opensslKeyFiles.set(type, file);
  }
  return file;
}

let csrCount = 0;

/** `openssl req -new` with the given key and extra arguments (e.g. -addext, -sha1); returns DER. */
function opensslCsr(key: OpensslKey, extra: readonly string[] = []): Buffer {
  const out = `req-${csrCount++}.der`;
  openssl(['req', '-new', '-key', opensslKey(key), '-subj', '/O=tlsmesh test', '-outform', 'DER', '-out', out, ...extra], scratch.dir);
  return scratch.read(out);
}

const SAN = 'subjectAltName=URI:spiffe://example.org/ns/prod/sa/api,DNS:Api.Example.ORG,DNS:api.prod.svc,IP:10.0.0.1,IP:2001:db8:0:0:1:0:0:1,IP:::ffff:1.2.3.4';

function derOf(pemText: string): Buffer {
  return csrDer(pemText);
}

// ---------------------------------------------------------------------------------------------
// The oracle's reading of a CSR

interface OracleView {
  spki: Buffer;
  key: KeyDescription;
  uris: string[];
  dnsNames: string[];
  ipAddresses: string[];
  requestsCa: boolean;
  signatureValid: boolean;
}

/** RFC 5952 text of an address, by the WHATWG URL serializer (a second implementation). */
function canonicalAddress(text: string): string {
  return text.includes(':') ? new URL(`http://[${text}]/`).hostname.slice(1, -1) : text;
}

async function oracleView(der: Buffer): Promise<OracleView> {
  const csr = new x509.Pkcs10CertificateRequest(new Uint8Array(der));
  // getExtension by OID, then re-wrapped: lookups by class are unreliable across module copies.
  const sanExtension = csr.getExtension('2.5.29.17');
  const names = sanExtension ? new x509.SubjectAlternativeNameExtension(sanExtension.rawData).names.items : [];
  const bcExtension = csr.getExtension('2.5.29.19');
  const algorithm = csr.publicKey.algorithm as { name: string; namedCurve?: string; modulusLength?: number };
  const key: KeyDescription =
    algorithm.name === 'ECDSA'
      ? algorithm.namedCurve === 'P-256'
        ? { algorithm: 'ecdsa-p256', bits: 256 }
        : { algorithm: 'ecdsa-p384', bits: 384 }
      : algorithm.name === 'Ed25519'
        ? { algorithm: 'ed25519', bits: 256 }
        : { algorithm: 'rsa', bits: algorithm.modulusLength ?? -1 };
  return {
    spki: Buffer.from(csr.publicKey.rawData),
    key,
    uris: names.filter((name) => name.type === 'url').map((name) => name.value),
    dnsNames: names.filter((name) => name.type === 'dns').map((name) => name.value.toLowerCase()),
    ipAddresses: names.filter((name) => name.type === 'ip').map((name) => canonicalAddress(name.value)),
    requestsCa: bcExtension ? new x509.BasicConstraintsExtension(bcExtension.rawData).ca : false,
    signatureValid: await csr.verify(),
  };
}

function ourView(parsed: ParsedCsr): Omit<OracleView, 'signatureValid'> {
  return {
    spki: parsed.spki,
    key: parsed.key,
    uris: parsed.uris,
    dnsNames: parsed.dnsNames,
    ipAddresses: parsed.ipAddresses,
    requestsCa: parsed.requestsCa,
  };
}

async function expectAgreesWithOracle(der: Buffer): Promise<ParsedCsr> {
  const parsed = parseCsr(der);
  const { signatureValid, ...expected } = await oracleView(der);
  expect(signatureValid).toBe(true);
  expect(ourView(parsed)).toEqual(expected);
  expect(parsed.publicKey.export({ format: 'der', type: 'spki' })).toEqual(expected.spki);
  expect(parsed.der).toEqual(der);
  return parsed;
}

// ---------------------------------------------------------------------------------------------

describe('parseCsr agrees with @peculiar/x509', () => {
  it.each(KEY_TYPES_UNDER_TEST)('ok/createCsr with a %s key', async (type) => {
    const pair = testKey(type);
    const csrPem = await createCsr({
      privateKey: pair.privateKey,
      spiffeId: 'spiffe://example.org/ns/prod/sa/api',
      dnsNames: ['API.Example.org', 'api.prod.svc'],
      ipAddresses: ['10.0.0.1', '2001:DB8:0:0:0:0:0:1', '::ffff:1.2.3.4'],
    });
    const parsed = await expectAgreesWithOracle(derOf(csrPem));
    expect(parsed.uris).toEqual(['spiffe://example.org/ns/prod/sa/api']);
    expect(parsed.dnsNames).toEqual(['api.example.org', 'api.prod.svc']);
    expect(parsed.ipAddresses).toEqual(['10.0.0.1', '2001:db8::1', '::ffff:102:304']);
    expect(parsed.requestsCa).toBe(false);
    expect(parsed.spki).toEqual(pair.publicKey.export({ format: 'der', type: 'spki' }));
  });

  const opensslCases: { name: string; key: OpensslKey; args: string[]; check: (parsed: ParsedCsr) => void }[] = [
    ...(['p256', 'p384', 'ed25519', 'rsa2048'] as const).map((key) => ({
      name: `ok/openssl req, ${key} key, URI+DNS+IP SANs`,
      key,
      args: ['-addext', SAN],
      check: (parsed: ParsedCsr) => {
        expect(parsed.uris).toEqual(['spiffe://example.org/ns/prod/sa/api']);
        expect(parsed.dnsNames).toEqual(['api.example.org', 'api.prod.svc']);
        expect(parsed.ipAddresses).toEqual(['10.0.0.1', '2001:db8::1:0:0:1', '::ffff:102:304']);
        expect(parsed.requestsCa).toBe(false);
      },
    })),
    {
      name: 'ok/openssl req asking for CA:TRUE: requestsCa',
      key: 'p256',
      args: ['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'subjectAltName=URI:spiffe://example.org/ca'],
      check: (parsed) => expect(parsed.requestsCa).toBe(true),
    },
    {
      name: 'ok/openssl req with CA:FALSE: not requestsCa',
      key: 'p256',
      args: ['-addext', 'basicConstraints=critical,CA:FALSE', '-addext', 'subjectAltName=URI:spiffe://example.org/a'],
      check: (parsed) => expect(parsed.requestsCa).toBe(false),
    },
    {
      name: 'ok/openssl req with no extensions at all',
      key: 'p384',
      args: [],
      check: (parsed) => expect([parsed.uris, parsed.dnsNames, parsed.ipAddresses]).toEqual([[], [], []]),
    },
    {
      name: 'ok/requested KU and EKU are ignored, not refused',
      key: 'p256',
      args: ['-addext', 'keyUsage=critical,digitalSignature,keyCertSign', '-addext', 'extendedKeyUsage=codeSigning', '-addext', 'subjectAltName=URI:spiffe://example.org/a'],
      check: (parsed) => expect(parsed.uris).toEqual(['spiffe://example.org/a']),
    },
    {
      name: 'ok/an RSA-PKCS#1 SHA-512 signature',
      key: 'rsa2048',
      args: ['-sha512', '-addext', 'subjectAltName=URI:spiffe://example.org/a'],
      check: (parsed) => expect(parsed.key).toEqual({ algorithm: 'rsa', bits: 2048 }),
    },
    {
      name: 'ok/an ECDSA P-256 key signing with SHA-384',
      key: 'p256',
      args: ['-sha384', '-addext', 'subjectAltName=URI:spiffe://example.org/a'],
      check: (parsed) => expect(parsed.key).toEqual({ algorithm: 'ecdsa-p256', bits: 256 }),
    },
  ];
  it.each(opensslCases)('$name', async ({ key, args, check }) => {
    check(await expectAgreesWithOracle(opensslCsr(key, args)));
  });

  it('ok/openssl req with a challengePassword attribute (ignored)', async () => {
    const config = scratch.write(
      'attributes.cnf',
      [
        '[req]',
        'prompt = no',
        'distinguished_name = dn',
        'attributes = attrs',
        'req_extensions = ext',
        '[dn]',
        'O = tlsmesh test',
        '[attrs]',
        'challengePassword = correct horse battery',
        '[ext]',
        'subjectAltName = URI:spiffe://example.org/with-attribute',
        '',
      ].join('\n'),
    );
    openssl(['req', '-new', '-config', config, '-key', opensslKey('p256'), '-outform', 'DER', '-out', 'attributes.der'], scratch.dir);
    const parsed = await expectAgreesWithOracle(scratch.read('attributes.der'));
    expect(parsed.uris).toEqual(['spiffe://example.org/with-attribute']);
  });
});

describe('CSR input forms', () => {
  let der: Buffer;
  beforeAll(async () => {
    der = derOf(await createCsr({ privateKey: testKey('p256').privateKey, spiffeId: 'spiffe://example.org/forms' }));
  });

  const forms: { name: string; input: () => Buffer | string }[] = [
    { name: 'ok/DER buffer', input: () => der },
    { name: 'ok/PEM "CERTIFICATE REQUEST"', input: () => pem(der, 'CERTIFICATE REQUEST') },
    { name: 'ok/PEM "NEW CERTIFICATE REQUEST"', input: () => pem(der, 'NEW CERTIFICATE REQUEST') },
    { name: 'ok/PEM as a Buffer', input: () => Buffer.from(pem(der, 'CERTIFICATE REQUEST')) },
    { name: 'ok/PEM with CRLF line ends', input: () => pem(der, 'CERTIFICATE REQUEST').replaceAll('\n', '\r\n') },
    { name: 'ok/PEM with text around it', input: () => `a comment\n${pem(der, 'NEW CERTIFICATE REQUEST')}trailing text\n` },
  ];
  it.each(forms)('$name', ({ input }) => {
    const parsed = parseCsr(input());
    expect(parsed.der).toEqual(der);
    expect(parsed.uris).toEqual(['spiffe://example.org/forms']);
  });

  const badForms: { name: string; input: () => Buffer | string }[] = [
    { name: 'fail/PEM with another label', input: () => pem(der, 'CERTIFICATE') },
    { name: 'fail/empty string', input: () => '' },
    { name: 'fail/text with no PEM block', input: () => 'hello, I am a CSR' },
    { name: 'fail/empty buffer', input: () => Buffer.alloc(0) },
  ];
  it.each(badForms)('$name', ({ input }) => expectCode(() => parseCsr(input()), 'ERR_CSR_MALFORMED'));
});

// ---------------------------------------------------------------------------------------------
// Refusals

/** Re-signs a CertificationRequestInfo with `key`, under the given AlgorithmIdentifier DER. */
function signedCsr(info: Buffer, algorithmIdentifier: Buffer, key: KeyObject, hash: string | null): Buffer {
  return sequence(info, algorithmIdentifier, bitString(sign(hash, info, key)));
}

function partsOf(der: Buffer): { info: Buffer; algorithm: Buffer; signature: Buffer } {
  const [info, algorithm, signature] = readChildren(readWhole(der, 'ERR_INTERNAL'), 'ERR_INTERNAL');
  return { info: Buffer.from(info!.raw), algorithm: Buffer.from(algorithm!.raw), signature: Buffer.from(signature!.raw) };
}

describe('parseCsr refusals', () => {
  let good: Buffer;
  beforeAll(async () => {
    good = derOf(
      await createCsr({ privateKey: testKey('p256').privateKey, spiffeId: 'spiffe://example.org/a', dnsNames: ['a.example.org'], ipAddresses: ['10.0.0.1'] }),
    );
  });

  const flipAt = (der: Buffer, index: number): Buffer => {
    const copy = Buffer.from(der);
    copy[index] = copy[index]! ^ 0x01;
    return copy;
  };

  const structural: { name: string; input: () => Buffer; code: ErrorCode }[] = [
    { name: 'fail/garbage bytes', input: () => Buffer.from('this is not a certificate request at all'), code: 'ERR_CSR_MALFORMED' },
    { name: 'fail/random-looking bytes', input: () => Buffer.from('30ff00deadbeef', 'hex'), code: 'ERR_CSR_MALFORMED' },
    { name: 'fail/truncated DER (last byte cut)', input: () => good.subarray(0, good.length - 1), code: 'ERR_CSR_MALFORMED' },
    { name: 'fail/truncated DER (half)', input: () => good.subarray(0, good.length >> 1), code: 'ERR_CSR_MALFORMED' },
    { name: 'fail/trailing bytes', input: () => Buffer.concat([good, Buffer.from([0x00])]), code: 'ERR_CSR_MALFORMED' },
    { name: 'fail/a second DER value after the CSR', input: () => Buffer.concat([good, Buffer.from([0x05, 0x00])]), code: 'ERR_CSR_MALFORMED' },
    {
      name: 'fail/indefinite length',
      input: () => {
        const content = readWhole(good, 'ERR_INTERNAL').content;
        return Buffer.concat([Buffer.from([0x30, 0x80]), content, Buffer.from([0x00, 0x00])]);
      },
      code: 'ERR_CSR_MALFORMED',
    },
    {
      name: 'fail/non-minimal outer length',
      input: () => {
        const content = readWhole(good, 'ERR_INTERNAL').content;
        return Buffer.concat([Buffer.from([0x30, 0x83, 0x00, content.length >> 8, content.length & 0xff]), content]);
      },
      code: 'ERR_CSR_MALFORMED',
    },
    { name: 'fail/outer tag is a SET', input: () => Buffer.concat([Buffer.from([0x31]), good.subarray(1)]), code: 'ERR_CSR_MALFORMED' },
    {
      name: 'fail/oversized input (larger than MAX_CSR_BYTES)',
      input: () => {
        const content = Buffer.alloc(MAX_CSR_BYTES, 0x41);
        return Buffer.concat([Buffer.from([0x30, 0x82, content.length >> 8, content.length & 0xff]), content]);
      },
      code: 'ERR_CSR_MALFORMED',
    },
    { name: 'fail/last signature byte flipped', input: () => flipAt(good, good.length - 1), code: 'ERR_CSR_SIGNATURE' },
    { name: 'fail/a signed byte (in the DNS SAN) changed', input: () => flipAt(good, good.indexOf(Buffer.from('a.example.org'))), code: 'ERR_CSR_SIGNATURE' },
  ];
  it.each(structural)('$name', ({ input, code }) => expectCode(() => parseCsr(input()), code));

  it.each(KEY_TYPES_UNDER_TEST)('fail/%s CSR with its last signature byte flipped: ERR_CSR_SIGNATURE', async (type) => {
    const der = derOf(await createCsr({ privateKey: testKey(type).privateKey, spiffeId: 'spiffe://example.org/a' }));
    expect(parseCsr(der).key.algorithm).toBeDefined(); // the untouched CSR is fine
    expectCode(() => parseCsr(flipAt(der, der.length - 1)), 'ERR_CSR_SIGNATURE');
  });

  it('fail/a real CSR larger than MAX_CSR_BYTES (valid signature, many SANs)', async () => {
    const dnsNames = Array.from({ length: 700 }, (_, i) => `service-${String(i).padStart(4, '0')}.namespace.example.org`);
    const der = derOf(await createCsr({ privateKey: testKey('p256').privateKey, spiffeId: 'spiffe://example.org/big', dnsNames }));
    expect(der.length).toBeGreaterThan(MAX_CSR_BYTES);
    expect((await oracleView(der)).signatureValid).toBe(true);
    expectCode(() => parseCsr(der), 'ERR_CSR_MALFORMED');
    expectCode(() => parseCsr(pem(der, 'CERTIFICATE REQUEST')), 'ERR_CSR_MALFORMED');
  });

  const keyAndSignature: { name: string; key: OpensslKey; args: string[]; code: ErrorCode }[] = [
    { name: 'fail/RSA-1024 key (openssl)', key: 'rsa1024', args: [], code: 'ERR_KEY_WEAK' },
    { name: 'fail/RSA-2048 with e=3 (openssl)', key: 'rsa2048e3', args: [], code: 'ERR_KEY_WEAK' },
    { name: 'fail/secp256k1 key', key: 'secp256k1', args: [], code: 'ERR_KEY_UNSUPPORTED' },
    { name: 'fail/P-521 key', key: 'p521', args: [], code: 'ERR_KEY_UNSUPPORTED' },
    { name: 'fail/Ed448 key', key: 'ed448', args: [], code: 'ERR_KEY_UNSUPPORTED' },
    { name: 'fail/RSA-PSS key', key: 'rsapss', args: [], code: 'ERR_KEY_UNSUPPORTED' },
    { name: 'fail/ECDSA with SHA-1 (openssl req -sha1)', key: 'p256', args: ['-sha1'], code: 'ERR_CSR_SIGNATURE' },
    { name: 'fail/RSA with SHA-1 (openssl req -sha1)', key: 'rsa2048', args: ['-sha1'], code: 'ERR_CSR_SIGNATURE' },
    { name: 'fail/email SAN', key: 'p256', args: ['-addext', 'subjectAltName=URI:spiffe://example.org/a,email:a@example.org'], code: 'ERR_CSR_EXTENSION' },
    { name: 'fail/otherName SAN', key: 'p256', args: ['-addext', 'subjectAltName=URI:spiffe://example.org/a,otherName:1.3.6.1.4.1.311.20.2.3;UTF8:a@example.org'], code: 'ERR_CSR_EXTENSION' },
    { name: 'fail/registeredID SAN', key: 'p256', args: ['-addext', 'subjectAltName=URI:spiffe://example.org/a,RID:1.2.3.4'], code: 'ERR_CSR_EXTENSION' },
    { name: 'fail/wildcard DNS SAN', key: 'p256', args: ['-addext', 'subjectAltName=URI:spiffe://example.org/a,DNS:*.example.org'], code: 'ERR_SAN_INVALID' },
  ];
  it.each(keyAndSignature)('$name', ({ key, args, code }) => {
    expectCode(() => parseCsr(opensslCsr(key, args)), code);
  });

  const nodeKeys: { name: string; make: () => { privateKey: KeyObject }; code: ErrorCode }[] = [
    { name: 'fail/RSA-1024 key (node:crypto + createCsr)', make: () => generateKeyPairSync('rsa', { modulusLength: 1024 }), code: 'ERR_KEY_WEAK' },
    {
      name: 'fail/RSA-2048 with e=3 (node:crypto + createCsr)',
      make: () => generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 3 }),
      code: 'ERR_KEY_WEAK',
    },
  ];
  it.each(nodeKeys)('$name', async ({ make, code }) => {
    const der = derOf(await createCsr({ privateKey: make().privateKey, spiffeId: 'spiffe://example.org/a' }));
    expect((await oracleView(der)).signatureValid).toBe(true); // well-formed and correctly signed: refused for the key only
    expectCode(() => parseCsr(der), code);
  });

  describe('parseCsrAsync (the signature checked on the thread pool) agrees with parseCsr', () => {
    /** What a parse gave: the error code, or the fields (the KeyObject compared by its SPKI). */
    const outcomeOf = (parse: () => ParsedCsr): unknown => {
      try {
        const { publicKey, ...rest } = parse();
        return { ...rest, publicKey: publicKey.export({ format: 'der', type: 'spki' }).toString('hex') };
      } catch (error) {
        return (error as { code?: string }).code ?? String(error);
      }
    };
    const outcomeOfAsync = async (input: Buffer | string): Promise<unknown> => {
      try {
        const { publicKey, ...rest } = await parseCsrAsync(input);
        return { ...rest, publicKey: publicKey.export({ format: 'der', type: 'spki' }).toString('hex') };
      } catch (error) {
        return (error as { code?: string }).code ?? String(error);
      }
    };

    it.each(KEY_TYPES_UNDER_TEST)('ok/%s CSR with SANs: the same fields', async (type) => {
      const der = derOf(await createCsr({ privateKey: testKey(type).privateKey, spiffeId: 'spiffe://example.org/a', dnsNames: ['a.example.org'], ipAddresses: ['10.0.0.1'] }));
      const expected = outcomeOf(() => parseCsr(der));
      expect(expected).toMatchObject({ uris: ['spiffe://example.org/a'] });
      expect(await outcomeOfAsync(der)).toEqual(expected);
    });
    it.each(KEY_TYPES_UNDER_TEST)('fail/%s CSR with its last signature byte flipped: ERR_CSR_SIGNATURE on both', async (type) => {
      const der = derOf(await createCsr({ privateKey: testKey(type).privateKey, spiffeId: 'spiffe://example.org/a' }));
      const flipped = flipAt(der, der.length - 1);
      expect(outcomeOf(() => parseCsr(flipped))).toBe('ERR_CSR_SIGNATURE');
      expect(await outcomeOfAsync(flipped)).toBe('ERR_CSR_SIGNATURE');
    });
    it.each(structural)('$name: the same code', async ({ input, code }) => {
      const bytes = input();
      expect(outcomeOf(() => parseCsr(bytes))).toBe(code);
      expect(await outcomeOfAsync(bytes)).toBe(code);
    });
    it.each(keyAndSignature)('$name: the same code', async ({ key, args, code }) => {
      const csr = opensslCsr(key, args);
      expect(outcomeOf(() => parseCsr(csr))).toBe(code);
      expect(await outcomeOfAsync(csr)).toBe(code);
    });
  });

  describe('hand-built variants of a good CSR, re-signed so only one thing is wrong', () => {
    const ECDSA_SHA256 = Buffer.from('300a06082a8648ce3d040302', 'hex');
    const RSA_SHA256 = Buffer.from('300d06092a864886f70d01010b0500', 'hex');
    const ED25519 = Buffer.from('300506032b6570', 'hex');
    const key = (): KeyObject => testKey('p256').privateKey;
    let rsaCsr: Buffer;
    let ed25519Csr: Buffer;
    beforeAll(async () => {
      rsaCsr = derOf(await createCsr({ privateKey: testKey('rsa2048').privateKey, spiffeId: 'spiffe://example.org/a' }));
      ed25519Csr = derOf(await createCsr({ privateKey: testKey('ed25519').privateKey, spiffeId: 'spiffe://example.org/a' }));
    });

    it.each([
      { name: 'ok/re-signed RSA CSR under its own OID', csr: () => rsaCsr, algorithm: RSA_SHA256, type: 'rsa2048' as const, hash: 'sha256' },
      { name: 'ok/re-signed Ed25519 CSR under its own OID', csr: () => ed25519Csr, algorithm: ED25519, type: 'ed25519' as const, hash: null },
    ])('$name', ({ csr, algorithm, type, hash }) => {
      expect(parseCsr(signedCsr(partsOf(csr()).info, algorithm, testKey(type).privateKey, hash)).uris).toEqual(['spiffe://example.org/a']);
    });

    it('ok/the re-signing itself yields an accepted CSR', () => {
      const { info } = partsOf(good);
      expect(parseCsr(signedCsr(info, ECDSA_SHA256, key(), 'sha256')).uris).toEqual(['spiffe://example.org/a']);
    });

    const variants: { name: string; build: () => Buffer; code: ErrorCode }[] = [
      {
        name: 'fail/version 1 instead of 0',
        build: () => {
          const info = Buffer.from(partsOf(good).info);
          const at = info.indexOf(Buffer.from([0x02, 0x01, 0x00]));
          info[at + 2] = 0x01;
          return signedCsr(info, ECDSA_SHA256, key(), 'sha256');
        },
        code: 'ERR_CSR_MALFORMED',
      },
      // node:crypto takes the signature scheme from the key and only the digest from the OID, so
      // each of these carries a signature that is valid for its key under a mislabelled algorithm.
      {
        name: 'fail/sha256WithRSAEncryption named over an ECDSA key and signature',
        build: () => signedCsr(partsOf(good).info, RSA_SHA256, key(), 'sha256'),
        code: 'ERR_CSR_SIGNATURE',
      },
      {
        name: 'fail/Ed25519 named over an ECDSA key and signature',
        build: () => signedCsr(partsOf(good).info, ED25519, key(), null),
        code: 'ERR_CSR_SIGNATURE',
      },
      {
        name: 'fail/ecdsa-with-SHA256 named over an RSA key and signature',
        build: () => signedCsr(partsOf(rsaCsr).info, ECDSA_SHA256, testKey('rsa2048').privateKey, 'sha256'),
        code: 'ERR_CSR_SIGNATURE',
      },
      {
        name: 'fail/ecdsa-with-SHA256 named over an Ed25519 key and signature',
        build: () => signedCsr(partsOf(ed25519Csr).info, ECDSA_SHA256, testKey('ed25519').privateKey, null),
        code: 'ERR_CSR_SIGNATURE',
      },
      {
        name: 'fail/signature BIT STRING with unused bits',
        build: () => {
          const { info } = partsOf(good);
          const signature = sign('sha256', info, key());
          return sequence(info, ECDSA_SHA256, Buffer.concat([Buffer.from([0x03, signature.length + 1, 0x01]), signature]));
        },
        code: 'ERR_CSR_MALFORMED',
      },
      {
        name: 'fail/an extra field after the signature',
        build: () => {
          const { info, algorithm, signature } = partsOf(good);
          return sequence(info, algorithm, signature, Buffer.from([0x05, 0x00]));
        },
        code: 'ERR_CSR_MALFORMED',
      },
      {
        name: 'fail/an IP SAN of 5 octets',
        build: () => {
          const info = Buffer.from(partsOf(good).info);
          const at = info.indexOf(Buffer.from([0x87, 0x04, 10, 0, 0, 1]));
          // Same length overall: the 4-octet IP and the 2 octets before it become a 5-octet one.
          const dns = info.indexOf(Buffer.from([0x82, 0x0d]));
          const patched = Buffer.concat([
            info.subarray(0, dns),
            Buffer.from([0x82, 0x0c]),
            info.subarray(dns + 2, dns + 2 + 12), // 'a.example.or'
            Buffer.from([0x87, 0x05, 10, 0, 0, 1, 7]),
            info.subarray(at + 6),
          ]);
          expect(patched.length).toBe(info.length);
          return signedCsr(patched, ECDSA_SHA256, key(), 'sha256');
        },
        code: 'ERR_SAN_INVALID',
      },
    ];
    it.each(variants)('$name', ({ build, code }) => expectCode(() => parseCsr(build()), code));
  });
});

describe('publicKeyFromSpki: the JWK fast path agrees with OpenSSL DER decoding', () => {
  const { publicKeyFromSpki } = keysModule;
  it.each(['p256', 'p384', 'ed25519', 'rsa2048'] as const)('ok/%s gives the same key as DER import', (type) => {
    const { publicKey } = keysModule.generateKeyPair(type);
    const spki = publicKey.export({ format: 'der', type: 'spki' });
    const fast = publicKeyFromSpki(spki);
    expect(fast.export({ format: 'der', type: 'spki' }).equals(spki)).toBe(true);
    expect(fast.asymmetricKeyType).toBe(publicKey.asymmetricKeyType);
  });

  it('fail/a P-256 point that is not on the curve is refused', () => {
    const { publicKey } = keysModule.generateKeyPair('p256');
    const spki = Buffer.from(publicKey.export({ format: 'der', type: 'spki' }));
    spki[spki.length - 1]! ^= 0x01; // move y off the curve
    expectCode(() => publicKeyFromSpki(spki), 'ERR_KEY_UNSUPPORTED');
  });

  it('fail/a compressed P-256 point is refused (Go and others cannot read it in a certificate)', () => {
    const { publicKey } = keysModule.generateKeyPair('p256');
    const jwk = publicKey.export({ format: 'jwk' });
    const x = Buffer.from(jwk.x!, 'base64url');
    const y = Buffer.from(jwk.y!, 'base64url');
    const compressed = Buffer.concat([Buffer.from([0x02 | (y[31]! & 1)]), x]);
    const prefix = Buffer.from('3039301306072a8648ce3d020106082a8648ce3d030107032200', 'hex');
    expectCode(() => publicKeyFromSpki(Buffer.concat([prefix, compressed])), 'ERR_KEY_UNSUPPORTED');
  });

  it('fail/explicit curve parameters are refused even for P-256 (strict validators and Go refuse them)', () => {
    const dir = scratchDir();
    try {
      openssl(['ecparam', '-name', 'prime256v1', '-param_enc', 'explicit', '-genkey', '-noout', '-out', 'k.pem'], dir.dir);
      openssl(['pkey', '-in', 'k.pem', '-pubout', '-outform', 'DER', '-out', 'pub.der'], dir.dir);
      expectCode(() => publicKeyFromSpki(dir.read('pub.der')), 'ERR_KEY_UNSUPPORTED');
    } finally {
      dir.remove();
    }
  });

  it('fail/a non-minimal OID arc in the key algorithm is refused (OpenSSL would not read it)', () => {
    const { publicKey } = keysModule.generateKeyPair('p256');
    const spki = publicKey.export({ format: 'der', type: 'spki' }).toString('hex');
    // 1.2.840.10045.2.1 with its last arc re-encoded as 80 01: AlgorithmIdentifier lengths +1.
    const mutated = spki.replace('3059301306072a8648ce3d0201', '305a301406082a8648ce3d028001');
    expect(mutated).not.toBe(spki);
    expectCode(() => publicKeyFromSpki(Buffer.from(mutated, 'hex')), 'ERR_KEY_UNSUPPORTED');
  });

  const ed25519Spki = (point: string): Buffer => Buffer.from(`302a300506032b6570032100${point}`, 'hex');
  it.each([
    ['identity (order 1)', '0100000000000000000000000000000000000000000000000000000000000000'],
    ['order 2', 'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f'],
    ['order 4', '0000000000000000000000000000000000000000000000000000000000000080'],
    ['order 8', '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05'],
    ['order 8 with the sign bit', 'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa'],
    ['non-canonical y = p', 'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f'],
    ['non-canonical y = p + 1 with the sign bit', 'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff'],
  ])('fail/Ed25519 %s is refused as weak', (_name, point) => {
    expectCode(() => publicKeyFromSpki(ed25519Spki(point)), 'ERR_KEY_WEAK');
  });
});

describe('the Ed25519 possession bypass, end to end', () => {
  it('fail/a CSR with the identity key and the signature (R = identity, S = 0) is refused', async () => {
    // OpenSSL verifies this signature for any message under the identity key.
    const der = await import('../../src/pki/der.js');
    const spki = Buffer.from('302a300506032b65700321000100000000000000000000000000000000000000000000000000000000000000', 'hex');
    const san = der.sequence(der.oid('2.5.29.17'), der.octetString(der.sequence(der.tlv(0x86, Buffer.from('spiffe://example.org/a')))));
    const attributes = der.tlv(0xa0, der.sequence(der.oid('1.2.840.113549.1.9.14'), der.set(der.sequence(san))));
    const info = der.sequence(der.smallInteger(0), der.sequence(), spki, attributes);
    const signature = Buffer.concat([Buffer.from('01', 'hex'), Buffer.alloc(31), Buffer.alloc(32)]);
    const csr = der.sequence(info, der.sequence(der.oid('1.3.101.112')), der.bitString(signature));
    expectCode(() => parseCsr(csr), 'ERR_KEY_WEAK');
  });
});
