/**
 * The CA's alert decision: a pure function from what the CA can see (signals) and the time to
 * the alerts that fire. The same conditions, with the same default thresholds, as
 * alerts/tlsmesh-rules.yml (docs/alerts.md), so the webhook and Prometheus agree. No state: when
 * an alert started and whether it was sent is the notifier's business (notifier.ts).
 */

/** The newest valid certificate of one identity (store: status valid, not revoked). */
export interface CertificateSignal {
  spiffeId: string;
  kind: 'workload' | 'admin';
  serial: string;
  notBefore: Date;
  notAfter: Date;
}

/** A CRL the CA publishes. */
export interface CrlSignal {
  issuer: string;
  thisUpdate: Date;
  nextUpdate: Date;
}

/** A counter read at one instant (epoch ms); the series is oldest first. */
export interface CounterSample {
  atMs: number;
  value: number;
}

/** Counter histories; null when the metric is not registered (no signal, never an alert). */
export interface CounterSignals {
  handshakeRefusals: readonly CounterSample[] | null;
  requestRefusals: readonly CounterSample[] | null;
  plaintextRequests: readonly CounterSample[] | null;
  storeErrors: readonly CounterSample[] | null;
}

export interface AlertSignals {
  certificates: readonly CertificateSignal[];
  crls: readonly CrlSignal[];
  counters: CounterSignals;
}

export interface AlertPolicy {
  /** Fractions of a certificate's lifetime elapsed (renewal normally runs by 2/3 + 1/20). */
  renewalOverdueAfter: number;
  expiringWarningAfter: number;
  expiringCriticalAfter: number;
  /** Fractions of a CRL's validity (nextUpdate − thisUpdate) elapsed. */
  crlWarningAfter: number;
  crlCriticalAfter: number;
  /** A spike: the rate over spikeWindowMs is above the floor and above factor × the rate of the baselineWindowMs before it. */
  spikeWindowMs: number;
  baselineWindowMs: number;
  refusalFloorPerSecond: number;
  refusalFactor: number;
  /** Any plaintext request (or store error) within this window fires. */
  plaintextWindowMs: number;
  storeErrorWindowMs: number;
  /** docs/alerts.md; each alert links to its section. */
  runbookBaseUrl: string;
}

export const DEFAULT_RUNBOOK_BASE_URL = 'https://github.com/tlsmesh/tlsmesh/blob/main/docs/alerts.md';

export const DEFAULT_ALERT_POLICY: Readonly<AlertPolicy> = Object.freeze({
  renewalOverdueAfter: 0.8,
  expiringWarningAfter: 0.9,
  expiringCriticalAfter: 0.95,
  crlWarningAfter: 0.75,
  crlCriticalAfter: 0.9,
  spikeWindowMs: 5 * 60_000,
  baselineWindowMs: 60 * 60_000,
  refusalFloorPerSecond: 0.2,
  refusalFactor: 4,
  plaintextWindowMs: 10 * 60_000,
  storeErrorWindowMs: 10 * 60_000,
  runbookBaseUrl: DEFAULT_RUNBOOK_BASE_URL,
});

export type AlertName =
  | 'TlsmeshCertificateExpiringSoon'
  | 'TlsmeshRenewalFailing'
  | 'TlsmeshCrlStale'
  | 'TlsmeshRefusedHandshakeSpike'
  | 'TlsmeshRefusedRequestSpike'
  | 'TlsmeshPlaintextSeen'
  | 'TlsmeshStoreErrors';

export type Severity = 'warning' | 'critical';

/** One firing alert: Prometheus-style labels (identity) and annotations (text). */
export interface Alert {
  labels: Readonly<Record<string, string>> & { alertname: AlertName; severity: Severity };
  annotations: Readonly<{ summary: string; description: string; runbook_url: string }>;
}

/** Every alert that fires at `now`, in a stable order (by alertname, then labels). */
export function evaluateAlerts(signals: AlertSignals, now: Date, policy: AlertPolicy): Alert[] {
  const at = now.getTime();
  const alerts: Alert[] = [];
  const runbook = (name: AlertName): string => `${policy.runbookBaseUrl}#${name.toLowerCase()}`;

  for (const cert of signals.certificates) {
    const elapsed = fractionElapsed(cert.notBefore, cert.notAfter, at);
    const labels = { spiffe_id: cert.spiffeId, kind: cert.kind };
    const until = `${at > cert.notAfter.getTime() ? 'expired at' : 'expires at'} ${cert.notAfter.toISOString()} (serial ${cert.serial})`;
    if (elapsed > policy.renewalOverdueAfter) {
      alerts.push({
        labels: { alertname: 'TlsmeshRenewalFailing', severity: 'warning', signal: 'certificate-age', ...labels },
        annotations: {
          summary: `Certificate of ${cert.spiffeId} is past ${percent(policy.renewalOverdueAfter)} of its lifetime and has not been renewed`,
          description: `The newest ${cert.kind} certificate of ${cert.spiffeId} ${until} should have been renewed at 2/3 of its lifetime; no newer certificate exists. Check the agent or SDK of that workload and its access to the CA.`,
          runbook_url: runbook('TlsmeshRenewalFailing'),
        },
      });
    }
    for (const [severity, threshold] of [['warning', policy.expiringWarningAfter], ['critical', policy.expiringCriticalAfter]] as const) {
      if (elapsed <= threshold) continue;
      alerts.push({
        labels: { alertname: 'TlsmeshCertificateExpiringSoon', severity, ...labels },
        annotations: {
          summary: `Certificate of ${cert.spiffeId} ${severity === 'critical' ? 'expires very soon' : 'expires soon'}`,
          description: `The newest ${cert.kind} certificate of ${cert.spiffeId} ${until} has less than ${percent(1 - threshold)} of its lifetime left and no newer one exists; when it expires, every mTLS call to or from that workload fails.`,
          runbook_url: runbook('TlsmeshCertificateExpiringSoon'),
        },
      });
    }
  }

  for (const crl of signals.crls) {
    const elapsed = fractionElapsed(crl.thisUpdate, crl.nextUpdate, at);
    for (const [severity, threshold] of [['warning', policy.crlWarningAfter], ['critical', policy.crlCriticalAfter]] as const) {
      if (elapsed <= threshold) continue;
      alerts.push({
        labels: { alertname: 'TlsmeshCrlStale', severity, issuer: crl.issuer },
        annotations: {
          summary: `CRL of issuer ${crl.issuer} ${severity === 'critical' ? 'is about to expire or has expired' : 'is close to its nextUpdate'}`,
          description: `The CRL this CA publishes for issuer ${crl.issuer} (nextUpdate ${crl.nextUpdate.toISOString()}) has less than ${percent(1 - threshold)} of its validity left and has not been replaced; past nextUpdate, Node refuses every handshake that checks it.`,
          runbook_url: runbook('TlsmeshCrlStale'),
        },
      });
    }
  }

  const spikes = [
    ['TlsmeshRefusedHandshakeSpike', signals.counters.handshakeRefusals, 'refused TLS handshakes'],
    ['TlsmeshRefusedRequestSpike', signals.counters.requestRefusals, 'refused enrolment/renewal requests'],
  ] as const;
  for (const [name, samples, what] of spikes) {
    const spike = samples === null ? null : spikeRate(samples, at, policy);
    if (spike === null) continue;
    const against = spike.baseline === null ? 'with no earlier baseline' : `over ${policy.refusalFactor}x the ${(spike.baseline).toFixed(2)}/s of the ${minutes(policy.baselineWindowMs)} before`;
    alerts.push({
      labels: { alertname: name, severity: 'warning' },
      annotations: {
        summary: `The CA sees a spike of ${what}`,
        description: `${spike.rate.toFixed(2)} ${what} per second over the last ${minutes(policy.spikeWindowMs)}, ${against}.`,
        runbook_url: runbook(name),
      },
    });
  }

  const plaintext = signals.counters.plaintextRequests === null ? null : increaseBetween(signals.counters.plaintextRequests, at - policy.plaintextWindowMs, at);
  if (plaintext !== null && plaintext.increase > 0) {
    alerts.push({
      labels: { alertname: 'TlsmeshPlaintextSeen', severity: 'warning' },
      annotations: {
        summary: 'Plaintext requests reach a permissive-mode server',
        description: `${plaintext.increase} plaintext requests in the last ${minutes(policy.plaintextWindowMs)}. Find the callers (the permissive server logs each one) and move them to mTLS before leaving permissive mode.`,
        runbook_url: runbook('TlsmeshPlaintextSeen'),
      },
    });
  }

  const storeErrors = signals.counters.storeErrors === null ? null : increaseBetween(signals.counters.storeErrors, at - policy.storeErrorWindowMs, at);
  if (storeErrors !== null && storeErrors.increase > 0) {
    alerts.push({
      labels: { alertname: 'TlsmeshStoreErrors', severity: 'warning' },
      annotations: {
        summary: 'The CA store is failing',
        description: `${storeErrors.increase} store errors in the last ${minutes(policy.storeErrorWindowMs)}; enrolment, renewal and revocation may be failing.`,
        runbook_url: runbook('TlsmeshStoreErrors'),
      },
    });
  }

  return alerts.sort((a, b) => compareLabels(a.labels, b.labels));
}

/** How much of [start, end] has passed at `at`; a window of zero length or less counts as over. */
export function fractionElapsed(start: Date, end: Date, at: number): number {
  const length = end.getTime() - start.getTime();
  if (length <= 0) return Number.POSITIVE_INFINITY;
  return (at - start.getTime()) / length;
}

/**
 * A counter's increase from the last sample at or before `fromMs` (else the first after it) to
 * the last sample at or before `toMs`. A drop is a reset (process restart): the new value counts
 * as the increase, as in Prometheus. Null with fewer than two samples to compare.
 */
export function increaseBetween(samples: readonly CounterSample[], fromMs: number, toMs: number): { increase: number; seconds: number } | null {
  let first = -1;
  let last = -1;
  for (let i = 0; i < samples.length; i++) {
    const sample = samples[i]!;
    if (sample.atMs <= fromMs) first = i;
    else if (first === -1 && sample.atMs <= toMs) first = i;
    if (sample.atMs <= toMs) last = i;
  }
  if (first === -1 || last <= first) return null;
  let increase = 0;
  for (let i = first + 1; i <= last; i++) {
    const delta = samples[i]!.value - samples[i - 1]!.value;
    increase += delta >= 0 ? delta : samples[i]!.value;
  }
  return { increase, seconds: (samples[last]!.atMs - samples[first]!.atMs) / 1000 };
}

/** The rate of the last spike window if it is a spike (above the floor and above factor × baseline), else null. */
function spikeRate(samples: readonly CounterSample[], at: number, policy: AlertPolicy): { rate: number; baseline: number | null } | null {
  const recent = increaseBetween(samples, at - policy.spikeWindowMs, at);
  if (recent === null || recent.seconds <= 0) return null;
  const rate = recent.increase / recent.seconds;
  if (rate <= policy.refusalFloorPerSecond) return null;
  const windowStart = at - policy.spikeWindowMs;
  const before = increaseBetween(samples, windowStart - policy.baselineWindowMs, windowStart);
  // No history before the spike window: no baseline, the floor alone decides (as the rule does).
  if (before === null || before.seconds <= 0) return { rate, baseline: null };
  const baseline = before.increase / before.seconds;
  return rate > policy.refusalFactor * baseline ? { rate, baseline } : null;
}

function compareLabels(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): number {
  const key = (labels: Readonly<Record<string, string>>): string =>
    [labels['alertname'], ...Object.keys(labels).sort().map((name) => `${name}=${labels[name]}`)].join('\u0000');
  const [x, y] = [key(a), key(b)];
  return x < y ? -1 : x > y ? 1 : 0;
}

function percent(fraction: number): string {
  return `${Math.round(fraction * 1000) / 10}%`;
}

function minutes(ms: number): string {
  return ms % 3_600_000 === 0 ? `${ms / 3_600_000}h` : `${Math.round(ms / 60_000)}m`;
}
