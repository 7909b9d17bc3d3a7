/**
 * Where the CA keeps its keys, certificates, enrolment tokens and audit log: one `Store`
 * interface, on SQLite (default, one file) or PostgreSQL (several CA processes).
 */
export type {
  AuditEntry,
  AuditFilter,
  AuditOutcome,
  AuditRecord,
  CaKeyKind,
  CaKeyRecord,
  CaKeyState,
  CertificateFilter,
  CertificateKind,
  CertificateRecord,
  CertificateStatus,
  CrlDraft,
  CrlRecord,
  IdentityCertificate,
  RevokedSerial,
  RedeemResult,
  Store,
  StoreErrorListener,
  TokenRecord,
} from './types.js';
export {
  AUDIT_CHAIN_FORMAT,
  AuditChainVerifier,
  encodeAuditRow,
  formatAuditAnchor,
  GENESIS_HASH,
  hashAuditRow,
  parseAuditAnchor,
  type AuditChainAnchor,
  type AuditChainBreak,
  type AuditChainFault,
  type AuditChainReport,
  type AuditChainRow,
  type AuditChainVerifierOptions,
} from './audit-chain.js';
export { auditChainRows, auditExportLine, parseAuditExportLine, verifyAuditExport, verifyStoredAuditChain } from './audit-chain-io.js';
export { openSqliteStore, type SqliteStoreOptions } from './sqlite.js';
export { openPostgresStore, type PostgresStoreOptions } from './postgres.js';
export { openStore } from './open-store.js';
