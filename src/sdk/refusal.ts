/**
 * A refused connection as the SDK's servers report it (log line, `onRefusal`, 403 body). The
 * reasons and their classification are shared with the CA in observe/tls-refusal.ts.
 */
import type { RefusalReason } from '../observe/tls-refusal.js';

export type { RefusalReason } from '../observe/tls-refusal.js';
export { reasonForHandshakeError, reasonForVerifyError } from '../observe/tls-refusal.js';

export interface Refusal {
  reason: RefusalReason;
  /** `address:port` of the client. */
  peer: string;
  /** The underlying code or message (`CERT_HAS_EXPIRED`, `ERR_SSL_HTTP_REQUEST`, …). */
  detail: string;
  /** The client's SPIFFE ID when its certificate verified but was not allowed. */
  spiffeId?: string;
}

/** The JSON body (and its length) a server answers a request refused by `checkRequest` with, status 403. */
export function requestRefusalBody(refusal: Refusal): string {
  const code = refusal.reason === 'revoked' ? 'ERR_CERT_REVOKED' : 'ERR_CRL_STALE';
  return JSON.stringify({ error: { code, message: refusal.detail } });
}
