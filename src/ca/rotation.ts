/**
 * Staged CA rotation (`tlsmesh ca rotate prepare|activate|retire|status`), on the store, so it
 * works with any number of CA processes: each step bumps the store's keys epoch and every running
 * CA loads its keys again within its poll interval (server.ts); nothing restarts.
 *
 * 1. prepare: a new intermediate (and, with `newRoot`, a new root that signs it) in state
 *    `prepared`. A new root joins the trust bundle at once, so workloads (bundle watchers, agents)
 *    trust it before anything it signs is in use.
 * 2. activate: the prepared intermediate signs every new certificate; the previous one becomes
 *    `superseded` (its CRL and OCSP answers go on, for the leaves it issued). A prepared root
 *    becomes active, the previous root superseded (still in the bundle).
 * 3. retire: superseded keys leave the bundle and stop publishing, once nothing they signed is
 *    still valid (or when forced: certificates still in use then fail to verify where the bundle
 *    or CRLs are checked — which is the point of forcing after a compromise).
 *
 * Leaves renew onto the new intermediate at their normal 2/3 point; with 24 h leaves the whole
 * cycle can be prepare → (wait for bundles to spread) → activate → (24 h) → retire.
 */
import type { KeyObject } from 'node:crypto';
import { X509Certificate } from 'node:crypto';
import { TlsmeshError } from '../errors.js';
import { checkPassphrase, fingerprintOf, openPrivateKey, type KeyType } from '../pki/index.js';
import type { AuditEntry, CaKeyRecord, CaKeyState, Store } from '../store/index.js';
import { caNotBefore, makeIntermediate, makeRoot, signRootCrl } from './ca-keys.js';
import { DEFAULT_CA_LIFETIMES, type CaLifetimes } from './init.js';
import { sealCaKey, sealLabel } from './keyring.js';

/** The meta counter every rotation step bumps; CA processes poll it. */
export const KEYS_EPOCH = 'keys_epoch';

export interface RotationOptions {
  store: Store;
  now?: Date;
  /** Who ran it, for the audit log (default `cli:local`). */
  actor?: string;
}

export interface PrepareOptions extends RotationOptions {
  passphrase: string;
  /** Also make a new root, which signs the new intermediate. */
  newRoot?: boolean;
  /**
   * The signing root's sealed key (the file `ca init --offline-root` wrote) when it is not in
   * the store; opened with the passphrase.
   */
  offlineRootKey?: string | undefined;
  /** Keep the new root offline too: its sealed key is handed back, not stored. */
  offlineNewRoot?: boolean;
  keyType?: KeyType;
  lifetimes?: CaLifetimes;
}

export interface PrepareResult {
  intermediateId: string;
  intermediateNotAfter: Date;
  /** Set with `newRoot`: pin this fingerprint (ca.yaml rootFingerprints) on every CA host. */
  root: { id: string; fingerprint: string; certDer: Buffer; sealedKey: string | null } | null;
}

const byNewest = (a: CaKeyRecord, b: CaKeyRecord): number => b.createdAt.getTime() - a.createdAt.getTime();

function keysOf(records: readonly CaKeyRecord[], kind: 'root' | 'intermediate', state: CaKeyState): CaKeyRecord[] {
  return records.filter((record) => record.kind === kind && record.state === state).sort(byNewest);
}

function signedBy(certDer: Buffer, issuerDer: Buffer): boolean {
  const certificate = new X509Certificate(certDer);
  const issuer = new X509Certificate(issuerDer);
  return certificate.checkIssued(issuer) && certificate.verify(issuer.publicKey);
}

function audit(options: RotationOptions, action: string, subject: string | null, detail: Record<string, unknown>): AuditEntry {
  return { at: options.now ?? new Date(), actor: options.actor ?? 'cli:local', action, subject, outcome: 'ok', code: null, detail, peer: null };
}

export async function prepareRotation(options: PrepareOptions): Promise<PrepareResult> {
  const { store } = options;
  const passphrase = checkPassphrase(options.passphrase);
  const now = options.now ?? new Date();
  const lifetimes = options.lifetimes ?? DEFAULT_CA_LIFETIMES;
  const trustDomain = await store.getMeta('trust_domain');
  const records = await store.listCaKeys();
  const activeIntermediate = keysOf(records, 'intermediate', 'active')[0];
  const activeRoot = activeIntermediate && records.find((record) => record.kind === 'root' && record.state !== 'retired' && record.certDer !== null && signedBy(activeIntermediate.certDer!, record.certDer));
  if (trustDomain === null || activeIntermediate === undefined || activeRoot === undefined) {
    throw new TlsmeshError('ERR_CA_NOT_INITIALIZED', 'the store holds no initialised CA (run `tlsmesh ca init`)');
  }
  const prepared = keysOf(records, 'intermediate', 'prepared')[0];
  if (prepared !== undefined) {
    throw new TlsmeshError('ERR_ROTATION_STATE', `intermediate ${prepared.id} is already prepared: activate it (tlsmesh ca rotate activate) before preparing another`);
  }
  const keyType = options.keyType ?? keyTypeOf(activeIntermediate.certDer!);
  const notBefore = caNotBefore(now);

  let signer: { id: string; certDer: Buffer; privateKey: KeyObject; notAfter: Date };
  let root: PrepareResult['root'] = null;
  if (options.newRoot === true) {
    const made = await makeRoot({ trustDomain, keyType, notBefore, days: lifetimes.rootDays, labelled: true });
    const sealed = await sealCaKey('root', made.id, made.privateKey, passphrase);
    await store.putCaKey({ id: made.id, kind: 'root', state: 'prepared', certDer: made.certDer, encryptedKey: options.offlineNewRoot === true ? null : sealed, notBefore, notAfter: made.notAfter, createdAt: now });
    signer = made;
    root = { id: made.id, fingerprint: fingerprintOf(made.certDer), certDer: made.certDer, sealedKey: options.offlineNewRoot === true ? sealed : null };
  } else {
    const sealed = activeRoot.encryptedKey ?? options.offlineRootKey;
    if (sealed === undefined) {
      throw new TlsmeshError('ERR_CONFIG', `root ${activeRoot.id} is kept offline: give its sealed key file (--root-key FILE, as ca init --offline-root wrote it)`);
    }
    const privateKey = await openPrivateKey(sealed, passphrase, sealLabel('root', activeRoot.id)).catch((cause: unknown) => {
      throw new TlsmeshError('ERR_PASSPHRASE', `cannot open the key of root ${activeRoot.id} (wrong passphrase or not that root's key file)`, { cause });
    });
    signer = { id: activeRoot.id, certDer: activeRoot.certDer!, privateKey, notAfter: activeRoot.notAfter };
  }

  const intermediate = await makeIntermediate({
    trustDomain,
    keyType,
    notBefore,
    days: lifetimes.intermediateDays,
    issuerCertDer: signer.certDer,
    issuerPrivateKey: signer.privateKey,
    issuerNotAfter: signer.notAfter,
  });
  await store.putCaKey({
    id: intermediate.id,
    kind: 'intermediate',
    state: 'prepared',
    certDer: intermediate.certDer,
    encryptedKey: await sealCaKey('intermediate', intermediate.id, intermediate.privateKey, passphrase),
    notBefore,
    notAfter: intermediate.notAfter,
    createdAt: now,
  });
  // The signing root's CRL, valid until the new intermediate expires: with an offline root this
  // is the one moment its key is at hand.
  await signRootCrl(store, signer, notBefore, intermediate.notAfter);
  await store.appendAudit(audit(options, 'rotate.prepare', intermediate.id, { intermediate: intermediate.id, signedBy: signer.id, newRoot: root?.id ?? null }));
  await store.incrementMeta(KEYS_EPOCH);
  return { intermediateId: intermediate.id, intermediateNotAfter: intermediate.notAfter, root };
}

export async function activateRotation(options: RotationOptions): Promise<{ intermediateId: string; supersededIntermediate: string; rootId: string | null }> {
  const { store } = options;
  const records = await store.listCaKeys();
  const prepared = keysOf(records, 'intermediate', 'prepared')[0];
  if (prepared === undefined) throw new TlsmeshError('ERR_ROTATION_STATE', 'nothing to activate: prepare a new intermediate first (tlsmesh ca rotate prepare)');
  const active = keysOf(records, 'intermediate', 'active');
  const preparedRoot = keysOf(records, 'root', 'prepared').find((root) => signedBy(prepared.certDer!, root.certDer!));
  // New first, then old: a CA process that reloads in between sees two active intermediates and
  // signs with the newest (keyring.ts), never with none.
  if (preparedRoot !== undefined) {
    await store.setCaKeyState(preparedRoot.id, 'active');
    for (const root of keysOf(records, 'root', 'active')) await store.setCaKeyState(root.id, 'superseded');
  }
  await store.setCaKeyState(prepared.id, 'active');
  for (const old of active) await store.setCaKeyState(old.id, 'superseded');
  await store.appendAudit(audit(options, 'rotate.activate', prepared.id, { intermediate: prepared.id, superseded: active.map((r) => r.id), root: preparedRoot?.id ?? null }));
  await store.incrementMeta(KEYS_EPOCH);
  return { intermediateId: prepared.id, supersededIntermediate: active[0]?.id ?? '', rootId: preparedRoot?.id ?? null };
}

export interface RetireResult {
  retired: string[];
  /** Root fingerprints to drop from ca.yaml rootFingerprints. */
  retiredRootFingerprints: string[];
}

/** Certificates that keep a superseded intermediate in use (the CA re-issues its own server and responder certificates itself). */
async function stillValid(store: Store, issuerKeyId: string, at: Date): Promise<number> {
  const records = await store.listCertificates({ issuerKeyId, status: 'valid', validAt: at, limit: 1000 });
  return records.filter((record) => record.kind === 'workload' || record.kind === 'admin').length;
}

export async function retireRotation(options: RotationOptions & { force?: boolean }): Promise<RetireResult> {
  const { store } = options;
  const now = options.now ?? new Date();
  const records = await store.listCaKeys();
  const intermediates = keysOf(records, 'intermediate', 'superseded');
  const roots = keysOf(records, 'root', 'superseded');
  if (intermediates.length === 0 && roots.length === 0) throw new TlsmeshError('ERR_ROTATION_STATE', 'nothing to retire: no superseded CA key');
  if (options.force !== true) {
    const busy: string[] = [];
    for (const intermediate of intermediates) {
      const count = await stillValid(store, intermediate.id, now);
      if (count > 0) busy.push(`${intermediate.id} signed ${count}${count >= 1000 ? '+' : ''} certificate(s) still valid`);
    }
    if (busy.length > 0) {
      throw new TlsmeshError('ERR_ROTATION_IN_USE', `not retiring: ${busy.join('; ')}. Wait until they renew onto the new intermediate or expire (tlsmesh ca rotate status), or pass --force`);
    }
  }
  const retired: string[] = [];
  for (const intermediate of intermediates) {
    await store.setCaKeyState(intermediate.id, 'retired');
    retired.push(intermediate.id);
  }
  // A root goes once no intermediate in use (prepared, active, superseded) is signed by it.
  const inUse = records.filter((record) => record.kind === 'intermediate' && record.state !== 'retired' && !retired.includes(record.id));
  const retiredRootFingerprints: string[] = [];
  for (const root of roots) {
    if (inUse.some((intermediate) => signedBy(intermediate.certDer!, root.certDer!))) continue;
    await store.setCaKeyState(root.id, 'retired');
    retired.push(root.id);
    retiredRootFingerprints.push(fingerprintOf(root.certDer!));
  }
  await store.appendAudit({ ...audit(options, 'rotate.retire', retired.join(','), { retired, forced: options.force === true }) });
  await store.incrementMeta(KEYS_EPOCH);
  return { retired, retiredRootFingerprints };
}

export interface RotationStatus {
  keys: { id: string; kind: string; state: CaKeyState; notAfter: string; offline: boolean; validCertificates?: number }[];
  /** What to run next, in words. */
  next: string;
}

export async function rotationStatus(options: RotationOptions): Promise<RotationStatus> {
  const now = options.now ?? new Date();
  const records = await options.store.listCaKeys();
  const keys: RotationStatus['keys'] = [];
  for (const record of records.filter((r) => r.kind !== 'token-signing')) {
    const entry: RotationStatus['keys'][number] = { id: record.id, kind: record.kind, state: record.state, notAfter: record.notAfter.toISOString(), offline: record.encryptedKey === null };
    if (record.kind === 'intermediate' && record.state !== 'retired') entry.validCertificates = await stillValid(options.store, record.id, now);
    keys.push(entry);
  }
  const has = (kind: string, state: CaKeyState): boolean => keys.some((key) => key.kind === kind && key.state === state);
  const busy = keys.filter((key) => key.state === 'superseded' && (key.validCertificates ?? 0) > 0);
  const next = has('intermediate', 'prepared')
    ? 'activate (tlsmesh ca rotate activate) once every workload has the new bundle'
    : busy.length > 0
      ? `wait: ${busy.map((key) => `${key.id} has ${key.validCertificates} valid certificate(s)`).join('; ')}; then retire`
      : has('intermediate', 'superseded') || has('root', 'superseded')
        ? 'retire (tlsmesh ca rotate retire)'
        : 'nothing in progress; prepare to start a rotation';
  return { keys, next };
}

function keyTypeOf(certDer: Buffer): KeyType {
  const key = new X509Certificate(certDer).publicKey;
  switch (key.asymmetricKeyType) {
    case 'ec':
      return key.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 'p384' : 'p256';
    case 'ed25519':
      return 'ed25519';
    default: {
      const bits = key.asymmetricKeyDetails?.modulusLength ?? 2048;
      return bits >= 4096 ? 'rsa4096' : bits >= 3072 ? 'rsa3072' : 'rsa2048';
    }
  }
}
