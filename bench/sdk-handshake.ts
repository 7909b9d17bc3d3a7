/**
 * Full and resumed TLS 1.3 handshakes against an mTLS HTTPS server, with the tlsmesh client
 * options (the identity's SecureContext, built once; the server's SPIFFE ID checked).
 *
 * A measured operation is a bare handshake: connect, handshake, close, and wait until the server
 * has closed its side too — it reads our close only after our Finished, so by then it has done
 * all of its handshake work (in TLS 1.3 the client is done before the server has even checked the
 * client certificate). Whether the server accepted those connections is checked on the server
 * (handshakes counted, no refusals). A warm-up operation also sends one `GET /` and must be
 * answered 200 `ok` by a handler that saw the client's SPIFFE ID.
 *
 * Resumed: every connection offers the newest ticket, as the SDK's clients do. Every connection
 * must resume (or, for full handshakes, must not) as asked: `socket.isSessionReused()` is checked
 * on each one.
 */
import { connect } from 'node:tls';
import { clientTlsOptions, type Identity, spiffeMatcher } from 'tlsmesh/sdk';

const REQUEST = 'GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n';

export interface Handshaker {
  /** One connection: handshake and close; with `request`, one request in between. */
  operation(request: boolean): Promise<void>;
  /** Connections that did not resume when asked to, or resumed when asked not to. */
  readonly wrong: number;
  /** Connections done, and how many of them resumed. */
  readonly done: number;
  readonly resumed: number;
}

export function handshaker(port: number, identity: Identity, serverSpiffeId: string, resume: boolean): Handshaker {
  const options = { host: '127.0.0.1', port, ALPNProtocols: ['http/1.1'], ...clientTlsOptions(identity, spiffeMatcher(serverSpiffeId)) };
  let ticket: Buffer | undefined;
  const counts = { wrong: 0, done: 0, resumed: 0 };
  return {
    operation: (request) =>
      new Promise<void>((resolve, reject) => {
        // The first resumed-mode connection has no ticket to offer yet: a full handshake (warm-up).
        const offered = resume && ticket !== undefined;
        const socket = connect({ ...options, ...(offered ? { session: ticket } : {}) });
        let reused = false;
        let answer = '';
        socket.setEncoding('utf8');
        socket.once('secureConnect', () => {
          reused = socket.isSessionReused();
          if (request) socket.write(REQUEST);
          else socket.end();
        });
        socket.on('session', (session: Buffer) => {
          if (resume) ticket = session;
        });
        socket.on('data', (chunk: string) => (answer += chunk));
        socket.once('close', (hadError) => {
          if (hadError) return; // 'error' has rejected
          if (request && (!answer.startsWith('HTTP/1.1 200 ') || !answer.endsWith('\r\n\r\nok'))) {
            reject(new Error(`handshake bench: answered ${JSON.stringify(answer.slice(0, 80))}, expected 200 "ok"`));
            return;
          }
          counts.done++;
          if (reused) counts.resumed++;
          if (reused !== offered) counts.wrong++;
          resolve();
        });
        // `on`, not `once`: a second error must not become an unhandled 'error' event.
        socket.on('error', reject);
      }),
    get wrong() {
      return counts.wrong;
    },
    get done() {
      return counts.done;
    },
    get resumed() {
      return counts.resumed;
    },
  };
}
