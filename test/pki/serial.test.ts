/** Certificate serial numbers (src/pki/serial.ts): 16 octets, positive, DER content exactly 16 octets. */
import { webcrypto } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { readWhole, TAG, unsignedInteger } from '../../src/pki/der.js';
import { randomSerial, SERIAL_BYTES, serialHex } from '../../src/pki/serial.js';
import { oracle } from './support.js';

/** The INTEGER content octets the serial encodes to, read back from DER. */
function encodedContent(serial: Buffer): Buffer {
  const node = readWhole(unsignedInteger(serial), 'ERR_INTERNAL');
  expect(node.tag).toBe(TAG.INTEGER);
  return node.content;
}

describe('randomSerial', () => {
  it('ok/16 octets, top bit clear, encodes to exactly 16 content octets', () => {
    const serial = randomSerial();
    expect(SERIAL_BYTES).toBe(16);
    expect(serial.length).toBe(16);
    expect(serial[0]! & 0x80).toBe(0);
    expect(encodedContent(serial).equals(serial)).toBe(true);
  });

  it('ok/1000 draws: all distinct, all positive, all 16 content octets', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const serial = randomSerial();
      expect(serial[0]! & 0x80).toBe(0);
      expect(encodedContent(serial).length).toBe(16);
      seen.add(serialHex(serial));
    }
    expect(seen.size).toBe(1000);
  });

  const sources = [
    { name: 'ok/all 0x00 octets', fill: 0x00 },
    { name: 'ok/all 0xff octets', fill: 0xff },
    { name: 'ok/all 0x80 octets', fill: 0x80 },
    { name: 'ok/all 0x01 octets', fill: 0x01 },
  ];
  it.each(sources)('$name from the random source: still positive and 16 content octets', ({ fill }) => {
    const sizes: number[] = [];
    const serial = randomSerial((size) => {
      sizes.push(size);
      return Buffer.alloc(size, fill);
    });
    expect(sizes).toEqual([16]);
    expect(serial.length).toBe(16);
    expect(serial[0]! & 0x80).toBe(0);
    expect(serial[0]).not.toBe(0); // no leading zero octet for DER to strip
    expect(encodedContent(serial).equals(serial)).toBe(true);
    expect(serial.subarray(1).equals(Buffer.alloc(15, fill))).toBe(true); // only the first octet is adjusted
  });

  it('ok/@peculiar/x509 reads back the same serial from a certificate carrying it', async () => {
    const x509 = oracle();
    const serial = randomSerial(() => Buffer.alloc(16, 0xff));
    const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
    const certificate = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serialHex(serial),
      name: 'CN=serial',
      keys,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    });
    expect(certificate.serialNumber).toBe(serialHex(serial));
  });
});

describe('serialHex', () => {
  it('ok/lowercase hex of the octets', () => {
    expect(serialHex(Buffer.from([0x4a, 0xbc, 0x00, 0x0f]))).toBe('4abc000f');
  });
});
