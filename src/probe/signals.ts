/**
 * What the bytes and errors of one connection mean, as plain data: the pieces the verdicts are
 * made of. Pure functions, so the rules are tested without sockets.
 */

/** How a connection ended without the server answering. */
export type Failure =
  /** The server sent a TLS alert (name as in RFC 8446 §6, e.g. "certificate required"). */
  | { kind: 'alert'; alert: string; code: string }
  /** TCP reset (or a write into a connection the server had already closed). */
  | { kind: 'reset'; code: string }
  /** The server closed the connection (FIN, or close_notify) without an alert. */
  | { kind: 'closed' }
  /** The server answered in TLS, but with a version or suite outside our offer: it would not speak what we offered. */
  | { kind: 'protocol'; code: string }
  /** What came back is not TLS at all (a plaintext service): it says nothing about our offer. */
  | { kind: 'not-tls'; code: string }
  /** Our own TLS stack gave up for a reason that is not the server's refusal: the outcome is unknown. */
  | { kind: 'local'; code: string; message: string };

/** Our TLS library cannot offer what the check needs (the check is skipped, never passed). */
export interface Unsupported {
  kind: 'unsupported';
  code: string;
  message: string;
}

const ALERT_CODE = /^ERR_SSL_(?:SSLV3|TLSV1|TLSV13)_ALERT_([A-Z0-9_]+)$/;

/** Raised before anything is sent: no cipher, no protocol version left to offer. */
const UNSUPPORTED_CODES = new Set([
  'ERR_SSL_NO_CIPHER_MATCH',
  'ERR_SSL_NO_CIPHERS_AVAILABLE',
  'ERR_SSL_NO_PROTOCOLS_AVAILABLE',
  'ERR_TLS_INVALID_PROTOCOL_VERSION',
  'ERR_TLS_PROTOCOL_VERSION_CONFLICT',
]);

/** The server picked something outside our offer (a newer version, a suite we did not list). */
const PROTOCOL_CODES = new Set(['ERR_SSL_UNSUPPORTED_PROTOCOL', 'ERR_SSL_WRONG_CIPHER_RETURNED']);

/** The reply did not parse as TLS records: the port speaks something else (often plaintext HTTP). */
const NOT_TLS_CODES = new Set(['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG', 'ERR_SSL_RECORD_LAYER_FAILURE', 'ERR_SSL_HTTP_REQUEST', 'ERR_SSL_HTTPS_PROXY_REQUEST']);

const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

type CodedError = Error & { code?: unknown };

const codeOf = (error: CodedError): string => (typeof error.code === 'string' ? error.code : 'UNKNOWN');

/** Node's error for a failed or ended TLS connection, as a failure (or as our own inability). */
export function failureOf(error: CodedError): Failure | Unsupported {
  const code = codeOf(error);
  const alert = ALERT_CODE.exec(code);
  if (alert) return { kind: 'alert', alert: alert[1]!.toLowerCase().replace(/_/g, ' '), code };
  if (UNSUPPORTED_CODES.has(code)) return { kind: 'unsupported', code, message: firstLine(error.message) };
  if (RESET_CODES.has(code)) return { kind: 'reset', code };
  if (PROTOCOL_CODES.has(code)) return { kind: 'protocol', code };
  if (NOT_TLS_CODES.has(code)) return { kind: 'not-tls', code };
  return { kind: 'local', code, message: firstLine(error.message) };
}

/** True when the failure is the server's doing (as opposed to our client giving up). */
export const isServerRefusal = (failure: Failure): boolean => failure.kind !== 'local';

export function describeFailure(failure: Failure): string {
  switch (failure.kind) {
    case 'alert':
      return `alert "${failure.alert}"`;
    case 'reset':
      return `connection reset (${failure.code})`;
    case 'closed':
      return 'connection closed';
    case 'protocol':
      return `the server answered outside the offer (${failure.code})`;
    case 'not-tls':
      return `the reply is not TLS (${failure.code})`;
    case 'local':
      return `the prober's TLS stack gave up (${failure.code}: ${failure.message})`;
  }
}

function firstLine(message: string): string {
  // OpenSSL messages carry "error:0A000412:SSL routines:…:file.c:1601:" noise after the reason.
  const line = message.split('\n')[0] ?? '';
  return line.length > 160 ? `${line.slice(0, 160)}…` : line;
}

/**
 * Bytes from the server, safe to print: printable ASCII kept, everything else escaped, so that a
 * hostile server cannot drive the terminal of whoever reads the report.
 */
export function printable(bytes: Buffer | string, max = 80): string {
  const text = typeof bytes === 'string' ? bytes : bytes.toString('latin1');
  let out = '';
  for (const char of text.slice(0, max)) {
    const code = char.charCodeAt(0);
    if (char === '\\') out += '\\\\';
    else if (char === '"') out += '\\"';
    else if (code >= 0x20 && code < 0x7f) out += char;
    else if (char === '\r') out += '\\r';
    else if (char === '\n') out += '\\n';
    else if (char === '\t') out += '\\t';
    else out += `\\x${code.toString(16).padStart(2, '0')}`;
  }
  return `"${out}${text.length > max ? '…' : ''}"`;
}

/**
 * Escapes control characters (C0, DEL, C1) left in any text: evidence also quotes certificate
 * subjects and SANs, which the server chose. Printable text, and what printable() already
 * escaped, pass unchanged.
 */
export const withoutControlCharacters = (text: string): string =>
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  text.replace(/[\x00-\x1f\x7f-\x9f]/g, (char) => `\\x${char.charCodeAt(0).toString(16).padStart(2, '0')}`);

export interface HttpStatus {
  /** The status line, e.g. `HTTP/1.1 400 Bad Request`. */
  line: string;
  status: number;
  /** A <title> or short text body, when the server sent one with the status: often the reason. */
  reason: string | undefined;
}

const STATUS_LINE = /^(HTTP\/\d(?:\.\d)? (\d{3})(?: [^\r\n]*)?)\r?\n/;

/** The status of an HTTP/1.x response, once its status line is complete; undefined before. */
export function httpStatusOf(bytes: Buffer): HttpStatus | undefined {
  const text = bytes.toString('latin1');
  const match = STATUS_LINE.exec(text);
  if (!match) return undefined;
  const headerEnd = text.indexOf('\r\n\r\n');
  const body = headerEnd === -1 ? '' : text.slice(headerEnd + 4);
  const title = /<title>([^<]{1,200})<\/title>/i.exec(body)?.[1];
  const shortText = body.length > 0 && body.length <= 200 && !body.includes('<') ? body.trim() : undefined;
  return { line: match[1]!, status: Number(match[2]), reason: title?.trim() ?? (shortText || undefined) };
}

/** Could these bytes still become an HTTP/1.x status line? (Then wait for more before judging.) */
export function mayBeHttpStatus(bytes: Buffer): boolean {
  const head = bytes.subarray(0, 5).toString('latin1');
  return 'HTTP/'.startsWith(head) || head === 'HTTP/';
}

/**
 * HTTP statuses that mean "not you": the server (or the application behind it) refused this
 * client. nginx answers a missing or bad client certificate with 400 (internally 496 / 495) after
 * completing the handshake; applications that check the certificate themselves answer 401 or 403.
 * Any other status means the request was served or routed: access.
 */
export const HTTP_REFUSAL_STATUSES: ReadonlySet<number> = new Set([400, 401, 403, 495, 496]);

/** gRPC statuses with the same meaning: UNAUTHENTICATED (16) and PERMISSION_DENIED (7). */
export const GRPC_REFUSAL_STATUSES: ReadonlySet<number> = new Set([16, 7]);

export const GRPC_STATUS_NAMES: Readonly<Record<number, string>> = {
  0: 'OK',
  1: 'CANCELLED',
  2: 'UNKNOWN',
  3: 'INVALID_ARGUMENT',
  4: 'DEADLINE_EXCEEDED',
  5: 'NOT_FOUND',
  6: 'ALREADY_EXISTS',
  7: 'PERMISSION_DENIED',
  8: 'RESOURCE_EXHAUSTED',
  9: 'FAILED_PRECONDITION',
  10: 'ABORTED',
  11: 'OUT_OF_RANGE',
  12: 'UNIMPLEMENTED',
  13: 'INTERNAL',
  14: 'UNAVAILABLE',
  15: 'DATA_LOSS',
  16: 'UNAUTHENTICATED',
};

/** TLS alert descriptions (RFC 8446 §6.2, RFC 5246 §7.2) for alert records read off a raw socket. */
export const TLS_ALERT_NAMES: Readonly<Record<number, string>> = {
  0: 'close notify',
  10: 'unexpected message',
  20: 'bad record mac',
  22: 'record overflow',
  40: 'handshake failure',
  42: 'bad certificate',
  43: 'unsupported certificate',
  44: 'certificate revoked',
  45: 'certificate expired',
  46: 'certificate unknown',
  47: 'illegal parameter',
  48: 'unknown ca',
  50: 'decode error',
  51: 'decrypt error',
  70: 'protocol version',
  71: 'insufficient security',
  80: 'internal error',
  86: 'inappropriate fallback',
  109: 'missing extension',
  116: 'certificate required',
};
