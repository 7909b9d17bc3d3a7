/** Builders of valid store records for tests; every field can be overridden. */
import { randomBytes } from 'node:crypto';
import type { AuditEntry, CaKeyRecord, CertificateRecord, TokenRecord } from '../../src/store/index.js';

/** A fixed instant with a millisecond part, to catch any rounding on the way through a table. */
export const T0 = new Date('2025-03-04T05:06:07.089Z');
export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;

export function at(offsetMs: number): Date {
  return new Date(T0.getTime() + offsetMs);
}

export function randomSerial(): string {
  return randomBytes(16).toString('hex');
}

export function caKey(overrides: Partial<CaKeyRecord> = {}): CaKeyRecord {
  return {
    id: 'intermediate-1',
    kind: 'intermediate',
    state: 'active',
    certDer: Buffer.from([0x30, 0x82, 0x00, 0x00, 0xff, 0x00]),
    encryptedKey: '{"alg":"aes-256-gcm","ct":"…"}',
    notBefore: at(-DAY),
    notAfter: at(365 * DAY),
    createdAt: at(-DAY),
    ...overrides,
  };
}

export function certificate(overrides: Partial<CertificateRecord> = {}): CertificateRecord {
  return {
    serial: randomSerial(),
    spiffeId: 'spiffe://example.org/ns/prod/sa/api',
    dnsNames: ['api.example.org', 'api.internal'],
    ipAddresses: ['10.0.0.7', '2001:db8::1'],
    notBefore: T0,
    notAfter: at(DAY),
    issuerKeyId: 'intermediate-1',
    kind: 'workload',
    status: 'valid',
    revokedAt: null,
    revocationReason: null,
    // Every byte value, so base64 must round-trip all of them.
    der: Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
    createdAt: T0,
    origin: 'init',
    ...overrides,
  };
}

export function token(overrides: Partial<TokenRecord> = {}): TokenRecord {
  return {
    jti: randomBytes(12).toString('base64url'),
    spiffeId: 'spiffe://example.org/ns/prod/sa/api',
    dnsNames: ['api.example.org'],
    ipAddresses: [],
    createdAt: T0,
    expiresAt: at(HOUR),
    createdBy: 'cli:local',
    usedAt: null,
    usedBySerial: null,
    ...overrides,
  };
}

export function audit(overrides: Partial<AuditEntry> = {}): AuditEntry {
  return {
    at: T0,
    actor: 'cli:local',
    action: 'test',
    subject: null,
    outcome: 'ok',
    code: null,
    detail: {},
    peer: null,
    ...overrides,
  };
}
