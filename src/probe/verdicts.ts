/**
 * The rules that turn what a connection showed into PASS, FAIL or SKIP, with the evidence in
 * words. Pure functions of the observations (see attempt.ts and plaintext.ts).
 *
 * "Refused" means no application data could be exchanged: a TLS alert or close, during the
 * handshake or right after it (TLS 1.3 servers judge the client certificate after the client's
 * handshake is done), or an answer that is itself a refusal (HTTP 400/401/403, gRPC
 * UNAUTHENTICATED/PERMISSION_DENIED). Anything the prober could not observe is never a PASS:
 * an unreachable server, a timeout, or our own TLS stack giving up is a FAIL marked
 * inconclusive, and a refusal is only evidence if the same server accepts the control (a good
 * certificate under the same conditions); otherwise it is a SKIP saying so.
 */
import type { Attempt, Conversation } from './attempt.js';
import { readPlaintextReply, type PlaintextReply } from './plaintext.js';
import { describeFailure, type Failure, isServerRefusal, printable } from './signals.js';

export type CheckOutcome = 'pass' | 'fail' | 'skip';

export interface Verdict {
  result: CheckOutcome;
  evidence: string;
}

/** The certificate a refusal is compared with, and whether the server accepted it. */
export interface Control {
  accepted: boolean;
  /** e.g. "the valid client certificate (--cert)". */
  name: string;
}

const pass = (evidence: string): Verdict => ({ result: 'pass', evidence });
const fail = (evidence: string): Verdict => ({ result: 'fail', evidence });
const skip = (evidence: string): Verdict => ({ result: 'skip', evidence });
const seconds = (ms: number): string => `${Number((ms / 1000).toFixed(2))} s`;

/** What happened on the connection, in one phrase. */
export function describeAttempt(attempt: Attempt): string {
  switch (attempt.stage) {
    case 'unreachable':
      return `could not connect (${attempt.code})`;
    case 'unsupported':
      return `this machine's TLS library cannot offer it (${attempt.code})`;
    case 'timeout':
      return attempt.during === 'connect' ? 'no TCP connection within the timeout' : 'no TLS handshake within the timeout';
    case 'handshake-failed':
      return `refused in the handshake: ${describeFailure(attempt.failure)}`;
    case 'established': {
      const done = `${attempt.handshake.protocol} handshake completed`;
      const after = attempt.after;
      switch (after.kind) {
        case 'answered':
          return after.answer.refusal !== undefined
            ? `${done}, then refused by the application: ${after.answer.summary}`
            : `${done}, then answered ${after.answer.summary}`;
        case 'refused':
          return `${done}, then ${describeFailure(after.failure)} before any data${after.detail !== undefined ? ` (${after.detail})` : ''}`;
        case 'silent':
          return `${done}, and the connection stayed open ${seconds(after.waitedMs)} with no answer and no refusal`;
      }
    }
  }
}

const inconclusive = (attempt: Attempt): Verdict => fail(`inconclusive, ${describeAttempt(attempt)}`);

/** A refusal counts once the control shows the server accepts a good certificate here. */
function refusalProves(attempt: Attempt, control: Control): Verdict {
  if (control.accepted) return pass(describeAttempt(attempt));
  return skip(`inconclusive: the server also refuses ${control.name}, so this refusal proves nothing (${describeAttempt(attempt)})`);
}

/** Checks whose certificate (or lack of one) must be refused. */
export function judgeRefused(attempt: Attempt, conversation: Pick<Conversation, 'expectsAnswer'>, control: Control): Verdict {
  switch (attempt.stage) {
    case 'unreachable':
    case 'timeout':
      return inconclusive(attempt);
    case 'unsupported':
      return skip(describeAttempt(attempt));
    case 'handshake-failed':
      return isServerRefusal(attempt.failure) ? refusalProves(attempt, control) : inconclusive(attempt);
    case 'established': {
      const after = attempt.after;
      if (after.kind === 'answered') return after.answer.refusal !== undefined ? refusalProves(attempt, control) : fail(`accepted: ${describeAttempt(attempt)}`);
      if (after.kind === 'refused') return isServerRefusal(after.failure) ? refusalProves(attempt, control) : inconclusive(attempt);
      return conversation.expectsAnswer
        ? fail(`inconclusive, neither refused nor served: ${describeAttempt(attempt)}`)
        : fail(`not refused at the TLS layer: ${describeAttempt(attempt)} (if the server refuses in its application protocol instead, probe with --http or --grpc)`);
    }
  }
}

/** The control check: a valid client certificate must get through. */
export function judgeAccepted(attempt: Attempt, conversation: Pick<Conversation, 'expectsAnswer'>): Verdict {
  if (attempt.stage !== 'established') return fail(describeAttempt(attempt));
  const after = attempt.after;
  if (after.kind === 'answered') return after.answer.refusal === undefined ? pass(describeAttempt(attempt)) : fail(describeAttempt(attempt));
  if (after.kind === 'silent' && !conversation.expectsAnswer) return pass(describeAttempt(attempt));
  return fail(describeAttempt(attempt));
}

/**
 * Alerts and failures that speak of the offered version or suites themselves: evidence even when
 * the server refuses every client certificate (no control needed).
 */
function refusesTheOffer(failure: Failure): boolean {
  return failure.kind === 'protocol' || (failure.kind === 'alert' && (failure.alert === 'protocol version' || failure.alert === 'insufficient security'));
}

/** Checks of an offer (an old TLS version, weak suites) that must not be negotiated. */
export function judgeNotNegotiated(attempt: Attempt, control: Control): Verdict {
  switch (attempt.stage) {
    case 'established':
      return fail(`negotiated ${attempt.handshake.protocol} with ${attempt.handshake.cipher}`);
    case 'unsupported':
      return skip(describeAttempt(attempt));
    case 'unreachable':
    case 'timeout':
      return inconclusive(attempt);
    case 'handshake-failed':
      if (!isServerRefusal(attempt.failure)) return inconclusive(attempt);
      return refusesTheOffer(attempt.failure) ? pass(describeAttempt(attempt)) : refusalProves(attempt, control);
  }
}

/**
 * The plaintext check. A TLS port answers plaintext with an alert, a close, silence, or (Node,
 * Go, nginx) an HTTP 400 telling the client it spoke HTTP to HTTPS. That 400 counts as refused
 * only when the same port completed TLS handshakes in this probe (`speaksTls`): then it is the TLS
 * server's reply to a protocol error, not a plaintext service. Any other HTTP status, an HTTP/2
 * frame, or other bytes mean something is served in plaintext.
 */
export function judgePlaintext(reply: PlaintextReply, speaksTls: boolean): Verdict {
  switch (reply.kind) {
    case 'unreachable':
      return fail(`inconclusive, could not connect (${reply.code})`);
    case 'closed':
      return pass('closed the connection without answering');
    case 'silent':
      return pass(`no answer within ${seconds(reply.waitedMs)}: nothing is served in plaintext`);
    case 'answered':
      break;
  }
  const reading = readPlaintextReply(reply.bytes);
  switch (reading.kind) {
    case 'tls-alert':
      return pass(`answered with a TLS alert ("${reading.alert}"): only TLS is spoken`);
    case 'tls-record':
      return pass('answered with a TLS handshake record: only TLS is spoken');
    case 'http1': {
      const quoted = `${printable(reading.line)}${reading.reason !== undefined ? ` (${printable(reading.reason)})` : ''}`;
      if (reading.status !== 400) return fail(`served plaintext HTTP: ${quoted}`);
      return speaksTls
        ? pass(`answered ${quoted}: a TLS server's reply to plaintext (this port completed TLS handshakes), not a plaintext service`)
        : fail(`answered ${quoted} in plaintext, and no TLS handshake succeeded on this port: a plaintext HTTP service`);
    }
    case 'h2':
      return fail(`answered HTTP/2 in plaintext (h2c ${reading.frameType === 4 ? 'SETTINGS' : 'GOAWAY'} frame): a plaintext HTTP/2 (gRPC) service`);
    case 'other':
      return fail(`answered ${reply.bytes.length} bytes in plaintext: ${printable(reply.bytes)}`);
  }
}
