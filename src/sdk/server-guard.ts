/**
 * What every tlsmesh server does around node:tls, whatever protocol runs on top:
 *
 * - verifies each client in JavaScript before the protocol layer sees the connection, and closes
 *   refused ones with a warn log naming the reason and the peer (TLS itself is told to let the
 *   handshake finish — `rejectUnauthorized: false` — only so the reason can be logged; the check
 *   here is what enforces, and nothing else is handed the socket);
 * - swaps the whole option set on every identity update (`setSecureContext` with all options);
 * - remembers which identity each connection was accepted under, so connections made before a
 *   new certificate or bundle, or older than the maximum age, are recycled by the protocol layer;
 * - enforces the CRL on every connection, resumed ones included (OpenSSL does not verify a
 *   resumed session again), and lets the protocol layer refuse each request or call on a
 *   connection whose client has been revoked since it connected. Because of that per-connection
 *   check, the session ticket keys survive CRL updates (tls-options.ts TicketKeys).
 */
import { X509Certificate } from 'node:crypto';
import type { DetailedPeerCertificate, Server as TlsServer, TLSSocket } from 'node:tls';
import type { Logger } from '../observe/logger.js';
import { parseSpiffeId } from '../pki/index.js';
import type { Identity } from './identity.js';
import type { IdentitySource } from './identity-source.js';
import { peerIdentity, recordPeer, type PeerIdentity } from './peer.js';
import { reasonForHandshakeError, reasonForVerifyError, type Refusal, type RefusalReason } from './refusal.js';
import { sdkLogger } from './report.js';
import { changesBetween, identityMetricSources } from './identity-metrics.js';
import { sdkMetrics, type SdkMetrics, type Transport } from '../observe/metrics.js';
import { peerSpiffeId, spiffeMatcher, type CompiledMatcher, type SpiffeMatchers } from './spiffe-matcher.js';
import { serverTlsOptions, TicketKeys, type ServerTlsOptions, type StaleCrlPolicy } from './tls-options.js';

export interface MtlsServerOptions {
  /** Client SPIFFE IDs accepted at all (per-route rules go in the authz middleware). Default: any ID in the server's own trust domain. */
  allow?: SpiffeMatchers;
  logger?: Logger;
  /** Called for every refused connection, after it is logged. */
  onRefusal?: (refusal: Refusal) => void;
  /** Connections older than this are recycled (default 1 h, well inside a 24 h leaf's last third). */
  maxConnectionAgeMs?: number;
  /** For certificate validity checks on resumed sessions (default Date.now). */
  clock?: () => number;
  /** When the CRL is past its nextUpdate and nothing newer has come (default `keep-last-good`; see StaleCrlPolicy). */
  staleCrl?: StaleCrlPolicy;
  /** Called once each time the CRL goes stale, after the error is logged (wire it to an alert). */
  onCrlStale?: (nextUpdate: Date) => void;
  /** Where refusals, rotations and the identity's expiry are counted (default: `sdkMetrics()`). */
  metrics?: SdkMetrics;
}

export const DEFAULT_MAX_CONNECTION_AGE_MS = 60 * 60_000;

interface ConnectionStamp {
  identity: Identity;
  acceptedAt: number;
}

export interface ServerGuard {
  /** The option set to create the server with (built from the current identity). */
  readonly initialOptions: ServerTlsOptions;
  /** Installs verification and live updates on the created server. */
  attach(server: TlsServer): void;
  /** True when a connection was accepted under an older identity or is past its maximum age. */
  shouldRecycle(socket: TLSSocket): boolean;
  /**
   * The socket whose protocol listeners are running right now: node:http2 emits 'session'
   * synchronously from its connection listener, and `session.socket` is only a proxy.
   */
  acceptingSocket(): TLSSocket | undefined;
  /** Runs after each identity update has been applied (protocol layers recycle their connections). */
  onUpdate(listener: () => void): void;
  /**
   * For each request or call: null when the connection's client may go on; otherwise a refusal
   * (revoked since it connected, or the CRL is stale under `fail-closed`), already logged.
   */
  checkRequest(socket: TLSSocket): Refusal | null;
  readonly logger: Logger;
}

export function createServerGuard(source: IdentitySource, options: MtlsServerOptions, transport: Transport = 'https'): ServerGuard {
  const logger = sdkLogger(options.logger);
  const metrics = options.metrics ?? sdkMetrics();
  const clock = options.clock ?? Date.now;
  const maxAgeMs = options.maxConnectionAgeMs ?? DEFAULT_MAX_CONNECTION_AGE_MS;
  const allowed = options.allow === undefined ? undefined : spiffeMatcher(options.allow);
  const sameTrustDomain = new Map<string, CompiledMatcher>();
  const allowedNow = (): CompiledMatcher => {
    if (allowed) return allowed;
    const trustDomain = source.current().trustDomain;
    let matcher = sameTrustDomain.get(trustDomain);
    if (!matcher) sameTrustDomain.set(trustDomain, (matcher = spiffeMatcher({ trustDomain })));
    return matcher;
  };
  const ticketKeys = new TicketKeys({ revocationCheckedPerConnection: true });
  const staleCrl = options.staleCrl ?? 'keep-last-good';
  const revocation = { staleCrl, clock };
  const stamps = new WeakMap<TLSSocket, ConnectionStamp>();
  const updateListeners: (() => void)[] = [];
  let accepting: TLSSocket | undefined;

  // rejectUnauthorized: false only so a refused client can be logged with its reason: `verify`
  // below enforces, and no socket reaches the protocol layer without passing it (see the top).
  // tlsmesh-audit-ignore node/reject-unauthorized-false: verify() refuses every unauthorized socket before the protocol layer; false only so the reason can be logged
  const fullOptions = (identity: Identity): ServerTlsOptions => ({ ...serverTlsOptions(identity, ticketKeys.for(identity), revocation), rejectUnauthorized: false });

  const refuse = (socket: TLSSocket, reason: RefusalReason, detail: string, spiffeId?: string): Refusal => {
    const refusal: Refusal = { reason, peer: peerAddress(socket), detail, ...(spiffeId !== undefined ? { spiffeId } : {}) };
    logger.warn(
      { event: 'mtls.refused', reason, peer: refusal.peer, detail, ...(spiffeId !== undefined ? { spiffe_id: spiffeId } : {}) },
      `refused ${refusal.peer}: ${reason} (${detail})`,
    );
    metrics.refused(transport, reason);
    options.onRefusal?.(refusal);
    return refusal;
  };

  /** The CRL verdict on a client serial under the current identity, or null when it may pass. */
  const revocationProblem = (serial: string, now: number): { reason: RefusalReason; detail: string } | null => {
    const identity = source.current();
    if (identity.isRevoked(serial)) return { reason: 'revoked', detail: `the certificate (serial ${serial.toLowerCase()}) is in the CRL` };
    if (staleCrl === 'fail-closed' && identity.crlStale(now)) {
      return { reason: 'crl-unusable', detail: `the CRL expired at ${identity.crlNextUpdate!.toISOString()} and no newer one has arrived (staleCrl: fail-closed)` };
    }
    return null;
  };

  /** The peer's identity when the connection may proceed; otherwise refuses and returns null. */
  const verify = (socket: TLSSocket): PeerIdentity | null => {
    const certificate = socket.getPeerCertificate();
    if (!certificate || Object.keys(certificate).length === 0) {
      refuse(socket, 'no-certificate', 'the client sent no certificate');
      return null;
    }
    if (!socket.authorized) {
      const code = String(socket.authorizationError);
      refuse(socket, refinedReason(reasonForVerifyError(code), socket, source.current()), code);
      return null;
    }
    // A resumed session is not verified again by OpenSSL: check the dates here too.
    const now = clock();
    const notAfter = new Date(certificate.valid_to);
    if (notAfter.getTime() < now) {
      refuse(socket, 'expired', `the certificate expired at ${notAfter.toISOString()}`);
      return null;
    }
    if (new Date(certificate.valid_from).getTime() > now) {
      refuse(socket, 'not-yet-valid', `the certificate is valid from ${certificate.valid_from}`);
      return null;
    }
    const revoked = revocationProblem(certificate.serialNumber, now);
    if (revoked) {
      refuse(socket, revoked.reason, revoked.detail);
      return null;
    }
    const found = peerSpiffeId(certificate);
    if (!('id' in found)) {
      refuse(socket, 'identity-not-allowed', found.problem);
      return null;
    }
    const matcher = allowedNow();
    if (!matcher(found.id)) {
      refuse(socket, 'identity-not-allowed', `${found.id} is not ${matcher.description}`, found.id);
      return null;
    }
    const id = parseSpiffeId(found.id);
    return { spiffeId: id.uri, trustDomain: id.trustDomain, path: id.path, serial: certificate.serialNumber.toLowerCase(), notAfter };
  };

  const attach = (server: TlsServer): void => {
    // The protocol layer's listener (http, http2) was registered when the server was created:
    // take it off and hand it only sockets that pass.
    const protocolListeners = server.listeners('secureConnection') as ((socket: TLSSocket) => void)[];
    server.removeAllListeners('secureConnection');
    server.on('secureConnection', (socket: TLSSocket) => {
      const peer = verify(socket);
      if (!peer) {
        socket.destroy();
        return;
      }
      recordPeer(socket, peer);
      stamps.set(socket, { identity: source.current(), acceptedAt: clock() });
      accepting = socket;
      try {
        for (const listener of protocolListeners) listener.call(server, socket);
      } finally {
        accepting = undefined;
      }
    });

    server.on('tlsClientError', (error: Error & { code?: string }, socket: TLSSocket) => {
      const reason = reasonForHandshakeError(error);
      if (reason) refuse(socket, reason, error.code ?? error.message);
      else logger.debug({ event: 'mtls.aborted', peer: peerAddress(socket), detail: error.code ?? error.message }, 'client left during the handshake');
    });

    // OpenSSL refuses every handshake once the CRL it holds is past nextUpdate: at that moment,
    // apply the options again (which leave the stale CRL out under keep-last-good) and alert.
    let staleTimer: NodeJS.Timeout | undefined;
    const watchCrlExpiry = (identity: Identity): void => {
      clearTimeout(staleTimer);
      const nextUpdate = identity.crlNextUpdate;
      if (nextUpdate === undefined) return;
      const fire = (): void => {
        if (source.current() !== identity) return;
        const wait = nextUpdate.getTime() - clock();
        if (wait > 0) {
          staleTimer = setTimeout(fire, Math.min(wait, 2 ** 31 - 1)).unref();
          return;
        }
        logger.error(
          { event: 'crl.stale', nextUpdate: nextUpdate.toISOString(), staleCrl },
          staleCrl === 'fail-closed'
            ? 'the CRL is past its nextUpdate and no newer one has arrived: refusing every client (staleCrl: fail-closed)'
            : 'the CRL is past its nextUpdate and no newer one has arrived: still refusing the serials it lists, but revocations since then are unknown (staleCrl: keep-last-good)',
        );
        apply(identity);
        options.onCrlStale?.(nextUpdate);
      };
      fire();
    };

    const apply = (identity: Identity): boolean => {
      try {
        server.setSecureContext(fullOptions(identity));
        return true;
      } catch (error) {
        logger.error({ event: 'mtls.update_failed', err: (error as Error).message, serial: identity.serial }, 'could not apply the new identity; keeping the previous one');
        return false;
      }
    };

    let applied = source.current();
    const removeSources = metrics.addSources(identityMetricSources(source));
    const unsubscribe = source.subscribe((identity) => {
      if (!apply(identity)) return;
      for (const what of changesBetween(applied, identity)) metrics.rotated(what);
      if (identity.sameCredentialsAs(applied)) {
        logger.info({ event: 'mtls.crl_updated', entries: identity.revokedCount, nextUpdate: identity.crlNextUpdate?.toISOString() }, 'CRL updated');
      } else {
        logger.info({ event: 'mtls.identity_updated', spiffe_id: identity.spiffeId, serial: identity.serial, notAfter: identity.notAfter.toISOString() }, 'serving a new identity');
      }
      applied = identity;
      watchCrlExpiry(identity);
      for (const listener of updateListeners) listener();
    });
    watchCrlExpiry(applied);
    server.once('close', () => {
      unsubscribe();
      removeSources();
      clearTimeout(staleTimer);
    });
  };

  return {
    initialOptions: fullOptions(source.current()),
    attach,
    shouldRecycle(socket) {
      const stamp = stamps.get(socket);
      if (!stamp) return false;
      // A new CRL alone does not recycle anything: revoked clients are refused per request.
      return !stamp.identity.sameCredentialsAs(source.current()) || clock() - stamp.acceptedAt >= maxAgeMs;
    },
    checkRequest(socket) {
      const peer = peerIdentity(socket);
      if (!peer) return null;
      const problem = revocationProblem(peer.serial, clock());
      return problem ? refuse(socket, problem.reason, `${problem.detail}; refused a request on an open connection`, peer.spiffeId) : null;
    },
    acceptingSocket: () => accepting,
    onUpdate: (listener) => updateListeners.push(listener),
    logger,
  };
}

/**
 * With a CRL configured, OpenSSL reports a chain from an unknown CA as UNABLE_TO_GET_CRL (it
 * looks for the stranger's CRL before it gives up on the chain): say `unknown-ca` when the peer's
 * chain reaches no root of the bundle, so the operator is not sent after CRLs.
 */
export function refinedReason(reason: RefusalReason, socket: TLSSocket, identity: Identity): RefusalReason {
  if (reason !== 'crl-unusable') return reason;
  let certificate: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  const seen = new Set<string>();
  while (certificate?.raw !== undefined && !seen.has(certificate.fingerprint256)) {
    seen.add(certificate.fingerprint256);
    const x509 = new X509Certificate(certificate.raw);
    if (identity.roots.some((root) => root.fingerprint256 === x509.fingerprint256 || (x509.checkIssued(root) && x509.verify(root.publicKey)))) return reason;
    certificate = certificate.issuerCertificate;
  }
  return 'unknown-ca';
}

function peerAddress(socket: TLSSocket): string {
  // A TLS socket that failed early may have lost its handle; the TCP socket under it still knows.
  const parent = (socket as TLSSocket & { _parent?: { remoteAddress?: string; remotePort?: number } })._parent;
  const address = socket.remoteAddress ?? parent?.remoteAddress ?? 'unknown';
  const port = socket.remotePort ?? parent?.remotePort;
  return port === undefined ? address : `${address}:${port}`;
}
