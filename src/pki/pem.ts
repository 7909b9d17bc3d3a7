/** PEM encoding and decoding (RFC 7468). */

export interface PemBlock {
  label: string;
  der: Buffer;
}

/** Encodes DER as PEM with 64-character lines. */
export function toPem(der: Buffer, label: string): string {
  const base64 = der.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < base64.length; i += 64) lines.push(base64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n\t ]*?)-----END \1-----/g;

/** Every PEM block in the text, in order; text outside blocks is ignored. */
export function parsePem(text: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  for (const match of text.matchAll(BLOCK)) {
    blocks.push({ label: match[1]!, der: Buffer.from(match[2]!.replace(/\s+/g, ''), 'base64') });
  }
  return blocks;
}

/** The DER of every block with this label. */
export function pemBlocks(text: string, label: string): Buffer[] {
  return parsePem(text)
    .filter((block) => block.label === label)
    .map((block) => block.der);
}

export const certificatesToPem = (ders: readonly Buffer[]): string => ders.map((der) => toPem(der, 'CERTIFICATE')).join('');
