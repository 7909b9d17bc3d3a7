/** Reads the few raw fields the leaf encoder copies from its issuer's certificate. */
import { createHash } from 'node:crypto';
import { decodeOid, expectTag, readChildren, readWhole, TAG } from './der.js';
import { OID } from './oids.js';

export interface IssuerFields {
  /** The issuer certificate's subject Name, DER, to become each leaf's issuer. */
  subjectDer: Buffer;
  /** Its subjectKeyIdentifier (or the RFC 5280 method-1 hash of its key when it has none). */
  keyIdentifier: Buffer;
  notAfter: Date;
}

const E = 'ERR_INTERNAL' as const;

export function readIssuerFields(certDer: Buffer, notAfter: Date): IssuerFields {
  const [tbs] = readChildren(expectTag(readWhole(certDer, E), TAG.SEQUENCE, 'Certificate', E), E);
  const fields = readChildren(expectTag(tbs, TAG.SEQUENCE, 'TBSCertificate', E), E);
  const offset = fields[0]?.tag === 0xa0 ? 1 : 0; // [0] version present in v3
  const subject = expectTag(fields[offset + 4], TAG.SEQUENCE, 'subject', E);
  const spki = expectTag(fields[offset + 5], TAG.SEQUENCE, 'subjectPublicKeyInfo', E);
  let keyIdentifier: Buffer | undefined;
  const extensionsNode = fields.find((field) => field.tag === 0xa3);
  if (extensionsNode) {
    const [list] = readChildren(extensionsNode, E);
    for (const extension of readChildren(expectTag(list, TAG.SEQUENCE, 'Extensions', E), E)) {
      const parts = readChildren(extension, E);
      if (decodeOid(parts[0]!.content) === OID.subjectKeyIdentifier) {
        keyIdentifier = Buffer.from(readWhole(parts[parts.length - 1]!.content, E).content);
      }
    }
  }
  return {
    subjectDer: Buffer.from(subject.raw),
    keyIdentifier: keyIdentifier ?? keyIdentifierOf(spki.raw),
    notAfter,
  };
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING value. */
export function keyIdentifierOf(spkiDer: Buffer): Buffer {
  const [, subjectPublicKey] = readChildren(readWhole(spkiDer, 'ERR_CSR_MALFORMED'), 'ERR_CSR_MALFORMED');
  const bits = expectTag(subjectPublicKey, TAG.BIT_STRING, 'subjectPublicKey', 'ERR_CSR_MALFORMED');
  return createHash('sha1').update(bits.content.subarray(1)).digest();
}
