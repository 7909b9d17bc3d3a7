/**
 * How every tlsmesh client opens a connection: the current identity's SecureContext (built once
 * per identity), the server's SPIFFE ID checked, and TLS sessions resumed from one cache per
 * client. A session is reused only with the identity it was made under (after a rotation the
 * server must see the new certificate; after a new CRL the server's certificate must be checked
 * against it) and only for the same destination and server matcher (Node skips
 * `checkServerIdentity`, where the SPIFFE ID and the CRL are checked, on a resumed session).
 */
import { isIP } from 'node:net';
import { connect, type ConnectionOptions, type PeerCertificate, type TLSSocket } from 'node:tls';
import type { Identity } from './identity.js';
import type { IdentitySource } from './identity-source.js';
import type { CompiledMatcher } from './spiffe-matcher.js';
import { TlsmeshError } from '../errors.js';
import { clientTlsOptions, type RevocationOptions } from './tls-options.js';

export class ClientSessionCache {
  readonly #entries = new Map<string, { identity: Identity; session: Buffer }>();
  readonly #max: number;

  constructor(maxEntries = 100) {
    this.#max = maxEntries;
  }

  get(key: string, identity: Identity): Buffer | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.identity !== identity) {
      this.#entries.delete(key); // made with an older certificate: never offered again
      return undefined;
    }
    return entry.session;
  }

  set(key: string, identity: Identity, session: Buffer): void {
    this.#entries.delete(key);
    if (this.#entries.size >= this.#max) {
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
    this.#entries.set(key, { identity, session });
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }

  get size(): number {
    return this.#entries.size;
  }
}

export interface Destination {
  host: string;
  port: number;
  /** SNI; never an IP address (RFC 6066). Defaults to `host` when it is a name. */
  servername?: string | undefined;
  ALPNProtocols: string[];
}

const identityOfSocket = new WeakMap<TLSSocket, Identity>();
const serverSerialOfSocket = new WeakMap<TLSSocket, string>();

/**
 * The serial of the server certificate a connection was made with (as OpenSSL prints it), read
 * once and then remembered: it is checked against every new CRL and, by MtlsHttpsAgent, before
 * every reuse of a kept-alive socket, and `getPeerCertificate()` costs 20-30 µs a call.
 *
 * Never `getPeerX509Certificate()` on these sockets: on a client, Node takes the leaf out of
 * OpenSSL's peer chain to build it (`sk_X509_delete` in X509Certificate::GetPeerCert, the code
 * behind nodejs/node#65579; seen on Node 20.20), after which `getPeerCertificate()` answers `{}`
 * — and a connection whose server serial is unknown can never be found revoked. connectMtls
 * records the serial at secureConnect, before any other code runs.
 */
export function serverSerialOf(socket: TLSSocket): string | undefined {
  let serial = serverSerialOfSocket.get(socket);
  if (serial === undefined) {
    // null once the socket has lost its handle: unknown, and not remembered.
    serial = (socket.getPeerCertificate() as Partial<PeerCertificate> | null)?.serialNumber;
    if (serial !== undefined) serverSerialOfSocket.set(socket, serial);
  }
  return serial;
}

/**
 * May a kept-alive client socket carry another request? Not when it was opened with an older
 * certificate or bundle (the server must see the new ones), nor when the server's certificate
 * has been revoked since. A new CRL alone does not retire the others.
 */
export function connectionStillGood(socket: TLSSocket, current: Identity): boolean {
  const opened = identityOfSocket.get(socket);
  if (opened === undefined || !opened.sameCredentialsAs(current)) return false;
  const serial = serverSerialOf(socket);
  return serial === undefined || !current.isRevoked(serial);
}

// Open client sockets by source, so a CRL update can end those to a server it revokes (undici and
// http2 give no per-request hook on the connection; the https Agent also checks on reuse).
const openSockets = new WeakMap<IdentitySource, Set<TLSSocket>>();

function trackOpenSocket(source: IdentitySource, socket: TLSSocket): void {
  let sockets = openSockets.get(source);
  if (!sockets) {
    const set = (sockets = new Set());
    openSockets.set(source, set);
    source.subscribe((identity) => {
      for (const open of set) {
        const serial = serverSerialOf(open);
        if (serial !== undefined && identity.isRevoked(serial)) {
          open.destroy(new TlsmeshError('ERR_CERT_REVOKED', `the server certificate (serial ${serial.toLowerCase()}) has been revoked; connection closed`));
        }
      }
    });
  }
  sockets.add(socket);
  socket.once('close', () => sockets.delete(socket));
}

/**
 * Opens a TLS connection with the source's current identity. `extra` carries transport options
 * that are not about TLS (local address, lookup, timeout…); TLS settings always come from here.
 */
export function connectMtls(
  source: IdentitySource,
  matcher: CompiledMatcher,
  cache: ClientSessionCache,
  destination: Destination,
  extra: ConnectionOptions = {},
  revocation: RevocationOptions = {},
): TLSSocket {
  const identity = source.current();
  const servername = destination.servername || (isIP(destination.host) === 0 ? destination.host : undefined);
  const key = `${servername ?? destination.host}:${destination.port}|${destination.ALPNProtocols.join(',')}|${matcher.key}`;
  const session = cache.get(key, identity);
  const tls = clientTlsOptions(identity, matcher, revocation);
  // The serial of the certificate checkServerIdentity accepted (full handshakes; Node skips the
  // check on a resumed session, and the serial is read at secureConnect instead).
  let checkedSerial: string | undefined;
  const checkServerIdentity = tls.checkServerIdentity!;
  const socket = connect({
    ...extra,
    host: destination.host,
    port: destination.port,
    ...(servername !== undefined ? { servername } : {}),
    ALPNProtocols: destination.ALPNProtocols,
    ...tls,
    checkServerIdentity: (host, certificate) => {
      const problem = checkServerIdentity(host, certificate);
      if (problem === undefined) checkedSerial = certificate.serialNumber;
      return problem;
    },
    ...(session ? { session } : {}),
  });
  identityOfSocket.set(socket, identity);
  trackOpenSocket(source, socket);
  // Registered before any caller's listener: checked again against the newest CRL once the
  // handshake is done, because one may have arrived while it ran (checkServerIdentity saw the CRL
  // of `identity`), and because a resumed session skips checkServerIdentity altogether.
  socket.once('secureConnect', () => {
    // Remembered now, before any other code can touch the peer chain (see serverSerialOf).
    if (checkedSerial !== undefined) serverSerialOfSocket.set(socket, checkedSerial);
    else serverSerialOf(socket);
    const current = source.current();
    const failClosedStale = revocation.staleCrl === 'fail-closed' && current.crlStale((revocation.clock ?? Date.now)());
    // Same identity, same CRL: checkServerIdentity ran against it (for a resumed session, when the
    // session was first made), so the common case costs nothing more per connection.
    if (current === identity && !failClosedStale) return;
    const serial = serverSerialOf(socket);
    if (serial !== undefined && current.isRevoked(serial)) {
      socket.destroy(new TlsmeshError('ERR_CERT_REVOKED', `the server certificate (serial ${serial.toLowerCase()}) is revoked`));
    } else if (failClosedStale) {
      socket.destroy(new TlsmeshError('ERR_CRL_STALE', `the CRL expired at ${current.crlNextUpdate!.toISOString()} and no newer one has arrived (staleCrl: fail-closed)`));
    }
  });
  // Not evicted when a connection ends in an error: clients close on errors that have nothing to
  // do with TLS (and undici closes every `Connection: close` socket that way), and a ticket the
  // server no longer takes costs only a full handshake.
  socket.on('session', (next: Buffer) => cache.set(key, identity, next));
  return socket;
}
