/**
 * HTTP/1.1: `GET <path>` with a Host header, and the status line that comes back. A status in
 * HTTP_REFUSAL_STATUSES is a refusal by the server's HTTP layer (what nginx does with a missing or
 * bad client certificate); any other status is access.
 */
import type { TLSSocket } from 'node:tls';
import type { Answer, Conversation, ConversationEnd } from '../attempt.js';
import { HTTP_REFUSAL_STATUSES, httpStatusOf, mayBeHttpStatus, printable } from '../signals.js';

/** Enough for a status line, headers and an error page's title. */
const MAX_BYTES = 8192;

export function httpRequest(path: string, hostHeader: string): Buffer {
  return Buffer.from(`GET ${path} HTTP/1.1\r\nHost: ${hostHeader}\r\nUser-Agent: tlsmesh-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n`, 'latin1');
}

/** The answer in what has arrived, or undefined while more may complete it. */
export function httpAnswerOf(bytes: Buffer, complete: boolean): Answer | undefined {
  const status = httpStatusOf(bytes);
  if (status !== undefined) {
    const headersDone = bytes.includes('\r\n\r\n');
    if (!headersDone && !complete && bytes.length < MAX_BYTES) return undefined;
    const summary = `${printable(status.line)}${status.reason !== undefined ? ` (${printable(status.reason)})` : ''}`;
    return { summary, refusal: HTTP_REFUSAL_STATUSES.has(status.status) ? `HTTP ${status.status}` : undefined };
  }
  if (!complete && mayBeHttpStatus(bytes) && bytes.length < MAX_BYTES) return undefined;
  return { summary: `${bytes.length} bytes that are not HTTP: ${printable(bytes)}`, refusal: undefined };
}

export function httpConversation(path: string, hostHeader: string): Conversation {
  return {
    name: 'http',
    alpn: ['http/1.1'],
    expectsAnswer: true,
    converse(socket: TLSSocket): Promise<ConversationEnd> {
      return new Promise((resolve) => {
        let received = Buffer.alloc(0);
        socket.on('data', (chunk: Buffer) => {
          received = Buffer.concat([received, chunk]).subarray(0, MAX_BYTES);
          const answer = httpAnswerOf(received, false);
          if (answer) resolve({ kind: 'answered', answer });
        });
        socket.once('close', () => {
          if (received.length > 0) resolve({ kind: 'answered', answer: httpAnswerOf(received, true)! });
          else resolve({ kind: 'ended', detail: undefined });
        });
        // A write into a connection the server already refused fails with EPIPE/ECONNRESET,
        // which the attempt records; the alert that came first is what gets reported.
        socket.write(httpRequest(path, hostHeader));
      });
    },
  };
}
