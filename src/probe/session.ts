/**
 * The connections of one probe. The ones several checks share are made once: the control (the
 * valid client certificate), the attempt without a client certificate, and the second control (a
 * fresh certificate from --issuer-cert). It also notes whether the port has spoken TLS, which the
 * plaintext check needs.
 */
import { attemptTls, type Attempt, type AttemptSettings, type Conversation, type Offer } from './attempt.js';
import { grpcConversation } from './conversations/grpc.js';
import { httpConversation } from './conversations/http.js';
import { plainConversation } from './conversations/plain.js';
import type { CheckedMaterial } from './material.js';
import { mintFromIssuer } from './mint.js';
import { DEFAULT_SETTLE_MS, DEFAULT_TIMEOUT_MS, type ApplicationRequest, type ProbeOptions } from './options.js';
import type { ProbeTarget } from './target.js';
import { judgeAccepted, type Control } from './verdicts.js';

export function conversationFor(application: ApplicationRequest, target: ProbeTarget): Conversation {
  switch (application.kind) {
    case 'tls':
      return plainConversation;
    case 'http':
      return httpConversation(application.path, target.label);
    case 'grpc':
      return grpcConversation(target.label);
  }
}

/** The connections of one probe, with the shared ones (controls, the no-certificate attempt) made once. */
export class ProbeSession {
  readonly conversation: Conversation;
  readonly now: () => Date;
  /** Set once any connection showed the port speaks TLS (a handshake, or a TLS alert in one). */
  speaksTls = false;
  readonly #settings: AttemptSettings;
  readonly #memo = new Map<string, Promise<unknown>>();

  constructor(readonly options: ProbeOptions) {
    this.conversation = conversationFor(options.application, options.target);
    this.now = options.now ?? (() => new Date());
    this.#settings = {
      target: options.target,
      bundlePem: options.material.bundlePem,
      timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      settleMs: options.settleMs ?? DEFAULT_SETTLE_MS,
    };
  }

  get material(): CheckedMaterial {
    return this.options.material;
  }

  async attempt(offer: Offer): Promise<Attempt> {
    const attempt = await attemptTls(this.#settings, offer, this.conversation);
    if (attempt.stage === 'established' || (attempt.stage === 'handshake-failed' && attempt.failure.kind === 'alert')) this.speaksTls = true;
    return attempt;
  }

  once<T>(key: string, make: () => Promise<T>): Promise<T> {
    let value = this.#memo.get(key) as Promise<T> | undefined;
    if (value === undefined) this.#memo.set(key, (value = make()));
    return value;
  }

  /** The valid client certificate, under default versions and suites. */
  baseline(): Promise<Attempt> {
    return this.once('baseline', () => this.attempt({ credential: this.material.client }));
  }

  withoutCertificate(): Promise<Attempt> {
    return this.once('no-certificate', () => this.attempt({}));
  }

  async baselineControl(): Promise<Control> {
    return { accepted: judgeAccepted(await this.baseline(), this.conversation).result === 'pass', name: 'the valid client certificate (--cert)' };
  }

  /** A certificate fresh from --issuer-cert: if the server refuses it, refusals of its siblings prove nothing. */
  issuerControl(): Promise<Control> {
    return this.once('issuer-control', async () => {
      const issuer = this.material.issuer!;
      const attempt = await this.attempt({ credential: mintFromIssuer(issuer, this.material.clientSpiffeId, 'current', this.now()) });
      return { accepted: judgeAccepted(attempt, this.conversation).result === 'pass', name: 'a currently valid certificate minted from --issuer-cert' };
    });
  }

  /** The handshake to read the server's chain from: the control's, or one without a client certificate. */
  async someHandshake(): Promise<Attempt> {
    const baseline = await this.baseline();
    return baseline.stage === 'established' ? baseline : this.withoutCertificate();
  }
}

