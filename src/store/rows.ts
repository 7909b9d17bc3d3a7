/**
 * Conversions between the records of types.ts and table rows (see schema.ts for the encoding).
 * Reads check the JSON columns, so a row damaged outside tlsmesh fails loudly instead of
 * handing the CA a value of the wrong type.
 */
import type { Insertable, Selectable } from 'kysely';
import type { AuditLogTable, CaKeysTable, CertificatesTable, CrlsTable, TokensTable } from './schema.js';
import type { AuditChainRow } from './audit-chain.js';
import type { AuditEntry, AuditRecord, CaKeyRecord, CertificateRecord, CrlRecord, TokenRecord } from './types.js';

export function toEpochMs(date: Date): number {
  return date.getTime();
}

function toEpochMsOrNull(date: Date | null): number | null {
  return date === null ? null : date.getTime();
}

function fromEpochMsOrNull(ms: number | null): Date | null {
  return ms === null ? null : new Date(ms);
}

function parseStringArray(json: string, column: string): string[] {
  const value: unknown = JSON.parse(json);
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
    throw new Error(`column ${column} does not hold a JSON array of strings`);
  }
  return value;
}

function parseObject(json: string, column: string): Record<string, unknown> {
  const value: unknown = JSON.parse(json);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`column ${column} does not hold a JSON object`);
  }
  return value as Record<string, unknown>;
}

export function toCaKeyRow(record: CaKeyRecord): Insertable<CaKeysTable> {
  return {
    id: record.id,
    kind: record.kind,
    state: record.state,
    cert_der: record.certDer === null ? null : record.certDer.toString('base64'),
    encrypted_key: record.encryptedKey,
    not_before: toEpochMs(record.notBefore),
    not_after: toEpochMs(record.notAfter),
    created_at: toEpochMs(record.createdAt),
  };
}

export function fromCaKeyRow(row: Selectable<CaKeysTable>): CaKeyRecord {
  return {
    id: row.id,
    kind: row.kind,
    state: row.state,
    certDer: row.cert_der === null ? null : Buffer.from(row.cert_der, 'base64'),
    encryptedKey: row.encrypted_key,
    notBefore: new Date(row.not_before),
    notAfter: new Date(row.not_after),
    createdAt: new Date(row.created_at),
  };
}

export function toCertificateRow(record: CertificateRecord): Insertable<CertificatesTable> {
  return {
    serial: record.serial,
    spiffe_id: record.spiffeId,
    dns_names: JSON.stringify(record.dnsNames),
    ip_addresses: JSON.stringify(record.ipAddresses),
    not_before: toEpochMs(record.notBefore),
    not_after: toEpochMs(record.notAfter),
    issuer_key_id: record.issuerKeyId,
    kind: record.kind,
    status: record.status,
    revoked_at: toEpochMsOrNull(record.revokedAt),
    revocation_reason: record.revocationReason,
    der: record.der.toString('base64'),
    created_at: toEpochMs(record.createdAt),
    origin: record.origin,
  };
}

export function fromCertificateRow(row: Selectable<CertificatesTable>): CertificateRecord {
  return {
    serial: row.serial,
    spiffeId: row.spiffe_id,
    dnsNames: parseStringArray(row.dns_names, 'certificates.dns_names'),
    ipAddresses: parseStringArray(row.ip_addresses, 'certificates.ip_addresses'),
    notBefore: new Date(row.not_before),
    notAfter: new Date(row.not_after),
    issuerKeyId: row.issuer_key_id,
    kind: row.kind,
    status: row.status,
    revokedAt: fromEpochMsOrNull(row.revoked_at),
    revocationReason: row.revocation_reason,
    der: Buffer.from(row.der, 'base64'),
    createdAt: new Date(row.created_at),
    origin: row.origin,
  };
}

export function toTokenRow(record: TokenRecord): Insertable<TokensTable> {
  return {
    jti: record.jti,
    spiffe_id: record.spiffeId,
    dns_names: JSON.stringify(record.dnsNames),
    ip_addresses: JSON.stringify(record.ipAddresses),
    created_at: toEpochMs(record.createdAt),
    expires_at: toEpochMs(record.expiresAt),
    created_by: record.createdBy,
    used_at: toEpochMsOrNull(record.usedAt),
    used_by_serial: record.usedBySerial,
  };
}

export function fromTokenRow(row: Selectable<TokensTable>): TokenRecord {
  return {
    jti: row.jti,
    spiffeId: row.spiffe_id,
    dnsNames: parseStringArray(row.dns_names, 'tokens.dns_names'),
    ipAddresses: parseStringArray(row.ip_addresses, 'tokens.ip_addresses'),
    createdAt: new Date(row.created_at),
    expiresAt: new Date(row.expires_at),
    createdBy: row.created_by,
    usedAt: fromEpochMsOrNull(row.used_at),
    usedBySerial: row.used_by_serial,
  };
}

/** Every column but id and the chain fields, none optional (all of them are hashed). */
export type AuditRowFields = Omit<Selectable<AuditLogTable>, 'id' | 'seq' | 'prev_hash' | 'hash'>;

export function toAuditRow(entry: AuditEntry): AuditRowFields {
  return {
    at: toEpochMs(entry.at),
    actor: entry.actor,
    action: entry.action,
    subject: entry.subject,
    outcome: entry.outcome,
    code: entry.code,
    detail: JSON.stringify(entry.detail),
    peer: entry.peer,
  };
}

export function fromAuditRow(row: Selectable<AuditLogTable>): AuditRecord {
  return {
    id: row.id,
    at: new Date(row.at),
    actor: row.actor,
    action: row.action,
    subject: row.subject,
    outcome: row.outcome,
    code: row.code,
    detail: parseObject(row.detail, 'audit_log.detail'),
    peer: row.peer,
  };
}

/** The row as stored (detail as text), for the hash chain. */
export function fromAuditChainRow(row: Selectable<AuditLogTable>): AuditChainRow {
  return {
    id: row.id,
    seq: row.seq,
    at: row.at,
    actor: row.actor,
    action: row.action,
    subject: row.subject,
    outcome: row.outcome,
    code: row.code,
    detail: row.detail,
    peer: row.peer,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

export function toCrlRow(record: CrlRecord): Insertable<CrlsTable> {
  return {
    issuer_key_id: record.issuerKeyId,
    crl_number: Number(record.crlNumber),
    this_update: toEpochMs(record.thisUpdate),
    next_update: toEpochMs(record.nextUpdate),
    revocation_epoch: record.revocationEpoch,
    der: record.der.toString('base64'),
    created_at: toEpochMs(record.createdAt),
  };
}

export function fromCrlRow(row: Selectable<CrlsTable>): CrlRecord {
  return {
    issuerKeyId: row.issuer_key_id,
    crlNumber: BigInt(row.crl_number),
    thisUpdate: new Date(Number(row.this_update)),
    nextUpdate: new Date(Number(row.next_update)),
    revocationEpoch: Number(row.revocation_epoch),
    der: Buffer.from(row.der, 'base64'),
    createdAt: new Date(Number(row.created_at)),
  };
}
