/**
 * The plaintext check: a TCP connection that speaks HTTP/1.1 (or, with --grpc, the HTTP/2
 * connection preface) without TLS, and what came back.
 */
import { connect } from 'node:net';
import { httpStatusOf, mayBeHttpStatus, TLS_ALERT_NAMES } from './signals.js';
import type { ProbeTarget } from './target.js';
import { httpRequest } from './conversations/http.js';

export type PlaintextReply =
  | { kind: 'unreachable'; code: string }
  /** Closed or reset by the server; `bytes` is whatever it sent first (often nothing). */
  | { kind: 'closed'; bytes: Buffer }
  | { kind: 'silent'; waitedMs: number }
  | { kind: 'answered'; bytes: Buffer };

/** The HTTP/2 client connection preface and an empty SETTINGS frame: how an h2c (prior knowledge) client starts. */
export const H2_PREFACE = Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]);

/** Enough to tell HTTP/1.x, HTTP/2 and TLS apart, and to quote. */
const MAX_BYTES = 2048;

/** True once `bytes` can be classified (no need to wait for more). */
export function plaintextReplyComplete(bytes: Buffer): boolean {
  if (bytes.length === 0) return false;
  if (bytes[0] === 0x15 || bytes[0] === 0x16) return bytes.length >= 7;
  if (mayBeHttpStatus(bytes)) return httpStatusOf(bytes) !== undefined && (bytes.includes('\r\n\r\n') || bytes.length >= MAX_BYTES);
  return bytes.length >= 9;
}

export function sendPlaintext(target: ProbeTarget, protocol: 'http1' | 'h2', timeoutMs: number, settleMs: number): Promise<PlaintextReply> {
  return new Promise((resolve) => {
    let received = Buffer.alloc(0);
    let connected = false;
    let settled = false;
    const socket = connect({ host: target.host, port: target.port });
    const finish = (reply: PlaintextReply): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(reply);
    };
    // Until TCP connects: the connection timeout. Then: how long silence must last to count.
    let timer = setTimeout(() => finish({ kind: 'unreachable', code: 'ETIMEDOUT' }), timeoutMs);
    socket.once('connect', () => {
      connected = true;
      clearTimeout(timer);
      timer = setTimeout(() => finish({ kind: 'silent', waitedMs: settleMs }), settleMs);
      socket.write(protocol === 'h2' ? H2_PREFACE : httpRequest('/', target.label));
    });
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]).subarray(0, MAX_BYTES);
      if (plaintextReplyComplete(received)) finish({ kind: 'answered', bytes: received });
    });
    socket.on('error', (error: Error & { code?: string }) => {
      if (!connected) finish({ kind: 'unreachable', code: error.code ?? error.message });
    });
    socket.once('close', () => finish(received.length > 0 ? { kind: 'answered', bytes: received } : { kind: 'closed', bytes: received }));
  });
}

export type PlaintextReading =
  | { kind: 'tls-alert'; alert: string }
  | { kind: 'tls-record' }
  | { kind: 'http1'; line: string; status: number; reason: string | undefined }
  | { kind: 'h2'; frameType: number }
  | { kind: 'other' };

/** What a reply to plaintext is: a TLS record, an HTTP/1.x response, an HTTP/2 frame, or something else. */
export function readPlaintextReply(bytes: Buffer): PlaintextReading {
  if (bytes[0] === 0x15 && bytes[1] === 0x03 && bytes.length >= 7) return { kind: 'tls-alert', alert: TLS_ALERT_NAMES[bytes[6]!] ?? `alert ${bytes[6]}` };
  if (bytes[0] === 0x16 && bytes[1] === 0x03) return { kind: 'tls-record' };
  const status = httpStatusOf(bytes);
  if (status !== undefined) return { kind: 'http1', line: status.line, status: status.status, reason: status.reason };
  // An HTTP/2 frame header: 24-bit length, type, flags, stream 0 (SETTINGS 4 or GOAWAY 7 first).
  if (bytes.length >= 9 && (bytes[3] === 4 || bytes[3] === 7) && (bytes.readUInt32BE(5) & 0x7fffffff) === 0) return { kind: 'h2', frameType: bytes[3] };
  return { kind: 'other' };
}
