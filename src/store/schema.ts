/**
 * Row shapes of the tables, as Kysely sees them. Times are epoch milliseconds (bigint columns,
 * read back as JS numbers), string arrays and audit details are JSON text, DER is base64 text:
 * the same representation on SQLite and PostgreSQL, so one set of queries serves both.
 */
import type { Generated } from 'kysely';
import type {
  AuditOutcome,
  CaKeyKind,
  CaKeyState,
  CertificateKind,
  CertificateStatus,
} from './types.js';

export interface MetaTable {
  key: string;
  value: string;
}

export interface CaKeysTable {
  id: string;
  kind: CaKeyKind;
  state: CaKeyState;
  cert_der: string | null;
  encrypted_key: string | null;
  not_before: number;
  not_after: number;
  created_at: number;
}

export interface CertificatesTable {
  serial: string;
  spiffe_id: string;
  dns_names: string;
  ip_addresses: string;
  not_before: number;
  not_after: number;
  issuer_key_id: string;
  kind: CertificateKind;
  status: CertificateStatus;
  revoked_at: number | null;
  revocation_reason: string | null;
  der: string;
  created_at: number;
  origin: string;
}

export interface TokensTable {
  jti: string;
  spiffe_id: string;
  dns_names: string;
  ip_addresses: string;
  created_at: number;
  expires_at: number;
  created_by: string;
  used_at: number | null;
  used_by_serial: string | null;
}

export interface AuditLogTable {
  id: Generated<number>;
  at: number;
  actor: string;
  action: string;
  subject: string | null;
  outcome: AuditOutcome;
  code: string | null;
  detail: string;
  peer: string | null;
  /** Chain position, 1, 2, 3, …; null only on a row written outside the chain (audit-chain.ts). */
  seq: number | null;
  prev_hash: string | null;
  hash: string | null;
}

export interface CrlsTable {
  issuer_key_id: string;
  crl_number: number;
  this_update: number;
  next_update: number;
  revocation_epoch: number;
  der: string;
  created_at: number;
}

export interface StoreSchema {
  meta: MetaTable;
  ca_keys: CaKeysTable;
  certificates: CertificatesTable;
  tokens: TokensTable;
  audit_log: AuditLogTable;
  crls: CrlsTable;
}
