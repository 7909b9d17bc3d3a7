/**
 * `tlsmesh cert inspect FILE|HOST:PORT`: what a certificate chain says, in words, and whether it
 * verifies against a bundle (and why not).
 */
import { X509Certificate } from 'node:crypto';
import { connect, type PeerCertificate, type TLSSocket } from 'node:tls';
import { TlsmeshError } from '../errors.js';
import { fingerprintOf, pemBlocks, spiffeIdsOf } from '../pki/index.js';
import { timeLeftInWords } from './output.js';

export interface CertificateDescription {
  subject: string;
  issuer: string;
  serial: string;
  spiffeIds: string[];
  dnsNames: string[];
  ipAddresses: string[];
  notBefore: string;
  notAfter: string;
  timeLeft: string;
  isCa: boolean;
  keyType: string;
  sha256: string;
}

export function describeCertificate(certificate: X509Certificate, now: Date): CertificateDescription {
  const entries = (certificate.subjectAltName ?? '').split(', ').filter(Boolean);
  const details = certificate.publicKey.asymmetricKeyDetails;
  const keyType =
    certificate.publicKey.asymmetricKeyType === 'ec'
      ? `ECDSA ${details?.namedCurve ?? ''}`
      : certificate.publicKey.asymmetricKeyType === 'rsa'
        ? `RSA ${details?.modulusLength ?? ''}`
        : (certificate.publicKey.asymmetricKeyType ?? 'unknown');
  return {
    subject: certificate.subject.replace(/\n/g, ', '),
    issuer: certificate.issuer.replace(/\n/g, ', '),
    serial: certificate.serialNumber.toLowerCase(),
    spiffeIds: spiffeIdsOf(certificate.subjectAltName),
    dnsNames: entries.filter((entry) => entry.startsWith('DNS:')).map((entry) => entry.slice(4)),
    ipAddresses: entries.filter((entry) => entry.startsWith('IP Address:')).map((entry) => entry.slice(11)),
    notBefore: new Date(certificate.validFrom).toISOString(),
    notAfter: new Date(certificate.validTo).toISOString(),
    timeLeft: timeLeftInWords(new Date(certificate.validTo), now),
    isCa: certificate.ca,
    keyType,
    sha256: fingerprintOf(certificate.raw),
  };
}

/**
 * Walks leaf → issuers, checking each signature and validity window, up to a root in the bundle.
 * Returns null when the chain verifies, else the reason.
 */
export function chainProblem(chain: X509Certificate[], bundle: X509Certificate[], now: Date): string | null {
  if (chain.length === 0) return 'no certificate';
  const pool = [...chain.slice(1), ...bundle];
  let current = chain[0]!;
  for (let depth = 0; depth < 8; depth++) {
    if (now < new Date(current.validFrom)) return `certificate at depth ${depth} is not valid yet (from ${current.validFrom})`;
    if (now > new Date(current.validTo)) return `certificate at depth ${depth} has expired (${current.validTo})`;
    if (bundle.some((root) => root.raw.equals(current.raw))) return null;
    const issuer = pool.find((candidate) => candidate.ca && current.checkIssued(candidate) && current.verify(candidate.publicKey));
    if (!issuer) {
      return bundle.length === 0 ? 'no trust bundle given (--bundle)' : `no issuer for "${current.issuer.replace(/\n/g, ', ')}" in the chain or the bundle (unknown CA)`;
    }
    current = issuer;
  }
  return 'chain is too long';
}

export function certificatesFromPem(text: string): X509Certificate[] {
  const ders = pemBlocks(text, 'CERTIFICATE');
  if (ders.length === 0) throw new TlsmeshError('ERR_CONFIG', 'no CERTIFICATE PEM block found');
  return ders.map((der) => new X509Certificate(der));
}

export interface PeerChain {
  chain: X509Certificate[];
  /** Whether the server's chain verified against the bundle given. */
  authorized: boolean;
  authorizationError: string | null;
  protocol: string | null;
  /** What the server did with us after the handshake (see settle()). */
  clientVerdict: ClientVerdict;
}

export type ClientVerdict =
  | { outcome: 'kept-open' }
  | { outcome: 'alert'; detail: string }
  | { outcome: 'closed' };

/** How the server treated our side after the handshake: kept the connection, sent an alert, or closed it. */
function settle(socket: TLSSocket, waitMs: number): Promise<ClientVerdict> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => finish({ outcome: 'kept-open' }), waitMs);
    const finish = (verdict: ClientVerdict): void => {
      clearTimeout(timer);
      resolve(verdict);
    };
    socket.once('error', (error: Error & { code?: string }) => finish({ outcome: 'alert', detail: error.code ?? error.message }));
    socket.once('close', () => finish({ outcome: 'closed' }));
    socket.once('end', () => finish({ outcome: 'closed' }));
    socket.resume();
  });
}

/** One line on what the server's behaviour after the handshake means for this client. */
export function explainClientVerdict(verdict: ClientVerdict, presentedCertificate: boolean): string {
  switch (verdict.outcome) {
    case 'kept-open':
      return presentedCertificate
        ? 'client       the server kept the connection open: it accepted this client certificate'
        : 'client       the server kept the connection open without a client certificate: it does NOT require mutual TLS';
    case 'alert':
      return `client       REFUSED by the server with a TLS alert (${verdict.detail})${presentedCertificate ? '' : ': it wants a client certificate (pass --cert and --key)'}`;
    case 'closed':
      return `client       REFUSED: the server closed the connection right after the handshake${presentedCertificate ? ' (a tlsmesh server logs the reason: event mtls.refused)' : ': it wants a client certificate (pass --cert and --key)'}`;
  }
}

/**
 * The chain a TLS server presents. Inspection only: the handshake's own verdict is reported, no
 * application data is sent, and the socket is closed at once — which is why this connection does
 * not refuse an unverified server (rejectUnauthorized is off here and nowhere else).
 */
export function fetchPeerChain(
  host: string,
  port: number,
  options: { bundlePem?: string; certPem?: string; keyPem?: string; timeoutMs?: number; settleMs?: number },
): Promise<PeerChain> {
  return new Promise((resolve, reject) => {
    const socket: TLSSocket = connect({
      host,
      port,
      servername: /^[\d.:]+$/.test(host) ? undefined : host,
      ...(options.bundlePem !== undefined ? { ca: options.bundlePem } : {}),
      ...(options.certPem !== undefined ? { cert: options.certPem } : {}),
      ...(options.keyPem !== undefined ? { key: options.keyPem } : {}),
      rejectUnauthorized: false, // tlsmesh-audit-ignore node/reject-unauthorized-false: inspection only, reports the handshake's own verdict and sends no data (see the comment above)
      timeout: options.timeoutMs ?? 10_000,
    });
    socket.once('secureConnect', () => {
      const chain: X509Certificate[] = [];
      let peer: PeerCertificate & { issuerCertificate?: PeerCertificate } = socket.getPeerCertificate(true);
      const seen = new Set<string>();
      while (peer?.raw && !seen.has(peer.fingerprint256)) {
        seen.add(peer.fingerprint256);
        chain.push(new X509Certificate(peer.raw));
        peer = peer.issuerCertificate as typeof peer;
      }
      const authorizationError = socket.authorizationError ? String(socket.authorizationError) : null;
      const result = { chain, authorized: socket.authorized, authorizationError, protocol: socket.getProtocol() };
      // In TLS 1.3 the server judges the client certificate after the client's handshake is
      // done: a refusal arrives as an alert or a close a moment later. Wait a bounded moment.
      settle(socket, options.settleMs ?? 1500).then((clientVerdict) => {
        resolve({ ...result, clientVerdict });
        socket.destroy();
      }, reject);
    });
    socket.once('timeout', () => socket.destroy(new Error(`no TLS handshake with ${host}:${port} within the timeout`)));
    socket.once('error', (cause: Error) => {
      if (!handshakeDone) reject(new TlsmeshError('ERR_CA_UNREACHABLE', `TLS connection to ${host}:${port} failed: ${cause.message}`, { cause }));
    });
    let handshakeDone = false;
    socket.once('secureConnect', () => (handshakeDone = true));
  });
}
