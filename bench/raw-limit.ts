/**
 * The raw limit of issuance on this machine: what node:crypto alone does, single-threaded, when
 * each issuance costs one ECDSA P-256 verify (the CSR's self-signature) and one sign (the leaf).
 * Everything else the CA does (TLS, HTTP, JSON, token, DER, store) is overhead against this.
 */
import { createPublicKey, generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';

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

/** Distinct requester keys cycled through by measureIssuanceCryptoFloor. */
const FLOOR_KEYS = 256;

/**
 * What node:crypto needs for one enrolment as the CA sees it, single-threaded: the CSR carries a
 * key the CA has never seen, so its public key is imported (from JWK, as src/pki/keys.ts does)
 * before the signature over the CSR is verified, and then the leaf is signed. Reported beside
 * the raw limit (which verifies with one warm key) as information: the ratio goal stays judged
 * against the raw limit as the issue defines it.
 */
export function measureIssuanceCryptoFloor(durationMs: number): number {
  const signer = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const requests = Array.from({ length: FLOOR_KEYS }, () => {
    const requester = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const data = randomBytes(DATA_BYTES);
    return { jwk: requester.publicKey.export({ format: 'jwk' }), data, signature: sign('sha256', data, requester.privateKey) };
  });
  let operations = 0;
  let sink = 0;
  const start = performance.now();
  const deadline = start + durationMs;
  let now = start;
  while (now < deadline) {
    for (let i = 0; i < 50; i++) {
      const request = requests[(operations + i) % FLOOR_KEYS]!;
      const publicKey = createPublicKey({ key: request.jwk, format: 'jwk' });
      if (!verify('sha256', request.data, publicKey, request.signature)) throw new Error('crypto floor: the signature did not verify');
      sink += sign('sha256', request.data, signer.privateKey).length;
    }
    operations += 50;
    now = performance.now();
  }
  if (sink === 0) throw new Error('crypto floor: no signatures made');
  return (operations * 1000) / (now - start);
}
