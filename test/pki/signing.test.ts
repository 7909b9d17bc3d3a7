/**
 * Signature algorithms (src/pki/signing.ts): the AlgorithmIdentifier each CA key signs with, and
 * verification that binds the algorithm OID to the key type. The CSR parser relies on verifyWith;
 * csr.test.ts checks the same refusals end to end.
 */
import { sign, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isAcceptedSignatureOid, signatureAlgorithmFor, signWith, verifyWith } from '../../src/pki/signing.js';
import { KEY_TYPES_UNDER_TEST, testKey, type TestKeyType } from './support.js';

const OIDS = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  ecdsaWithSha512: '1.2.840.10045.4.3.4',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  sha384WithRsa: '1.2.840.113549.1.1.12',
  sha512WithRsa: '1.2.840.113549.1.1.13',
  ed25519: '1.3.101.112',
} as const;

/** For each OID: the key family it belongs to and the digest to sign with. */
const FAMILY: Record<string, { keys: readonly TestKeyType[]; hash: string | null }> = {
  [OIDS.ecdsaWithSha256]: { keys: ['p256', 'p384'], hash: 'sha256' },
  [OIDS.ecdsaWithSha384]: { keys: ['p256', 'p384'], hash: 'sha384' },
  [OIDS.ecdsaWithSha512]: { keys: ['p256', 'p384'], hash: 'sha512' },
  [OIDS.sha256WithRsa]: { keys: ['rsa2048'], hash: 'sha256' },
  [OIDS.sha384WithRsa]: { keys: ['rsa2048'], hash: 'sha384' },
  [OIDS.sha512WithRsa]: { keys: ['rsa2048'], hash: 'sha512' },
  [OIDS.ed25519]: { keys: ['ed25519'], hash: null },
};

const DATA = Buffer.from('to be signed');

describe('verifyWith binds the OID to the key type', () => {
  const rows = Object.keys(FAMILY).flatMap((oid) =>
    KEY_TYPES_UNDER_TEST.map((key) => ({ oid, key, ok: FAMILY[oid]!.keys.includes(key) })),
  );
  it.each(rows)('$oid with a $key key → $ok', ({ oid, key, ok }) => {
    const pair = testKey(key);
    // The signature is made the way the key can sign (its own scheme, the OID's digest where it
    // has one): only the label differs between the ok and the fail rows.
    const ownHash = key === 'ed25519' ? null : (FAMILY[oid]!.hash ?? 'sha256');
    const signature = sign(ownHash, DATA, pair.privateKey);
    expect(verify(ownHash, DATA, pair.publicKey, signature)).toBe(true);
    expect(verifyWith(oid, pair.publicKey, DATA, signature)).toBe(ok);
  });

  it.each(['1.2.840.10045.4.1', '1.2.840.113549.1.1.5', '1.2.840.113549.1.1.10', '1.3.101.113', '2.5.29.17'])(
    'fail/%s (SHA-1, RSA-PSS, Ed448, not a signature) is not accepted',
    (oid) => {
      expect(isAcceptedSignatureOid(oid)).toBe(false);
      const pair = testKey('p256');
      expect(verifyWith(oid, pair.publicKey, DATA, sign('sha256', DATA, pair.privateKey))).toBe(false);
    },
  );

  it('fail/a garbage signature is false, not an exception', () => {
    for (const key of KEY_TYPES_UNDER_TEST) {
      const oid = Object.keys(FAMILY).find((candidate) => FAMILY[candidate]!.keys.includes(key))!;
      expect(verifyWith(oid, testKey(key).publicKey, DATA, Buffer.from('00', 'hex'))).toBe(false);
    }
  });
});

describe('signatureAlgorithmFor', () => {
  const expected: Record<TestKeyType, { identifier: string; hash: string | null }> = {
    p256: { identifier: '300a06082a8648ce3d040302', hash: 'sha256' },
    p384: { identifier: '300a06082a8648ce3d040303', hash: 'sha384' },
    ed25519: { identifier: '300506032b6570', hash: null },
    rsa2048: { identifier: '300d06092a864886f70d01010b0500', hash: 'sha256' },
  };
  it.each(KEY_TYPES_UNDER_TEST)('ok/%s', (type) => {
    const pair = testKey(type);
    const algorithm = signatureAlgorithmFor(pair.privateKey);
    expect({ identifier: algorithm.identifier.toString('hex'), hash: algorithm.hash }).toEqual(expected[type]);
    const signature = signWith(pair.privateKey, algorithm, DATA);
    const oid = Object.keys(FAMILY).find((candidate) => FAMILY[candidate]!.keys.includes(type) && FAMILY[candidate]!.hash === algorithm.hash)!;
    expect(verifyWith(oid, pair.publicKey, DATA, signature)).toBe(true);
  });
});
