/** IP address SANs: text ⇄ the 4 or 16 octets X.509 carries, with one canonical text form. */
import { isIPv4, isIPv6 } from 'node:net';
import { TlsmeshError } from '../errors.js';

export function ipToBytes(text: string): Buffer {
  if (isIPv4(text)) return Buffer.from(text.split('.').map(Number));
  // node:net accepts a zone ID (fe80::1%eth0); it cannot go in a certificate, so it is refused.
  if (isIPv6(text) && !text.includes('%')) {
    let value = text;
    // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hex groups.
    const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(value);
    if (v4) {
      const [a, b, c, d] = v4[1]!.split('.').map(Number) as [number, number, number, number];
      value = value.slice(0, -v4[1]!.length) + ((a << 8) | b).toString(16) + ':' + ((c << 8) | d).toString(16);
    }
    const [head, tail] = value.includes('::') ? value.split('::') : [value, undefined];
    const headGroups = head ? head.split(':') : [];
    const tailGroups = tail ? tail.split(':') : [];
    const zeros = tail === undefined ? 0 : 8 - headGroups.length - tailGroups.length;
    const groups = [...headGroups, ...Array<string>(zeros).fill('0'), ...tailGroups];
    const out = Buffer.alloc(16);
    groups.forEach((group, i) => out.writeUInt16BE(parseInt(group, 16), i * 2));
    return out;
  }
  throw new TlsmeshError('ERR_SAN_INVALID', `"${text}" is not an IPv4 or IPv6 address`);
}

/** Canonical text: dotted quad, or RFC 5952 IPv6 (lowercase, longest zero run compressed). */
export function bytesToIp(bytes: Buffer): string {
  if (bytes.length === 4) return [...bytes].join('.');
  if (bytes.length !== 16) throw new TlsmeshError('ERR_SAN_INVALID', `an IP address SAN of ${bytes.length} octets is neither IPv4 nor IPv6`);
  const groups = Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(i * 2));
  let bestStart = -1;
  let bestLength = 1; // RFC 5952: a single zero group is not compressed
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) [bestStart, bestLength] = [i, j - i];
    i = j;
  }
  const hex = groups.map((group) => group.toString(16));
  if (bestStart === -1) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

export const canonicalIp = (text: string): string => bytesToIp(ipToBytes(text));

const DNS_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** Lowercased DNS name; LDH labels only, no wildcard, at most 253 characters. */
export function canonicalDnsName(name: string): string {
  // ASCII is checked before lowercasing: toLowerCase() folds U+212A (Kelvin sign) into "k".
  const ascii = /^[\x21-\x7e]*$/.test(name);
  const lower = name.toLowerCase().replace(/\.$/, '');
  const looksLikeIp = /^[0-9.]+$/.test(lower); // an address belongs in an IP SAN, not a DNS SAN
  if (!ascii || looksLikeIp || lower.length === 0 || lower.length > 253 || !lower.split('.').every((label) => DNS_LABEL.test(label))) {
    throw new TlsmeshError('ERR_SAN_INVALID', `"${name}" is not a valid DNS name (letters, digits and hyphens; no wildcards)`);
  }
  return lower;
}
