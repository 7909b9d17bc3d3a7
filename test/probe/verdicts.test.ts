/**
 * The rules, without sockets: how errors and bytes are read, and how observations become PASS,
 * FAIL or SKIP. Tables keyed ok/… and fail/… as the style guide has it.
 */
import type { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Attempt } from '../../src/probe/attempt.js';
import { grpcAnswerOf } from '../../src/probe/conversations/grpc.js';
import { httpAnswerOf } from '../../src/probe/conversations/http.js';
import { formatProbeReport, probeExitCode, type ProbeReport } from '../../src/probe/index.js';
import { readPlaintextReply } from '../../src/probe/plaintext.js';
import { failureOf, printable, withoutControlCharacters } from '../../src/probe/signals.js';
import { judgeAccepted, judgeNotNegotiated, judgeRefused, type Control } from '../../src/probe/verdicts.js';

const coded = (code?: string, message = 'boom'): Error => Object.assign(new Error(message), code === undefined ? {} : { code });

describe('failureOf: what an error from the TLS client means', () => {
  it.each([
    ['ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', { kind: 'alert', alert: 'certificate required' }],
    ['ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', { kind: 'alert', alert: 'bad certificate' }],
    ['ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION', { kind: 'alert', alert: 'protocol version' }],
    ['ECONNRESET', { kind: 'reset' }],
    ['EPIPE', { kind: 'reset' }],
    ['ERR_SSL_UNSUPPORTED_PROTOCOL', { kind: 'protocol' }],
    ['ERR_SSL_WRONG_VERSION_NUMBER', { kind: 'not-tls' }],
    ['ERR_SSL_NO_CIPHER_MATCH', { kind: 'unsupported' }],
    ['ERR_SSL_NO_PROTOCOLS_AVAILABLE', { kind: 'unsupported' }],
    // Our own client backing out after the server agreed (e.g. SHA-1 signatures at SECLEVEL 1).
    ['ERR_SSL_LEGACY_SIGALG_DISALLOWED_OR_UNSUPPORTED', { kind: 'local' }],
    [undefined, { kind: 'local', code: 'UNKNOWN' }],
  ] as const)('%s', (code, expected) => {
    expect(failureOf(coded(code))).toMatchObject(expected);
  });

  it('keeps only the reason line of OpenSSL messages', () => {
    const failure = failureOf(coded('ERR_SOMETHING', 'something bad\nerror:0A000412:SSL routines:ssl3_read_bytes:…'));
    expect(failure).toMatchObject({ kind: 'local', message: 'something bad' });
  });
});

describe('printable: bytes from a server, safe for a terminal', () => {
  it.each([
    ['plain text', '"plain text"'],
    ['a "quote" and \\ backslash', '"a \\"quote\\" and \\\\ backslash"'],
    ['\x1b[2J\r\n\t\x00\x9b', '"\\x1b[2J\\r\\n\\t\\x00\\x9b"'],
  ])('%j', (input, expected) => {
    expect(printable(input)).toBe(expected);
  });

  it('evidence quoting server-chosen text (subjects, SANs) loses its control characters too', () => {
    expect(withoutControlCharacters('CN=evil\x1b]0;pwned\x07, O=\x9bx')).toBe('CN=evil\\x1b]0;pwned\\x07, O=\\x9bx');
    expect(withoutControlCharacters(printable('a\x1bb'))).toBe(printable('a\x1bb'));
  });

  it('truncates long input with an ellipsis', () => {
    expect(printable('x'.repeat(100), 10)).toBe('"xxxxxxxxxx…"');
  });
});

describe('answers', () => {
  it('HTTP: waits for a complete status line and headers, then judges the status', () => {
    expect(httpAnswerOf(Buffer.from('HTTP/1.1 20'), false)).toBeUndefined();
    expect(httpAnswerOf(Buffer.from('HTTP/1.1 200 OK\r\nServer: x\r\n'), false)).toBeUndefined();
    expect(httpAnswerOf(Buffer.from('HTTP/1.1 200 OK\r\nServer: x\r\n\r\nok'), false)).toEqual({ summary: '"HTTP/1.1 200 OK" ("ok")', refusal: undefined });
    expect(httpAnswerOf(Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n<title>400 No required SSL certificate was sent</title>'), false)).toEqual({
      summary: '"HTTP/1.1 400 Bad Request" ("400 No required SSL certificate was sent")',
      refusal: 'HTTP 400',
    });
    expect(httpAnswerOf(Buffer.from('\x00\x00\x06\x04'), false)).toEqual({ summary: '4 bytes that are not HTTP: "\\x00\\x00\\x06\\x04"', refusal: undefined });
    // What arrived before the close is judged as it is.
    expect(httpAnswerOf(Buffer.from('HTTP/1.0 503 Unavailable\r\n'), true)).toEqual({ summary: '"HTTP/1.0 503 Unavailable"', refusal: undefined });
  });

  it('gRPC: any status is an answer; UNAUTHENTICATED and PERMISSION_DENIED (and HTTP 401/403) are refusals', () => {
    expect(grpcAnswerOf({ httpStatus: 200, grpcStatus: '12', grpcMessage: undefined })).toEqual({ summary: 'grpc-status 12 (UNIMPLEMENTED)', refusal: undefined });
    expect(grpcAnswerOf({ httpStatus: 200, grpcStatus: '0', grpcMessage: '' })).toEqual({ summary: 'grpc-status 0 (OK)', refusal: undefined });
    expect(grpcAnswerOf({ httpStatus: 200, grpcStatus: '16', grpcMessage: 'no%20certificate' })).toEqual({ summary: 'grpc-status 16 (UNAUTHENTICATED) "no certificate"', refusal: 'gRPC UNAUTHENTICATED' });
    expect(grpcAnswerOf({ httpStatus: 200, grpcStatus: '7', grpcMessage: '%E0%A4%A' })).toEqual({ summary: 'grpc-status 7 (PERMISSION_DENIED) "%E0%A4%A"', refusal: 'gRPC PERMISSION_DENIED' });
    expect(grpcAnswerOf({ httpStatus: 403, grpcStatus: undefined, grpcMessage: undefined })).toEqual({ summary: 'HTTP/2 :status 403, no grpc-status', refusal: 'HTTP 403' });
  });

  it('plaintext replies: TLS alert, HTTP/1.x, HTTP/2 frame, other', () => {
    expect(readPlaintextReply(Buffer.from([0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x32]))).toEqual({ kind: 'tls-alert', alert: 'decode error' });
    expect(readPlaintextReply(Buffer.from('HTTP/1.0 400 Bad Request\r\n\r\n'))).toMatchObject({ kind: 'http1', status: 400 });
    expect(readPlaintextReply(Buffer.from([0, 0, 0x12, 0x04, 0, 0, 0, 0, 0]))).toEqual({ kind: 'h2', frameType: 4 });
    expect(readPlaintextReply(Buffer.from('-ERR unknown command\r\n'))).toEqual({ kind: 'other' });
  });
});

const handshake = { protocol: 'TLSv1.3', cipher: 'TLS_AES_128_GCM_SHA256', alpn: null, chain: [] as X509Certificate[], authorized: true, authorizationError: null };
const established = (after: Extract<Attempt, { stage: 'established' }>['after'], protocol = 'TLSv1.3'): Attempt => ({ stage: 'established', handshake: { ...handshake, protocol }, after });
const ACCEPTED: Control = { accepted: true, name: 'the control' };
const REFUSED: Control = { accepted: false, name: 'the control' };
const PLAIN = { expectsAnswer: false };
const HTTP = { expectsAnswer: true };

describe('judgeRefused (a certificate, or none, the server must refuse)', () => {
  it.each([
    ['ok/alert after the handshake', established({ kind: 'refused', failure: { kind: 'alert', alert: 'unknown ca', code: 'X' }, detail: undefined }), PLAIN, ACCEPTED, 'pass'],
    ['ok/alert in the handshake', { stage: 'handshake-failed', failure: { kind: 'alert', alert: 'bad certificate', code: 'X' } }, PLAIN, ACCEPTED, 'pass'],
    ['ok/HTTP 400 from the application', established({ kind: 'answered', answer: { summary: '400', refusal: 'HTTP 400' } }), HTTP, ACCEPTED, 'pass'],
    ['fail/HTTP 200', established({ kind: 'answered', answer: { summary: '200', refusal: undefined } }), HTTP, ACCEPTED, 'fail'],
    ['fail/kept open in plain TLS', established({ kind: 'silent', waitedMs: 2000 }), PLAIN, ACCEPTED, 'fail'],
    ['fail/no answer to the request', established({ kind: 'silent', waitedMs: 5000 }), HTTP, ACCEPTED, 'fail'],
    ['fail/our own client gave up', { stage: 'handshake-failed', failure: { kind: 'local', code: 'X', message: 'x' } }, PLAIN, ACCEPTED, 'fail'],
    ['fail/unreachable', { stage: 'unreachable', code: 'ECONNREFUSED' }, PLAIN, ACCEPTED, 'fail'],
    ['fail/timeout', { stage: 'timeout', during: 'handshake' }, PLAIN, ACCEPTED, 'fail'],
    ['skip/refused, but so is the control', { stage: 'handshake-failed', failure: { kind: 'alert', alert: 'bad certificate', code: 'X' } }, PLAIN, REFUSED, 'skip'],
    ['fail/accepted even though the control was refused', established({ kind: 'answered', answer: { summary: '200', refusal: undefined } }), HTTP, REFUSED, 'fail'],
  ] as const)('%s', (_name, attempt, conversation, control, expected) => {
    expect(judgeRefused(attempt as Attempt, conversation, control).result).toBe(expected);
  });
});

describe('judgeAccepted (the valid client certificate)', () => {
  it.each([
    ['ok/answered', established({ kind: 'answered', answer: { summary: '200', refusal: undefined } }), HTTP, 'pass'],
    ['ok/kept open in plain TLS', established({ kind: 'silent', waitedMs: 2000 }), PLAIN, 'pass'],
    ['fail/kept open but the request got no answer', established({ kind: 'silent', waitedMs: 5000 }), HTTP, 'fail'],
    ['fail/refused by the application', established({ kind: 'answered', answer: { summary: '403', refusal: 'HTTP 403' } }), HTTP, 'fail'],
    ['fail/alert after the handshake', established({ kind: 'refused', failure: { kind: 'alert', alert: 'bad certificate', code: 'X' }, detail: undefined }), PLAIN, 'fail'],
    ['fail/refused in the handshake', { stage: 'handshake-failed', failure: { kind: 'closed' } }, PLAIN, 'fail'],
  ] as const)('%s', (_name, attempt, conversation, expected) => {
    expect(judgeAccepted(attempt as Attempt, conversation).result).toBe(expected);
  });
});

describe('judgeNotNegotiated (old versions, weak suites)', () => {
  it.each([
    ['fail/negotiated', established({ kind: 'silent', waitedMs: 1 }, 'TLSv1'), ACCEPTED, 'fail'],
    ['ok/protocol version alert, even without a control', { stage: 'handshake-failed', failure: { kind: 'alert', alert: 'protocol version', code: 'X' } }, REFUSED, 'pass'],
    ['ok/server chose another version', { stage: 'handshake-failed', failure: { kind: 'protocol', code: 'ERR_SSL_UNSUPPORTED_PROTOCOL' } }, REFUSED, 'pass'],
    ['ok/handshake failure with the control accepted', { stage: 'handshake-failed', failure: { kind: 'alert', alert: 'handshake failure', code: 'X' } }, ACCEPTED, 'pass'],
    ['skip/handshake failure while the control is refused too', { stage: 'handshake-failed', failure: { kind: 'alert', alert: 'handshake failure', code: 'X' } }, REFUSED, 'skip'],
    ['skip/not TLS at all (a plaintext port)', { stage: 'handshake-failed', failure: { kind: 'not-tls', code: 'ERR_SSL_WRONG_VERSION_NUMBER' } }, REFUSED, 'skip'],
    ['skip/cannot be offered here', { stage: 'unsupported', code: 'ERR_SSL_NO_CIPHER_MATCH', message: '' }, ACCEPTED, 'skip'],
    ['fail/our client backed out (the server may have agreed)', { stage: 'handshake-failed', failure: { kind: 'local', code: 'ERR_SSL_LEGACY_SIGALG_DISALLOWED_OR_UNSUPPORTED', message: '' } }, ACCEPTED, 'fail'],
  ] as const)('%s', (_name, attempt, control, expected) => {
    expect(judgeNotNegotiated(attempt as Attempt, control).result).toBe(expected);
  });

  it('names what was negotiated', () => {
    expect(judgeNotNegotiated({ stage: 'established', handshake: { ...handshake, protocol: 'TLSv1', cipher: 'ECDHE-ECDSA-AES256-SHA' }, after: { kind: 'silent', waitedMs: 1 } }, ACCEPTED)).toEqual({
      result: 'fail',
      evidence: 'negotiated TLSv1 with ECDHE-ECDSA-AES256-SHA',
    });
  });
});

describe('exit code and text report', () => {
  const report = (pass: number, fail: number, skip: number): ProbeReport => ({
    target: '127.0.0.1:8443',
    checks: [
      { id: 'plaintext-refused', title: 'Plaintext (no TLS) is refused', result: fail > 0 ? 'fail' : 'pass', evidence: 'closed the connection without answering', ms: 3 },
      { id: 'revoked-cert-refused', title: 'A revoked client certificate is refused', result: skip > 0 ? 'skip' : 'pass', evidence: 'needs --revoked-cert and --revoked-key', ms: 0 },
    ],
    summary: { pass, fail, skip },
  });

  it.each([
    ['ok/all pass', report(2, 0, 0), false, 0],
    ['ok/a skip without --strict', report(1, 0, 1), false, 0],
    ['fail/a skip with --strict', report(1, 0, 1), true, 1],
    ['fail/a failure', report(1, 1, 0), false, 1],
  ] as const)('%s → %i', (_name, value, strict, code) => {
    expect(probeExitCode(value, { strict })).toBe(code);
  });

  it('prints one line per check, then the summary', () => {
    expect(formatProbeReport(report(1, 0, 1), { strict: false })).toBe(
      [
        'PASS  plaintext-refused     (closed the connection without answering)',
        'SKIP  revoked-cert-refused  (needs --revoked-cert and --revoked-key)',
        '127.0.0.1:8443: 1 passed, 0 failed, 1 skipped (skips do not fail the probe; --strict makes them)',
        '',
      ].join('\n'),
    );
  });
});
