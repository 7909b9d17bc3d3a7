/**
 * Sealed private keys (src/pki/sealed-key.ts): scrypt + AES-256-GCM with the purpose label as
 * authenticated data. Everything that is not the right passphrase, label and untouched envelope
 * is ERR_PASSPHRASE.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { checkPassphrase, MIN_PASSPHRASE_LENGTH, openPrivateKey, sealPrivateKey } from '../../src/pki/sealed-key.js';
import { expectCode, expectCodeAsync, KEY_TYPES_UNDER_TEST, testKey } from './support.js';

const PASSPHRASE = 'correct horse battery staple';
const LABEL = 'intermediate:7f3a';

type Envelope = Record<string, unknown> & { data: string; tag: string; iv: string; salt: string };

describe('round trip', () => {
  it.each(KEY_TYPES_UNDER_TEST)('ok/%s key opens to the same key', async (type) => {
    const { privateKey } = testKey(type);
    const sealed = await sealPrivateKey(privateKey, PASSPHRASE, LABEL);
    const opened = await openPrivateKey(sealed, PASSPHRASE, LABEL);
    expect(opened.type).toBe('private');
    expect(opened.asymmetricKeyType).toBe(privateKey.asymmetricKeyType);
    expect(opened.export({ format: 'der', type: 'pkcs8' }).equals(privateKey.export({ format: 'der', type: 'pkcs8' }))).toBe(true);
  });

  it('ok/two seals of one key differ (fresh salt and IV)', async () => {
    const { privateKey } = testKey('p256');
    const [a, b] = [await sealPrivateKey(privateKey, PASSPHRASE, LABEL), await sealPrivateKey(privateKey, PASSPHRASE, LABEL)];
    const [ea, eb] = [JSON.parse(a) as Envelope, JSON.parse(b) as Envelope];
    expect(ea.salt).not.toBe(eb.salt);
    expect(ea.iv).not.toBe(eb.iv);
    expect(ea.data).not.toBe(eb.data);
  });
});

describe('the envelope holds no key material in the clear', () => {
  it.each(KEY_TYPES_UNDER_TEST)('ok/%s: no PEM, no DER, no JWK private part', async (type) => {
    const { privateKey } = testKey(type);
    const sealed = await sealPrivateKey(privateKey, PASSPHRASE, LABEL);
    const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
    expect(sealed).not.toContain('-----BEGIN');
    expect(sealed).not.toContain(pkcs8.toString('base64').slice(0, 24));
    expect(sealed).not.toContain(pkcs8.toString('hex').slice(0, 32));
    const jwk = privateKey.export({ format: 'jwk' });
    expect(typeof jwk.d).toBe('string');
    expect(sealed).not.toContain(jwk.d!.slice(0, 16));
    // No 16-octet window of the PKCS#8 DER appears in any decoded field.
    const envelope = JSON.parse(sealed) as Envelope;
    for (const field of ['salt', 'iv', 'tag', 'data'] as const) {
      const decoded = Buffer.from(envelope[field], 'base64');
      for (let at = 0; at + 16 <= pkcs8.length; at += 8) {
        expect(decoded.includes(pkcs8.subarray(at, at + 16)), `${field} contains key bytes at ${at}`).toBe(false);
      }
    }
    expect(sealed).not.toContain(PASSPHRASE);
  });
});

describe('refusals', () => {
  let sealed: string;
  beforeAll(async () => {
    sealed = await sealPrivateKey(testKey('p256').privateKey, PASSPHRASE, LABEL);
  });

  const tamper = (change: (envelope: Envelope) => void): string => {
    const envelope = JSON.parse(sealed) as Envelope;
    change(envelope);
    return JSON.stringify(envelope);
  };
  const flipFirstByte = (base64: string): string => {
    const bytes = Buffer.from(base64, 'base64');
    bytes[0] = bytes[0]! ^ 0x01;
    return bytes.toString('base64');
  };

  const cases: { name: string; open: () => Promise<unknown> }[] = [
    { name: 'fail/wrong passphrase', open: () => openPrivateKey(sealed, `${PASSPHRASE}!`, LABEL) },
    { name: 'fail/empty passphrase', open: () => openPrivateKey(sealed, '', LABEL) },
    { name: 'fail/wrong label (another key purpose)', open: () => openPrivateKey(sealed, PASSPHRASE, 'token-signing:7f3a') },
    { name: 'fail/label differing in one character', open: () => openPrivateKey(sealed, PASSPHRASE, 'intermediate:7f3b') },
    { name: 'fail/tampered ciphertext', open: () => openPrivateKey(tamper((e) => (e.data = flipFirstByte(e.data))), PASSPHRASE, LABEL) },
    { name: 'fail/truncated ciphertext', open: () => openPrivateKey(tamper((e) => (e.data = Buffer.from(e.data, 'base64').subarray(1).toString('base64'))), PASSPHRASE, LABEL) },
    { name: 'fail/tampered tag', open: () => openPrivateKey(tamper((e) => (e.tag = flipFirstByte(e.tag))), PASSPHRASE, LABEL) },
    { name: 'fail/tampered IV', open: () => openPrivateKey(tamper((e) => (e.iv = flipFirstByte(e.iv))), PASSPHRASE, LABEL) },
    { name: 'fail/tampered salt', open: () => openPrivateKey(tamper((e) => (e.salt = flipFirstByte(e.salt))), PASSPHRASE, LABEL) },
    { name: 'fail/lowered scrypt cost', open: () => openPrivateKey(tamper((e) => (e.N = 2 ** 14)), PASSPHRASE, LABEL) },
    { name: 'fail/unknown envelope version', open: () => openPrivateKey(tamper((e) => (e.v = 2)), PASSPHRASE, LABEL) },
    { name: 'fail/unknown KDF', open: () => openPrivateKey(tamper((e) => (e.kdf = 'pbkdf2')), PASSPHRASE, LABEL) },
    { name: 'fail/scrypt N above the cap', open: () => openPrivateKey(tamper((e) => (e.N = 2 ** 21)), PASSPHRASE, LABEL) },
    { name: 'fail/not JSON', open: () => openPrivateKey('-----BEGIN PRIVATE KEY-----', PASSPHRASE, LABEL) },
    { name: 'fail/empty text', open: () => openPrivateKey('', PASSPHRASE, LABEL) },
    // A damaged envelope is bad data like any other: it must still be the coded error.
    { name: 'fail/JSON null', open: () => openPrivateKey('null', PASSPHRASE, LABEL) },
    { name: 'fail/scrypt N not a power of two', open: () => openPrivateKey(tamper((e) => (e.N = 3000)), PASSPHRASE, LABEL) },
    { name: 'fail/scrypt r beyond the memory limit', open: () => openPrivateKey(tamper((e) => (e.r = 1024)), PASSPHRASE, LABEL) },
    { name: 'fail/scrypt N beyond the memory limit', open: () => openPrivateKey(tamper((e) => (e.N = 2 ** 17)), PASSPHRASE, LABEL) },
    { name: 'fail/scrypt p above the CPU cap', open: () => openPrivateKey(tamper((e) => (e.p = 1000)), PASSPHRASE, LABEL) },
    { name: 'fail/scrypt parameters as strings', open: () => openPrivateKey(tamper((e) => (e.N = '32768')), PASSPHRASE, LABEL) },
    { name: 'fail/missing salt', open: () => openPrivateKey(tamper((e) => delete (e as Partial<Envelope>).salt), PASSPHRASE, LABEL) },
  ];
  it.each(cases)('$name', async ({ open }) => expectCodeAsync(open(), 'ERR_PASSPHRASE'));

  // node's scrypt, given parameters it refuses, leaves an OpenSSL error queued that failed the next
  // valid open; the envelope is now checked before scrypt sees it.
  it('ok/a refused envelope does not break the next open', async () => {
    for (const bad of [tamper((e) => (e.r = 1024)), tamper((e) => (e.N = 3000)), tamper((e) => (e.N = 2 ** 17))]) {
      await expectCodeAsync(openPrivateKey(bad, PASSPHRASE, LABEL), 'ERR_PASSPHRASE');
      await expect(openPrivateKey(sealed, PASSPHRASE, LABEL)).resolves.toBeDefined();
    }
  });

  it('ok/the untampered envelope still opens (control for the cases above)', async () => {
    await expect(openPrivateKey(tamper(() => {}), PASSPHRASE, LABEL)).resolves.toBeDefined();
  });
});

describe('passphrase policy', () => {
  const short = 'x'.repeat(MIN_PASSPHRASE_LENGTH - 1);
  const exact = 'x'.repeat(MIN_PASSPHRASE_LENGTH);

  it('ok/the minimum length is at least 12', () => expect(MIN_PASSPHRASE_LENGTH).toBeGreaterThanOrEqual(12));
  it('ok/exactly the minimum length', () => expect(checkPassphrase(exact)).toBe(exact));
  it.each([
    { name: 'fail/one character short', value: short },
    { name: 'fail/empty', value: '' },
    { name: 'fail/missing', value: undefined },
  ])('$name', ({ value }) => expectCode(() => checkPassphrase(value), 'ERR_PASSPHRASE'));

  it('fail/sealing with a short passphrase is refused', async () => {
    await expectCodeAsync(sealPrivateKey(testKey('p256').privateKey, short, LABEL), 'ERR_PASSPHRASE');
  });
});
