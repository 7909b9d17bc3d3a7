/**
 * What the pages show, read from the store. The four statuses a person cares about are derived
 * from the stored status and the CA's clock:
 *   revoked   — stored status revoked;
 *   expired   — not revoked, notAfter passed;
 *   expiring  — not revoked, not expired, notAfter within the last third of a leaf lifetime
 *               (an agent renews at 2/3, so a leaf in this window should have a newer one);
 *   valid     — not revoked, not expired (expiring ones included).
 */
import type { AuditRecord, CertificateFilter, CertificateRecord, IdentityCertificate, Store } from '../store/index.js';

export type StatusFilter = 'valid' | 'expiring' | 'revoked' | 'expired';
export const STATUS_FILTERS: readonly StatusFilter[] = ['valid', 'expiring', 'revoked', 'expired'];
export const STATUS_LABELS: Readonly<Record<StatusFilter, string>> = { valid: 'Valid', expiring: 'Expiring soon', revoked: 'Revoked', expired: 'Expired' };

export interface Horizon {
  now: Date;
  /** Leaf lifetime in ms: sets "expiring soon" and the timeline's span. */
  leafMs: number;
}

export const expiringWindowMs = (leafMs: number): number => Math.floor(leafMs / 3);

export function statusOf(record: CertificateRecord, { now, leafMs }: Horizon): Exclude<StatusFilter, never> {
  if (record.status === 'revoked') return 'revoked';
  if (record.notAfter.getTime() < now.getTime()) return 'expired';
  if (record.notAfter.getTime() < now.getTime() + expiringWindowMs(leafMs)) return 'expiring';
  return 'valid';
}

export function statusFilter(status: StatusFilter | undefined, { now, leafMs }: Horizon): CertificateFilter {
  switch (status) {
    case undefined:
      return {};
    case 'revoked':
      return { status: 'revoked' };
    case 'expired':
      return { status: 'valid', notAfterBefore: now };
    case 'valid':
      return { status: 'valid', notAfterFrom: now };
    case 'expiring':
      return { status: 'valid', notAfterFrom: now, notAfterBefore: new Date(now.getTime() + expiringWindowMs(leafMs)) };
  }
}

export async function statusCounts(store: Store, horizon: Horizon): Promise<Record<StatusFilter, number>> {
  const entries = await Promise.all(STATUS_FILTERS.map(async (status) => [status, await store.countCertificates(statusFilter(status, horizon))] as const));
  return Object.fromEntries(entries) as Record<StatusFilter, number>;
}

/** How far back renewal health looks for identities (an identity gone longer is not "recent"). */
export const HEALTH_LOOKBACK_MS = 7 * 24 * 3600 * 1000;
export interface RenewalHealth {
  /** Newest certificate past its renewal point (2/3 of its lifetime plus the agent's ±1/20 jitter), unexpired, no newer one. */
  overdue: IdentityCertificate[];
  /** Newest certificate expired (not revoked) within the look-back, no newer one. */
  expired: IdentityCertificate[];
  /** Workload identities seen within the look-back (those whose newest certificate is revoked are not counted). */
  identities: number;
  refusals: AuditRecord[];
}

export async function renewalHealth(store: Store, now: Date, refusalLimit = 20): Promise<RenewalHealth> {
  // One row per identity from the store (the same query as the expiry metric and the alerts).
  const newest = (await store.newestCertificatePerIdentity({ at: now, expiredSince: new Date(now.getTime() - HEALTH_LOOKBACK_MS) })).filter((record) => record.kind === 'workload');
  const overdue: IdentityCertificate[] = [];
  const expired: IdentityCertificate[] = [];
  for (const record of newest) {
    const start = record.notBefore.getTime();
    const lifetime = record.notAfter.getTime() - start;
    if (record.notAfter.getTime() < now.getTime()) expired.push(record);
    else if (now.getTime() > start + (lifetime * 2) / 3 + lifetime / 20) overdue.push(record);
  }
  const refusals = await store.listAudit({ action: 'renew', outcome: 'refused', newestFirst: true, limit: refusalLimit });
  return { overdue, expired, identities: newest.length, refusals };
}

export interface TimelineBucket {
  start: Date;
  end: Date;
  count: number;
}

/**
 * Unrevoked certificates expiring per bucket over the next two leaf lifetimes: hourly buckets
 * when that spans at most three days, daily otherwise. One COUNT per bucket, so the numbers are
 * exact however many certificates there are.
 */
export async function expiryTimeline(store: Store, { now, leafMs }: Horizon): Promise<{ buckets: TimelineBucket[]; unit: 'hour' | 'day' }> {
  const span = 2 * leafMs;
  const unit = span <= 72 * 3600 * 1000 ? 'hour' : 'day';
  const step = unit === 'hour' ? 3600 * 1000 : 24 * 3600 * 1000;
  const count = Math.min(Math.ceil(span / step), 120);
  const origin = Math.floor(now.getTime() / step) * step;
  const buckets = await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const start = new Date(Math.max(origin + i * step, now.getTime()));
      const end = new Date(origin + (i + 1) * step);
      return { start, end, count: await store.countCertificates({ status: 'valid', notAfterFrom: start, notAfterBefore: end }) };
    }),
  );
  return { buckets, unit };
}
