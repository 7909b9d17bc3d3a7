/** The pure alert decision, by tables (ok/…: nothing fires; fail/…: these alerts fire). */
import { describe, expect, it } from 'vitest';
import { DEFAULT_ALERT_POLICY, evaluateAlerts, increaseBetween, type AlertPolicy, type AlertSignals, type CertificateSignal, type CounterSample, type CounterSignals } from '../../src/ca/alerts/evaluate.js';

const T0 = Date.parse('2030-01-01T00:00:00Z');
const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const ID = 'spiffe://example.org/billing';

function cert(overrides: Partial<CertificateSignal> = {}): CertificateSignal {
  return { spiffeId: ID, kind: 'workload', serial: '0a1b', notBefore: new Date(T0), notAfter: new Date(T0 + DAY), ...overrides };
}

const noCounters: CounterSignals = { handshakeRefusals: null, requestRefusals: null, plaintextRequests: null, storeErrors: null };

function signals(overrides: Partial<AlertSignals> = {}): AlertSignals {
  return { certificates: [], crls: [], counters: noCounters, ...overrides };
}

/** A counter sampled every minute from `startMs`, with `perMinute(i)` added in minute i. */
function counter(startMs: number, minutes: number, perMinute: (i: number) => number, from = 0): CounterSample[] {
  const samples: CounterSample[] = [{ atMs: startMs, value: from }];
  for (let i = 1; i <= minutes; i++) samples.push({ atMs: startMs + i * MIN, value: samples[i - 1]!.value + perMinute(i) });
  return samples;
}

/** alertname/severity[/subject] of each alert, in the evaluator's order. */
function names(result: ReturnType<typeof evaluateAlerts>): string[] {
  return result.map((alert) => [alert.labels.alertname, alert.labels.severity, alert.labels['spiffe_id'] ?? alert.labels['issuer']].filter(Boolean).join('/'));
}

describe('evaluateAlerts: certificates (24 h leaf issued at T0)', () => {
  const cases: [string, number, Partial<CertificateSignal>, string[]][] = [
    ['ok/fresh (50%)', 0.5, {}, []],
    ['ok/due for renewal, not late (2/3 + 1/20)', 2 / 3 + 1 / 20, {}, []],
    ['ok/exactly 80% (the threshold is "past")', 0.8, {}, []],
    ['fail/renewal overdue (81%)', 0.81, {}, [`TlsmeshRenewalFailing/warning/${ID}`]],
    ['fail/expiring (91%)', 0.91, {}, [`TlsmeshCertificateExpiringSoon/warning/${ID}`, `TlsmeshRenewalFailing/warning/${ID}`]],
    ['fail/expiring critical (96%)', 0.96, {}, [`TlsmeshCertificateExpiringSoon/critical/${ID}`, `TlsmeshCertificateExpiringSoon/warning/${ID}`, `TlsmeshRenewalFailing/warning/${ID}`]],
    ['fail/expired an hour ago', 1 + 1 / 24, {}, [`TlsmeshCertificateExpiringSoon/critical/${ID}`, `TlsmeshCertificateExpiringSoon/warning/${ID}`, `TlsmeshRenewalFailing/warning/${ID}`]],
    ['ok/admin (30 d) a day old', 1, { kind: 'admin', notAfter: new Date(T0 + 30 * DAY) }, []],
    ['fail/admin (30 d) with 2 days left', 28, { kind: 'admin', notAfter: new Date(T0 + 30 * DAY) }, [`TlsmeshCertificateExpiringSoon/warning/${ID}`, `TlsmeshRenewalFailing/warning/${ID}`]],
    ['fail/zero-length lifetime counts as over', 0, { notAfter: new Date(T0) }, [`TlsmeshCertificateExpiringSoon/critical/${ID}`, `TlsmeshCertificateExpiringSoon/warning/${ID}`, `TlsmeshRenewalFailing/warning/${ID}`]],
  ];
  for (const [name, daysOrFraction, overrides, expected] of cases) {
    it(name, () => {
      // Fractions of the 24 h leaf; for the admin rows, days.
      const now = new Date(T0 + daysOrFraction * DAY);
      expect(names(evaluateAlerts(signals({ certificates: [cert(overrides)] }), now, DEFAULT_ALERT_POLICY))).toEqual(expected);
    });
  }

  it('labels and annotations name the identity, kind, serial, expiry and runbook', () => {
    const [renewal, expiring] = evaluateAlerts(signals({ certificates: [cert()] }), new Date(T0 + 0.91 * DAY), DEFAULT_ALERT_POLICY).sort((a, b) => a.labels.alertname.localeCompare(b.labels.alertname)).reverse();
    expect(renewal!.labels).toEqual({ alertname: 'TlsmeshRenewalFailing', severity: 'warning', signal: 'certificate-age', spiffe_id: ID, kind: 'workload' });
    expect(renewal!.annotations.summary).toContain(ID);
    expect(renewal!.annotations.runbook_url).toBe(`${DEFAULT_ALERT_POLICY.runbookBaseUrl}#tlsmeshrenewalfailing`);
    expect(expiring!.labels).toEqual({ alertname: 'TlsmeshCertificateExpiringSoon', severity: 'warning', spiffe_id: ID, kind: 'workload' });
    expect(expiring!.annotations.description).toContain('expires at 2030-01-02T00:00:00.000Z (serial 0a1b)');
    expect(expiring!.annotations.description).toContain('less than 10% of its lifetime left');
    const [expired] = evaluateAlerts(signals({ certificates: [cert()] }), new Date(T0 + 2 * DAY), DEFAULT_ALERT_POLICY);
    expect(expired!.annotations.description).toContain('expired at 2030-01-02T00:00:00.000Z');
  });

  it('thresholds come from the policy', () => {
    const policy: AlertPolicy = { ...DEFAULT_ALERT_POLICY, renewalOverdueAfter: 0.5, expiringWarningAfter: 0.6, expiringCriticalAfter: 0.99 };
    expect(names(evaluateAlerts(signals({ certificates: [cert()] }), new Date(T0 + 0.55 * DAY), policy))).toEqual([`TlsmeshRenewalFailing/warning/${ID}`]);
    expect(names(evaluateAlerts(signals({ certificates: [cert()] }), new Date(T0 + 0.65 * DAY), policy))).toEqual([`TlsmeshCertificateExpiringSoon/warning/${ID}`, `TlsmeshRenewalFailing/warning/${ID}`]);
  });

  it('several identities: one set each, in a stable order', () => {
    const a = cert({ spiffeId: 'spiffe://example.org/a' });
    const b = cert({ spiffeId: 'spiffe://example.org/b', notBefore: new Date(T0 + 0.5 * DAY), notAfter: new Date(T0 + 1.5 * DAY) });
    const z = cert({ spiffeId: 'spiffe://example.org/z' });
    const result = names(evaluateAlerts(signals({ certificates: [z, b, a] }), new Date(T0 + 0.85 * DAY), DEFAULT_ALERT_POLICY));
    expect(result).toEqual(['TlsmeshRenewalFailing/warning/spiffe://example.org/a', 'TlsmeshRenewalFailing/warning/spiffe://example.org/z']);
  });
});

describe('evaluateAlerts: CRLs (valid 24 h from T0)', () => {
  const crl = { issuer: 'int-1', thisUpdate: new Date(T0), nextUpdate: new Date(T0 + DAY) };
  const cases: [string, number, string[]][] = [
    ['ok/half its validity (when the CA re-signs)', 0.5, []],
    ['ok/exactly 75%', 0.75, []],
    ['fail/76% elapsed', 0.76, ['TlsmeshCrlStale/warning/int-1']],
    ['fail/91% elapsed', 0.91, ['TlsmeshCrlStale/critical/int-1', 'TlsmeshCrlStale/warning/int-1']],
    ['fail/past nextUpdate', 1.5, ['TlsmeshCrlStale/critical/int-1', 'TlsmeshCrlStale/warning/int-1']],
  ];
  for (const [name, fraction, expected] of cases) {
    it(name, () => {
      const result = evaluateAlerts(signals({ crls: [crl] }), new Date(T0 + fraction * DAY), DEFAULT_ALERT_POLICY);
      expect(names(result)).toEqual(expected);
      for (const alert of result) expect(alert.annotations.description).toContain('issuer int-1 (nextUpdate 2030-01-02T00:00:00.000Z)');
    });
  }
});

describe('evaluateAlerts: refusal spikes', () => {
  const now = T0 + 130 * MIN;
  // minute i of 130: the last 10 minutes are minutes 121..130
  const cases: [string, CounterSample[] | null, string[]][] = [
    ['ok/metric not registered', null, []],
    ['ok/one sample only', [{ atMs: now, value: 10_000 }], []],
    ['ok/steady 60 a minute (high, but its normal)', counter(T0, 130, () => 60), []],
    ['fail/1 a minute for 2 h, then 60 a minute', counter(T0, 130, (i) => (i > 120 ? 60 : 1)), ['TlsmeshRefusedHandshakeSpike/warning']],
    ['ok/a jump from 0 to 6 a minute stays under the 0.2/s floor', counter(T0, 130, (i) => (i > 120 ? 6 : 0)), []],
    ['ok/13 a minute (0.217/s) over a baseline of 4 a minute is under 4x', counter(T0, 130, (i) => (i > 120 ? 13 : 4)), []],
    ['fail/no history before the window: the floor alone decides', counter(now - 4 * MIN, 4, () => 60), ['TlsmeshRefusedHandshakeSpike/warning']],
    ['ok/an old spike has passed', counter(T0, 130, (i) => (i > 60 && i < 70 ? 600 : 1)), []],
    // The process restarted (counter back near 0), then refuses 60 a minute: the reset is not a drop.
    [
      'fail/counter reset, then a spike',
      [...counter(T0, 120, () => 1), ...counter(T0 + 121 * MIN, 9, () => 60, 60)],
      ['TlsmeshRefusedHandshakeSpike/warning'],
    ],
  ];
  for (const [name, samples, expected] of cases) {
    it(name, () => {
      expect(names(evaluateAlerts(signals({ counters: { ...noCounters, handshakeRefusals: samples } }), new Date(now), DEFAULT_ALERT_POLICY))).toEqual(expected);
    });
  }

  it('the description gives the rate and the baseline; refused requests are their own alert', () => {
    const samples = counter(T0, 130, (i) => (i > 120 ? 60 : 1));
    const [alert] = evaluateAlerts(signals({ counters: { ...noCounters, requestRefusals: samples } }), new Date(now), DEFAULT_ALERT_POLICY);
    expect(alert!.labels).toEqual({ alertname: 'TlsmeshRefusedRequestSpike', severity: 'warning' });
    // The baseline (the hour before the last 5 minutes, as `rate(…[1h] offset 5m)`) holds the
    // spike's first minutes: (55 + 5 × 60) / 3600 s ≈ 0.10/s.
    expect(alert!.annotations.description).toBe('1.00 refused enrolment/renewal requests per second over the last 5m, over 4x the 0.10/s of the 1h before.');
  });
});

describe('evaluateAlerts: plaintext callers and store errors (any within 10 minutes)', () => {
  const now = T0 + 130 * MIN;
  const cases: [string, CounterSample[] | null, string[]][] = [
    ['ok/not registered', null, []],
    ['ok/a count that stopped long ago', counter(T0, 130, (i) => (i < 100 ? 1 : 0)), []],
    ['fail/one request in the window', counter(T0, 130, (i) => (i === 125 ? 1 : 0)), ['TlsmeshPlaintextSeen/warning']],
    // The sample just before the window is the base: a request between it and the first sample inside counts.
    ['fail/one request right after the window starts', counter(T0, 130, (i) => (i === 121 ? 1 : 0)), ['TlsmeshPlaintextSeen/warning']],
    ['ok/one request right before the window', counter(T0, 130, (i) => (i === 120 ? 1 : 0)), []],
  ];
  for (const [name, samples, expected] of cases) {
    it(`plaintext ${name}`, () => {
      expect(names(evaluateAlerts(signals({ counters: { ...noCounters, plaintextRequests: samples } }), new Date(now), DEFAULT_ALERT_POLICY))).toEqual(expected);
    });
    it(`store errors ${name}`, () => {
      const expectedStore = expected.map((entry) => entry.replace('TlsmeshPlaintextSeen', 'TlsmeshStoreErrors'));
      expect(names(evaluateAlerts(signals({ counters: { ...noCounters, storeErrors: samples } }), new Date(now), DEFAULT_ALERT_POLICY))).toEqual(expectedStore);
    });
  }
});

describe('increaseBetween', () => {
  const s = (...pairs: [number, number][]): CounterSample[] => pairs.map(([atMs, value]) => ({ atMs, value }));
  const cases: [string, CounterSample[], number, number, { increase: number; seconds: number } | null][] = [
    ['fail/empty', [], 0, 10_000, null],
    ['fail/one sample', s([5000, 3]), 0, 10_000, null],
    ['ok/base before the window', s([0, 1], [5000, 3], [10_000, 4]), 2000, 10_000, { increase: 3, seconds: 10 }],
    ['ok/base is the first inside when none before', s([5000, 3], [10_000, 4]), 2000, 10_000, { increase: 1, seconds: 5 }],
    ['ok/samples after the window are ignored', s([0, 1], [5000, 3], [20_000, 40]), 0, 10_000, { increase: 2, seconds: 5 }],
    ['ok/a reset counts the new value', s([0, 10], [5000, 12], [10_000, 3]), 0, 10_000, { increase: 5, seconds: 10 }],
  ];
  for (const [name, samples, from, to, expected] of cases) {
    it(name, () => expect(increaseBetween(samples, from, to)).toEqual(expected));
  }
});
