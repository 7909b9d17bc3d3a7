/** `tlsmesh cert request|renew|inspect|list|revoke` */
import { access } from 'node:fs/promises';
import type { Command } from 'commander';
import { TlsmeshError } from '../errors.js';
import { enrollWithToken, renewCredentials, writeCredentials, type Credentials } from '../client/enroll.js';
import { credentialPathsIn } from '../client/paths.js';
import { isKeyType, KEY_TYPES, type KeyType } from '../pki/index.js';
import { adminClient, ensureWritableDir, readText, spiffeIdOfChain, type ConnectionFlags } from './context.js';
import { certificatesFromPem, chainProblem, describeCertificate, explainClientVerdict, fetchPeerChain, type CertificateDescription, type PeerChain } from './inspect.js';
import { examples, printJson } from './output.js';

/** A workload has no data dir to read the URL from: --ca or TLSMESH_CA_URL. */
function workloadCaUrl(flag: string | undefined): string {
  const url = flag ?? process.env['TLSMESH_CA_URL'];
  if (url === undefined) throw new TlsmeshError('ERR_CONFIG', 'no CA URL: pass --ca URL or set TLSMESH_CA_URL');
  return url;
}

function keyTypeOf(value: string): KeyType {
  if (!isKeyType(value)) throw new TlsmeshError('ERR_CONFIG', `--key-type must be one of ${KEY_TYPES.join(', ')}`);
  return value;
}

function summary(issued: { spiffeId: string; serial: string; notAfter: string }, dir: string): string {
  return `certificate for ${issued.spiffeId} (serial ${issued.serial}, valid until ${issued.notAfter}) written to ${dir}/{cert,key,bundle}.pem\n`;
}

function printDescription(description: CertificateDescription, index: number): void {
  const lines = [
    `[${index}] ${description.isCa ? 'CA certificate' : 'leaf certificate'}`,
    `    subject     ${description.subject || '(empty)'}`,
    `    issuer      ${description.issuer}`,
    ...(description.spiffeIds.length > 0 ? [`    SPIFFE ID   ${description.spiffeIds.join(', ')}`] : []),
    ...(description.dnsNames.length > 0 ? [`    DNS         ${description.dnsNames.join(', ')}`] : []),
    ...(description.ipAddresses.length > 0 ? [`    IP          ${description.ipAddresses.join(', ')}`] : []),
    `    valid       ${description.notBefore} → ${description.notAfter} (${description.timeLeft})`,
    `    key         ${description.keyType}`,
    `    serial      ${description.serial}`,
    `    sha256      ${description.sha256}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

const HOST_PORT = /^(?:\[([^\]]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/;

export function registerCertCommands(program: Command): void {
  const cert = program
    .command('cert')
    .description('workload certificates')
    .addHelpText(
      'after',
      examples([
        'tlsmesh cert request --ca https://127.0.0.1:8443 --bundle tlsmesh-ca/bundle.pem --token-file token --out ./tls',
        'tlsmesh cert renew --ca https://127.0.0.1:8443 --dir ./tls',
        'tlsmesh cert inspect ./tls/cert.pem --bundle ./tls/bundle.pem',
        'tlsmesh cert list --status valid',
      ]),
    );

  cert
    .command('request')
    .description('enrol with a one-time token: generate a key here, get a certificate, write cert/key/bundle')
    .option('--ca <url>', 'CA URL (default: TLSMESH_CA_URL)')
    .requiredOption('--bundle <file>', "the CA's trust bundle (bundle.pem from `ca init`), obtained out of band")
    .option('--token-file <file>', 'file holding the token (or set TLSMESH_TOKEN; never on the command line)')
    .requiredOption('--out <dir>', 'directory to write cert.pem, key.pem (0600) and bundle.pem into')
    .option('--key-type <type>', `key type: ${KEY_TYPES.join(', ')}`, 'p256')
    .addHelpText(
      'after',
      examples([
        'tlsmesh cert request --ca https://ca.internal:8443 --bundle bundle.pem --token-file /run/secrets/token --out /etc/billing/tls',
        'TLSMESH_TOKEN=… TLSMESH_CA_URL=https://127.0.0.1:8443 tlsmesh cert request --bundle bundle.pem --out ./tls',
      ]),
    )
    .action(async (flags: { ca?: string; bundle: string; tokenFile?: string; out: string; keyType: string }) => {
      const token = flags.tokenFile !== undefined ? await readText(flags.tokenFile, 'the token') : process.env['TLSMESH_TOKEN'];
      if (!token?.trim()) throw new TlsmeshError('ERR_TOKEN_MALFORMED', 'no token: pass --token-file FILE or set TLSMESH_TOKEN');
      const url = workloadCaUrl(flags.ca);
      const bundlePem = await readText(flags.bundle, 'the trust bundle');
      const keyType = keyTypeOf(flags.keyType);
      await ensureWritableDir(flags.out, 'the credentials', true); // before the one-time token is spent
      const result = await enrollWithToken({ url, bundlePem, token, keyType });
      await writeCredentials(flags.out, result);
      process.stdout.write(summary(result.issued, flags.out));
    });

  cert
    .command('renew')
    .description('renew the certificate in a directory over mTLS, with a new key, and replace the files')
    .option('--ca <url>', 'CA URL (default: TLSMESH_CA_URL)')
    .requiredOption('--dir <dir>', 'directory holding cert.pem, key.pem and bundle.pem')
    .option('--key-type <type>', `key type of the new key: ${KEY_TYPES.join(', ')}`, 'p256')
    .addHelpText('after', examples(['tlsmesh cert renew --ca https://ca.internal:8443 --dir /etc/billing/tls', 'tlsmesh cert renew --dir ./tlsmesh-ca/admin   # renews the admin credentials']))
    .action(async (flags: { ca?: string; dir: string; keyType: string }) => {
      const paths = credentialPathsIn(flags.dir);
      const current: Credentials = {
        certPem: await readText(paths.cert, 'the current certificate'),
        keyPem: await readText(paths.key, 'the current key'),
        bundlePem: await readText(paths.bundle, 'the trust bundle'),
      };
      const [leaf] = certificatesFromPem(current.certPem);
      const description = describeCertificate(leaf!, new Date());
      const url = workloadCaUrl(flags.ca);
      const result = await renewCredentials({
        url,
        current,
        spiffeId: spiffeIdOfChain(current.certPem),
        dnsNames: description.dnsNames,
        ipAddresses: description.ipAddresses,
        keyType: keyTypeOf(flags.keyType),
      });
      await writeCredentials(flags.dir, result);
      process.stdout.write(summary(result.issued, flags.dir));
    });

  cert
    .command('inspect')
    .description('explain a certificate chain from a PEM file or a TLS server: identity, SANs, validity, chain')
    .argument('<target>', 'a PEM file, or HOST:PORT of a TLS server')
    .option('--bundle <file>', 'trust bundle to verify the chain against')
    .option('--cert <file>', 'client certificate to present to HOST:PORT')
    .option('--key <file>', 'client key to present to HOST:PORT')
    .option('--expect-id <spiffe-id>', "the SPIFFE ID the certificate (or server) should have")
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      examples([
        'tlsmesh cert inspect ./tls/cert.pem --bundle ./tls/bundle.pem',
        'tlsmesh cert inspect 127.0.0.1:8443 --bundle tlsmesh-ca/bundle.pem',
        'tlsmesh cert inspect api.internal:443 --bundle bundle.pem --cert tls/cert.pem --key tls/key.pem --json',
        'tlsmesh cert inspect api.internal:443 --bundle bundle.pem --cert tls/cert.pem --key tls/key.pem --expect-id spiffe://example.org/api',
      ]),
    )
    .action(async (target: string, flags: { bundle?: string; cert?: string; key?: string; expectId?: string; json?: boolean }) => {
      const now = new Date();
      const bundlePem = flags.bundle !== undefined ? await readText(flags.bundle, 'the trust bundle') : undefined;
      const bundle = bundlePem !== undefined ? certificatesFromPem(bundlePem) : [];
      const fileExists = await access(target).then(() => true, () => false);
      const hostPort = HOST_PORT.exec(target);
      let chain;
      let handshake: Omit<PeerChain, 'chain'> | null = null;
      if (!fileExists && hostPort) {
        const peer = await fetchPeerChain(hostPort[1] ?? hostPort[2]!, Number(hostPort[3]), {
          ...(bundlePem !== undefined ? { bundlePem } : {}),
          ...(flags.cert !== undefined ? { certPem: await readText(flags.cert, 'the client certificate') } : {}),
          ...(flags.key !== undefined ? { keyPem: await readText(flags.key, 'the client key') } : {}),
        });
        const { chain: peerChain, ...rest } = peer;
        chain = peerChain;
        handshake = rest;
      } else {
        chain = certificatesFromPem(await readText(target, 'the certificate file'));
      }
      const descriptions = chain.map((certificate) => describeCertificate(certificate, now));
      const problem = chainProblem(chain, bundle, now);
      const verdict = bundle.length === 0 ? null : problem === null ? 'chain verifies against the bundle' : `chain does NOT verify: ${problem}`;
      const ids = descriptions[0]?.spiffeIds ?? [];
      const identityProblem =
        flags.expectId === undefined || (ids.length === 1 && ids[0] === flags.expectId)
          ? null
          : `identity MISMATCH: expected ${flags.expectId}, the certificate has ${ids.length === 0 ? 'no SPIFFE ID' : ids.join(', ')}`;
      const clientRefused = handshake !== null && handshake.clientVerdict.outcome !== 'kept-open';
      if (flags.json) {
        printJson({ target, certificates: descriptions, verifies: bundle.length === 0 ? null : problem === null, problem, identityProblem, handshake });
      } else {
        descriptions.forEach(printDescription);
        if (handshake) {
          process.stdout.write(`handshake   ${handshake.protocol ?? '?'}; server certificate ${handshake.authorized ? 'trusted' : `not trusted: ${handshake.authorizationError}`}\n`);
          process.stdout.write(`${explainClientVerdict(handshake.clientVerdict, flags.cert !== undefined)}\n`);
        }
        if (verdict) process.stdout.write(`${verdict}\n`);
        if (flags.expectId !== undefined) process.stdout.write(`${identityProblem ?? `identity    ${flags.expectId}: OK`}\n`);
      }
      if ((bundle.length > 0 && problem !== null) || identityProblem !== null || (clientRefused && flags.cert !== undefined)) process.exitCode = 1;
    });

  cert
    .command('list')
    .description('list issued certificates (admin)')
    .option('--id <spiffe-id>', 'only this identity')
    .option('--status <status>', 'valid or revoked')
    .option('--limit <n>', 'at most this many', '100')
    .option('--json', 'print JSON')
    .option('--ca <url>', 'CA URL (default: TLSMESH_CA_URL or the data dir configuration)')
    .option('--data-dir <dir>', 'the CA data directory (for the URL and admin credentials)')
    .option('--admin-dir <dir>', 'directory holding admin cert.pem, key.pem, bundle.pem')
    .addHelpText('after', examples(['tlsmesh cert list', 'tlsmesh cert list --id spiffe://example.org/billing/api --status valid --json']))
    .action(async (flags: ConnectionFlags & { id?: string; status?: string; limit: string; json?: boolean }) => {
      const client = await adminClient(flags);
      try {
        const { certificates } = await client.listCertificates({ spiffeId: flags.id, status: flags.status, limit: flags.limit });
        if (flags.json) return printJson(certificates);
        const now = new Date();
        for (const c of certificates) {
          const left = new Date(c.notAfter).getTime() - now.getTime();
          const state = c.status === 'revoked' ? 'revoked' : left < 0 ? 'expired' : 'valid';
          process.stdout.write(`${c.serial}  ${state.padEnd(8)} ${c.kind.padEnd(9)} ${c.notAfter}  ${c.spiffeId}\n`);
        }
        if (certificates.length === 0) process.stdout.write('no certificates\n');
      } finally {
        client.close();
      }
    });

  cert
    .command('revoke')
    .description('revoke one certificate by serial, or every current certificate of an identity (admin)')
    .option('--serial <hex>', 'serial number (hex, colons allowed)')
    .option('--id <spiffe-id>', 'revoke every unexpired certificate of this identity')
    .option('--reason <reason>', 'RFC 5280 reason, e.g. keyCompromise, superseded', 'unspecified')
    .option('--ca <url>', 'CA URL (default: TLSMESH_CA_URL or the data dir configuration)')
    .option('--data-dir <dir>', 'the CA data directory (for the URL and admin credentials)')
    .option('--admin-dir <dir>', 'directory holding admin cert.pem, key.pem, bundle.pem')
    .addHelpText('after', examples(['tlsmesh cert revoke --serial 4f1c…e2 --reason keyCompromise', 'tlsmesh cert revoke --id spiffe://example.org/billing/api']))
    .action(async (flags: ConnectionFlags & { serial?: string; id?: string; reason: string }) => {
      const client = await adminClient(flags);
      try {
        const { revoked } = await client.revoke({
          ...(flags.serial !== undefined ? { serial: flags.serial } : {}),
          ...(flags.id !== undefined ? { spiffeId: flags.id } : {}),
          reason: flags.reason,
        });
        for (const c of revoked) process.stdout.write(`revoked ${c.serial} ${c.spiffeId}\n`);
        if (revoked.length === 0) process.stdout.write('nothing to revoke\n');
      } finally {
        client.close();
      }
    });
}
