/**
 * Committed private keys, in any text file. A finding needs a whole PEM block — the BEGIN line,
 * a base64 body of some length and the matching END line — so code that merely names the header
 * (a PEM parser, a doc sentence) is not reported. Bodies split over string literals (`'…\n' +`),
 * JSON escapes and YAML block scalars are read through. Nothing of the key leaves this module
 * except a short hash for the fingerprint.
 */
import { createHash } from 'node:crypto';
import type { RawFinding } from './types.js';

const BEGIN = /-----BEGIN ((?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY)-----/g;
/** How far the END line may be from BEGIN: an 8192-bit RSA key is under 7 kB of PEM. */
const MAX_BLOCK = 64 * 1024;
const MIN_BODY = 64;

/** Whether an OpenSSH private key body names a cipher (anything but "none"). */
function opensshEncrypted(base64: string): boolean {
  const data = Buffer.from(base64, 'base64');
  const magic = 'openssh-key-v1\0';
  if (data.subarray(0, magic.length).toString('latin1') !== magic || data.length < magic.length + 4) return false;
  const length = data.readUInt32BE(magic.length);
  const cipher = data.subarray(magic.length + 4, magic.length + 4 + length).toString('latin1');
  return cipher !== '' && cipher !== 'none';
}

export function findPrivateKeys(text: string): RawFinding[] {
  if (!text.includes('PRIVATE KEY-----')) return [];
  const findings: RawFinding[] = [];
  for (const match of text.matchAll(BEGIN)) {
    const label = match[1]!;
    const begin = match.index;
    const bodyStart = begin + match[0].length;
    const endMarker = `-----END ${label}-----`;
    const end = text.indexOf(endMarker, bodyStart);
    if (end === -1 || end - bodyStart > MAX_BLOCK) continue;
    const raw = text.slice(bodyStart, end);
    // Lines, whether real line breaks or \n escapes inside a string literal.
    const lines = raw.split(/\r?\n|\\r\\n|\\n|\\r/);
    const headers = lines.filter((line) => /^[\s"'`+,]*[A-Za-z-]+:\s/.test(line));
    const body = lines
      .filter((line) => !headers.includes(line))
      // A trailing code comment after a concatenated line (base64 never holds whitespace).
      .map((line) => line.replace(/\s(?:\/\/|#).*$/, ''))
      .join('')
      .replace(/[\s"'`+,;\\|>-]/g, '');
    if (body.length < MIN_BODY || !/^[A-Za-z0-9+/]+={0,2}$/.test(body)) continue;
    const encrypted = label === 'ENCRYPTED PRIVATE KEY' || headers.some((line) => /Proc-Type:\s*4,ENCRYPTED/i.test(line)) || (label === 'OPENSSH PRIVATE KEY' && opensshEncrypted(body));
    const digest = createHash('sha256').update(body).digest('hex').slice(0, 16);
    findings.push({
      ruleId: encrypted ? 'secret/encrypted-private-key' : 'secret/private-key',
      start: begin,
      end: bodyStart,
      message: encrypted
        ? `an encrypted ${label} is committed: its passphrase can be attacked offline for as long as the repository exists`
        : `an unencrypted ${label} is committed: anyone who can read the repository holds this key`,
      key: `${label} sha256:${digest}`,
      snippet: `-----BEGIN ${label}-----`,
    });
  }
  return findings;
}
