/**
 * One TLS connection with a given offer (client credential, versions, suites), and what happened:
 * where it stopped (TCP, handshake, after the handshake) and what the server did.
 *
 * After a completed handshake the conversation (plain TLS, HTTP or gRPC) decides what is said and
 * what counts as an answer. Only application data counts: TLS 1.3 session tickets are handshake
 * messages, which Node never emits as 'data', so a ticket is never taken for an answer.
 */
import { X509Certificate } from 'node:crypto';
import { connect, type ConnectionOptions, type PeerCertificate, type SecureVersion, type TLSSocket } from 'node:tls';
import type { Credential } from './material.js';
import { failureOf, type Failure } from './signals.js';
import type { ProbeTarget } from './target.js';

/** What the server sent back after the handshake, in the application protocol. */
export interface Answer {
  /** Printable summary: a status line, a gRPC status, or the first bytes. */
  summary: string;
  /** Set when the answer itself is a refusal (HTTP 400/401/403, gRPC UNAUTHENTICATED…): why. */
  refusal: string | undefined;
}

/** How a conversation ended. */
export type ConversationEnd = { kind: 'answered'; answer: Answer } | { kind: 'ended'; detail: string | undefined };

/** What is said after the handshake, and what counts as an answer. */
export interface Conversation {
  readonly name: 'tls' | 'http' | 'grpc';
  /** ALPN protocols to offer. */
  readonly alpn: string[] | undefined;
  /**
   * True when the conversation asks something and waits for a reply (HTTP, gRPC): the wait after
   * the handshake is then the connection timeout. False for plain TLS, where silence is the
   * expected outcome and the shorter settle wait applies.
   */
  readonly expectsAnswer: boolean;
  /**
   * Starts on an established socket; resolves once an answer arrived or the connection ended.
   * Attach listeners synchronously: a refusal can arrive in the same tick as the handshake.
   */
  converse(socket: TLSSocket): Promise<ConversationEnd>;
}

export interface AttemptSettings {
  target: ProbeTarget;
  /** Trust anchors: the handshake's own verdict on the server's chain (`authorized`) comes from them. */
  bundlePem: string;
  /** Limit on TCP + handshake, and on waiting for an answer to a request. */
  timeoutMs: number;
  /** How long a plain TLS connection must stay open, without a refusal, to count as accepted. */
  settleMs: number;
}

export interface Offer {
  credential?: Credential | undefined;
  minVersion?: SecureVersion;
  maxVersion?: SecureVersion;
  /** OpenSSL cipher list for TLS ≤ 1.2 (TLS 1.3 suites are not restricted). */
  ciphers?: string;
}

export interface Handshake {
  protocol: string;
  cipher: string;
  /** The ALPN protocol the server chose, or null. */
  alpn: string | null;
  /** The chain the server presented, leaf first. */
  chain: X509Certificate[];
  /** OpenSSL's verdict on that chain against the bundle. */
  authorized: boolean;
  authorizationError: string | null;
}

export type AfterHandshake =
  | { kind: 'answered'; answer: Answer }
  | { kind: 'refused'; failure: Failure; detail: string | undefined }
  | { kind: 'silent'; waitedMs: number };

export type Attempt =
  | { stage: 'unreachable'; code: string }
  | { stage: 'unsupported'; code: string; message: string }
  | { stage: 'timeout'; during: 'connect' | 'handshake' }
  | { stage: 'handshake-failed'; failure: Failure }
  | { stage: 'established'; handshake: Handshake; after: AfterHandshake };

/** Connects once with `offer`, converses, and reports; never rejects, always closes the socket. */
export function attemptTls(settings: AttemptSettings, offer: Offer, conversation: Conversation): Promise<Attempt> {
  return new Promise((resolve) => {
    let socket: TLSSocket | undefined;
    let settled = false;
    let tcpConnected = false;
    let handshake: Handshake | undefined;
    /** The first failure after the handshake: an alert usually comes before the close. */
    let lateFailure: Failure | undefined;
    const timers: NodeJS.Timeout[] = [];

    const finish = (attempt: Attempt): void => {
      if (settled) return;
      settled = true;
      for (const timer of timers) clearTimeout(timer);
      socket?.destroy();
      resolve(attempt);
    };

    const options: ConnectionOptions = {
      host: settings.target.host,
      port: settings.target.port,
      ...(settings.target.servername !== undefined ? { servername: settings.target.servername } : {}),
      ca: settings.bundlePem,
      ...(offer.credential !== undefined ? { cert: offer.credential.certPem, key: offer.credential.keyPem } : {}),
      ...(offer.minVersion !== undefined ? { minVersion: offer.minVersion } : {}),
      ...(offer.maxVersion !== undefined ? { maxVersion: offer.maxVersion } : {}),
      ...(offer.ciphers !== undefined ? { ciphers: offer.ciphers } : {}),
      ...(conversation.alpn !== undefined ? { ALPNProtocols: conversation.alpn } : {}),
      // The prober judges the server's chain and SPIFFE ID in checks of their own, from the
      // `authorized` verdict and the chain recorded below; every other check must run whatever
      // the server presents. Nothing secret is sent to an unverified server: a certificate is
      // public, the handshake signature cannot be replayed, and requests carry no credentials.
      rejectUnauthorized: false, // tlsmesh-audit-ignore node/reject-unauthorized-false: the prober judges the chain itself from the authorized verdict (see above)
      checkServerIdentity: () => undefined, // tlsmesh-audit-ignore node/check-server-identity-noop: the prober checks the SPIFFE ID itself; nothing secret is sent
    };
    try {
      socket = connect(options);
    } catch (error) {
      // An impossible offer (no cipher of the list is available here) throws before connecting.
      const failure = failureOf(error as Error);
      resolve(failure.kind === 'unsupported' ? { stage: 'unsupported', code: failure.code, message: failure.message } : { stage: 'unsupported', code: 'ERR_INVALID_OFFER', message: String(error) });
      return;
    }
    const connected = socket;

    timers.push(setTimeout(() => finish({ stage: 'timeout', during: tcpConnected ? 'handshake' : 'connect' }), settings.timeoutMs));
    connected.once('connect', () => (tcpConnected = true));
    connected.on('error', (error: Error) => {
      const failure = failureOf(error);
      if (handshake !== undefined) {
        if (failure.kind !== 'unsupported') lateFailure ??= failure;
        return;
      }
      if (failure.kind === 'unsupported') finish({ stage: 'unsupported', code: failure.code, message: failure.message });
      else if (!tcpConnected) finish({ stage: 'unreachable', code: 'code' in failure ? failure.code : failure.kind });
      else finish({ stage: 'handshake-failed', failure });
    });
    connected.once('close', () => {
      if (handshake === undefined) finish(tcpConnected ? { stage: 'handshake-failed', failure: { kind: 'closed' } } : { stage: 'unreachable', code: 'closed' });
    });
    connected.once('secureConnect', () => {
      const established = (handshake = handshakeOf(connected));
      clearTimeout(timers.shift());
      const waitMs = conversation.expectsAnswer ? settings.timeoutMs : settings.settleMs;
      timers.push(setTimeout(() => finish({ stage: 'established', handshake: established, after: { kind: 'silent', waitedMs: waitMs } }), waitMs));
      void conversation.converse(connected).then((end) => {
        if (end.kind === 'answered') finish({ stage: 'established', handshake: established, after: { kind: 'answered', answer: end.answer } });
        else finish({ stage: 'established', handshake: established, after: { kind: 'refused', failure: lateFailure ?? { kind: 'closed' }, detail: end.detail } });
      });
    });
  });
}

function handshakeOf(socket: TLSSocket): Handshake {
  const cipher = socket.getCipher();
  return {
    protocol: socket.getProtocol() ?? 'unknown',
    cipher: cipher.name,
    alpn: socket.alpnProtocol || null,
    chain: peerChain(socket),
    authorized: socket.authorized,
    authorizationError: socket.authorizationError === undefined || socket.authorizationError === null ? null : String(socket.authorizationError),
  };
}

/** The certificates the server presented, leaf first (Node links them through issuerCertificate). */
function peerChain(socket: TLSSocket): X509Certificate[] {
  const chain: X509Certificate[] = [];
  const seen = new Set<string>();
  let peer: (PeerCertificate & { issuerCertificate?: PeerCertificate }) | undefined = socket.getPeerCertificate(true);
  while (peer?.raw !== undefined && !seen.has(peer.fingerprint256)) {
    seen.add(peer.fingerprint256);
    chain.push(new X509Certificate(peer.raw));
    peer = peer.issuerCertificate;
  }
  return chain;
}
