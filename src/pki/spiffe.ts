/**
 * SPIFFE IDs, validated per the SPIFFE ID specification (spiffe/spiffe, standards/SPIFFE-ID.md):
 * `spiffe://<trust-domain>/<path>`; the trust domain is lowercase letters, digits, `.`, `-`, `_`;
 * path segments are letters, digits, `.`, `-`, `_`, never empty, `.` or `..`; no query, fragment,
 * port or userinfo (their characters are outside both charsets); at most 2048 bytes.
 */
import { TlsmeshError } from '../errors.js';

const MAX_ID_BYTES = 2048;
const MAX_TRUST_DOMAIN_BYTES = 255;
const TRUST_DOMAIN_CHARS = /^[a-z0-9._-]+$/;
const SEGMENT_CHARS = /^[a-zA-Z0-9._-]+$/;
const SCHEME = 'spiffe://';

export interface SpiffeId {
  readonly trustDomain: string;
  /** '' for the trust domain's own ID, otherwise starts with '/'. */
  readonly path: string;
  /** The canonical string form. */
  readonly uri: string;
}

function invalid(value: string, why: string): TlsmeshError {
  const shown = value.length > 80 ? `${value.slice(0, 80)}…` : value;
  return new TlsmeshError('ERR_SPIFFE_ID_INVALID', `invalid SPIFFE ID "${shown}": ${why}`);
}

/** Throws ERR_SPIFFE_ID_INVALID naming the rule broken. */
export function validateTrustDomain(trustDomain: string): string {
  if (trustDomain.length === 0) throw new TlsmeshError('ERR_SPIFFE_ID_INVALID', 'trust domain is empty');
  if (Buffer.byteLength(trustDomain) > MAX_TRUST_DOMAIN_BYTES) {
    throw new TlsmeshError('ERR_SPIFFE_ID_INVALID', `trust domain is longer than ${MAX_TRUST_DOMAIN_BYTES} bytes`);
  }
  if (!TRUST_DOMAIN_CHARS.test(trustDomain)) {
    throw new TlsmeshError(
      'ERR_SPIFFE_ID_INVALID',
      `trust domain "${trustDomain}" may contain only lowercase letters, digits, ".", "-" and "_"`,
    );
  }
  return trustDomain;
}

/**
 * Parses and validates a SPIFFE ID.
 *
 * @example parseSpiffeId('spiffe://example.org/ns/prod/sa/api').trustDomain // 'example.org'
 */
export function parseSpiffeId(value: string): SpiffeId {
  if (typeof value !== 'string') throw new TypeError('SPIFFE ID must be a string');
  if (Buffer.byteLength(value) > MAX_ID_BYTES) throw invalid(value, `longer than ${MAX_ID_BYTES} bytes`);
  if (!value.startsWith(SCHEME)) throw invalid(value, 'scheme must be "spiffe://" (lowercase)');
  const rest = value.slice(SCHEME.length);
  const slash = rest.indexOf('/');
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? '' : rest.slice(slash);
  if (trustDomain.length === 0) throw invalid(value, 'trust domain is empty');
  if (Buffer.byteLength(trustDomain) > MAX_TRUST_DOMAIN_BYTES) throw invalid(value, `trust domain is longer than ${MAX_TRUST_DOMAIN_BYTES} bytes`);
  if (/[@:?#]/.test(trustDomain)) throw invalid(value, 'userinfo, port, query and fragment are not allowed');
  if (!TRUST_DOMAIN_CHARS.test(trustDomain)) {
    throw invalid(value, 'trust domain may contain only lowercase letters, digits, ".", "-" and "_"');
  }
  if (path !== '') {
    if (/[?#]/.test(path)) throw invalid(value, 'query and fragment are not allowed');
    const segments = path.slice(1).split('/');
    for (const segment of segments) {
      if (segment === '') throw invalid(value, 'path has an empty segment (a "//" or a trailing "/")');
      if (segment === '.' || segment === '..') throw invalid(value, 'path segments "." and ".." are not allowed');
      if (!SEGMENT_CHARS.test(segment)) {
        throw invalid(value, `path segment "${segment}" may contain only letters, digits, ".", "-" and "_"`);
      }
    }
  }
  return { trustDomain, path, uri: value };
}

/** A workload ID: a valid SPIFFE ID with a non-empty path, in the given trust domain. */
export function parseWorkloadId(value: string, trustDomain: string): SpiffeId {
  const id = parseSpiffeId(value);
  if (id.path === '') throw invalid(value, 'a workload ID needs a path (spiffe://<trust-domain>/<path>)');
  if (id.trustDomain !== trustDomain) {
    throw new TlsmeshError(
      'ERR_SPIFFE_ID_FOREIGN',
      `SPIFFE ID ${value} is not in this CA's trust domain "${trustDomain}"`,
    );
  }
  return id;
}

export function spiffeIdOf(trustDomain: string, path: string): string {
  if (path !== '' && !path.startsWith('/')) throw new TlsmeshError('ERR_SPIFFE_ID_INVALID', `path "${path}" must start with "/"`);
  return parseSpiffeId(`${SCHEME}${validateTrustDomain(trustDomain)}${path}`).uri;
}
