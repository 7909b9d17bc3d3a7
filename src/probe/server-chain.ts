/**
 * The server's certificate chain, judged from what it presented: it reaches a root of the bundle
 * with valid signatures, every certificate on the path is inside its validity window, the leaf may
 * serve TLS (extendedKeyUsage), and it names the SPIFFE ID the prober expects.
 */
import type { X509Certificate } from 'node:crypto';
import { parseSpiffeId, spiffeIdsOf } from '../pki/index.js';

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const ANY_EXTENDED_KEY_USAGE = '2.5.29.37.0';
const MAX_DEPTH = 8;

const nameOf = (certificate: X509Certificate): string => {
  const ids = spiffeIdsOf(certificate.subjectAltName);
  return ids[0] ?? (certificate.subject.replace(/\n/g, ', ') || '(empty subject)');
};

export type ChainVerdict = { ok: true; path: string } | { ok: false; problem: string };

/**
 * Walks leaf → issuer through the presented certificates and the bundle until a bundle root.
 * `path` (or `problem`) says, in words, what was found.
 */
export function verifyServerChain(chain: readonly X509Certificate[], bundle: readonly X509Certificate[], now: Date): ChainVerdict {
  const leaf = chain[0];
  if (leaf === undefined) return { ok: false, problem: 'the server presented no certificate' };
  const usages = leaf.keyUsage as string[] | undefined; // node:crypto names the extendedKeyUsage OIDs keyUsage
  if (usages !== undefined && usages.length > 0 && !usages.includes(SERVER_AUTH) && !usages.includes(ANY_EXTENDED_KEY_USAGE)) {
    return { ok: false, problem: `the leaf's extendedKeyUsage (${usages.join(', ')}) does not allow serverAuth` };
  }
  const pool = [...chain.slice(1), ...bundle];
  const names: string[] = [];
  let current = leaf;
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    names.push(nameOf(current));
    if (now < new Date(current.validFrom)) return { ok: false, problem: `${nameOf(current)} (depth ${depth}) is not valid until ${new Date(current.validFrom).toISOString()}` };
    if (now > new Date(current.validTo)) return { ok: false, problem: `${nameOf(current)} (depth ${depth}) expired at ${new Date(current.validTo).toISOString()}` };
    if (bundle.some((root) => root.raw.equals(current.raw))) return { ok: true, path: `${names.join(' ← ')} (in the bundle)` };
    const issuer = pool.find((candidate) => candidate.ca && !candidate.raw.equals(current.raw) && current.checkIssued(candidate) && current.verify(candidate.publicKey));
    if (issuer === undefined) {
      return { ok: false, problem: `no issuer for "${current.issuer.replace(/\n/g, ', ')}" among the presented certificates or the bundle (chain: ${names.join(' ← ')})` };
    }
    current = issuer;
  }
  return { ok: false, problem: `no bundle root within ${MAX_DEPTH} certificates` };
}

export interface ExpectedId {
  /** In words, for the evidence. */
  text: string;
  matches(id: string): boolean;
}

/**
 * What --expect-id accepts: an exact SPIFFE ID, or a trust domain's ID (`spiffe://example.org`,
 * no path) meaning any workload of that trust domain. Throws ERR_SPIFFE_ID_INVALID.
 */
export function expectedId(text: string): ExpectedId {
  const parsed = parseSpiffeId(text);
  if (parsed.path === '') return { text: `any ID in ${parsed.trustDomain}`, matches: (id) => parseSpiffeId(id).trustDomain === parsed.trustDomain };
  return { text: parsed.uri, matches: (id) => id === parsed.uri };
}

export type IdVerdict = { ok: true; id: string } | { ok: false; problem: string };

/** The leaf must carry exactly one SPIFFE ID (the X.509-SVID rule), and it must be one expected. */
export function checkServerId(leaf: X509Certificate | undefined, expected: readonly ExpectedId[]): IdVerdict {
  if (leaf === undefined) return { ok: false, problem: 'the server presented no certificate' };
  const ids = spiffeIdsOf(leaf.subjectAltName);
  if (ids.length === 0) return { ok: false, problem: 'the server certificate names no SPIFFE ID' };
  if (ids.length > 1) return { ok: false, problem: `the server certificate names ${ids.length} SPIFFE IDs (${ids.join(', ')}); an X.509-SVID has exactly one` };
  const id = ids[0]!;
  try {
    parseSpiffeId(id);
  } catch {
    return { ok: false, problem: `the server certificate's SPIFFE ID ${JSON.stringify(id)} is not a valid SPIFFE ID` };
  }
  if (!expected.some((candidate) => candidate.matches(id))) return { ok: false, problem: `the server is ${id}, expected ${expected.map((e) => e.text).join(' or ')}` };
  return { ok: true, id };
}
