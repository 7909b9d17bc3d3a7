/**
 * Gathers what the CA can see for its alerts: the newest valid certificate of each identity
 * (store), the CRLs it publishes (CrlPublisher), and counters read by name from a prom-client
 * Registry (an unregistered metric is no signal). Counters are sampled at each gathering and kept
 * for as long as the spike and baseline windows need them.
 */
import { Counter, type Registry } from 'prom-client';
import type { CertificateKind, Store } from '../../store/index.js';
import type { PublishedCrls } from '../crl-publisher.js';
import type { AlertPolicy, AlertSignals, CertificateSignal, CounterSample, CounterSignals, CrlSignal } from './evaluate.js';

/** The metric names the CA's alerts read (src/observe/metrics.ts registers them). */
export const ALERT_METRICS = {
  handshakeRefusals: 'tlsmesh_tls_handshake_refusals_total',
  enrollments: 'tlsmesh_ca_enrollments_total',
  renewals: 'tlsmesh_ca_renewals_total',
  plaintextRequests: 'tlsmesh_permissive_plaintext_requests_total',
  storeErrors: 'tlsmesh_store_errors_total',
} as const;


export interface SignalSourceOptions {
  store: Pick<Store, 'newestCertificatePerIdentity'>;
  crls: { current(): PublishedCrls };
  registry?: Registry | undefined;
  policy: Pick<AlertPolicy, 'spikeWindowMs' | 'baselineWindowMs' | 'plaintextWindowMs' | 'storeErrorWindowMs'>;
  /**
   * How long an identity whose newest certificate expired is still looked at (so its expiry
   * alert keeps firing instead of resolving the moment it expires). After that it is taken for
   * decommissioned.
   */
  expiredLookbackMs: number;
}

export type SignalSource = (now: Date) => Promise<AlertSignals>;

export function createSignalSource(options: SignalSourceOptions): SignalSource {
  const history: Record<keyof CounterSignals, CounterSample[]> = { handshakeRefusals: [], requestRefusals: [], plaintextRequests: [], storeErrors: [] };
  const { policy } = options;
  const keepMs = Math.max(policy.spikeWindowMs + policy.baselineWindowMs, policy.plaintextWindowMs, policy.storeErrorWindowMs) + 60_000;

  const sample = async (key: keyof CounterSignals, names: readonly string[], match: (labels: Record<string, unknown>) => boolean, atMs: number): Promise<CounterSample[] | null> => {
    const value = await readCounter(options.registry, names, match);
    const series = history[key];
    if (value === null) {
      series.length = 0;
      return null;
    }
    series.push({ atMs, value });
    while (series.length > 0 && series[0]!.atMs < atMs - keepMs) series.shift();
    return [...series];
  };

  return async (now) => {
    const atMs = now.getTime();
    const any = (): boolean => true;
    const counters: CounterSignals = {
      handshakeRefusals: await sample('handshakeRefusals', [ALERT_METRICS.handshakeRefusals], any, atMs),
      requestRefusals: await sample('requestRefusals', [ALERT_METRICS.enrollments, ALERT_METRICS.renewals], (labels) => labels['result'] === 'refused', atMs),
      plaintextRequests: await sample('plaintextRequests', [ALERT_METRICS.plaintextRequests], any, atMs),
      storeErrors: await sample('storeErrors', [ALERT_METRICS.storeErrors], any, atMs),
    };
    return {
      certificates: await newestCertificates(options.store, now, options.expiredLookbackMs),
      crls: crlSignals(options.crls.current()),
      counters,
    };
  };
}

/**
 * The newest non-revoked certificate of each workload and admin identity, unless it expired more
 * than lookbackMs ago (a certificate dated in the future is not the one in use).
 */
export async function newestCertificates(store: Pick<Store, 'newestCertificatePerIdentity'>, now: Date, lookbackMs: number): Promise<CertificateSignal[]> {
  const newest = await store.newestCertificatePerIdentity({ at: now, expiredSince: new Date(now.getTime() - lookbackMs) });
  return newest.flatMap((record) =>
    isAlertedKind(record.kind) ? [{ spiffeId: record.spiffeId, kind: record.kind, serial: record.serial, notBefore: record.notBefore, notAfter: record.notAfter }] : [],
  );
}

const isAlertedKind = (kind: CertificateKind): kind is 'workload' | 'admin' => kind === 'workload' || kind === 'admin';

export function crlSignals(crls: PublishedCrls): CrlSignal[] {
  return crls.all.map((crl) => ({ issuer: crl.issuerKeyId, thisUpdate: crl.record.thisUpdate, nextUpdate: crl.record.nextUpdate }));
}

/** The sum of a counter's values (over the label sets `match` keeps), or null when none of the names is registered. */
export async function readCounter(registry: Registry | undefined, names: readonly string[], match: (labels: Record<string, unknown>) => boolean): Promise<number | null> {
  if (registry === undefined) return null;
  let total: number | null = null;
  for (const name of names) {
    const metric = registry.getSingleMetric(name);
    // A metric of another type under that name is no signal either.
    if (!(metric instanceof Counter)) continue;
    const read = await metric.get();
    total ??= 0;
    for (const value of read.values) if (match(value.labels)) total += value.value;
  }
  return total;
}
