/** Certificate serial numbers: random, positive, 126 bits of entropy (RFC 5280 allows 20 octets). */
import { randomBytes } from 'node:crypto';

export const SERIAL_BYTES = 16;

/**
 * 16 random octets with the top bit cleared (positive INTEGER) and the next bit set (so the DER
 * encoding is always exactly 16 octets, with no leading zero to strip): 126 random bits.
 */
export function randomSerial(random: (size: number) => Buffer = randomBytes): Buffer {
  const serial = random(SERIAL_BYTES);
  serial[0] = (serial[0]! & 0x3f) | 0x40;
  return serial;
}

/** Lowercase hex of the INTEGER content octets: the form serials take in the store and the API. */
export const serialHex = (serial: Buffer): string => serial.toString('hex');
