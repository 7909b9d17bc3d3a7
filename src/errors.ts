/**
 * The closed set of errors tlsmesh reports for bad input and refused operations.
 *
 * One class with a stable `code` rather than a subclass per code: every code also needs an HTTP
 * status and a one-line description for the docs, and a single registry keeps those three
 * together (a test checks it). Misuse of the API (wrong argument types) is a plain `TypeError`.
 * Messages name the problem and never contain secrets (tokens, keys, passphrases).
 */

export const ERROR_REGISTRY = {
  // request shape
  ERR_BAD_REQUEST: { status: 400, summary: 'The request body is not valid JSON or misses a required field.' },
  ERR_BODY_TOO_LARGE: { status: 413, summary: 'The request body is larger than the configured limit.' },
  ERR_NOT_FOUND: { status: 404, summary: 'No such route or object.' },
  // CSRs and keys
  ERR_CSR_MALFORMED: { status: 400, summary: 'The CSR is not a DER/PEM PKCS#10 request that can be parsed.' },
  ERR_CSR_SIGNATURE: { status: 400, summary: 'The CSR signature does not verify with its own public key.' },
  ERR_CSR_IDENTITY_MISMATCH: { status: 403, summary: 'The CSR asks for a SPIFFE ID other than the one the caller may have.' },
  ERR_CSR_SAN_NOT_ALLOWED: { status: 403, summary: 'The CSR asks for a DNS or IP SAN the token (or current certificate) does not allow.' },
  ERR_CSR_CA_REQUESTED: { status: 403, summary: 'The CSR asks for a CA certificate (basicConstraints CA:true).' },
  ERR_CSR_EXTENSION: { status: 400, summary: 'The CSR requests an extension tlsmesh does not accept.' },
  ERR_KEY_WEAK: { status: 400, summary: 'The key is of a supported kind but too weak (for example RSA below 2048 bits).' },
  ERR_KEY_UNSUPPORTED: { status: 400, summary: 'The key type or curve is not one of ECDSA P-256/P-384, Ed25519 or RSA.' },
  ERR_RENEW_SAME_KEY: { status: 400, summary: 'A renewal must use a new key; the CSR carries the key of the current certificate.' },
  // identities
  ERR_SPIFFE_ID_INVALID: { status: 400, summary: 'The value is not a valid SPIFFE ID.' },
  ERR_SPIFFE_ID_FOREIGN: { status: 403, summary: "The SPIFFE ID is not in this CA's trust domain." },
  ERR_SAN_INVALID: { status: 400, summary: 'A DNS name or IP address SAN is not well formed.' },
  ERR_TTL_INVALID: { status: 400, summary: 'A requested lifetime is out of the allowed range.' },
  // tokens
  ERR_TOKEN_MALFORMED: { status: 401, summary: 'The enrolment token is not a well-formed JWT.' },
  ERR_TOKEN_INVALID: { status: 401, summary: 'The enrolment token signature does not verify with a key of this CA.' },
  ERR_TOKEN_EXPIRED: { status: 401, summary: 'The enrolment token has expired (or is not yet valid).' },
  ERR_TOKEN_AUDIENCE: { status: 401, summary: 'The enrolment token was issued for another CA or purpose.' },
  ERR_TOKEN_UNKNOWN: { status: 401, summary: 'The enrolment token is signed by this CA but was never recorded by it.' },
  ERR_TOKEN_REUSED: { status: 401, summary: 'The enrolment token has already been used; tokens are single-use.' },
  // callers authenticated by certificate
  ERR_CLIENT_CERT_REQUIRED: { status: 401, summary: 'This route needs a client certificate (mutual TLS).' },
  ERR_CLIENT_CERT_REJECTED: { status: 401, summary: 'The client certificate did not verify (expired, unknown CA, ...).' },
  ERR_CERT_REVOKED: { status: 403, summary: 'The certificate has been revoked.' },
  ERR_CERT_UNKNOWN: { status: 403, summary: 'The certificate was not issued by this CA (no record of its serial).' },
  ERR_FORBIDDEN: { status: 403, summary: 'The caller is authenticated but not allowed to use this route.' },
  // dashboard (/ui)
  ERR_UI_LOGIN_REQUIRED: { status: 401, summary: 'The dashboard needs the admin client certificate or a read-only session (log in with the read-only token).' },
  ERR_UI_TOKEN_INVALID: { status: 401, summary: 'The read-only dashboard token given at login does not match the configured one.' },
  ERR_CSRF: { status: 403, summary: 'A dashboard form came without a valid CSRF token or from another origin; reload the page and try again.' },
  // SDK: workload identities and peers
  ERR_IDENTITY_INVALID: { status: 400, summary: 'Identity material (certificate chain, key, trust bundle or CRL) does not parse or does not fit together; the message names the part.' },
  ERR_IDENTITY_FILE: { status: 500, summary: 'An identity file (cert.pem, key.pem, bundle.pem, crl.pem) could not be read or written; the message names the file.' },
  ERR_SERVER_IDENTITY_MISMATCH: { status: 502, summary: 'The server presented a certificate whose SPIFFE ID the client does not accept.' },
  // revocation
  ERR_CRL_MALFORMED: { status: 400, summary: 'A CRL is not a DER/PEM X.509 v2 CRL that can be parsed.' },
  ERR_CRL_STALE: { status: 503, summary: 'The newest CRL available is past its nextUpdate and could not be refreshed.' },
  ERR_OCSP_MALFORMED: { status: 400, summary: 'An OCSP request or response is not DER that can be parsed as one.' },
  // CA state and operations
  ERR_CA_NOT_INITIALIZED: { status: 503, summary: 'The CA has no active keys; run `tlsmesh ca init` first.' },
  ERR_CA_INTEGRITY: { status: 500, summary: "The CA's keys in the store do not match their certificates or the roots pinned in ca.yaml." },
  ERR_ROTATION_STATE: { status: 409, summary: "The rotation step does not fit the CA's key states (for example activate with nothing prepared); the message says what is there." },
  ERR_ROTATION_IN_USE: { status: 409, summary: 'Retiring would drop a CA key whose certificates are still valid; wait until they expire or pass --force.' },
  ERR_CA_ALREADY_INITIALIZED: { status: 409, summary: 'The data directory or store already holds a CA.' },
  ERR_PASSPHRASE: { status: 400, summary: 'The CA key passphrase is missing, too short or wrong.' },
  ERR_CONFIG: { status: 400, summary: 'A configuration value is missing or invalid; the message names it.' },
  ERR_SERIAL_COLLISION: { status: 500, summary: 'A generated serial number already exists (retried internally).' },
  ERR_STORE: { status: 503, summary: 'The store (SQLite or PostgreSQL) failed or could not be reached.' },
  // audit log
  ERR_AUDIT_CHAIN_BROKEN: { status: 500, summary: "The audit log's hash chain does not verify: a row was edited, inserted or deleted, or the chain does not reach or match an expected head; the message names the first bad row." },
  ERR_AUDIT_EXPORT_MALFORMED: { status: 400, summary: 'A line of an exported audit log is not a JSON object with the chain fields; the message names the line.' },
  ERR_CA_UNREACHABLE: { status: 503, summary: 'The CA could not be reached or did not answer over TLS.' },
  ERR_INTERNAL: { status: 500, summary: 'An unexpected internal error; details are in the CA log.' },
} as const satisfies Record<string, { status: number; summary: string }>;

export type ErrorCode = keyof typeof ERROR_REGISTRY;

export class TlsmeshError extends Error {
  override readonly name = 'TlsmeshError';
  readonly code: ErrorCode;
  /** HTTP status a server answers with for this error. */
  readonly status: number;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.status = ERROR_REGISTRY[code].status;
  }
}

export function isTlsmeshError(value: unknown, code?: ErrorCode): value is TlsmeshError {
  return value instanceof TlsmeshError && (code === undefined || value.code === code);
}
