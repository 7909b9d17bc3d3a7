/**
 * What an SDK identity contributes to the metrics: its certificate's validity and its CRLs (read
 * when scraped, never copied), and what changed when a new identity replaced the old one (counted
 * as rotations; the SDK has no bundle version of its own, `tlsmesh_rotations_total{what="bundle"}`
 * counts its bundle changes).
 */
import type { CrlState, MetricSources } from '../observe/metrics.js';
import type { Identity } from './identity.js';

/**
 * Scrape-time sources for one identity source (whatever it holds at that moment). `crlsOf`, when
 * given, is where the CRLs are held instead (the agent keeps them apart from the certificate).
 */
export function identityMetricSources(source: { current(): Identity | undefined }, crlsOf: () => Identity | undefined = () => source.current()): MetricSources {
  return {
    certificates: () => {
      const identity = source.current();
      return identity === undefined ? [] : [{ spiffeId: identity.spiffeId, kind: 'workload', notBefore: identity.notBefore, notAfter: identity.notAfter }];
    },
    crls: () => {
      const identity = crlsOf();
      const crl = identity === undefined ? null : crlStateOf(identity);
      return crl === null ? [] : [crl];
    },
  };
}

/**
 * The identity's CRLs as one: the SDK enforces them together (earliest nextUpdate, latest
 * thisUpdate), so they are reported under the trust domain they come from.
 */
function crlStateOf(identity: Identity): CrlState | null {
  if (identity.crlNextUpdate === undefined || identity.crlThisUpdate === undefined) return null;
  // Decoded at scrape time only: the identity keeps its CRLs as PEM.
  let sizeBytes = 0;
  for (const pem of identity.crlList) sizeBytes += Buffer.from(pem.replace(/-----[^-]+-----/g, ''), 'base64').length;
  return { issuer: identity.trustDomain, thisUpdate: identity.crlThisUpdate, nextUpdate: identity.crlNextUpdate, sizeBytes, entries: identity.revokedCount };
}

/** What a new identity changed: the leaf (certificate and key), the trust bundle, the CRL. */
export function changesBetween(previous: Identity, next: Identity): ('leaf' | 'bundle' | 'crl')[] {
  const changes: ('leaf' | 'bundle' | 'crl')[] = [];
  if (next.certPem !== previous.certPem) changes.push('leaf');
  if (next.bundlePem !== previous.bundlePem) changes.push('bundle');
  if (next.crlPem !== previous.crlPem) changes.push('crl');
  return changes;
}
