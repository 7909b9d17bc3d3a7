/**
 * The agent: keeps a workload's key, certificate chain, trust bundle and CRLs fresh in a directory
 * and tells the workload to reload.
 *
 * - At start it looks at what is on disk: a valid, unexpired set for the configured identity is
 *   kept (no token needed); damaged bundle.pem / crl.pem are replaced; a set it cannot use (key
 *   and certificate do not match, expired, revoked, another identity) needs a new enrolment.
 * - It enrols with a one-time token (the key is made here and never leaves), renews over mTLS
 *   with a new key when `shouldRenew` says so (2/3 of the lifetime ± lifetime/20), and retries
 *   with exponential backoff and jitter while that fails, keeping the current files meanwhile.
 * - It follows the CA's bundle and CRL streams (with an ETag poll beside each) and rewrites the
 *   set when either changes.
 * - Every write is a whole new version swapped in with one rename (output-dir.ts), followed by
 *   the reload hooks. A failing write leaves the old files and is retried with backoff.
 * - Past notAfter it says so loudly (error log `agent.expired`, health 503) and keeps trying:
 *   renewal, or enrolment with a new token if one appears in the token file.
 *
 * Everything time-related goes through the injected clock and timers; nothing is global, so a
 * process can run many agents (benchmarks run 100).
 */
import { createHash } from 'node:crypto';
import { CaClient, enrollWithToken, renewCredentials, tokenRequest, type IssuedResponse } from '../client/index.js';
import { isTlsmeshError, TlsmeshError, type ErrorCode } from '../errors.js';
import { createLogger, type Logger } from '../observe/logger.js';
import type { AgentMetrics } from '../observe/metrics.js';
import { changesBetween, identityMetricSources } from '../sdk/identity-metrics.js';
import { parseSpiffeId, type KeyType } from '../pki/index.js';
import type { Identity } from '../sdk/identity.js';
import type { CrlFeed } from '../sdk/sources/crl-feed.js';
import { DEFAULT_BACKOFF, renewAt, retryDelayMs, type BackoffPolicy } from '../sdk/sources/renew-schedule.js';
import { REAL_TIMERS, type Timers } from '../sdk/sources/renewal-loop.js';
import { chainProblem, checkSet, crlView, inspectFiles, leafNames, type CredentialSet } from './credential-set.js';
import { startAgentFeed, type DocumentClient, type DocumentKind } from './document-feeds.js';
import { AGENT_EXIT_CODES, exitCodeFor } from './exit-codes.js';
import { NODE_FS, prepareOutputDir, readCredentialFiles, writeCredentialSet, type DirectoryFs } from './output-dir.js';
import { describeHook, runReloadHook, type ReloadHook, type ReloadOutcome } from './reload.js';
import { clockBehindMs, DEFAULT_CLOCK_SKEW_TOLERANCE_MS, healthState, isExpired, shouldRenew, type HealthState } from './schedule.js';
import type { TokenSource } from './token.js';

export interface AgentOptions {
  /** `https://host:port` of the CA. */
  caUrl: string;
  /** The CA's roots obtained out of band (`bundle.pem` from `ca init`): trusted to enrol, and always for the CA. */
  bundlePem: string;
  /** The output directory (created 0700 if missing). One agent per directory. */
  outDir: string;
  /** Where to read a one-time token when one is needed (read each time, not once). */
  token?: TokenSource | undefined;
  /** Where the token comes from, in words, for messages (e.g. "--token-file /run/secrets/token"). */
  tokenHint?: string | undefined;
  /** The identity the files must have; by default the one the token names, or whatever is on disk. */
  spiffeId?: string | undefined;
  keyType?: KeyType | undefined;
  /** key.pem's mode: 0o600 (default) or 0o640 to share it with the workload's group. */
  keyMode?: number | undefined;
  /** Run, in order, after every write. */
  reload?: readonly ReloadHook[] | undefined;
  /** Follow the CA's bundle and CRL watch streams (default true); false polls only. */
  watch?: boolean | undefined;
  /** ETag poll interval for the bundle and the CRLs (default 30 s). */
  pollMs?: number | undefined;
  /** Write crl.pem and keep it current (default true). */
  crl?: boolean | undefined;
  /** How far the host clock may be off without a warning (default 5 min). */
  clockSkewToleranceMs?: number | undefined;
  backoff?: BackoffPolicy | undefined;
  logger?: Logger | undefined;
  /** Told about everything the agent does (tests and embedders wait on these). */
  onEvent?: ((event: AgentEvent) => void) | undefined;
  clock?: (() => number) | undefined;
  timers?: Timers | undefined;
  /** Uniform in [0, 1). */
  random?: (() => number) | undefined;
  /** File system calls for writes (tests inject failures). */
  fs?: DirectoryFs | undefined;
  /** Where renewals, reloads, rotations and the certificate's expiry are counted (served at the health endpoint's /metrics). */
  metrics?: AgentMetrics | undefined;
}

export interface AgentCounters {
  enrolments: number;
  renewals: number;
  /** Failed attempts to get a certificate (enrolment or renewal). */
  renewalFailures: number;
  writes: number;
  writeFailures: number;
  bundleUpdates: number;
  crlUpdates: number;
  reloads: number;
  reloadFailures: number;
  /** Times a certificate reached notAfter without being replaced. */
  expirations: number;
}

/** What the health endpoint answers. */
export interface AgentStatus {
  status: HealthState;
  dir: string;
  spiffeId: string | null;
  serial: string | null;
  notBefore: string | null;
  notAfter: string | null;
  /** When the agent will next try to renew (or retry). */
  nextRenewalAt: string | null;
  revoked: boolean;
  lastError: { code: string; message: string; at: string } | null;
  bundleEtag: string | null;
  /** When crl.pem last got new CRLs. */
  crlUpdatedAt: string | null;
  crlNextUpdate: string | null;
  /** How far this host's clock was found behind the CA's (corrected for in renewal timing). */
  clockBehindMs: number;
  /** A set is waiting to be written (the last write failed: the previous files are still in place). */
  pendingWrite: boolean;
  counters: AgentCounters;
}

export type AgentStep = 'start' | 'enrol' | 'renew' | 'write' | 'bundle' | 'crl';

export type AgentEvent =
  /** A valid set is on disk (found there, or written). */
  | { type: 'ready'; serial: string; reused: boolean }
  | { type: 'written'; version: string; serial: string; reasons: string[] }
  | { type: 'failed'; step: AgentStep; error: Error; retryInMs: number | null }
  | { type: 'expired'; serial: string; notAfter: Date }
  | { type: 'revoked'; serial: string }
  | { type: 'reloaded'; outcome: ReloadOutcome }
  /** A cycle finished with everything on disk; the next attempt is due at `nextRenewalAt`. */
  | { type: 'idle'; nextRenewalAt: Date }
  /** The agent cannot go on without the operator (no token, token refused, bad configuration) and has stopped. */
  | { type: 'fatal'; error: Error };

export interface Agent {
  /**
   * Resolves once a valid set is on disk; rejects with the coded error when the agent cannot get
   * one without the operator (ERR_TOKEN_* for "needs a new token", ERR_CONFIG, ERR_IDENTITY_FILE
   * for an output directory it cannot write). `exitCodeFor(error)` maps it to an exit code.
   */
  ready(): Promise<AgentStatus>;
  status(): AgentStatus;
  /** Renews now rather than on schedule. */
  renewNow(): void;
  /** Stops renewing and following; resolves once nothing more will touch the files (a write in progress completes). */
  stop(): Promise<void>;
}

interface OnDisk {
  set: CredentialSet;
  identity: Identity;
}

interface Obtained {
  set: CredentialSet;
  issued: IssuedResponse;
  via: 'enrol' | 'renew';
}

// setTimeout fires at once for delays above 2^31-1 ms (~24.8 days): wake up and look again instead.
const MAX_TIMER_MS = 2 ** 31 - 1;
/** After a success, the next attempt is never sooner than this (a clock far ahead must not make a renewal loop). */
const MIN_RENEW_INTERVAL_MS = 30_000;
const NEEDS_ENROLMENT: readonly ErrorCode[] = ['ERR_CERT_REVOKED', 'ERR_CERT_UNKNOWN', 'ERR_CLIENT_CERT_REJECTED', 'ERR_CLIENT_CERT_REQUIRED'];

const asError = (value: unknown): Error => (value instanceof Error ? value : new Error(String(value)));
const codeOf = (error: Error): string => (isTlsmeshError(error) ? error.code : 'ERR_INTERNAL');
const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');
const iso = (date: Date | number | undefined): string | null => (date === undefined ? null : new Date(date).toISOString());

/** Bad input the operator must fix: the CA's 4xx answers, a refused token, ERR_CONFIG; not a CA or disk that may come back. */
const needsOperator = (error: Error): boolean => isTlsmeshError(error) && error.status < 500 && error.code !== 'ERR_IDENTITY_INVALID';

class AgentRuntime implements Agent {
  readonly #options: AgentOptions;
  readonly #removeMetricSources: (() => void) | undefined;
  readonly #once: boolean;
  readonly #log: Logger;
  readonly #clock: () => number;
  readonly #timers: Timers;
  readonly #random: () => number;
  readonly #backoff: BackoffPolicy;
  readonly #tolerance: number;
  readonly #fs: DirectoryFs;
  readonly #crlEnabled: boolean;

  #onDisk: OnDisk | undefined;
  /** The set to write next (undefined: what is on disk is what is wanted). */
  #desired: CredentialSet | undefined;
  readonly #reasons = new Set<string>();
  /** Sets already checked (cert, key and bundle fit), so a set is validated once however often it is handled. */
  readonly #checked = new WeakMap<CredentialSet, Identity>();
  #latestBundle: string | undefined;
  /**
   * The newest CRLs taken, and an Identity built with them once (parsing and verifying CRLs costs
   * milliseconds; revocation, nextUpdate and cRLNumbers are all read from this one view). `view`
   * is null when the CRLs do not yet cover every CA of the chain (then nothing is read from them).
   */
  #crl: { pem: string; view: Identity | null } | undefined;
  #revoked = false;
  #jitter = 0;
  #behindMs = 0;
  #forceRenew = false;
  #failures = 0;
  #timer: unknown;
  #timerAt: number | undefined;
  #expiryTimer: unknown;
  #cycleRunning = false;
  /** A cycle asked for while one was running. */
  #requestedAt: number | undefined;
  #writeChain: Promise<void> = Promise.resolve();
  #feeds: CrlFeed[] = [];
  #client: { trust: string; client: CaClient } | undefined;
  /** Tokens this agent has redeemed or had refused (by hash), and the refusal to repeat. */
  readonly #spentTokens = new Map<string, ErrorCode>();
  /** Why the agent started without usable files (for the "needs a token" message). */
  #startProblem: string | undefined;
  #established = false;
  #isReady = false;
  #stopped = false;
  #lastError: AgentStatus['lastError'] = null;
  #bundleEtag: string | null = null;
  #crlUpdatedAt: number | undefined;
  readonly #counters: AgentCounters = { enrolments: 0, renewals: 0, renewalFailures: 0, writes: 0, writeFailures: 0, bundleUpdates: 0, crlUpdates: 0, reloads: 0, reloadFailures: 0, expirations: 0 };
  readonly #ready: Promise<AgentStatus>;
  /** The start (reading the directory): stop() waits for it, so nothing touches the files after stop resolves. */
  readonly #started: Promise<void>;
  #resolveReady!: (status: AgentStatus) => void;
  #rejectReady!: (error: Error) => void;

  constructor(options: AgentOptions, once: boolean) {
    this.#options = options;
    this.#once = once;
    this.#log = (options.logger ?? createLogger({ component: 'tlsmesh-agent' })).child({ dir: options.outDir });
    this.#clock = options.clock ?? Date.now;
    this.#timers = options.timers ?? REAL_TIMERS;
    this.#random = options.random ?? Math.random;
    this.#backoff = options.backoff ?? DEFAULT_BACKOFF;
    this.#tolerance = options.clockSkewToleranceMs ?? DEFAULT_CLOCK_SKEW_TOLERANCE_MS;
    this.#fs = options.fs ?? NODE_FS;
    this.#crlEnabled = options.crl !== false;
    // Removed in stop(): the gauges read whatever set is on disk when scraped.
    this.#removeMetricSources = options.metrics?.addSources(identityMetricSources({ current: () => this.#onDisk?.identity }, () => this.#crl?.view ?? undefined));
    this.#ready = new Promise<AgentStatus>((resolve, reject) => {
      this.#resolveReady = resolve;
      this.#rejectReady = reject;
    });
    this.#ready.catch(() => undefined); // a rejection nobody asked for is not an unhandled one
    this.#started = this.#start();
  }

  // ---- public -----------------------------------------------------------------------------

  ready(): Promise<AgentStatus> {
    return this.#ready;
  }

  status(): AgentStatus {
    const now = this.#now();
    const identity = this.#onDisk?.identity;
    const dueAt = identity ? renewAt(identity.notBefore, identity.notAfter, this.#jitter).getTime() : undefined;
    return {
      status: healthState(now, identity, dueAt, this.#revoked),
      dir: this.#options.outDir,
      spiffeId: identity?.spiffeId ?? null,
      serial: identity?.serial ?? null,
      notBefore: iso(identity?.notBefore),
      notAfter: iso(identity?.notAfter),
      nextRenewalAt: this.#stopped ? null : iso(this.#timerAt),
      revoked: this.#revoked,
      lastError: this.#lastError,
      bundleEtag: this.#bundleEtag,
      crlUpdatedAt: iso(this.#crlUpdatedAt),
      crlNextUpdate: iso(this.#crl?.view?.crlNextUpdate),
      clockBehindMs: this.#behindMs,
      pendingWrite: this.#desired !== undefined,
      counters: { ...this.#counters },
    };
  }

  renewNow(): void {
    if (this.#stopped) return;
    this.#forceRenew = true;
    this.#scheduleAt(this.#now());
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#removeMetricSources?.();
    this.#timers.clearTimeout(this.#timer);
    this.#timers.clearTimeout(this.#expiryTimer);
    this.#timerAt = undefined;
    for (const feed of this.#feeds) feed.stop();
    this.#feeds = [];
    this.#client?.client.close();
    this.#client = undefined;
    this.#rejectReady(new Error('the agent was stopped'));
    await this.#started;
    await this.#writeChain;
  }

  // ---- start --------------------------------------------------------------------------------

  /** Local time corrected by what the CA's certificates told us about our clock. */
  #now(): number {
    return this.#clock() + this.#behindMs;
  }

  #emit(event: AgentEvent): void {
    try {
      this.#options.onEvent?.(event);
    } catch (error) {
      this.#log.warn({ event: 'agent.listener_failed', err: asError(error).message }, 'an agent event listener threw');
    }
  }

  async #start(): Promise<void> {
    const dir = this.#options.outDir;
    try {
      await prepareOutputDir(dir, this.#fs);
      const found = await readCredentialFiles(dir, this.#options.keyMode ?? 0o600);
      const inspection = inspectFiles(found, {
        now: this.#now(),
        bootstrapBundlePem: this.#options.bundlePem,
        expectedSpiffeId: await this.#expectedSpiffeId(),
        clockSkewToleranceMs: this.#tolerance,
      });
      if (this.#stopped) return;
      if (inspection.state === 'absent') {
        this.#startProblem = `${dir} holds no credentials yet`;
        this.#log.info({ event: 'agent.enrolling' }, `no credentials in ${dir} yet: enrolling`);
      } else if (inspection.state === 'unusable') {
        this.#startProblem = `the credentials in ${dir} cannot be used: ${inspection.reason}`;
        this.#log.warn({ event: 'agent.files_unusable', reason: inspection.reason }, `${this.#startProblem}; a new enrolment is needed`);
      } else {
        this.#established = true;
        this.#adopt(inspection.set, inspection.identity);
        for (const warning of inspection.warnings) this.#log.warn({ event: 'agent.clock_skew' }, warning);
        if (inspection.repairs.length > 0) {
          this.#log.warn({ event: 'agent.files_repaired', repairs: inspection.repairs }, `repairing the credentials in ${dir}: ${inspection.repairs.join('; ')}`);
          this.#desired = { ...inspection.set };
          this.#reasons.add('repaired');
        } else {
          this.#log.info({ event: 'agent.reused', serial: inspection.identity.serial, notAfter: inspection.identity.notAfter.toISOString() }, `reusing the certificate in ${dir}`);
        }
      }
    } catch (error) {
      if (!this.#stopped) this.#fatal(asError(error), 'start');
      return;
    }
    if (!this.#stopped) void this.#cycle();
  }

  /** The identity the set must have: configured, or the one a token at hand names. */
  async #expectedSpiffeId(): Promise<string | undefined> {
    if (this.#options.spiffeId !== undefined) return this.#options.spiffeId;
    try {
      const token = await this.#options.token?.();
      return token === undefined ? undefined : tokenRequest(token).spiffeId;
    } catch {
      return undefined; // an unreadable or malformed token says nothing about the files; enrolment will say what is wrong with it
    }
  }

  /** Makes a set found on disk the current one. */
  #adopt(set: CredentialSet, identity: Identity): void {
    this.#onDisk = { set, identity };
    this.#latestBundle = set.bundlePem;
    this.#crl = set.crlPem === undefined ? undefined : { pem: set.crlPem, view: crlView(set, set.crlPem) }; // inspectFiles checked it
    this.#newCertificate(identity, undefined);
  }

  // ---- the cycle: get a certificate when due, write what is wanted ---------------------------

  /** Runs the cycle at `at` (replacing the pending timer; with `sooner`, only if that is earlier). */
  #scheduleAt(at: number, sooner = false): void {
    if (this.#stopped) return;
    if (this.#cycleRunning) {
      // Looked at when the running cycle ends (it reschedules from the state it leaves).
      this.#requestedAt = Math.min(this.#requestedAt ?? Infinity, at);
      return;
    }
    if (sooner && this.#timerAt !== undefined && this.#timerAt <= at) return;
    this.#timers.clearTimeout(this.#timer);
    this.#timerAt = at;
    const wait = Math.max(0, at - this.#now());
    this.#timer = this.#timers.setTimeout(wait > MAX_TIMER_MS ? () => this.#scheduleAt(at) : () => void this.#cycle(), Math.min(wait, MAX_TIMER_MS));
  }

  #needsCertificate(now: number): boolean {
    const identity = this.#onDisk?.identity;
    return identity === undefined || this.#revoked || this.#forceRenew || shouldRenew(now, identity, this.#jitter);
  }

  /** One pass: write what is pending, get a certificate if one is due, write it. */
  async #cycle(): Promise<void> {
    if (this.#stopped || this.#cycleRunning) return;
    this.#cycleRunning = true;
    this.#requestedAt = undefined;
    this.#timers.clearTimeout(this.#timer);
    this.#timerAt = undefined;
    let step: AgentStep = 'write';
    let failure: Error | undefined;
    let obtainedOne = false;
    try {
      if (this.#desired !== undefined) await this.#sync();
      if (this.#needsCertificate(this.#now())) {
        const obtained = await this.#obtain((next) => (step = next));
        obtainedOne = true;
        if (this.#stopped) return;
        await this.#fetchCrlOnce(obtained);
        this.#accept(obtained);
        step = 'write';
        await this.#sync();
      }
    } catch (error) {
      failure = asError(error);
    } finally {
      this.#cycleRunning = false;
    }
    if (this.#stopped) return;
    if (failure === undefined) this.#afterSuccess(obtainedOne);
    else this.#afterFailure(failure, step);
    const requested = this.#requestedAt;
    this.#requestedAt = undefined;
    if (requested !== undefined) this.#scheduleAt(requested, true);
  }

  #afterSuccess(obtainedOne: boolean): void {
    this.#failures = 0;
    const identity = this.#onDisk!.identity;
    const due = renewAt(identity.notBefore, identity.notAfter, this.#jitter).getTime();
    // A certificate that is due the moment it arrives (this host's clock far ahead of the CA's)
    // must not turn into a loop on the CA: the next try is at least 30 s away.
    const at = obtainedOne ? Math.max(due, this.#now() + MIN_RENEW_INTERVAL_MS) : due;
    this.#scheduleAt(at);
    if (!this.#isReady) {
      this.#isReady = true;
      const reused = this.#counters.writes === 0;
      this.#log.info({ event: 'agent.ready', serial: identity.serial, spiffe_id: identity.spiffeId, notAfter: identity.notAfter.toISOString(), nextRenewalAt: new Date(at).toISOString(), reused }, `credentials for ${identity.spiffeId} ready in ${this.#options.outDir}`);
      this.#emit({ type: 'ready', serial: identity.serial, reused });
      this.#resolveReady(this.status());
    }
    if (!this.#once) this.#startFeeds();
    this.#emit({ type: 'idle', nextRenewalAt: new Date(at) });
  }

  #afterFailure(error: Error, step: AgentStep): void {
    this.#noteError(error);
    if (step === 'enrol' || step === 'renew') {
      this.#counters.renewalFailures += 1;
      this.#options.metrics?.renewals.inc({ result: 'error' });
    }
    if (!this.#established && needsOperator(error)) {
      this.#fatal(error, step);
      return;
    }
    const wait = retryDelayMs(this.#failures, this.#random(), this.#backoff);
    this.#failures += 1;
    const identity = this.#onDisk?.identity;
    const expired = identity !== undefined && isExpired(this.#now(), identity);
    const loud = expired || this.#revoked || exitCodeFor(error) === AGENT_EXIT_CODES.needsToken;
    const fields = { event: `agent.${step}_failed`, code: codeOf(error), err: error.message, attempt: this.#failures, retryInMs: wait };
    const message = `${step} failed (attempt ${this.#failures}), retrying in ${Math.round(wait / 1000)} s: ${error.message}`;
    if (loud) this.#log.error(fields, message);
    else this.#log.warn(fields, message);
    this.#emit({ type: 'failed', step, error, retryInMs: wait });
    this.#scheduleAt(this.#now() + wait, true);
  }

  #noteError(error: Error): void {
    this.#lastError = { code: codeOf(error), message: error.message, at: new Date(this.#now()).toISOString() };
  }

  #fatal(error: Error, step: AgentStep): void {
    this.#noteError(error);
    this.#log.fatal({ event: 'agent.fatal', step, code: codeOf(error), err: error.message, exitCode: exitCodeFor(error) }, error.message);
    this.#emit({ type: 'fatal', error });
    this.#rejectReady(error);
    void this.stop();
  }

  // ---- getting a certificate ------------------------------------------------------------------

  /** The roots to trust for the CA: the configured bundle and the one on disk (which follows rotations). */
  #trustPem(): string {
    const onDisk = this.#onDisk?.set.bundlePem;
    return onDisk === undefined || onDisk === this.#options.bundlePem ? this.#options.bundlePem : `${this.#options.bundlePem.trimEnd()}\n${onDisk}`;
  }

  async #obtain(setStep: (step: AgentStep) => void): Promise<Obtained> {
    const current = this.#onDisk;
    const keyType = this.#options.keyType ?? 'p256';
    let refusal: Error | undefined;
    if (current !== undefined && !this.#revoked && this.#now() < current.identity.notAfter.getTime() + this.#tolerance) {
      setStep('renew');
      try {
        const renewed = await renewCredentials({
          url: this.#options.caUrl,
          current: { certPem: current.set.certPem, keyPem: current.set.keyPem, bundlePem: this.#trustPem() },
          ...leafNames(current.identity),
          keyType,
        });
        return { set: { certPem: renewed.certPem, keyPem: renewed.keyPem, bundlePem: renewed.bundlePem }, issued: renewed.issued, via: 'renew' };
      } catch (error) {
        if (!isTlsmeshError(error) || !NEEDS_ENROLMENT.includes(error.code)) throw error;
        refusal = error; // the CA will not renew this certificate: only a token helps
      }
    }
    setStep('enrol');
    const token = await this.#options.token?.();
    if (token === undefined) throw this.#needsToken(refusal, null);
    const hash = sha256(token);
    const spent = this.#spentTokens.get(hash);
    if (spent !== undefined) throw this.#needsToken(refusal, spent);
    let claims: ReturnType<typeof tokenRequest>;
    try {
      claims = tokenRequest(token);
    } catch (error) {
      this.#spentTokens.set(hash, 'ERR_TOKEN_MALFORMED');
      throw new TlsmeshError('ERR_TOKEN_MALFORMED', `the enrolment token from ${this.#tokenHint()} is not a well-formed token`, { cause: error });
    }
    if (this.#options.spiffeId !== undefined && claims.spiffeId !== this.#options.spiffeId) {
      throw new TlsmeshError('ERR_CONFIG', `the enrolment token from ${this.#tokenHint()} is for ${claims.spiffeId}, but the agent is configured for ${this.#options.spiffeId}`);
    }
    try {
      const enrolled = await enrollWithToken({ url: this.#options.caUrl, bundlePem: this.#trustPem(), token, keyType });
      this.#spentTokens.set(hash, 'ERR_TOKEN_REUSED');
      return { set: { certPem: enrolled.certPem, keyPem: enrolled.keyPem, bundlePem: enrolled.bundlePem }, issued: enrolled.issued, via: 'enrol' };
    } catch (error) {
      if (isTlsmeshError(error) && error.code.startsWith('ERR_TOKEN_')) {
        this.#spentTokens.set(hash, error.code);
        throw new TlsmeshError(error.code, `the CA refused the enrolment token from ${this.#tokenHint()}: ${error.message} — a new token is needed (tlsmesh token create)`, { cause: error });
      }
      throw error;
    }
  }

  #tokenHint(): string {
    return this.#options.tokenHint ?? 'the configured token source';
  }

  /** ERR_TOKEN_*: a new token is needed, and why. */
  #needsToken(refusal: Error | undefined, spent: ErrorCode | null): TlsmeshError {
    const current = this.#onDisk?.identity;
    const why =
      current === undefined
        ? (this.#startProblem ?? `no credentials in ${this.#options.outDir}`)
        : this.#revoked
          ? `the certificate for ${current.spiffeId} (serial ${current.serial}) is revoked`
          : refusal !== undefined
            ? `the CA will not renew the certificate for ${current.spiffeId} (${codeOf(refusal)}: ${refusal.message})`
            : `the certificate for ${current.spiffeId} (serial ${current.serial}) expired at ${current.notAfter.toISOString()} without being renewed`;
    const where = `put one in ${this.#tokenHint()} (tlsmesh token create)`;
    if (spent !== null) return new TlsmeshError(spent, `${why}, and the token in ${this.#tokenHint()} was already used or refused: a new enrolment token is needed; ${where}`, refusal ? { cause: refusal } : undefined);
    return new TlsmeshError(refusal !== undefined && isTlsmeshError(refusal) ? refusal.code : 'ERR_TOKEN_MALFORMED', `${why}, and there is no enrolment token: a new one is needed; ${where}`, refusal ? { cause: refusal } : undefined);
  }

  /** With a new certificate, the CRLs as they are now (one conditional GET; best effort). */
  async #fetchCrlOnce(obtained: Obtained): Promise<void> {
    if (!this.#crlEnabled) return;
    try {
      const trust = [this.#options.bundlePem, obtained.issued.bundlePem].join('\n');
      const client = new CaClient({ url: this.#options.caUrl, bundlePem: trust, trustDomain: parseSpiffeId(obtained.issued.spiffeId).trustDomain });
      try {
        const answer = await client.fetchCrls();
        if (answer !== 'not-modified') this.#takeCrl(obtained.set, answer.pem, false);
      } finally {
        client.close();
      }
    } catch (error) {
      this.#log.warn({ event: 'agent.crl_fetch_failed', err: asError(error).message }, `could not fetch the CRLs with the new certificate (the CRL feed will retry): ${asError(error).message}`);
    }
  }

  /** Turns a new certificate into the set to write: the newest bundle it chains to, the newest CRLs. */
  #accept(obtained: Obtained): void {
    this.#established = true;
    const bundles = [this.#latestBundle, obtained.set.bundlePem].filter((pem): pem is string => pem !== undefined);
    const bundlePem = bundles.find((pem) => chainProblem(obtained.set.certPem, pem) === null);
    if (bundlePem === undefined) {
      throw new TlsmeshError('ERR_IDENTITY_INVALID', `the CA issued a certificate that does not chain to its own trust bundle (${chainProblem(obtained.set.certPem, obtained.set.bundlePem) ?? 'unknown'})`);
    }
    const set: CredentialSet = { ...obtained.set, bundlePem, ...(this.#crlEnabled && this.#crl !== undefined ? { crlPem: this.#crl.pem } : {}) };
    const identity = checkSet(set);
    this.#checked.set(set, identity);
    const behind = clockBehindMs(this.#clock(), identity);
    this.#behindMs = behind;
    if (behind > this.#tolerance) {
      this.#log.warn({ event: 'agent.clock_skew', clockBehindMs: behind }, `this host's clock is at least ${Math.round(behind / 1000)} s behind the CA's (tolerance ${Math.round(this.#tolerance / 1000)} s): fix NTP; peers here may refuse fresh certificates as not yet valid`);
    }
    if (obtained.via === 'enrol') this.#counters.enrolments += 1;
    else this.#counters.renewals += 1;
    this.#options.metrics?.renewals.inc({ result: 'ok' });
    this.#options.metrics?.lastRenewalSuccess.set(this.#clock() / 1000);
    this.#forceRenew = false;
    this.#desired = set;
    this.#reasons.add(obtained.via === 'enrol' ? 'enrolled' : 'renewed');
    this.#log.info({ event: obtained.via === 'enrol' ? 'agent.enrolled' : 'agent.renewed', serial: identity.serial, spiffe_id: identity.spiffeId, notAfter: identity.notAfter.toISOString() }, `${obtained.via === 'enrol' ? 'enrolled' : 'renewed'}: ${identity.spiffeId}, serial ${identity.serial}, valid until ${identity.notAfter.toISOString()}`);
  }

  /** A certificate became current: new jitter, the expiry alarm, revocation state. */
  #newCertificate(identity: Identity, previousSerial: string | undefined): void {
    if (identity.serial === previousSerial) return;
    this.#jitter = this.#random() * 2 - 1;
    this.#recomputeRevoked();
    this.#armExpiry(identity);
    if (previousSerial === undefined && this.#behindMs === 0) {
      const behind = clockBehindMs(this.#clock(), identity);
      if (behind > 0) this.#behindMs = behind;
    }
  }

  #armExpiry(identity: Identity): void {
    this.#timers.clearTimeout(this.#expiryTimer);
    const at = identity.notAfter.getTime();
    const wait = Math.max(0, at - this.#now());
    this.#expiryTimer = this.#timers.setTimeout(() => {
      if (this.#stopped || this.#onDisk?.identity.serial !== identity.serial) return;
      if (!isExpired(this.#now(), identity)) {
        this.#armExpiry(identity); // woke early (long waits are cut into pieces)
        return;
      }
      this.#counters.expirations += 1;
      const error = new TlsmeshError('ERR_CLIENT_CERT_REJECTED', `the certificate for ${identity.spiffeId} (serial ${identity.serial}) expired at ${identity.notAfter.toISOString()} without being renewed: workloads using ${this.#options.outDir} now fail their handshakes; a new enrolment token is needed (${this.#tokenHint()}) unless the CA renews it`);
      this.#noteError(error);
      this.#log.error({ event: 'agent.expired', serial: identity.serial, spiffe_id: identity.spiffeId, notAfter: identity.notAfter.toISOString(), code: error.code }, error.message);
      this.#emit({ type: 'expired', serial: identity.serial, notAfter: identity.notAfter });
      this.#scheduleAt(this.#now()); // one more try at once: a token may be waiting
    }, Math.min(wait, MAX_TIMER_MS));
  }

  #recomputeRevoked(): void {
    const onDisk = this.#onDisk;
    const revoked = onDisk !== undefined && (this.#crl?.view?.isRevoked(onDisk.identity.serial) ?? false);
    if (revoked && !this.#revoked && onDisk) {
      const error = new TlsmeshError('ERR_CERT_REVOKED', `the certificate for ${onDisk.identity.spiffeId} (serial ${onDisk.identity.serial}) has been revoked: a new enrolment token is needed (${this.#tokenHint()})`);
      this.#noteError(error);
      this.#log.error({ event: 'agent.revoked', serial: onDisk.identity.serial, spiffe_id: onDisk.identity.spiffeId, code: error.code }, error.message);
      this.#emit({ type: 'revoked', serial: onDisk.identity.serial });
    }
    this.#revoked = revoked;
  }

  // ---- writing ----------------------------------------------------------------------------------

  /** Writes `#desired` if it differs from what is on disk; one write at a time, in order. */
  #sync(): Promise<void> {
    const run = async (): Promise<void> => {
      const desired = this.#desired;
      if (this.#stopped || desired === undefined) return;
      // Cert, key and bundle must fit; a bundle the chain does not lead to is still written (the
      // CA retired our root: peers must stop trusting it now); #onBundle has asked for a renewal.
      const current = this.#onDisk;
      const unchanged = current !== undefined && current.set.certPem === desired.certPem && current.set.keyPem === desired.keyPem && current.set.bundlePem === desired.bundlePem;
      const identity = unchanged ? current.identity : this.#check(desired);
      const reasons = [...this.#reasons];
      let version: string;
      try {
        version = await writeCredentialSet(this.#options.outDir, desired, { keyMode: this.#options.keyMode ?? 0o600, now: this.#clock(), fs: this.#fs });
      } catch (error) {
        this.#counters.writeFailures += 1;
        throw error;
      }
      for (const reason of reasons) this.#reasons.delete(reason);
      this.#counters.writes += 1;
      const previous = this.#onDisk;
      const previousSerial = previous?.identity.serial;
      this.#onDisk = { set: desired, identity };
      if (this.#desired === desired) this.#desired = undefined;
      if (desired.crlPem !== undefined && desired.crlPem !== previous?.set.crlPem) this.#crlUpdatedAt = this.#now();
      this.#newCertificate(identity, previousSerial);
      this.#recomputeRevoked();
      if (desired.bundlePem !== previous?.set.bundlePem) this.#followNewTrust();
      if (previous !== undefined) for (const what of changesBetween(previous.identity, identity)) this.#options.metrics?.rotated(what);
      this.#log.info({ event: 'agent.written', version, serial: identity.serial, reasons }, `wrote ${this.#options.outDir} (${reasons.join(', ')})`);
      this.#emit({ type: 'written', version, serial: identity.serial, reasons });
      await this.#runHooks(identity, reasons);
    };
    const result = this.#writeChain.then(run);
    this.#writeChain = result.catch(() => undefined);
    return result;
  }

  async #runHooks(identity: Identity, reasons: string[]): Promise<void> {
    for (const hook of this.#options.reload ?? []) {
      const outcome = await runReloadHook(hook, { dir: this.#options.outDir, spiffeId: identity.spiffeId, serial: identity.serial, notAfter: identity.notAfter, reasons });
      this.#options.metrics?.reloads.inc({ result: outcome.ok ? 'ok' : 'error' });
      if (outcome.ok) {
        this.#counters.reloads += 1;
        this.#log.info({ event: 'agent.reloaded', hook: outcome.hook, detail: outcome.detail }, `reload: ${outcome.hook}: ${outcome.detail}`);
      } else {
        this.#counters.reloadFailures += 1;
        this.#noteError(new TlsmeshError('ERR_CONFIG', `reload hook ${describeHook(hook)} failed: ${outcome.detail}`));
        this.#log.warn({ event: 'agent.reload_failed', hook: outcome.hook, detail: outcome.detail }, `reload failed (the new files stay; the hook runs again after the next write): ${outcome.hook}: ${outcome.detail}`);
      }
      this.#emit({ type: 'reloaded', outcome });
    }
  }

  /** Cert, key and bundle fit (the chain need not lead to the bundle: see #sync); cached per set. */
  #check(set: CredentialSet): Identity {
    let identity = this.#checked.get(set);
    if (identity === undefined) {
      identity = checkSet(set, { requireChain: false });
      this.#checked.set(set, identity);
    }
    return identity;
  }

  /** A write outside the cycle (a new bundle or CRL); a failure is retried by the cycle with backoff. */
  #writeSoon(): void {
    this.#sync().then(
      () => undefined,
      (error: unknown) => {
        if (!this.#stopped) this.#afterFailure(asError(error), 'write');
      },
    );
  }

  // ---- following the bundle and the CRLs --------------------------------------------------------

  /** The client the feeds use: built with the trust of the set on disk, rebuilt when that changes. */
  #documentClient(): DocumentClient {
    const trust = this.#trustPem();
    if (this.#client === undefined) {
      this.#client = { trust, client: new CaClient({ url: this.#options.caUrl, bundlePem: trust, trustDomain: this.#onDisk!.identity.trustDomain }) };
    }
    return this.#client.client;
  }

  /**
   * After a new bundle is on disk: a client that trusts it (after a root rotation the CA's own
   * certificate chains to the new root), the streams moved onto it, then the old client closed —
   * quietly, since nothing failed.
   */
  #followNewTrust(): void {
    const previous = this.#client;
    if (previous === undefined || previous.trust === this.#trustPem()) return;
    this.#client = undefined;
    for (const feed of this.#feeds) feed.reconnect();
    previous.client.close();
  }

  #startFeeds(): void {
    if (this.#feeds.length > 0 || this.#onDisk === undefined) return;
    const common = {
      client: () => this.#documentClient(),
      watch: this.#options.watch !== false,
      pollMs: this.#options.pollMs ?? 30_000,
      timers: this.#timers,
      random: this.#random,
    };
    const onError = (kind: DocumentKind) => (error: Error) => {
      this.#noteError(error);
      this.#log.warn({ event: `agent.${kind}_feed_failed`, code: codeOf(error), err: error.message }, `${kind === 'bundle' ? 'trust bundle' : 'CRL'} feed: ${error.message} (the files on disk stay)`);
    };
    this.#feeds.push(startAgentFeed({ ...common, kind: 'bundle', initialPem: this.#onDisk.set.bundlePem, onDocument: (pem) => this.#onBundle(pem), onVersion: (etag) => (this.#bundleEtag = etag), onError: onError('bundle') }));
    if (this.#crlEnabled) {
      this.#feeds.push(startAgentFeed({ ...common, kind: 'crl', initialPem: this.#onDisk.set.crlPem, onDocument: (pem) => this.#onCrl(pem), onError: onError('crl') }));
    }
  }

  #onBundle(pem: string): void {
    const base = this.#desired ?? this.#onDisk?.set;
    if (base === undefined || base.bundlePem === pem) return;
    const next: CredentialSet = { ...base, bundlePem: pem };
    try {
      this.#check(next);
    } catch (error) {
      this.#noteError(asError(error));
      this.#log.warn({ event: 'agent.bundle_refused', err: asError(error).message }, `the CA sent a trust bundle that cannot be used; keeping the current one: ${asError(error).message}`);
      return;
    }
    this.#latestBundle = pem;
    this.#counters.bundleUpdates += 1;
    this.#log.info({ event: 'agent.bundle_changed', etag: this.#bundleEtag }, 'the CA trust bundle changed');
    const problem = chainProblem(base.certPem, pem);
    if (problem !== null) {
      this.#log.error({ event: 'agent.bundle_excludes_chain', err: problem }, `the CA's new trust bundle no longer anchors this certificate (${problem}): renewing now`);
      this.#forceRenew = true;
      this.#scheduleAt(this.#now());
    }
    this.#desired = next;
    this.#reasons.add('bundle');
    this.#writeSoon();
  }

  #onCrl(pem: string): void {
    const base = this.#desired ?? this.#onDisk?.set;
    if (base === undefined) return;
    if (!this.#takeCrl(base, pem, true)) return;
    this.#desired = { ...base, crlPem: pem };
    this.#reasons.add('crl');
    this.#recomputeRevokedFor(this.#desired);
    this.#writeSoon();
  }

  /** Checks new CRLs against the set and the last ones; true when they are taken. */
  #takeCrl(base: CredentialSet, pem: string, fromFeed: boolean): boolean {
    if (pem === this.#crl?.pem) return false;
    let view: Identity | null = null;
    let problem: string | null = null;
    try {
      view = crlView(base, pem);
    } catch (error) {
      problem = asError(error).message;
    }
    if (problem !== null && !/no CRL for/.test(problem)) {
      const error = new TlsmeshError('ERR_CRL_MALFORMED', `the CA sent CRLs that cannot be used (${problem}); keeping the current crl.pem`);
      this.#noteError(error);
      this.#log.warn({ event: 'agent.crl_refused', err: problem }, error.message);
      return false;
    }
    if (problem !== null) {
      // A CA the chain names has no CRL yet (a rotation in progress): written anyway, since it is
      // what the CA publishes; its next CRLs complete the set.
      this.#log.warn({ event: 'agent.crl_incomplete', err: problem }, `the CA's CRLs do not yet cover every CA of this chain: ${problem}`);
    } else if (view !== null && this.#crl?.view) {
      const rollback = view.crlRollbackFrom(this.#crl.view);
      if (rollback !== null) {
        this.#log.warn({ event: 'agent.crl_rollback', err: rollback }, `older CRLs refused: ${rollback}`);
        return false;
      }
    }
    this.#crl = { pem, view };
    if (fromFeed) this.#counters.crlUpdates += 1;
    return true;
  }

  #recomputeRevokedFor(set: CredentialSet): void {
    const onDisk = this.#onDisk;
    if (onDisk === undefined || set.certPem !== onDisk.set.certPem) return;
    this.#recomputeRevoked();
    if (this.#revoked) this.#scheduleAt(this.#now()); // renewal is refused now: enrol with a token if one is there
  }
}

/**
 * Starts an agent (see the file comment) and returns at once; `ready()` says when the files are
 * there. Stop it with `stop()`.
 *
 * @example
 * const agent = startAgent({ caUrl: 'https://ca.internal:8443', bundlePem, outDir: '/var/run/tlsmesh', token: tokenFromFile('/run/secrets/token'), reload: [{ kind: 'signal', signal: 'SIGHUP', pidFile: '/run/nginx.pid' }] });
 * await agent.ready();
 */
export function startAgent(options: AgentOptions): Agent {
  checkOptions(options);
  return new AgentRuntime(options, false);
}

export interface OnceOptions extends AgentOptions {
  /** How long to keep trying (backoff included) before giving up (default 2 min). */
  timeoutMs?: number | undefined;
}

export interface OnceResult {
  /** See AGENT_EXIT_CODES: 0 when a valid set is on disk. */
  exitCode: number;
  status: AgentStatus;
  /** What went wrong (also when exitCode is 0: a renewal that was due and failed while the files are still valid). */
  error: Error | null;
}

export const DEFAULT_ONCE_TIMEOUT_MS = 2 * 60_000;

/** Timers that keep the process alive (the --once deadline is what waits for the backoff timers). */
const KEEP_ALIVE_TIMERS: Timers = { setTimeout: (callback, ms) => setTimeout(callback, ms), clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout) };

/**
 * For init containers and cron jobs: makes sure a valid set is on disk — enrols, renews it if it
 * is due, repairs damaged files — then stops. A valid set that is not due is left as it is, and
 * the CA is not contacted; one that is due but cannot be renewed right now is left too (exit 0,
 * `error` says why). Without a valid set it retries with backoff until `timeoutMs`, unless only
 * the operator can help. Never throws for what the agent meets; the result carries the exit code.
 *
 * @example
 * const { exitCode } = await runAgentOnce({ caUrl, bundlePem, outDir: '/var/run/tlsmesh', token: tokenFromValue(process.env.TLSMESH_TOKEN) });
 */
export async function runAgentOnce(options: OnceOptions): Promise<OnceResult> {
  checkOptions(options);
  const timeoutMs = options.timeoutMs ?? DEFAULT_ONCE_TIMEOUT_MS;
  const deadlineTimers = options.timers ?? KEEP_ALIVE_TIMERS;
  return new Promise<OnceResult>((resolve) => {
    let done = false;
    let lastFailure: Error | null = null;
    /** idle: all done; fatal: stopped by itself; give-up: nothing more to gain by retrying (or out of time). */
    const finish = (outcome: 'idle' | 'fatal' | 'give-up', error: Error | null): void => {
      if (done) return;
      done = true;
      deadlineTimers.clearTimeout(deadline);
      const status = agent.status();
      let exitCode: number;
      if (outcome === 'idle') exitCode = AGENT_EXIT_CODES.ok;
      else if (outcome === 'fatal') exitCode = exitCodeFor(error);
      else exitCode = usable(status) ? AGENT_EXIT_CODES.ok : lastFailure === null ? AGENT_EXIT_CODES.caUnreachable : exitCodeFor(lastFailure);
      void agent.stop().then(() => resolve({ exitCode, status, error: error ?? lastFailure }));
    };
    const deadline = deadlineTimers.setTimeout(() => finish('give-up', null), timeoutMs);
    const agent = new AgentRuntime(
      {
        ...options,
        onEvent(event) {
          options.onEvent?.(event);
          if (event.type === 'failed') {
            lastFailure = event.error;
            // The files on disk still serve (a due renewal failed): done, with a warning. Only
            // the operator can help (exit 2, 3): done. Otherwise retry until the deadline.
            const code = exitCodeFor(event.error);
            if (usable(agent.status()) || code === AGENT_EXIT_CODES.usage || code === AGENT_EXIT_CODES.needsToken) queueMicrotask(() => finish('give-up', null));
          } else if (event.type === 'idle') queueMicrotask(() => finish('idle', null));
          else if (event.type === 'fatal') queueMicrotask(() => finish('fatal', event.error));
        },
      },
      true,
    );
  });
}

/** A valid set on disk: unexpired, not revoked, nothing waiting to be written. */
const usable = (status: AgentStatus): boolean => (status.status === 'ok' || status.status === 'expiring') && !status.pendingWrite;

function checkOptions(options: AgentOptions): void {
  if (options === null || typeof options !== 'object') throw new TypeError('agent options must be an object');
  for (const field of ['caUrl', 'bundlePem', 'outDir'] as const) {
    if (typeof options[field] !== 'string' || options[field] === '') throw new TypeError(`agent options: ${field} must be a non-empty string`);
  }
  if (options.keyMode !== undefined && options.keyMode !== 0o600 && options.keyMode !== 0o640) throw new TypeError('agent options: keyMode must be 0o600 or 0o640');
}
