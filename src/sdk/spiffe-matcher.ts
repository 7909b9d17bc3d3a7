/**
 * Which SPIFFE IDs a peer may have: shared by the client's server check and the servers'
 * authorization. Validated once when compiled; matching is then a string comparison.
 */
import type { PeerCertificate } from 'node:tls';
import { TlsmeshError } from '../errors.js';
import { parseSpiffeId, spiffeIdsOf, validateTrustDomain } from '../pki/index.js';

/**
 * One rule: a string is an exact SPIFFE ID; `{ trustDomain }` accepts every ID in that trust
 * domain; `{ pathPrefix }` accepts that ID and every ID below it, by whole path segments
 * (`spiffe://example.org/billing` accepts `…/billing` and `…/billing/api`, not `…/billing-old`).
 */
export type SpiffeMatcher = string | { readonly id: string } | { readonly trustDomain: string } | { readonly pathPrefix: string };

/** One rule or a list of them (any may match). */
export type SpiffeMatchers = SpiffeMatcher | readonly SpiffeMatcher[];

export interface CompiledMatcher {
  (spiffeId: string): boolean;
  /** For messages: `spiffe://example.org/api`, `any ID in example.org`, … */
  readonly description: string;
  /** The same for equal rule sets: session caches are keyed by it (a resumed session skips the identity check). */
  readonly key: string;
}

type Rule = { kind: 'id'; id: string } | { kind: 'trustDomain'; trustDomain: string } | { kind: 'pathPrefix'; trustDomain: string; path: string };

function ruleOf(matcher: SpiffeMatcher): Rule {
  if (typeof matcher === 'string') return { kind: 'id', id: parseSpiffeId(matcher).uri };
  if (matcher === null || typeof matcher !== 'object') throw new TypeError('a SPIFFE matcher is a string or { id } / { trustDomain } / { pathPrefix }');
  const keys = Object.keys(matcher);
  if (keys.length !== 1) throw new TypeError(`a SPIFFE matcher has exactly one of id, trustDomain, pathPrefix (got ${keys.join(', ') || 'none'})`);
  if ('id' in matcher) return { kind: 'id', id: parseSpiffeId(matcher.id).uri };
  if ('trustDomain' in matcher) return { kind: 'trustDomain', trustDomain: validateTrustDomain(matcher.trustDomain) };
  if ('pathPrefix' in matcher) {
    const prefix = parseSpiffeId(matcher.pathPrefix);
    return { kind: 'pathPrefix', trustDomain: prefix.trustDomain, path: prefix.path };
  }
  throw new TypeError(`unknown SPIFFE matcher key "${keys[0]}" (use id, trustDomain or pathPrefix)`);
}

const describeRule = (rule: Rule): string => {
  switch (rule.kind) {
    case 'id':
      return rule.id;
    case 'trustDomain':
      return `any ID in ${rule.trustDomain}`;
    case 'pathPrefix':
      return `spiffe://${rule.trustDomain}${rule.path}/…`;
  }
};

function matchesRule(rule: Rule, id: { trustDomain: string; path: string; uri: string }): boolean {
  switch (rule.kind) {
    case 'id':
      return id.uri === rule.id;
    case 'trustDomain':
      return id.trustDomain === rule.trustDomain;
    case 'pathPrefix':
      return id.trustDomain === rule.trustDomain && (rule.path === '' || id.path === rule.path || id.path.startsWith(`${rule.path}/`));
  }
}

/**
 * Compiles rules into a predicate. Throws ERR_SPIFFE_ID_INVALID for a malformed ID or trust
 * domain and ERR_CONFIG for an empty list (it would refuse everyone).
 *
 * @example spiffeMatcher({ pathPrefix: 'spiffe://example.org/billing' })('spiffe://example.org/billing/api') // true
 */
export function spiffeMatcher(matchers: SpiffeMatchers): CompiledMatcher {
  const list: readonly SpiffeMatcher[] = Array.isArray(matchers) ? matchers : [matchers as SpiffeMatcher];
  if (list.length === 0) throw new TlsmeshError('ERR_CONFIG', 'the list of allowed SPIFFE IDs is empty: nobody would be accepted');
  const rules = list.map(ruleOf);
  const match = (spiffeId: string): boolean => {
    let id;
    try {
      id = parseSpiffeId(spiffeId);
    } catch {
      return false; // a peer ID that is not a valid SPIFFE ID matches nothing
    }
    return rules.some((rule) => matchesRule(rule, id));
  };
  const descriptions = rules.map(describeRule);
  return Object.assign(match, {
    description: descriptions.join(' or '),
    key: JSON.stringify([...new Set(descriptions)].sort()),
  });
}

/** The single SPIFFE ID of a peer certificate, or why there is none to use. */
export function peerSpiffeId(certificate: Pick<PeerCertificate, 'subjectaltname'> | undefined): { id: string } | { problem: string } {
  const ids = spiffeIdsOf(certificate?.subjectaltname);
  if (ids.length === 1) return { id: ids[0]! };
  return { problem: ids.length === 0 ? 'the certificate names no SPIFFE ID' : `the certificate names ${ids.length} SPIFFE IDs` };
}

/**
 * A `checkServerIdentity` that accepts the server only when its certificate names exactly one
 * SPIFFE ID and the matcher accepts it (Node's own check fails on URI-only certificates, and a
 * function that returns `undefined` would accept any certificate the bundle trusts).
 */
export function checkServerSpiffeId(matcher: CompiledMatcher): (host: string, certificate: PeerCertificate) => Error | undefined {
  return (_host, certificate) => {
    const peer = peerSpiffeId(certificate);
    if ('id' in peer && matcher(peer.id)) return undefined;
    const seen = 'id' in peer ? peer.id : peer.problem;
    return new TlsmeshError('ERR_SERVER_IDENTITY_MISMATCH', `server identity mismatch: expected ${matcher.description}, the server presented ${seen}`);
  };
}
