/**
 * Prometheus metrics (prom-client) for the CA, the agent and the SDK, under one naming scheme
 * (`tlsmesh_…_total` counters, `_seconds` and `_bytes` units, timestamps as
 * `…_timestamp_seconds`). docs/metrics.md lists every metric; alerts/tlsmesh-rules.yml is written
 * against these names, so renaming one is a breaking change.
 *
 * Each component gets its own `Registry` (no global state, several CAs or servers can live in one
 * process, as they do in the tests). State that already lives elsewhere — which certificates exist,
 * which CRLs are held, the bundle's version — is not copied into gauges as it changes: the gauges
 * ask their `MetricSources` when scraped, so they can never drift from the truth.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RefusalReason } from './tls-refusal.js';

export { Registry } from 'prom-client';

export type MetricsComponent = 'ca' | 'agent' | 'sdk';
export type Transport = 'https' | 'http2' | 'grpc' | 'tls';
export type OperationResult = 'ok' | 'refused' | 'error';

/** A certificate as the expiry gauges see it. */
export interface CertificateState {
  spiffeId: string;
  kind: string;
  notBefore: Date;
  notAfter: Date;
}

/** A CRL as the CRL gauges see it; `issuer` names the CA key (CA) or the issuer's name (SDK, agent). */
export interface CrlState {
  issuer: string;
  thisUpdate: Date;
  nextUpdate: Date;
  sizeBytes: number;
  entries: number;
}

/** Where the scrape-time gauges read from; each is optional, a missing one exports nothing. */
export interface MetricSources {
  certificates?: () => Promise<readonly CertificateState[]> | readonly CertificateState[];
  crls?: () => readonly CrlState[];
  /** Grows with every change of the trust bundle (the CA's keys epoch; a count of changes elsewhere). */
  bundleVersion?: () => Promise<number> | number;
}

const seconds = (date: Date): number => date.getTime() / 1000;

/** Latency buckets for issuance: from a cached-key signature (~0.5 ms) to a stalled store (10 s). */
const ISSUANCE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** What every component exports: its certificates, CRLs, bundle, rotations and refused handshakes. */
export class TlsmeshMetrics {
  readonly registry: Registry;
  readonly component: MetricsComponent;
  readonly rotations: Counter<'component' | 'what'>;
  readonly handshakeRefusals: Counter<'component' | 'transport' | 'reason'>;
  readonly #sources: MetricSources[] = [];

  constructor(component: MetricsComponent, registry: Registry = new Registry()) {
    this.registry = registry;
    this.component = component;
    const sources = this.#sources;
    const certificates = async (): Promise<CertificateState[]> => {
      const lists = await Promise.all(sources.map(async (source) => (await source.certificates?.()) ?? []));
      return lists.flat();
    };
    const crls = (): CrlState[] => sources.flatMap((source) => source.crls?.() ?? []);

    // Both certificate gauges share one read of the sources per scrape (the CA's is a store
    // query): prom-client starts every metric's collect() in one synchronous pass, so a read
    // shared until the next microtask is shared by exactly that scrape, and never reused later.
    let pending: Promise<CertificateState[]> | undefined;
    const certificatesOnce = (): Promise<CertificateState[]> => {
      if (pending === undefined) {
        pending = certificates();
        queueMicrotask(() => (pending = undefined));
      }
      return pending;
    };
    const certificateGauge = (name: string, help: string, field: 'notBefore' | 'notAfter'): Gauge<'spiffe_id' | 'kind'> =>
      new Gauge({
        name,
        help,
        labelNames: ['spiffe_id', 'kind'],
        registers: [registry],
        async collect() {
          this.reset();
          for (const state of await certificatesOnce()) this.set({ spiffe_id: state.spiffeId, kind: state.kind }, seconds(state[field]));
        },
      });
    certificateGauge(
      'tlsmesh_certificate_expiry_timestamp_seconds',
      'notAfter of the newest unrevoked certificate of each identity (Unix seconds).',
      'notAfter',
    );
    certificateGauge(
      'tlsmesh_certificate_not_before_timestamp_seconds',
      'notBefore of the newest unrevoked certificate of each identity (Unix seconds); with the expiry, how far into its lifetime it is.',
      'notBefore',
    );
    const crlGauge = (name: string, help: string, value: (crl: CrlState) => number): Gauge<'issuer'> =>
      new Gauge({
        name,
        help,
        labelNames: ['issuer'],
        registers: [registry],
        collect() {
          this.reset();
          for (const crl of crls()) this.set({ issuer: crl.issuer }, value(crl));
        },
      });
    crlGauge('tlsmesh_crl_this_update_timestamp_seconds', 'thisUpdate of each CRL held or published (Unix seconds).', (crl) => seconds(crl.thisUpdate));
    crlGauge('tlsmesh_crl_next_update_timestamp_seconds', 'nextUpdate of each CRL held or published (Unix seconds); past it, relying parties refuse every handshake.', (crl) => seconds(crl.nextUpdate));
    crlGauge('tlsmesh_crl_size_bytes', 'DER size of each CRL held or published.', (crl) => crl.sizeBytes);
    crlGauge('tlsmesh_crl_entries', 'Revoked serials listed in each CRL held or published.', (crl) => crl.entries);
    new Gauge({
      name: 'tlsmesh_bundle_version',
      help: 'Version of the trust bundle in use: the CA keys epoch at the CA, the number of bundle changes seen elsewhere.',
      registers: [registry],
      async collect() {
        const versions = await Promise.all(sources.map(async (source) => await source.bundleVersion?.()));
        const known = versions.filter((version): version is number => version !== undefined);
        if (known.length > 0) this.set(Math.max(...known));
      },
    });
    this.rotations = new Counter({
      name: 'tlsmesh_rotations_total',
      help: 'Certificates, trust bundles, CRLs and CA keys swapped in while running, by what changed.',
      labelNames: ['component', 'what'],
      registers: [registry],
    });
    this.handshakeRefusals = new Counter({
      name: 'tlsmesh_tls_handshake_refusals_total',
      help: 'TLS peers refused, by reason and transport (plaintext, no or bad certificate, revoked, identity not allowed, old protocol).',
      labelNames: ['component', 'transport', 'reason'],
      registers: [registry],
    });
  }

  /** Adds a source for the scrape-time gauges; returns the function that removes it. */
  addSources(sources: MetricSources): () => void {
    this.#sources.push(sources);
    return () => {
      const index = this.#sources.indexOf(sources);
      if (index >= 0) this.#sources.splice(index, 1);
    };
  }

  rotated(what: 'leaf' | 'bundle' | 'crl' | 'ca-keys' | 'server-certificate'): void {
    this.rotations.inc({ component: this.component, what });
  }

  refused(transport: Transport, reason: RefusalReason): void {
    this.handshakeRefusals.inc({ component: this.component, transport, reason });
  }

  /** Node's own process metrics (CPU, memory, event loop lag) in this registry: for a whole process such as `ca serve`, not a library user's. */
  collectProcessMetrics(): void {
    collectDefaultMetrics({ register: this.registry });
  }

  /** The text exposition format, for a `/metrics` route. */
  exposition(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** The CA's operations on top of the common set. */
export class CaMetrics extends TlsmeshMetrics {
  readonly enrollments: Counter<'result' | 'code'>;
  readonly renewals: Counter<'result' | 'code'>;
  readonly revocations: Counter<'result' | 'code'>;
  readonly tokens: Counter<'result' | 'code'>;
  readonly issuanceDuration: Histogram<'operation'>;
  readonly storeErrors: Counter<'operation'>;

  constructor(registry?: Registry) {
    super('ca', registry);
    const counter = (name: string, help: string): Counter<'result' | 'code'> =>
      new Counter({ name, help, labelNames: ['result', 'code'], registers: [this.registry] });
    this.enrollments = counter('tlsmesh_ca_enrollments_total', 'Enrolments (token + CSR), by result and error code.');
    this.renewals = counter('tlsmesh_ca_renewals_total', 'Renewals over mutual TLS, by result and error code.');
    this.revocations = counter('tlsmesh_ca_revocations_total', 'Revocation requests, by result and error code.');
    this.tokens = counter('tlsmesh_ca_tokens_created_total', 'Enrolment tokens created, by result and error code.');
    this.issuanceDuration = new Histogram({
      name: 'tlsmesh_ca_issuance_duration_seconds',
      help: 'Time from a request reaching the authority to its certificate being stored, by operation (successful issuances only).',
      labelNames: ['operation'],
      buckets: ISSUANCE_BUCKETS,
      registers: [this.registry],
    });
    this.storeErrors = new Counter({
      name: 'tlsmesh_store_errors_total',
      help: 'Store (SQLite or PostgreSQL) operations that failed, by operation.',
      labelNames: ['operation'],
      registers: [this.registry],
    });
  }

  /**
   * Records how one authority operation ended (an AuthorityObserver); other actions (listing,
   * status, the CA's own certificates) are in the audit log only. `seconds` is observed for
   * issuances that succeeded.
   */
  completed(action: string, result: OperationResult, code: string | null, seconds: number): void {
    const labels = { result, code: code ?? '' };
    switch (action) {
      case 'enroll':
        this.enrollments.inc(labels);
        break;
      case 'renew':
        this.renewals.inc(labels);
        break;
      case 'revoke':
        this.revocations.inc(labels);
        return;
      case 'token.create':
        this.tokens.inc(labels);
        return;
      default:
        return;
    }
    if (result === 'ok') this.issuanceDuration.observe({ operation: action }, seconds);
  }
}

/** The agent's renewals and reloads on top of the common set. */
export class AgentMetrics extends TlsmeshMetrics {
  readonly renewals: Counter<'result'>;
  readonly lastRenewalSuccess: Gauge;
  readonly reloads: Counter<'result'>;

  constructor(registry?: Registry) {
    super('agent', registry);
    this.renewals = new Counter({
      name: 'tlsmesh_agent_renewals_total',
      help: 'Enrolments and renewals attempted by the agent, by result.',
      labelNames: ['result'],
      registers: [this.registry],
    });
    this.lastRenewalSuccess = new Gauge({
      name: 'tlsmesh_agent_last_renewal_success_timestamp_seconds',
      help: 'When the agent last obtained a certificate (Unix seconds).',
      registers: [this.registry],
    });
    this.reloads = new Counter({
      name: 'tlsmesh_agent_reloads_total',
      help: 'Reload hooks run after new files were written, by result.',
      labelNames: ['result'],
      registers: [this.registry],
    });
  }
}

/** The SDK's permissive-mode callers on top of the common set. */
export class SdkMetrics extends TlsmeshMetrics {
  readonly plaintextRequests: Counter<'transport'>;
  readonly insecureCallers: Counter<'transport' | 'mode'>;
  readonly deniedCalls: Counter<'transport'>;

  constructor(registry?: Registry) {
    super('sdk', registry);
    this.plaintextRequests = new Counter({
      name: 'tlsmesh_permissive_plaintext_requests_total',
      help: 'Requests served in plaintext by a server in permissive mode (each is a caller still to be moved to mTLS).',
      labelNames: ['transport'],
      registers: [this.registry],
    });
    this.insecureCallers = new Counter({
      name: 'tlsmesh_permissive_insecure_callers_total',
      help: 'Distinct caller addresses first seen speaking plaintext or TLS without a client certificate to a permissive server.',
      labelNames: ['transport', 'mode'],
      registers: [this.registry],
    });
    this.deniedCalls = new Counter({
      name: 'tlsmesh_authz_denied_total',
      help: 'Requests or calls from an authenticated peer whose SPIFFE ID the route or method does not allow.',
      labelNames: ['transport'],
      registers: [this.registry],
    });
  }
}

let defaultSdkMetrics: SdkMetrics | undefined;

/**
 * The SDK's metrics when the caller passes none: one registry per process, made on first use (no
 * import-time side effects). Expose it next to your own: `res.end(await sdkMetrics().exposition())`,
 * or merge it with prom-client's global registry (`Registry.merge([register, sdkMetrics().registry])`).
 */
export function sdkMetrics(): SdkMetrics {
  defaultSdkMetrics ??= new SdkMetrics();
  return defaultSdkMetrics;
}
