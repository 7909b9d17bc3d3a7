/**
 * Matching a TLS peer by SPIFFE ID. Node's default `checkServerIdentity` compares DNS names and
 * fails on URI-only certificates; replacing it with `undefined` or `() => undefined` would accept
 * any certificate from the bundle. This one accepts only the expected SPIFFE ID.
 */
import type { PeerCertificate } from 'node:tls';

/** The `URI:` entries of Node's `subjectaltname` string that are SPIFFE IDs. */
export function spiffeIdsOf(subjectAltName: string | undefined): string[] {
  if (!subjectAltName) return [];
  return subjectAltName
    .split(', ')
    .filter((entry) => entry.startsWith('URI:spiffe://'))
    .map((entry) => entry.slice(4));
}

/** A `checkServerIdentity` for tls/https options that requires exactly `expected` as the SPIFFE ID. */
export function expectSpiffeId(expected: string): (host: string, certificate: PeerCertificate) => Error | undefined {
  return (_host, certificate) => {
    const ids = spiffeIdsOf(certificate.subjectaltname);
    if (ids.length === 1 && ids[0] === expected) return undefined;
    const seen = ids.length === 0 ? 'no SPIFFE ID' : ids.join(', ');
    return Object.assign(new Error(`server identity mismatch: expected ${expected}, certificate has ${seen}`), { code: 'ERR_TLSMESH_PEER_IDENTITY' });
  };
}
