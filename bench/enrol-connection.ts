/**
 * The load generator's side of `POST /v1/enroll`: one kept-alive TLS connection that sends
 * requests built before the timed part and reads HTTP/1.1 answers with a small parser.
 *
 * Why not CaClient (node:https): the load generator shares the two cores with the CA, and
 * node's HTTP client (ClientRequest, Agent, IncomingMessage, stream events) cost ~250-480 µs of
 * CPU per enrolment there (this client: ~110-160 in the same rounds). What reaches the CA is
 * the same: TLS 1.3 to the CA's port, trusting only its bundle and accepting only its SPIFFE ID,
 * one request at a time per connection, the same JSON body. Every answer is still parsed as JSON
 * and checked (status 200, a serial; the run checks the store afterwards).
 */
import { connect, type TLSSocket } from 'node:tls';
import { expectSpiffeId } from '../src/pki/index.js';

/** A request ready to write: head and body in one buffer. */
export type PreparedRequest = Buffer;

export interface EnrolAnswer {
  status: number;
  /** The JSON body, parsed. */
  body: unknown;
}

const HEAD_END = Buffer.from('\r\n\r\n');
/** Answers are ~3 KB; anything much larger is not an enrolment answer. */
const MAX_ANSWER_BYTES = 256 * 1024;

export function prepareEnrolRequest(url: URL, token: string, csrPem: string): PreparedRequest {
  const body = Buffer.from(JSON.stringify({ token, csr: csrPem }));
  const head = `POST /v1/enroll HTTP/1.1\r\nhost: ${url.host}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
}

export class EnrolConnection {
  readonly #socket: TLSSocket;
  #buffered: Buffer = Buffer.alloc(0);
  #pending: { resolve: (answer: EnrolAnswer) => void; reject: (error: Error) => void } | undefined;
  #failure: Error | undefined;

  private constructor(socket: TLSSocket) {
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (error: Error) => this.#fail(error));
    socket.on('close', () => this.#fail(new Error('the CA closed the connection')));
  }

  /** Connects and completes the TLS handshake with the CA's identity checked. */
  static open(url: URL, bundlePem: string, trustDomain: string): Promise<EnrolConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({
        host: url.hostname,
        port: Number(url.port),
        ca: bundlePem,
        // The SDK's own floor (TLS 1.3 preferred, 1.2 minimum): no weaker than Node's default; the
        // chain is verified against the bundle and the CA's SPIFFE ID checked on the next line.
        minVersion: 'TLSv1.2',
        checkServerIdentity: expectSpiffeId(`spiffe://${trustDomain}/tlsmesh/ca`),
      });
      socket.once('secureConnect', () => {
        socket.off('error', reject);
        resolve(new EnrolConnection(socket));
      });
      socket.once('error', reject);
    });
  }

  /** Sends one request and resolves with its answer; one at a time per connection. */
  send(request: PreparedRequest): Promise<EnrolAnswer> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (this.#pending !== undefined) return Promise.reject(new Error('a request is already in flight on this connection'));
    return new Promise((resolve, reject) => {
      this.#pending = { resolve, reject };
      this.#socket.write(request);
    });
  }

  close(): void {
    this.#failure ??= new Error('closed');
    this.#socket.destroy();
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    const pending = this.#pending;
    this.#pending = undefined;
    pending?.reject(error);
  }

  #onData(chunk: Buffer): void {
    this.#buffered = this.#buffered.length === 0 ? chunk : Buffer.concat([this.#buffered, chunk]);
    if (this.#buffered.length > MAX_ANSWER_BYTES) return this.#fail(new Error(`an answer larger than ${MAX_ANSWER_BYTES} bytes`));
    const headEnd = this.#buffered.indexOf(HEAD_END);
    if (headEnd < 0) return;
    let head: { status: number; length: number };
    try {
      head = parseHead(this.#buffered.toString('latin1', 0, headEnd));
    } catch (error) {
      return this.#fail(error as Error);
    }
    const bodyStart = headEnd + HEAD_END.length;
    if (this.#buffered.length < bodyStart + head.length) return;
    if (this.#buffered.length > bodyStart + head.length) return this.#fail(new Error('the CA sent more than one answer to one request'));
    const text = this.#buffered.toString('utf8', bodyStart);
    this.#buffered = Buffer.alloc(0);
    const pending = this.#pending;
    this.#pending = undefined;
    if (pending === undefined) return this.#fail(new Error('the CA answered a request that was not sent'));
    try {
      pending.resolve({ status: head.status, body: JSON.parse(text) });
    } catch (error) {
      this.#fail(new Error(`the CA answered ${head.status} with a body that is not JSON`, { cause: error }));
    }
  }
}

/** Status and content-length of an HTTP/1.1 answer head; chunked or close-delimited bodies are refused (the CA sends neither for JSON). */
function parseHead(head: string): { status: number; length: number } {
  const lines = head.split('\r\n');
  const statusLine = /^HTTP\/1\.1 (\d{3}) /.exec(lines[0] ?? '');
  if (statusLine === null) throw new Error(`not an HTTP/1.1 answer: ${JSON.stringify(lines[0])}`);
  let length = -1;
  let json = false;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'content-length') length = Number(value);
    else if (name === 'content-type') json = value.startsWith('application/json');
    else if (name === 'transfer-encoding' || (name === 'connection' && value.toLowerCase() === 'close')) {
      throw new Error(`the CA answered with ${name}: ${value}; the bench expects kept-alive, content-length answers`);
    }
  }
  if (!Number.isSafeInteger(length) || length < 0) throw new Error('an answer without a content-length');
  if (!json) throw new Error('an answer that is not application/json');
  return { status: Number(statusLine[1]), length };
}
