/** The checks, with stable ids (kebab-case) and titles, in the order reports list them. */
export const CHECKS = [
  { id: 'plaintext-refused', title: 'Plaintext (no TLS) is refused' },
  { id: 'no-client-cert-refused', title: 'TLS without a client certificate is refused' },
  { id: 'unknown-ca-refused', title: 'A client certificate from an unknown CA is refused' },
  { id: 'expired-cert-refused', title: 'An expired client certificate is refused' },
  { id: 'not-yet-valid-cert-refused', title: 'A not yet valid client certificate is refused' },
  { id: 'revoked-cert-refused', title: 'A revoked client certificate is refused' },
  { id: 'server-auth-only-cert-refused', title: 'A certificate for serverAuth only (no clientAuth) is refused as a client certificate' },
  { id: 'tls10-refused', title: 'TLS 1.0 is refused' },
  { id: 'tls11-refused', title: 'TLS 1.1 is refused' },
  { id: 'weak-ciphers-refused', title: 'Weak TLS 1.2 cipher suites are refused' },
  { id: 'server-chain-trusted', title: "The server's chain reaches the bundle and is within its validity window" },
  { id: 'server-id-matches', title: 'The server certificate names the expected SPIFFE ID' },
  { id: 'valid-client-cert-accepted', title: 'A valid client certificate is accepted' },
] as const;

export type CheckId = (typeof CHECKS)[number]['id'];

export const CHECK_IDS: readonly CheckId[] = CHECKS.map((check) => check.id);
