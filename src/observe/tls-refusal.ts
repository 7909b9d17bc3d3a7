/**
 * Why a TLS peer was refused, shared by every server that reports it (the SDK's servers and the
 * CA) and used as the `reason` label of `tlsmesh_tls_handshake_refusals_total`. In TLS 1.3 the
 * client of a refused handshake usually sees only "socket hang up", so the server's log line and
 * this counter are where the reason is found (docs/troubleshooting.md).
 */

export type RefusalReason =
  | 'no-certificate'
  | 'unknown-ca'
  | 'expired'
  | 'not-yet-valid'
  | 'revoked'
  | 'crl-unusable'
  | 'bad-certificate'
  | 'identity-not-allowed'
  | 'plaintext'
  | 'protocol-version'
  | 'client-refused-server'
  | 'handshake-failed';

/** A verification error code from OpenSSL (`socket.authorizationError`) as a reason. */
export function reasonForVerifyError(code: string): RefusalReason {
  switch (code) {
    case 'CERT_HAS_EXPIRED':
      return 'expired';
    case 'CERT_NOT_YET_VALID':
      return 'not-yet-valid';
    case 'CERT_REVOKED':
      return 'revoked';
    case 'UNABLE_TO_GET_ISSUER_CERT':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'CERT_UNTRUSTED':
    case 'CERT_CHAIN_TOO_LONG':
      return 'unknown-ca';
    case 'UNABLE_TO_GET_CRL':
    case 'CRL_HAS_EXPIRED':
    case 'CRL_NOT_YET_VALID':
    case 'CRL_SIGNATURE_FAILURE':
    case 'UNABLE_TO_DECRYPT_CRL_SIGNATURE':
    case 'ERROR_IN_CRL_LAST_UPDATE_FIELD':
    case 'ERROR_IN_CRL_NEXT_UPDATE_FIELD':
      return 'crl-unusable';
    default:
      return 'bad-certificate';
  }
}

/**
 * A handshake error (`tlsClientError`) as a reason, or null when the client just went away
 * before finishing (TCP health checks do that all day: not worth a warning).
 */
export function reasonForHandshakeError(error: Error & { code?: string }): RefusalReason | null {
  const code = error.code ?? '';
  if (code === 'ECONNRESET' || code === 'EPIPE' || error.message === 'socket hang up') return null;
  if (code === 'ERR_SSL_HTTP_REQUEST' || code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_HTTPS_PROXY_REQUEST') return 'plaintext';
  if (/UNSUPPORTED_PROTOCOL|PROTOCOL_VERSION|NO_PROTOCOLS_AVAILABLE|VERSION_TOO_LOW/.test(code)) return 'protocol-version';
  if (code === 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE') return 'no-certificate';
  if (/ALERT_(UNKNOWN_CA|BAD_CERTIFICATE|CERTIFICATE_UNKNOWN|CERTIFICATE_EXPIRED|DECRYPT_ERROR|ACCESS_DENIED)/.test(code)) return 'client-refused-server';
  return 'handshake-failed';
}
