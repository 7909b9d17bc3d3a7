/** How each check runs: which connections it makes (through the session) and which rule judges them. */
import type { Attempt } from './attempt.js';
import type { CheckId } from './checks.js';
import type { Credential } from './material.js';
import { mintFromIssuer, mintFromUnknownCa, mintServerAuthOnly } from './mint.js';
import { DEFAULT_SETTLE_MS, DEFAULT_TIMEOUT_MS } from './options.js';
import { sendPlaintext } from './plaintext.js';
import { checkServerId, verifyServerChain } from './server-chain.js';
import type { ProbeSession } from './session.js';
import { describeFailure } from './signals.js';
import { describeAttempt, judgeAccepted, judgeNotNegotiated, judgePlaintext, judgeRefused, type CheckOutcome, type Control, type Verdict } from './verdicts.js';
import { cipherList, LEGACY_VERSION_CIPHERS, WEAK_TLS12_GROUPS } from './weak-ciphers.js';

const NEEDS_ISSUER = 'needs --issuer-cert and --issuer-key (a CA the server trusts) to mint the certificate';

type CheckRun = (session: ProbeSession) => Promise<Verdict>;

async function refusedWith(session: ProbeSession, credential: Credential | undefined, control: Control): Promise<Verdict> {
  const attempt = credential === undefined ? await session.withoutCertificate() : await session.attempt({ credential });
  return judgeRefused(attempt, session.conversation, control);
}

async function refusedFromIssuer(session: ProbeSession, mint: () => Credential | Promise<Credential>): Promise<Verdict> {
  if (session.material.issuer === undefined) return { result: 'skip', evidence: NEEDS_ISSUER };
  const control = await session.issuerControl();
  return refusedWith(session, await mint(), control);
}

async function versionRefused(session: ProbeSession, version: 'TLSv1' | 'TLSv1.1'): Promise<Verdict> {
  const attempt = await session.attempt({ credential: session.material.client, minVersion: version, maxVersion: version, ciphers: LEGACY_VERSION_CIPHERS });
  return judgeNotNegotiated(attempt, await session.baselineControl());
}

async function weakCiphersRefused(session: ProbeSession): Promise<Verdict> {
  const control = await session.baselineControl();
  const outcomes: { name: string; attempt: Attempt; verdict: Verdict }[] = [];
  for (const group of WEAK_TLS12_GROUPS) {
    // Offering only weak suites is the point: the check passes when the server refuses them all.
    const attempt = await session.attempt({ credential: session.material.client, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', ciphers: cipherList(group) });
    outcomes.push({ name: group.name, attempt, verdict: judgeNotNegotiated(attempt, control) });
  }
  const of = (result: CheckOutcome): typeof outcomes => outcomes.filter((outcome) => outcome.verdict.result === result);
  const refused = of('pass').map(({ name, attempt }) => `${name} [${attempt.stage === 'handshake-failed' ? describeFailure(attempt.failure) : describeAttempt(attempt)}]`);
  const unavailable = of('skip').filter(({ attempt }) => attempt.stage === 'unsupported').map(({ name }) => name);
  // Refused, but so is the control: the refusal may be about our certificate, not the suites.
  const inconclusive = of('skip').filter(({ attempt }) => attempt.stage !== 'unsupported').map(({ name }) => name);
  const notes = [
    ...(refused.length > 0 ? [`refused: ${refused.join(', ')}`] : []),
    ...(inconclusive.length > 0 ? [`inconclusive (the server also refuses ${control.name}): ${inconclusive.join(', ')}`] : []),
    ...(unavailable.length > 0 ? [`not offered (this machine's OpenSSL lacks them): ${unavailable.join(', ')}`] : []),
  ];
  const failed = of('fail').map(({ name, verdict }) => `${name}: ${verdict.evidence}`);
  if (failed.length > 0) return { result: 'fail', evidence: [failed.join('; '), ...notes].join('; ') };
  return { result: refused.length > 0 ? 'pass' : 'skip', evidence: notes.join('; ') };
}

export const CHECK_RUNS: Record<CheckId, CheckRun> = {
  'valid-client-cert-accepted': async (session) => judgeAccepted(await session.baseline(), session.conversation),
  'server-chain-trusted': async (session) => {
    const attempt = await session.someHandshake();
    if (attempt.stage !== 'established') return { result: 'fail', evidence: `no handshake completed to read the chain from: ${describeAttempt(attempt)}` };
    const { chain, authorized, authorizationError } = attempt.handshake;
    const verdict = verifyServerChain(chain, session.material.bundle, session.now());
    if (!verdict.ok) return { result: 'fail', evidence: verdict.problem };
    // OpenSSL verified the same chain in the handshake: a second opinion, with its own rules.
    if (!authorized) return { result: 'fail', evidence: `OpenSSL does not accept the chain (${authorizationError ?? 'unknown reason'}): ${verdict.path}` };
    return { result: 'pass', evidence: `${verdict.path}; OpenSSL agrees` };
  },
  'server-id-matches': async (session) => {
    const attempt = await session.someHandshake();
    if (attempt.stage !== 'established') return { result: 'fail', evidence: `no handshake completed to read the certificate from: ${describeAttempt(attempt)}` };
    const verdict = checkServerId(attempt.handshake.chain[0], session.options.expect);
    return verdict.ok ? { result: 'pass', evidence: verdict.id } : { result: 'fail', evidence: verdict.problem };
  },
  'no-client-cert-refused': async (session) => refusedWith(session, undefined, await session.baselineControl()),
  'unknown-ca-refused': async (session) => refusedWith(session, await mintFromUnknownCa(session.material.clientSpiffeId, session.now()), await session.baselineControl()),
  'expired-cert-refused': (session) => refusedFromIssuer(session, () => mintFromIssuer(session.material.issuer!, session.material.clientSpiffeId, 'expired', session.now())),
  'not-yet-valid-cert-refused': (session) => refusedFromIssuer(session, () => mintFromIssuer(session.material.issuer!, session.material.clientSpiffeId, 'not-yet-valid', session.now())),
  'server-auth-only-cert-refused': (session) => refusedFromIssuer(session, () => mintServerAuthOnly(session.material.issuer!, session.material.clientSpiffeId, session.now())),
  'revoked-cert-refused': async (session) => {
    if (session.material.revoked === undefined) return { result: 'skip', evidence: 'needs --revoked-cert and --revoked-key (a certificate the CA has revoked)' };
    return refusedWith(session, session.material.revoked, await session.baselineControl());
  },
  'tls10-refused': (session) => versionRefused(session, 'TLSv1'),
  'tls11-refused': (session) => versionRefused(session, 'TLSv1.1'),
  'weak-ciphers-refused': weakCiphersRefused,
  'plaintext-refused': async (session) => {
    const { target, timeoutMs, settleMs } = session.options;
    const reply = await sendPlaintext(target, session.conversation.name === 'grpc' ? 'h2' : 'http1', timeoutMs ?? DEFAULT_TIMEOUT_MS, settleMs ?? DEFAULT_SETTLE_MS);
    return judgePlaintext(reply, session.speaksTls);
  },
};

