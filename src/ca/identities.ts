/** The SPIFFE IDs the CA reserves for itself, under `/tlsmesh/` in its trust domain. */

export const RESERVED_PATH_PREFIX = '/tlsmesh/';
export const caSpiffeId = (trustDomain: string): string => `spiffe://${trustDomain}/tlsmesh/ca`;
export const adminSpiffeId = (trustDomain: string): string => `spiffe://${trustDomain}/tlsmesh/admin`;
/** The audience of enrolment tokens: their purpose and the trust domain they enrol into. */
export const enrollAudience = (trustDomain: string): string => `tlsmesh:enroll:${trustDomain}`;
/**
 * The name the store files the OCSP responder's certificate under. The certificate itself has no
 * SAN (it is not a workload and must not pass as one); this only labels its row.
 */
export const ocspResponderSpiffeId = (trustDomain: string): string => `spiffe://${trustDomain}/tlsmesh/ocsp`;
