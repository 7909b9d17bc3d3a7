/**
 * The one Store implementation, written once against Kysely and shared by SQLite and
 * PostgreSQL. The backend modules only build the Kysely instance.
 *
 * Every failure of the database is turned into TlsmeshError ERR_STORE (the driver error kept
 * as `cause`); coded TlsmeshErrors raised here (ERR_SERIAL_COLLISION, ERR_NOT_FOUND) pass
 * through unchanged.
 */
import { DEFAULT_MIGRATION_TABLE, Migrator, sql, type Kysely, type SelectQueryBuilder } from 'kysely';
import { TlsmeshError } from '../errors.js';
import { nextChainFields, type AuditChainAnchor, type AuditChainRow } from './audit-chain.js';
import { backendErrorCode, DEADLOCK_DETECTED, isUniqueViolation, type StoreBackend } from './backend.js';
import { AUDIT_CHAIN_LOCK_KEY, createMigrationProvider } from './migrations.js';
import { PostgresGroupCommit, type GroupItemWork } from './postgres-group-commit.js';
import type { SqliteGroupCommit, SyncExecutor } from './sqlite-group-commit.js';
import { queryShape } from './query-shape.js';
import {
  fromAuditChainRow,
  fromAuditRow,
  fromCaKeyRow,
  fromCertificateRow,
  fromCrlRow,
  fromTokenRow,
  toAuditRow,
  toCaKeyRow,
  toCertificateRow,
  toCrlRow,
  toEpochMs,
  toTokenRow,
} from './rows.js';
import type { StoreSchema } from './schema.js';
import type {
  AuditEntry,
  AuditFilter,
  AuditRecord,
  CaKeyRecord,
  CaKeyState,
  CertificateFilter,
  CertificateKind,
  CertificateRecord,
  CrlDraft,
  CrlRecord,
  IdentityCertificate,
  RedeemResult,
  RevokedSerial,
  Store,
  StoreErrorListener,
  TokenRecord,
} from './types.js';

type Db = Kysely<StoreSchema>;

export class KyselyStore implements Store {
  readonly backend: StoreBackend;
  readonly #db: Db;
  #closed: Promise<void> | undefined;
  readonly #errorListeners = new Set<StoreErrorListener>();

  /** SQLite only: issuance writes committed in groups (sqlite-group-commit.ts). */
  readonly #groupCommit: SqliteGroupCommit | undefined;
  /** PostgreSQL only: the same writes committed in groups (postgres-group-commit.ts). */
  readonly #pgGroupCommit: PostgresGroupCommit | undefined;

  constructor(db: Db, backend: StoreBackend, groupCommit?: SqliteGroupCommit) {
    this.#db = db;
    this.backend = backend;
    this.#groupCommit = groupCommit;
    this.#pgGroupCommit = backend === 'postgres' ? new PostgresGroupCommit(db, (trx, entries) => this.#appendAuditRows(trx, entries)) : undefined;
  }

  async migrate(): Promise<void> {
    // On PostgreSQL the migrator holds an advisory lock and one transaction for the whole run;
    // on SQLite its transaction starts with BEGIN IMMEDIATE (see sqlite-dialect.ts). Either way a
    // second process waits, then finds nothing left to do.
    const migrator = new Migrator({ db: this.#db, provider: createMigrationProvider(this.backend) });
    const { error } = await migrator.migrateToLatest();
    if (error !== undefined) {
      throw storeError('migrate', error);
    }
  }

  async migrationStatus(): Promise<{ pending: string[]; unknown: string[] }> {
    const migrator = new Migrator({ db: this.#db, provider: createMigrationProvider(this.backend) });
    try {
      // getMigrations reads Kysely's table when it exists and creates nothing.
      const known = await migrator.getMigrations();
      const pending = known.filter((migration) => migration.executedAt === undefined).map((migration) => migration.name);
      // A store this version has run nothing on has no table to look for newer names in.
      if (pending.length === known.length) return { pending, unknown: [] };
      const names = new Set(known.map((migration) => migration.name));
      const { rows } = await sql<{ name: string }>`select name from ${sql.table(DEFAULT_MIGRATION_TABLE)}`.execute(this.#db);
      return { pending, unknown: rows.map((row) => row.name).filter((name) => !names.has(name)) };
    } catch (error) {
      throw storeError('migrationStatus', error);
    }
  }

  close(): Promise<void> {
    // Idempotent: pg's Pool.end() throws when called twice.
    this.#closed ??= this.#db.destroy();
    return this.#closed;
  }

  getMeta(key: string): Promise<string | null> {
    return this.#run('getMeta', async (db) => {
      const row = await db.selectFrom('meta').select('value').where('key', '=', key).executeTakeFirst();
      return row?.value ?? null;
    });
  }

  incrementMeta(key: string): Promise<number> {
    return this.#run('incrementMeta', (db) =>
      db.transaction().execute(async (trx) => {
        await trx.insertInto('meta').values({ key, value: '0' }).onConflict((oc) => oc.column('key').doNothing()).execute();
        await trx
          .updateTable('meta')
          .set({ value: sql<string>`CAST(CAST(value AS BIGINT) + 1 AS TEXT)` })
          .where('key', '=', key)
          .execute();
        const row = await trx.selectFrom('meta').select('value').where('key', '=', key).executeTakeFirstOrThrow();
        return Number(row.value);
      }),
    );
  }

  initMeta(key: string, value: string): Promise<string> {
    return this.#run('initMeta', async (db) => {
      // ON CONFLICT DO NOTHING: when two processes race, one value wins and both read it back.
      await db
        .insertInto('meta')
        .values({ key, value })
        .onConflict((oc) => oc.column('key').doNothing())
        .execute();
      const row = await db.selectFrom('meta').select('value').where('key', '=', key).executeTakeFirstOrThrow();
      return row.value;
    });
  }

  putCaKey(record: CaKeyRecord): Promise<void> {
    return this.#run('putCaKey', async (db) => {
      // "put": insert, or replace every column of the key with this id (for instance to add the
      // certificate of a key that was prepared before its CA signed it).
      const row = toCaKeyRow(record);
      await db
        .insertInto('ca_keys')
        .values(row)
        .onConflict((oc) =>
          oc.column('id').doUpdateSet({
            kind: row.kind,
            state: row.state,
            cert_der: row.cert_der,
            encrypted_key: row.encrypted_key,
            not_before: row.not_before,
            not_after: row.not_after,
            created_at: row.created_at,
          }),
        )
        .execute();
    });
  }

  listCaKeys(): Promise<CaKeyRecord[]> {
    return this.#run('listCaKeys', async (db) => {
      const rows = await db.selectFrom('ca_keys').selectAll().orderBy('created_at').orderBy('id').execute();
      return rows.map(fromCaKeyRow);
    });
  }

  setCaKeyState(id: string, state: CaKeyState): Promise<void> {
    return this.#run('setCaKeyState', async (db) => {
      const result = await db.updateTable('ca_keys').set({ state }).where('id', '=', id).executeTakeFirst();
      if (result.numUpdatedRows === 0n) {
        throw new TlsmeshError('ERR_NOT_FOUND', `no CA key with id ${id}`);
      }
    });
  }

  createToken(record: TokenRecord, audit: AuditEntry): Promise<void> {
    return this.#run('createToken', (db) =>
      db.transaction().execute(async (trx) => {
        await trx.insertInto('tokens').values(toTokenRow(record)).execute();
        await this.#appendAuditRow(trx, audit);
      }),
    );
  }

  getToken(jti: string): Promise<TokenRecord | null> {
    return this.#run('getToken', async (db) => {
      const row = await db.selectFrom('tokens').selectAll().where('jti', '=', jti).executeTakeFirst();
      return row === undefined ? null : fromTokenRow(row);
    });
  }

  redeemTokenAndInsertCertificate(
    jti: string,
    usedAt: Date,
    certificate: CertificateRecord,
    audit: AuditEntry,
  ): Promise<RedeemResult> {
    const groupCommit = this.#groupCommit;
    if (groupCommit) {
      return this.#run('redeemTokenAndInsertCertificate', (db) =>
        groupCommit.run((sql): RedeemResult => {
          const marked = sql.runShape(REDEEM_TOKEN, { usedAt: toEpochMs(usedAt), serial: certificate.serial, jti });
          if (marked === 0) {
            const existing = sql.first(db.selectFrom('tokens').select('jti').where('jti', '=', jti));
            return existing === undefined ? 'token-unknown' : 'token-used';
          }
          withCollisionCheck(certificate, () => sql.insert('certificates', toCertificateRow(certificate)));
          appendAuditRowSync(sql, audit);
          return 'ok';
        }),
      );
    }
    return this.#chainedWrite<RedeemResult>('redeemTokenAndInsertCertificate', async (trx) => {
      // The conditional UPDATE is the single-use check. On PostgreSQL a concurrent redeemer of
      // the same jti blocks on the row lock and, once this transaction commits, re-evaluates
      // `used_at IS NULL` and updates nothing; if this one rolls back, the other proceeds. In a
      // batch, a second redeemer of the same jti sees the first one's update and gets token-used.
      const marked = await trx
        .updateTable('tokens')
        .set({ used_at: toEpochMs(usedAt), used_by_serial: certificate.serial })
        .where('jti', '=', jti)
        .where('used_at', 'is', null)
        .executeTakeFirst();
      if (marked.numUpdatedRows === 0n) {
        const existing = await trx.selectFrom('tokens').select('jti').where('jti', '=', jti).executeTakeFirst();
        return { value: existing === undefined ? 'token-unknown' : 'token-used', audit: null };
      }
      // A serial collision throws out of the transaction (or the item's savepoint), which rolls
      // back the UPDATE above.
      await insertCertificateRow(trx, certificate);
      return { value: 'ok', audit };
    });
  }

  insertCertificate(certificate: CertificateRecord, audit: AuditEntry): Promise<void> {
    const groupCommit = this.#groupCommit;
    if (groupCommit) {
      return this.#run('insertCertificate', () =>
        groupCommit.run((sql) => {
          withCollisionCheck(certificate, () => sql.insert('certificates', toCertificateRow(certificate)));
          appendAuditRowSync(sql, audit);
        }),
      );
    }
    return this.#chainedWrite('insertCertificate', async (trx) => {
      await insertCertificateRow(trx, certificate);
      return { value: undefined, audit };
    });
  }

  insertRenewedCertificate(previousSerial: string, certificate: CertificateRecord, audit: AuditEntry): Promise<'ok' | 'previous-not-valid'> {
    // The no-op UPDATE is the check and, on PostgreSQL, a row lock held until commit: a
    // revokeIdentity running meanwhile waits for it (and then catches the new certificate in its
    // second pass). SQLite serialises writers, so the check inside the transaction suffices.
    const groupCommit = this.#groupCommit;
    if (groupCommit) {
      return this.#run('insertRenewedCertificate', () =>
        groupCommit.run((sql) => {
          if (sql.runShape(TOUCH_PREVIOUS, { serial: previousSerial }) === 0) return 'previous-not-valid' as const;
          withCollisionCheck(certificate, () => sql.insert('certificates', toCertificateRow(certificate)));
          appendAuditRowSync(sql, audit);
          return 'ok' as const;
        }),
      );
    }
    // In a PostgreSQL batch the lock is held until the batch commits, which is also when the
    // new certificate becomes visible to the revoker's second pass.
    return this.#chainedWrite('insertRenewedCertificate', async (trx) => {
      const touched = await touchPreviousCertificate(trx, previousSerial).executeTakeFirst();
      if (touched.numUpdatedRows === 0n) return { value: 'previous-not-valid' as const, audit: null };
      await insertCertificateRow(trx, certificate);
      return { value: 'ok' as const, audit };
    });
  }

  getCertificate(serial: string): Promise<CertificateRecord | null> {
    return this.#run('getCertificate', async (db) => {
      const row = await db.selectFrom('certificates').selectAll().where('serial', '=', serial).executeTakeFirst();
      return row === undefined ? null : fromCertificateRow(row);
    });
  }

  /** Newest first (created_at, then serial, descending), so a limit shows the latest issuance. */
  async listCertificates(filter: CertificateFilter): Promise<CertificateRecord[]> {
    checkPaging(filter.limit, filter.offset);
    return this.#run('listCertificates', async (db) => {
      let query = filterCertificates(db.selectFrom('certificates').selectAll(), filter);
      query = query.orderBy('created_at', 'desc').orderBy('serial', 'desc');
      if (filter.limit !== undefined) {
        query = query.limit(filter.limit);
      } else if (filter.offset !== undefined) {
        // SQLite accepts OFFSET only after a LIMIT.
        query = query.limit(Number.MAX_SAFE_INTEGER);
      }
      if (filter.offset !== undefined) query = query.offset(filter.offset);
      const rows = await query.execute();
      return rows.map(fromCertificateRow);
    });
  }

  countCertificates(filter: CertificateFilter): Promise<number> {
    return this.#run('countCertificates', async (db) => {
      const query = filterCertificates(db.selectFrom('certificates').select((eb) => eb.fn.countAll<number | string | bigint>().as('n')), filter);
      const row = await query.executeTakeFirstOrThrow();
      // pg returns COUNT(*) as a string (bigint), SQLite as a number.
      return Number(row.n);
    });
  }

  /**
   * The audit entry is written when the certificate exists (revoked now or already revoked,
   * which leaves its first revokedAt and reason); an unknown serial writes nothing and gives null.
   */
  revokeCertificate(serial: string, at: Date, reason: string, audit: AuditEntry): Promise<CertificateRecord | null> {
    return this.#run('revokeCertificate', (db) =>
      retriedOnDeadlock(() => db.transaction().execute(async (trx) => {
        const revoked = await trx
          .updateTable('certificates')
          .set({ status: 'revoked', revoked_at: toEpochMs(at), revocation_reason: reason })
          .where('serial', '=', serial)
          .where('status', '=', 'valid')
          .executeTakeFirst();
        if (revoked.numUpdatedRows > 0n) await bumpRevocationEpoch(trx);
        const row = await trx.selectFrom('certificates').selectAll().where('serial', '=', serial).executeTakeFirst();
        if (row === undefined) return null;
        await this.#appendAuditRow(trx, audit);
        return fromCertificateRow(row);
      })),
    );
  }

  /**
   * "Unexpired at `at`" includes a certificate whose notAfter equals `at`: it is still valid at
   * that instant (RFC 5280), so it is revoked too. The audit entry is written even when nothing
   * was left to revoke. Returned newest first, like listCertificates.
   */
  revokeIdentity(spiffeId: string, at: Date, reason: string, audit: AuditEntry): Promise<CertificateRecord[]> {
    return this.#run('revokeIdentity', (db) =>
      retriedOnDeadlock(() => db.transaction().execute(async (trx) => {
        const revokeCurrent = () =>
          trx
            .updateTable('certificates')
            .set({ status: 'revoked', revoked_at: toEpochMs(at), revocation_reason: reason })
            .where('spiffe_id', '=', spiffeId)
            .where('status', '=', 'valid')
            .where('not_after', '>=', toEpochMs(at))
            .returningAll()
            .execute();
        // Two passes: on PostgreSQL the first may have waited for a renewal holding a lock on
        // one of these rows; the certificate that renewal committed is not in the first
        // statement's snapshot, but is in the second's.
        const rows = [...(await revokeCurrent()), ...(await revokeCurrent())];
        if (rows.length > 0) await bumpRevocationEpoch(trx);
        await this.#appendAuditRow(trx, audit);
        return rows.map(fromCertificateRow).sort(newestFirst);
      })),
    );
  }

  revocationEpoch(): Promise<number> {
    return this.#run('revocationEpoch', async (db) => {
      const row = await db.selectFrom('meta').select('value').where('key', '=', REVOCATION_EPOCH).executeTakeFirst();
      return row === undefined ? 0 : Number(row.value);
    });
  }

  listRevoked(issuerKeyId: string, notAfterFrom: Date): Promise<RevokedSerial[]> {
    return this.#run('listRevoked', async (db) => {
      const rows = await db
        .selectFrom('certificates')
        .select(['serial', 'revoked_at', 'revocation_reason'])
        .where('issuer_key_id', '=', issuerKeyId)
        .where('status', '=', 'revoked')
        .where('not_after', '>=', toEpochMs(notAfterFrom))
        .orderBy('serial')
        .execute();
      return rows.map((row) => ({ serial: row.serial, revokedAt: new Date(Number(row.revoked_at)), reason: row.revocation_reason ?? 'unspecified' }));
    });
  }

  async insertCrl(issuerKeyId: string, sign: (crlNumber: bigint) => CrlDraft, adopt?: (latest: CrlRecord) => boolean): Promise<CrlRecord> {
    // On PostgreSQL, publishers of one issuer queue on its ca_keys row lock (SQLite serialises
    // writers anyway). Should two still collide, the primary key on (issuer, number) refuses the
    // second: it takes the next number and signs again, a bounded number of times.
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#run('insertCrl', (db) =>
          db.transaction().execute(async (trx) => {
            if (this.backend === 'postgres') await trx.selectFrom('ca_keys').select('id').where('id', '=', issuerKeyId).forUpdate().execute();
            const topRow = await trx.selectFrom('crls').selectAll().where('issuer_key_id', '=', issuerKeyId).orderBy('crl_number', 'desc').limit(1).executeTakeFirst();
            const top = topRow === undefined ? undefined : fromCrlRow(topRow);
            // Decided under the lock: another process may have stored a CRL meanwhile that makes
            // this one pointless (or, numbered higher but built from an older snapshot, wrong).
            if (top !== undefined && adopt?.(top) === true) return top;
            const crlNumber = (top?.crlNumber ?? 0n) + 1n;
            const draft = sign(crlNumber);
            const record: CrlRecord = { issuerKeyId, crlNumber, ...draft, createdAt: new Date() };
            await trx.insertInto('crls').values(toCrlRow(record)).execute();
            await trx.deleteFrom('crls').where('issuer_key_id', '=', issuerKeyId).where('crl_number', '<=', Number(crlNumber) - CRLS_KEPT).execute();
            return record;
          }),
        );
      } catch (error) {
        if (attempt < 5 && error instanceof TlsmeshError && isUniqueViolation(error.cause)) continue;
        throw error;
      }
    }
  }

  latestCrl(issuerKeyId: string): Promise<CrlRecord | null> {
    return this.#run('latestCrl', async (db) => {
      const row = await db.selectFrom('crls').selectAll().where('issuer_key_id', '=', issuerKeyId).orderBy('crl_number', 'desc').limit(1).executeTakeFirst();
      return row === undefined ? null : fromCrlRow(row);
    });
  }

  appendAudit(entry: AuditEntry): Promise<void> {
    // A transaction even for one row: reading the chain's tail and appending after it must not
    // interleave with another append (see #appendAuditRow). On SQLite it joins the group commit,
    // so refusals arriving with issuance share its transaction instead of paying one each; on
    // PostgreSQL likewise (#chainedWrite).
    const groupCommit = this.#groupCommit;
    if (groupCommit) return this.#run('appendAudit', () => groupCommit.run((sql) => appendAuditRowSync(sql, entry)));
    return this.#chainedWrite('appendAudit', () => Promise.resolve({ value: undefined, audit: entry }));
  }

  /**
   * An issuance write outside SQLite's group commit: on PostgreSQL it joins the group commit
   * (postgres-group-commit.ts), otherwise it runs in a transaction of its own. Either way `work`
   * writes its rows and names the audit entry, which is chained after them.
   */
  #chainedWrite<T>(operation: string, work: GroupItemWork<T>): Promise<T> {
    const pgGroupCommit = this.#pgGroupCommit;
    if (pgGroupCommit) return this.#run(operation, () => pgGroupCommit.run(work));
    return this.#run(operation, (db) =>
      db.transaction().execute(async (trx) => {
        const { value, audit } = await work(trx);
        if (audit !== null) await this.#appendAuditRows(trx, [audit]);
        return value;
      }),
    );
  }

  readAuditChain(afterSeq: number, limit: number): Promise<AuditChainRow[]> {
    checkPaging(limit, afterSeq);
    return this.#run('readAuditChain', async (db) => {
      const rows = await db.selectFrom('audit_log').selectAll().where('seq', '>', afterSeq).orderBy('seq').limit(limit).execute();
      return rows.map(fromAuditChainRow);
    });
  }

  listUnchainedAudit(limit: number): Promise<AuditChainRow[]> {
    checkPaging(limit, undefined);
    return this.#run('listUnchainedAudit', async (db) => {
      const rows = await db
        .selectFrom('audit_log')
        .selectAll()
        .where((eb) => eb.or([eb('seq', 'is', null), eb('seq', '<', 1), eb('prev_hash', 'is', null), eb('hash', 'is', null)]))
        .orderBy('id')
        .limit(limit)
        .execute();
      return rows.map(fromAuditChainRow);
    });
  }

  countAudit(): Promise<number> {
    return this.#run('countAudit', async (db) => {
      const row = await db.selectFrom('audit_log').select((eb) => eb.fn.countAll<number | string>().as('rows')).executeTakeFirstOrThrow();
      return Number(row.rows);
    });
  }

  auditChainHead(): Promise<AuditChainAnchor | null> {
    return this.#run('auditChainHead', async (db) => (await chainTail(db).executeTakeFirst()) ?? null);
  }

  /**
   * Appends `entry` after the chain's tail, inside the caller's transaction, which must do it as
   * its last write: on PostgreSQL the row lock taken here (on the meta lock row) queues every
   * other appender, from any CA process, until this transaction ends, so the shorter the rest,
   * the less they wait. Callers take their own row locks before this one, never after, so no two
   * transactions wait on each other in a cycle. The tail is read after the lock is granted, and
   * under READ COMMITTED each statement sees what committed before it began, so the tail is the
   * one the previous holder wrote. On SQLite every transaction of this store begins IMMEDIATE
   * (sqlite-dialect.ts): the write lock is held from BEGIN, and no other writer runs in between.
   * Should the lock be bypassed anyway, the unique index on seq refuses the second of two rows
   * claiming one position (ERR_STORE), so the chain never forks.
   */
  #appendAuditRow(trx: Db, entry: AuditEntry): Promise<void> {
    return this.#appendAuditRows(trx, [entry]);
  }

  /**
   * #appendAuditRow for several entries (a PostgreSQL group commit's): one lock, one tail read,
   * the entries chained in the given order and written by one INSERT, whose rows take ids in
   * VALUES order.
   */
  async #appendAuditRows(trx: Db, entries: readonly AuditEntry[]): Promise<void> {
    if (entries.length === 0) return;
    if (this.backend === 'postgres') {
      const lock = await trx.selectFrom('meta').select('key').where('key', '=', AUDIT_CHAIN_LOCK_KEY).forUpdate().executeTakeFirst();
      if (lock === undefined) throw new TlsmeshError('ERR_STORE', `the audit chain lock row (meta ${AUDIT_CHAIN_LOCK_KEY}) is missing; appends cannot be serialised`);
    }
    let tail: AuditChainAnchor | null = (await chainTail(trx).executeTakeFirst()) ?? null;
    const rows = entries.map((entry) => {
      const row = toAuditRow(entry);
      const chain = nextChainFields(tail, row);
      tail = { seq: chain.seq, hash: chain.hash };
      return { ...row, seq: chain.seq, prev_hash: chain.prevHash, hash: chain.hash };
    });
    await trx.insertInto('audit_log').values(rows).execute();
  }

  /** In id order (the order entries were appended), or newest first; `afterId`/`beforeId` page. */
  async listAudit(filter: AuditFilter): Promise<AuditRecord[]> {
    checkPaging(filter.limit, undefined);
    return this.#run('listAudit', async (db) => {
      let query = db.selectFrom('audit_log').selectAll();
      if (filter.action !== undefined) query = query.where('action', '=', filter.action);
      if (filter.outcome !== undefined) query = query.where('outcome', '=', filter.outcome);
      if (filter.afterId !== undefined) query = query.where('id', '>', filter.afterId);
      if (filter.beforeId !== undefined) query = query.where('id', '<', filter.beforeId);
      query = query.orderBy('id', filter.newestFirst === true ? 'desc' : 'asc');
      if (filter.limit !== undefined) query = query.limit(filter.limit);
      const rows = await query.execute();
      return rows.map(fromAuditRow);
    });
  }

  async newestCertificatePerIdentity(window: { at?: Date; expiredSince?: Date } = {}): Promise<IdentityCertificate[]> {
    const startedBy = window.at === undefined ? Number.MAX_SAFE_INTEGER : toEpochMs(window.at);
    const endedFrom = window.expiredSince === undefined ? 0 : toEpochMs(window.expiredSince);
    return this.#run('newestCertificatePerIdentity', async (db) => {
      // One pass with a window function (SQLite >= 3.25 and PostgreSQL alike); the DER and the
      // JSON columns are not read, so a scrape of thousands of identities stays cheap.
      // Ranked over every status, then the revoked dropped: an identity whose newest certificate
      // was revoked (revokeIdentity revokes every unexpired one) is not expected to renew, and its
      // older, expired but never revoked certificates must not stand in for it.
      const rows = await sql<{ spiffe_id: string; kind: CertificateKind; serial: string; not_before: number | string; not_after: number | string }>`
        select spiffe_id, kind, serial, not_before, not_after from (
          select spiffe_id, kind, serial, not_before, not_after, status,
                 row_number() over (partition by spiffe_id order by not_after desc, serial desc) as newest
          from certificates where not_before <= ${startedBy} and not_after >= ${endedFrom}
        ) ranked where newest = 1 and status = 'valid' order by spiffe_id`.execute(db);
      return rows.rows.map((row) => ({
        spiffeId: row.spiffe_id,
        kind: row.kind,
        serial: row.serial,
        notBefore: new Date(Number(row.not_before)),
        notAfter: new Date(Number(row.not_after)),
      }));
    });
  }

  onError(listener: StoreErrorListener): () => void {
    this.#errorListeners.add(listener);
    return () => this.#errorListeners.delete(listener);
  }

  async #run<T>(operation: string, body: (db: Db) => Promise<T>): Promise<T> {
    try {
      return await body(this.#db);
    } catch (error) {
      if (error instanceof TlsmeshError && error.code !== 'ERR_STORE') throw error;
      const coded = error instanceof TlsmeshError ? error : storeError(operation, error);
      for (const listener of this.#errorListeners) listener(operation, coded);
      throw coded;
    }
  }
}

/** Times a revocation chosen as a deadlock victim runs again before its error is returned. */
const REVOCATION_DEADLOCK_RETRIES = 3;

/**
 * Runs a whole transaction again when PostgreSQL picked it as a deadlock victim (40P01). A
 * revocation's row locks can form a cycle with an issuance batch that renews the same identity
 * (the batch holds certificate rows and waits for the audit chain lock the revocation holds, or
 * the reverse); the victim's transaction was rolled back entirely, so running it again is safe,
 * and a revocation must not fail for losing a race (docs/high-availability.md).
 */
async function retriedOnDeadlock<T>(transaction: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await transaction();
    } catch (error) {
      if (backendErrorCode(error) !== DEADLOCK_DETECTED || attempt >= REVOCATION_DEADLOCK_RETRIES) throw error;
    }
  }
}

/** The WHERE clauses of a CertificateFilter (paging and order are the caller's). */
function filterCertificates<Q extends SelectQueryBuilder<StoreSchema, 'certificates', object>>(query: Q, filter: CertificateFilter): Q {
  let q = query as SelectQueryBuilder<StoreSchema, 'certificates', object>;
  if (filter.spiffeId !== undefined) q = q.where('spiffe_id', '=', filter.spiffeId);
  if (filter.spiffeIdContains !== undefined) {
    // A parameter, never spliced into the SQL; LIKE's own wildcards in the text are escaped so
    // they match themselves. lower() on both sides: SQLite's LIKE ignores ASCII case and
    // PostgreSQL's does not, and the search should behave the same on both.
    const pattern = `%${escapeLike(filter.spiffeIdContains.toLowerCase())}%`;
    q = q.where(sql<boolean>`lower(spiffe_id) LIKE ${pattern} ESCAPE '\\'`);
  }
  if (filter.status !== undefined) q = q.where('status', '=', filter.status);
  if (filter.kind !== undefined) q = q.where('kind', '=', filter.kind);
  if (filter.issuerKeyId !== undefined) q = q.where('issuer_key_id', '=', filter.issuerKeyId);
  if (filter.validAt !== undefined) {
    // RFC 5280 §4.1.2.5: the validity period includes both notBefore and notAfter.
    const at = toEpochMs(filter.validAt);
    q = q.where('not_before', '<=', at).where('not_after', '>=', at);
  }
  if (filter.notAfterFrom !== undefined) q = q.where('not_after', '>=', toEpochMs(filter.notAfterFrom));
  if (filter.notAfterBefore !== undefined) q = q.where('not_after', '<', toEpochMs(filter.notAfterBefore));
  return q as Q;
}

/** Escapes LIKE's wildcards (`%`, `_`) and the escape character itself (`\`). */
function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

function storeError(operation: string, cause: unknown): TlsmeshError {
  // The driver's message can quote row values, so it stays in `cause` (for the log) only.
  const code = backendErrorCode(cause);
  const suffix = code === undefined ? '' : ` (${code})`;
  return new TlsmeshError('ERR_STORE', `store operation ${operation} failed${suffix}`, { cause });
}

async function insertCertificateRow(db: Db, certificate: CertificateRecord): Promise<void> {
  await withCollisionCheckAsync(certificate, () => db.insertInto('certificates').values(toCertificateRow(certificate)).execute());
}

/** `serial` is the only unique key of the table, so any unique violation there is a collision. */
function collisionOrSame(certificate: CertificateRecord, error: unknown): unknown {
  return isUniqueViolation(error)
    ? new TlsmeshError('ERR_SERIAL_COLLISION', `a certificate with serial ${certificate.serial} already exists`, { cause: error })
    : error;
}

function withCollisionCheck<T>(certificate: CertificateRecord, insert: () => T): T {
  try {
    return insert();
  } catch (error) {
    throw collisionOrSame(certificate, error);
  }
}

async function withCollisionCheckAsync<T>(certificate: CertificateRecord, insert: () => Promise<T>): Promise<T> {
  try {
    return await insert();
  } catch (error) {
    throw collisionOrSame(certificate, error);
  }
}

const REVOCATION_EPOCH = 'revocation_epoch';
/** CRLs kept per issuer: the newest is served; a few more help when debugging a relying party. */
const CRLS_KEPT = 5;

/** In the revoking transaction, so the epoch never moves without the revocation (or vice versa). */
async function bumpRevocationEpoch(db: Db): Promise<void> {
  await db
    .updateTable('meta')
    .set({ value: sql<string>`CAST(CAST(value AS BIGINT) + 1 AS TEXT)` })
    .where('key', '=', REVOCATION_EPOCH)
    .execute();
}

/** The renewal's check on the certificate it replaces (insertRenewedCertificate). */
function touchPreviousCertificate(db: Db, serial: string) {
  return db.updateTable('certificates').set({ status: 'valid' }).where('serial', '=', serial).where('status', '=', 'valid');
}

/** The newest chained row's position and hash (an indexed lookup on the unique seq index). */
function chainTail(db: Db) {
  return db.selectFrom('audit_log').select(['seq', 'hash']).where('seq', 'is not', null).where('hash', 'is not', null).orderBy('seq', 'desc').limit(1).$narrowType<{ seq: number; hash: string }>();
}

// The group-commit path's statements, compiled once (query-shape.ts).
const REDEEM_TOKEN = queryShape(['usedAt', 'serial', 'jti'], (db: Db, v) =>
  db.updateTable('tokens').set({ used_at: v.usedAt, used_by_serial: v.serial }).where('jti', '=', v.jti).where('used_at', 'is', null),
);
const TOUCH_PREVIOUS = queryShape(['serial'], (db: Db, v) => touchPreviousCertificate(db, v.serial));
const CHAIN_TAIL = queryShape([], (db: Db) => chainTail(db));
const AUDIT_TAIL_MEMO = 'audit-chain-tail';

/**
 * The group-commit form of #appendAuditRow: the batch runs in one BEGIN IMMEDIATE on the only
 * connection, so each entry chains onto the tail its predecessor in the batch just wrote (kept in
 * the batch's memo rather than read back), or, first in a batch or after a predecessor's
 * savepoint rolled back (which empties the memo), onto the tail read from the table.
 */
function appendAuditRowSync(sql: SyncExecutor, entry: AuditEntry): void {
  const row = toAuditRow(entry);
  const tail = (sql.memo.get(AUDIT_TAIL_MEMO) as AuditChainAnchor | undefined) ?? sql.firstShape<AuditChainAnchor, never>(CHAIN_TAIL, {}) ?? null;
  const chain = nextChainFields(tail, row);
  sql.insert('audit_log', { ...row, seq: chain.seq, prev_hash: chain.prevHash, hash: chain.hash });
  sql.memo.set(AUDIT_TAIL_MEMO, { seq: chain.seq, hash: chain.hash } satisfies AuditChainAnchor);
}

function newestFirst(a: CertificateRecord, b: CertificateRecord): number {
  const byCreation = b.createdAt.getTime() - a.createdAt.getTime();
  if (byCreation !== 0) return byCreation;
  return a.serial < b.serial ? 1 : a.serial > b.serial ? -1 : 0;
}

function checkPaging(limit: number | undefined, offset: number | undefined): void {
  for (const [name, value] of [
    ['limit', limit],
    ['offset', offset],
  ] as const) {
    if (value !== undefined && !(Number.isSafeInteger(value) && value >= 0)) {
      throw new RangeError(`${name} must be a non-negative integer`);
    }
  }
}
