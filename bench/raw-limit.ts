/**
 * The raw limit of issuance on this machine: what node:crypto alone does, single-threaded, when
 * each issuance costs one ECDSA P-256 verify (the CSR's self-signature) and one sign (the leaf).
 * Everything else the CA does (TLS, HTTP, JSON, token, DER, store) is overhead against this.
 */
import { generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';

/** About the size of a leaf TBSCertificate with a SPIFFE ID, CRL and OCSP URLs. */
const DATA_BYTES = 450;

export function measureRawLimit(durationMs: number): number {
  const signer = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const requester = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const data = randomBytes(DATA_BYTES);
  const csrSignature = sign('sha256', data, requester.privateKey);
  let operations = 0;
  let sink = 0; // keeps the results live, so nothing can be skipped
  const start = performance.now();
  const deadline = start + durationMs;
  let now = start;
  while (now < deadline) {
    for (let i = 0; i < 50; i++) {
      if (!verify('sha256', data, requester.publicKey, csrSignature)) throw new Error('raw limit: the signature did not verify');
      sink += sign('sha256', data, signer.privateKey).length;
    }
    operations += 50;
    now = performance.now();
  }
  if (sink === 0) throw new Error('raw limit: no signatures made');
  return (operations * 1000) / (now - start);
}
