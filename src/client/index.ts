/** tlsmesh/client: talking to the CA — enrol with a token, renew over mTLS, admin calls. */
export { CaClient } from './ca-client.js';
export type { CaClientOptions, CertificateSummary, IssuedResponse, PemDocument, TokenResponse } from './ca-client.js';
export { enrollWithToken, renewCredentials, tokenRequest, writeCredentials } from './enroll.js';
export type { Credentials } from './enroll.js';
export { credentialPathsIn } from './paths.js';
