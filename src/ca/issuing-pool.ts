/**
 * CSR verification and leaf signing on worker threads, so that the CA's main thread keeps TLS,
 * HTTP and the store while another core does the cryptography (~280 µs of the ~740 µs an
 * enrolment costs the main thread; docs/performance.md).
 *
 * Keys: the issuer's private key (a KeyObject, cloned into the worker by postMessage) is sent
 * when a job names a Keyring the workers have not seen; a worker keeps only the newest. The
 * Authority checks after each job that the Keyring is still the current one and builds the
 * certificate again if a rotation landed meanwhile, so a leaf is never stored with an old key.
 *
 * Failures: a refusal (bad CSR, names not allowed) comes back as its TlsmeshError code; a worker
 * that dies fails its jobs with ERR_INTERNAL (nothing was stored) and is replaced.
 */
import { Worker } from 'node:worker_threads';
import { TlsmeshError, type ErrorCode } from '../errors.js';
import type { LeafIssuerOptions } from '../pki/leaf.js';
import type { Keyring } from './keyring.js';
import type { GrantedNames, NameAllowance } from './name-policy.js';

export type WorkerMessage =
  | { type: 'issuer'; generation: number; options: Omit<LeafIssuerOptions, 'issuerNotAfter'> & { issuerNotAfter: number } }
  | { type: 'job'; id: number; generation: number; csr: Uint8Array; allowance: NameAllowance; serial: Uint8Array; notBefore: number; notAfter: number }
  | { type: 'crash' };

export type WorkerAnswer =
  | { id: number; der: Uint8Array; names: GrantedNames }
  | { id: number; stale: true }
  | { id: number; error: { code: ErrorCode; message: string } };

export interface PooledLeafRequest {
  csrDer: Buffer;
  allowance: NameAllowance;
  serial: Buffer;
  notBefore: Date;
  notAfter: Date;
}

/** 'stale': the keyring changed before the worker saw the job; build again with the current one. */
export type PooledLeaf = { der: Buffer; names: GrantedNames } | 'stale';

interface Pending {
  resolve: (leaf: PooledLeaf) => void;
  reject: (error: Error) => void;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
  generation: number;
}

// Compiled (dist/): the .js beside this file. From source (tests, tsx): the .ts, loaded through
// tsx's loader registered inside the thread (`--import tsx` in a worker's execArgv is not applied
// by Node 20); tsx is a dev dependency, present wherever the sources run.
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const WORKER_SCRIPT = new URL(FROM_SOURCE ? './issuing-worker.ts' : './issuing-worker.js', import.meta.url);

function startWorker(): Worker {
  if (!FROM_SOURCE) return new Worker(WORKER_SCRIPT);
  const boot = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(WORKER_SCRIPT.href)}); })`;
  return new Worker(boot, { eval: true });
}

export class IssuingPool {
  readonly #slots: Slot[] = [];
  readonly #generations = new WeakMap<Keyring, number>();
  #lastGeneration = 0;
  #latest: { generation: number; message: WorkerMessage } | undefined;
  #nextId = 1;
  #next = 0;
  #closed = false;

  /** Threads start with the first job: a CA that never enrols pays nothing for them. */
  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new TypeError(`an issuing pool needs at least one worker, got ${size}`);
  }

  /** Verifies the CSR, checks the names against `allowance` and signs with `keyring`'s active issuer. */
  issue(keyring: Keyring, request: PooledLeafRequest): Promise<PooledLeaf> {
    if (this.#closed) return Promise.reject(new TlsmeshError('ERR_INTERNAL', 'the issuing pool is closed'));
    const generation = this.#generationOf(keyring);
    while (this.#slots.length < this.size) this.#slots.push(this.#spawn());
    // The least busy worker; ties go round the pool.
    let slot = this.#slots[this.#next++ % this.#slots.length]!;
    for (const other of this.#slots) if (other.pending.size < slot.pending.size) slot = other;
    if (slot.generation !== generation) {
      slot.worker.postMessage(this.#latest!.message);
      slot.generation = generation;
    }
    const id = this.#nextId++;
    return new Promise<PooledLeaf>((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      const message: WorkerMessage = {
        type: 'job',
        id,
        generation,
        csr: request.csrDer,
        allowance: { spiffeId: request.allowance.spiffeId, dnsNames: [...request.allowance.dnsNames], ipAddresses: [...request.allowance.ipAddresses] },
        serial: request.serial,
        notBefore: request.notBefore.getTime(),
        notAfter: request.notAfter.getTime(),
      };
      slot.worker.postMessage(message);
    });
  }

  /** Tests: makes one worker exit as if it had crashed. */
  crashOne(): void {
    this.#slots[0]?.worker.postMessage({ type: 'crash' } satisfies WorkerMessage);
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#slots.map((slot) => slot.worker.terminate()));
  }

  #generationOf(keyring: Keyring): number {
    let generation = this.#generations.get(keyring);
    if (generation === undefined) {
      generation = ++this.#lastGeneration;
      this.#generations.set(keyring, generation);
      const options = keyring.issuer.leafIssuer.options;
      this.#latest = { generation, message: { type: 'issuer', generation, options: { ...options, issuerNotAfter: options.issuerNotAfter.getTime() } } };
    }
    return generation;
  }

  #spawn(): Slot {
    const worker = startWorker();
    // The CA's lifetime is the server's; an idle pool must not keep a finished process alive.
    worker.unref();
    const slot: Slot = { worker, pending: new Map(), generation: 0 };
    worker.on('message', (answer: WorkerAnswer) => {
      const pending = slot.pending.get(answer.id);
      if (pending === undefined) return;
      slot.pending.delete(answer.id);
      if ('error' in answer) pending.reject(new TlsmeshError(answer.error.code, answer.error.message));
      else if ('stale' in answer) pending.resolve('stale');
      else pending.resolve({ der: Buffer.from(answer.der.buffer, answer.der.byteOffset, answer.der.byteLength), names: answer.names });
    });
    const replace = (cause: Error): void => {
      if (this.#slots.includes(slot) === false) return;
      const failure = new TlsmeshError('ERR_INTERNAL', 'an issuing worker thread failed; nothing was issued', { cause });
      for (const pending of slot.pending.values()) pending.reject(failure);
      slot.pending.clear();
      if (this.#closed) return;
      this.#slots[this.#slots.indexOf(slot)] = this.#spawn();
    };
    worker.on('error', (error) => replace(error));
    worker.on('exit', (code) => replace(new Error(`issuing worker exited with code ${code}`)));
    return slot;
  }
}
