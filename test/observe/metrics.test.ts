/** The metric classes on their own: scrape-time sources are read once per scrape and never reused. */
import { describe, expect, it } from 'vitest';
import { CaMetrics, TlsmeshMetrics, type CertificateState } from '../../src/observe/metrics.js';
import { parseExposition } from '../helpers/prometheus.js';

describe('scrape-time sources', () => {
  it('one read per scrape feeds both certificate gauges; the next scrape reads again', async () => {
    const metrics = new TlsmeshMetrics('agent');
    let reads = 0;
    let states: CertificateState[] = [{ spiffeId: 'spiffe://t/a', kind: 'workload', notBefore: new Date(1_000_000), notAfter: new Date(2_000_000) }];
    metrics.addSources({ certificates: () => Promise.resolve((reads++, states)) });
    let m = parseExposition(await metrics.exposition());
    expect(reads).toBe(1);
    expect(m.value('tlsmesh_certificate_expiry_timestamp_seconds', { spiffe_id: 'spiffe://t/a' })).toBe(2000);
    expect(m.value('tlsmesh_certificate_not_before_timestamp_seconds', { spiffe_id: 'spiffe://t/a' })).toBe(1000);
    states = [{ spiffeId: 'spiffe://t/b', kind: 'workload', notBefore: new Date(3_000_000), notAfter: new Date(4_000_000) }];
    m = parseExposition(await metrics.exposition());
    expect(reads).toBe(2);
    // Identities that went away are gone, not left at their last value.
    expect(m.find('tlsmesh_certificate_expiry_timestamp_seconds').map((sample) => sample.labels['spiffe_id'])).toEqual(['spiffe://t/b']);
    expect(m.value('tlsmesh_certificate_not_before_timestamp_seconds', { spiffe_id: 'spiffe://t/b' })).toBe(3000);
  });

  it('sources can be removed; without any, the gauges export nothing and the bundle version is absent', async () => {
    const metrics = new TlsmeshMetrics('sdk');
    const remove = metrics.addSources({ bundleVersion: () => 7, crls: () => [{ issuer: 'i', thisUpdate: new Date(0), nextUpdate: new Date(10_000), sizeBytes: 100, entries: 3 }] });
    let m = parseExposition(await metrics.exposition());
    expect(m.value('tlsmesh_bundle_version')).toBe(7);
    expect(m.value('tlsmesh_crl_entries', { issuer: 'i' })).toBe(3);
    expect(m.value('tlsmesh_crl_next_update_timestamp_seconds', { issuer: 'i' })).toBe(10);
    remove();
    m = parseExposition(await metrics.exposition());
    expect(m.find('tlsmesh_crl_entries')).toEqual([]);
  });
});

describe('CaMetrics.completed', () => {
  it('counts each operation by result and code, and times successful issuances only', async () => {
    const metrics = new CaMetrics();
    metrics.completed('enroll', 'ok', null, 0.002);
    metrics.completed('enroll', 'refused', 'ERR_TOKEN_EXPIRED', 0.001);
    metrics.completed('renew', 'error', 'ERR_STORE', 0.5);
    metrics.completed('revoke', 'ok', null, 0.01);
    metrics.completed('certs.list', 'ok', null, 0.01);
    const m = parseExposition(await metrics.exposition());
    expect(m.value('tlsmesh_ca_enrollments_total', { result: 'ok', code: '' })).toBe(1);
    expect(m.value('tlsmesh_ca_enrollments_total', { result: 'refused', code: 'ERR_TOKEN_EXPIRED' })).toBe(1);
    expect(m.value('tlsmesh_ca_renewals_total', { result: 'error', code: 'ERR_STORE' })).toBe(1);
    expect(m.value('tlsmesh_ca_revocations_total', { result: 'ok', code: '' })).toBe(1);
    expect(m.value('tlsmesh_ca_issuance_duration_seconds_count', { operation: 'enroll' })).toBe(1);
    expect(m.value('tlsmesh_ca_issuance_duration_seconds_bucket', { operation: 'enroll', le: '0.001' })).toBe(0);
    expect(m.value('tlsmesh_ca_issuance_duration_seconds_bucket', { operation: 'enroll', le: '0.0025' })).toBe(1);
    expect(m.find('tlsmesh_ca_issuance_duration_seconds_count', { operation: 'renew' })).toEqual([]);
  });
});
