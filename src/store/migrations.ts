/**
 * The schema, as Kysely migrations held in code (nothing is read from disk at run time, so the
 * built package needs no migration folder). Both backends run the same migrations; they branch
 * only where the SQL really differs. Append new migrations; never edit one that has shipped.
 */
import type { Kysely, Migration, MigrationProvider } from 'kysely';
import { AUDIT_CHAIN_FORMAT, nextChainFields, type AuditChainAnchor } from './audit-chain.js';
import type { StoreBackend } from './backend.js';
import type { StoreSchema } from './schema.js';

function initialSchema(backend: StoreBackend): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('meta')
        .addColumn('key', 'text', (col) => col.primaryKey())
        .addColumn('value', 'text', (col) => col.notNull())
        .execute();

      await db.schema
        .createTable('ca_keys')
        .addColumn('id', 'text', (col) => col.primaryKey())
        .addColumn('kind', 'text', (col) => col.notNull())
        .addColumn('state', 'text', (col) => col.notNull())
        .addColumn('cert_der', 'text')
        .addColumn('encrypted_key', 'text')
        .addColumn('not_before', 'bigint', (col) => col.notNull())
        .addColumn('not_after', 'bigint', (col) => col.notNull())
        .addColumn('created_at', 'bigint', (col) => col.notNull())
        .execute();

      await db.schema
        .createTable('certificates')
        .addColumn('serial', 'text', (col) => col.primaryKey())
        .addColumn('spiffe_id', 'text', (col) => col.notNull())
        .addColumn('dns_names', 'text', (col) => col.notNull())
        .addColumn('ip_addresses', 'text', (col) => col.notNull())
        .addColumn('not_before', 'bigint', (col) => col.notNull())
        .addColumn('not_after', 'bigint', (col) => col.notNull())
        // Every certificate names the CA key that signed it; keys are never deleted.
        .addColumn('issuer_key_id', 'text', (col) => col.notNull().references('ca_keys.id'))
        .addColumn('kind', 'text', (col) => col.notNull())
        .addColumn('status', 'text', (col) => col.notNull())
        .addColumn('revoked_at', 'bigint')
        .addColumn('revocation_reason', 'text')
        .addColumn('der', 'text', (col) => col.notNull())
        .addColumn('created_at', 'bigint', (col) => col.notNull())
        .addColumn('origin', 'text', (col) => col.notNull())
        .execute();
      // Lookups by identity (renew, revokeIdentity, admin listing) and by expiry (alerts, CRL).
      await db.schema.createIndex('certificates_spiffe_id_idx').on('certificates').column('spiffe_id').execute();
      await db.schema.createIndex('certificates_not_after_idx').on('certificates').column('not_after').execute();

      await db.schema
        .createTable('tokens')
        .addColumn('jti', 'text', (col) => col.primaryKey())
        .addColumn('spiffe_id', 'text', (col) => col.notNull())
        .addColumn('dns_names', 'text', (col) => col.notNull())
        .addColumn('ip_addresses', 'text', (col) => col.notNull())
        .addColumn('created_at', 'bigint', (col) => col.notNull())
        .addColumn('expires_at', 'bigint', (col) => col.notNull())
        .addColumn('created_by', 'text', (col) => col.notNull())
        .addColumn('used_at', 'bigint')
        // No foreign key: the token is marked used before its certificate row exists.
        .addColumn('used_by_serial', 'text')
        .execute();

      await db.schema
        .createTable('audit_log')
        .addColumn('id', backend === 'postgres' ? 'bigint' : 'integer', (col) =>
          // SQLite: AUTOINCREMENT so an id is never handed out twice, even after a crash.
          backend === 'postgres' ? col.primaryKey().generatedAlwaysAsIdentity() : col.primaryKey().autoIncrement(),
        )
        .addColumn('at', 'bigint', (col) => col.notNull())
        .addColumn('actor', 'text', (col) => col.notNull())
        .addColumn('action', 'text', (col) => col.notNull())
        .addColumn('subject', 'text')
        .addColumn('outcome', 'text', (col) => col.notNull())
        .addColumn('code', 'text')
        .addColumn('detail', 'text', (col) => col.notNull())
        .addColumn('peer', 'text')
        .execute();
      // (action, id) serves "entries of this action after id N, in id order" without a sort.
      await db.schema.createIndex('audit_log_action_idx').on('audit_log').columns(['action', 'id']).execute();
    },
  };
}

/**
 * Revocation publishing: the CRLs each issuer has signed (so every CA process serves the newest,
 * and cRLNumbers only grow across processes: the primary key refuses a number taken twice), and
 * a revocation epoch that every revocation bumps, which CA processes poll to learn of
 * revocations made by the others.
 */
function revocationPublishing(): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('crls')
        .addColumn('issuer_key_id', 'text', (col) => col.notNull().references('ca_keys.id'))
        .addColumn('crl_number', 'bigint', (col) => col.notNull())
        .addColumn('this_update', 'bigint', (col) => col.notNull())
        .addColumn('next_update', 'bigint', (col) => col.notNull())
        .addColumn('revocation_epoch', 'bigint', (col) => col.notNull())
        .addColumn('der', 'text', (col) => col.notNull())
        .addColumn('created_at', 'bigint', (col) => col.notNull())
        .addPrimaryKeyConstraint('crls_pk', ['issuer_key_id', 'crl_number'])
        .execute();
      // Serves "revoked certificates of this issuer" for CRL generation without a table scan.
      await db.schema.createIndex('certificates_revoked_idx').on('certificates').columns(['issuer_key_id', 'status', 'not_after']).execute();
      await db.insertInto('meta' as never).values({ key: 'revocation_epoch', value: '0' }).execute();
    },
  };
}

/** The meta row every audit append locks first (kysely-store.ts appendAuditRow); its value names the chain format. */
export const AUDIT_CHAIN_LOCK_KEY = 'audit_chain';

/**
 * The audit log's hash chain (audit-chain.ts): `seq`, `prev_hash` and `hash` on every row, a
 * unique index on `seq` (two appends that raced past the lock could not both take one position),
 * and the lock row. Rows already there are chained in id order, in the migration's transaction;
 * the columns stay nullable (SQLite adds no NOT NULL column without a default), and the verifier
 * reports a row without them as written outside the chain.
 */
function auditChain(): Migration {
  return {
    async up(untyped: Kysely<unknown>): Promise<void> {
      const db = untyped as Kysely<StoreSchema>;
      for (const column of ['seq', 'prev_hash', 'hash'] as const) {
        await db.schema.alterTable('audit_log').addColumn(column, column === 'seq' ? 'bigint' : 'text').execute();
      }
      let tail: AuditChainAnchor | null = null;
      for (let afterId = 0; ; ) {
        const rows = await db.selectFrom('audit_log').selectAll().where('id', '>', afterId).orderBy('id').limit(1000).execute();
        if (rows.length === 0) break;
        for (const row of rows) {
          const chain = nextChainFields(tail, row);
          await db.updateTable('audit_log').set({ seq: chain.seq, prev_hash: chain.prevHash, hash: chain.hash }).where('id', '=', row.id).execute();
          tail = { seq: chain.seq, hash: chain.hash };
        }
        afterId = rows[rows.length - 1]!.id;
      }
      await db.schema.createIndex('audit_log_seq_idx').on('audit_log').column('seq').unique().execute();
      await db.insertInto('meta').values({ key: AUDIT_CHAIN_LOCK_KEY, value: AUDIT_CHAIN_FORMAT }).execute();
    },
  };
}

/** The migrations for one backend, keyed by name (Kysely runs them in name order). */
export function createMigrationProvider(backend: StoreBackend): MigrationProvider {
  const migrations: Record<string, Migration> = {
    '0001_initial_schema': initialSchema(backend),
    '0002_revocation_publishing': revocationPublishing(),
    '0003_audit_chain': auditChain(),
  };
  return { getMigrations: () => Promise.resolve(migrations) };
}
