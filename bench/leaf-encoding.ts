/**
 * Micro-benchmark of the reason src/pki/leaf.ts exists: the hand-written DER encoder plus one
 * node:crypto sign, against @peculiar/x509 building the same leaf. Both sides get what a CA keeps
 * between issuances (issuer name, AKI, constant extensions, the signing key) ready-made, and per
 * leaf do what an issuance must: SKI, SAN, encode, sign. Before timing, both TBSCertificates of one
 * request are compared byte for byte, so the two sides provably build the same certificate.
 */
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate } from '@peculiar/asn1-x509';
import { createPublicKey } from 'node:crypto';
import { generateKeyPair, LeafIssuer, randomSerial, type LeafRequest } from '../src/pki/index.js';
import { toCryptoKeyPair, webAlgorithmFor, x509Library } from '../src/pki/x509-library.js';
import { benchChain } from './ca-chain.js';

const TRUST_DOMAIN = 'bench.tlsmesh.test';
const CRL_URL = 'https://ca.bench.tlsmesh.test:8443/v1/crl';
const OCSP_URL = 'https://ca.bench.tlsmesh.test:8443/v1/ocsp';

export interface LeafEncodingResult {
  /** LeafIssuer.issue per second (encode + sign). */
  leafIssuer: number;
  /** LeafIssuer.encodeTbs per second (encode only): what the signature leaves over. */
  encodeOnly: number;
  /** X509CertificateGenerator.create per second. */
  peculiar: number;
}

type Builder = (request: LeafRequest) => Promise<Buffer> | Buffer;

async function opsPerSecond(build: Builder, requestFor: () => LeafRequest, durationMs: number): Promise<number> {
  for (let i = 0; i < 50; i++) await build(requestFor()); // warm-up: JIT, lazy initialisation
  let count = 0;
  const start = performance.now();
  let now = start;
  while (now - start < durationMs) {
    await build(requestFor());
    count++;
    now = performance.now();
  }
  return (count * 1000) / (now - start);
}

export async function measureLeafEncoding(durationMs: number): Promise<LeafEncodingResult> {
  const x509 = x509Library();
  const { intermediateDer, intermediateKey, notBefore, notAfter } = await benchChain(TRUST_DOMAIN);
  const leafIssuer = new LeafIssuer({ issuerCertDer: intermediateDer, issuerNotAfter: notAfter, issuerPrivateKey: intermediateKey.privateKey, crlUrl: CRL_URL, ocspUrl: OCSP_URL });

  // What a @peculiar/x509 CA would keep between issuances.
  const issuerCert = new x509.X509Certificate(intermediateDer);
  const signingAlgorithm = webAlgorithmFor(intermediateKey.privateKey);
  const { privateKey: signingKey } = await toCryptoKeyPair(intermediateKey.privateKey, createPublicKey(intermediateKey.privateKey));
  const subject = new x509.Name([{ O: [{ utf8String: 'tlsmesh' }] }]);
  const constantBefore = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth], false),
  ];
  const authorityKeyId = await x509.AuthorityKeyIdentifierExtension.create(issuerCert.publicKey);
  const constantAfter = [new x509.CRLDistributionPointsExtension([CRL_URL]), new x509.AuthorityInfoAccessExtension({ ocsp: [OCSP_URL] })];

  const peculiarLeaf = async (request: LeafRequest): Promise<Buffer> => {
    const publicKey = new x509.PublicKey(new Uint8Array(request.spki));
    const extensions: InstanceType<typeof x509.Extension>[] = [
      ...constantBefore,
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
      authorityKeyId,
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: request.spiffeId }]),
      ...constantAfter,
    ];
    const certificate = await x509.X509CertificateGenerator.create({
      serialNumber: request.serial.toString('hex'),
      subject,
      issuer: issuerCert.subjectName,
      notBefore: request.notBefore,
      notAfter: request.notAfter,
      publicKey,
      signingKey,
      signingAlgorithm,
      extensions,
    });
    return Buffer.from(certificate.rawData);
  };

  // A pool of workload keys, as a CA sees many different ones.
  const spkis = Array.from({ length: 16 }, () => generateKeyPair('p256').publicKey.export({ format: 'der', type: 'spki' }));
  let next = 0;
  const requestFor = (): LeafRequest => ({
    serial: randomSerial(),
    spki: spkis[next++ % spkis.length]!,
    rsaKey: false,
    spiffeId: `spiffe://${TRUST_DOMAIN}/bench/w${next % 64}`,
    dnsNames: [],
    ipAddresses: [],
    notBefore,
    notAfter,
  });

  const sample = requestFor();
  const oursTbs = leafIssuer.encodeTbs(sample);
  const theirsTbs = Buffer.from(AsnConvert.serialize(AsnConvert.parse(await peculiarLeaf(sample), Certificate).tbsCertificate));
  if (!oursTbs.equals(theirsTbs)) throw new Error('leaf encoding: LeafIssuer and @peculiar/x509 built different TBSCertificates; the comparison would be meaningless');

  return {
    leafIssuer: await opsPerSecond((request) => leafIssuer.issue(request), requestFor, durationMs),
    encodeOnly: await opsPerSecond((request) => leafIssuer.encodeTbs(request), requestFor, durationMs),
    peculiar: await opsPerSecond(peculiarLeaf, requestFor, durationMs),
  };
}
