/**
 * The certificates every probe test uses, from a real tlsmesh CA (test/helpers/ca.ts): a server
 * and a client workload, a third workload revoked through the admin API, the issuing
 * intermediate's certificate and key (for --issuer-cert/--issuer-key), and every CRL the CA
 * publishes (root and intermediate, one PEM text) for the servers that check revocation. All of
 * it is also written to a temp directory, as files the CLI and the third-party servers read.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { certificatesToPem, parseCrl, pemBlocks, serialKey } from '../../../src/pki/index.js';
import { checkMaterial, type CheckedMaterial } from '../../../src/probe/index.js';
import { enrollWorkload, startTestCa, type TestCa } from '../../helpers/ca.js';

export const SERVER_ID = 'spiffe://example.org/probe/server';
export const CLIENT_ID = 'spiffe://example.org/probe/client';

export interface ProbePki {
  ca: TestCa;
  dir: string;
  bundlePem: string;
  crlPem: string;
  server: { certPem: string; keyPem: string };
  client: { certPem: string; keyPem: string };
  revoked: { certPem: string; keyPem: string };
  issuer: { certPem: string; keyPem: string };
  /** Paths of the files above in `dir`. */
  files: Record<'bundle' | 'crl' | 'serverCert' | 'serverKey' | 'clientCert' | 'clientKey' | 'revokedCert' | 'revokedKey' | 'issuerCert' | 'issuerKey', string>;
  /** The material for runProbe; `full` adds the issuer and the revoked credential. */
  material(options?: { issuer?: boolean; revoked?: boolean }): CheckedMaterial;
  close(): Promise<void>;
}

/** Every CRL the CA publishes, in PEM (`X509 CRL` blocks, what OpenSSL and nginx read). */
function fetchCrlPem(ca: TestCa): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(new URL('/v1/crl', ca.url), { ca: ca.bundlePem, agent: false, headers: { accept: 'application/x-pem-file' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`GET /v1/crl: ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

async function waitForCrlListing(ca: TestCa, serial: string): Promise<string> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const pem = await fetchCrlPem(ca);
    const count = (pem.match(/-----BEGIN X509 CRL-----/g) ?? []).length;
    // The revocation is published once the intermediate's CRL lists the serial (checked by parsing).
    const listed = pemBlocks(pem, 'X509 CRL').some((der) => parseCrl(der).revoked.has(serialKey(serial)));
    if (count >= 2 && listed) return pem;
    if (Date.now() > deadline) throw new Error(`the CRL does not list ${serial} after 10 s:\n${pem}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export async function startProbePki(): Promise<ProbePki> {
  const ca = await startTestCa();
  const server = await enrollWorkload(ca, SERVER_ID, { ipAddresses: ['127.0.0.1'], dnsNames: ['localhost'] });
  const client = await enrollWorkload(ca, CLIENT_ID);
  const revoked = await enrollWorkload(ca, CLIENT_ID);
  for (const workload of [server, client, revoked]) workload.client.close();
  await ca.admin.revoke({ serial: revoked.serial, reason: 'keyCompromise' });
  const crlPem = await waitForCrlListing(ca, revoked.serial);
  const { issuer } = ca.running.authority.keyring;
  const issuerPem = { certPem: certificatesToPem([issuer.certDer]), keyPem: issuer.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string };

  const dir = mkdtempSync(join(tmpdir(), 'tlsmesh-probe-'));
  const write = (name: string, content: string): string => {
    const path = join(dir, name);
    writeFileSync(path, content, { mode: 0o600 });
    return path;
  };
  const files = {
    bundle: write('bundle.pem', ca.bundlePem),
    crl: write('crls.pem', crlPem),
    serverCert: write('server-cert.pem', server.certPem),
    serverKey: write('server-key.pem', server.keyPem),
    clientCert: write('client-cert.pem', client.certPem),
    clientKey: write('client-key.pem', client.keyPem),
    revokedCert: write('revoked-cert.pem', revoked.certPem),
    revokedKey: write('revoked-key.pem', revoked.keyPem),
    issuerCert: write('issuer-cert.pem', issuerPem.certPem),
    issuerKey: write('issuer-key.pem', issuerPem.keyPem),
  };
  const pair = (w: { certPem: string; keyPem: string }) => ({ certPem: w.certPem, keyPem: w.keyPem });
  return {
    ca,
    dir,
    bundlePem: ca.bundlePem,
    crlPem,
    server: pair(server),
    client: pair(client),
    revoked: pair(revoked),
    issuer: issuerPem,
    files,
    material: (options = {}) =>
      checkMaterial({
        bundlePem: ca.bundlePem,
        client: pair(client),
        ...(options.issuer !== false ? { issuer: issuerPem } : {}),
        ...(options.revoked !== false ? { revoked: pair(revoked) } : {}),
      }),
    async close() {
      await ca.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
