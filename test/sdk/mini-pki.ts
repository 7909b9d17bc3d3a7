/**
 * A one-level PKI made with @peculiar/x509 (root → leaves, and CRLs signed by the root), for the
 * CRL tests: the tlsmesh CA does not publish a CRL yet. Set up here, independently of the code
 * under test.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const HOUR = 3600_000;

export interface MiniPki {
  rootPem: string;
  issue(spiffeId: string): Promise<{ certPem: string; keyPem: string; serial: string }>;
  /** A CRL revoking these serials (hex), labelled the way @peculiar/x509 labels it (`BEGIN CRL`). */
  crl(revokedSerials: string[]): Promise<string>;
}

const keyPemOf = async (key: webcrypto.CryptoKey): Promise<string> => x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');

const newKeys = (): Promise<webcrypto.CryptoKeyPair> => webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);

export async function miniPki(trustDomain: string): Promise<MiniPki> {
  const rootKeys = await newKeys();
  const now = Date.now();
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: `CN=mini root ${trustDomain}`,
    notBefore: new Date(now - HOUR),
    notAfter: new Date(now + 24 * HOUR),
    keys: rootKeys,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(rootKeys.publicKey),
    ],
  });
  let nextSerial = 0x1000;
  return {
    rootPem: root.toString('pem'),
    async issue(spiffeId) {
      const keys = await newKeys();
      const serial = (nextSerial++).toString(16);
      const leaf = await x509.X509CertificateGenerator.create({
        serialNumber: serial,
        subject: 'O=mini',
        issuer: root.subject,
        notBefore: new Date(Date.now() - HOUR),
        notAfter: new Date(Date.now() + 12 * HOUR),
        publicKey: keys.publicKey,
        signingKey: rootKeys.privateKey,
        signingAlgorithm: ALGORITHM,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
          new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }], true),
          await x509.AuthorityKeyIdentifierExtension.create(rootKeys.publicKey),
        ],
      });
      return { certPem: leaf.toString('pem'), keyPem: await keyPemOf(keys.privateKey), serial };
    },
    async crl(revokedSerials) {
      const crl = await x509.X509CrlGenerator.create({
        issuer: root.subject,
        thisUpdate: new Date(Date.now() - HOUR),
        nextUpdate: new Date(Date.now() + 12 * HOUR),
        entries: revokedSerials.map((serialNumber) => ({ serialNumber, revocationDate: new Date(Date.now() - 60_000) })),
        signingKey: rootKeys.privateKey,
        signingAlgorithm: ALGORITHM,
        extensions: [await x509.AuthorityKeyIdentifierExtension.create(rootKeys.publicKey)],
      });
      return crl.toString('pem');
    },
  };
}
