/**
 * The CA's keys as they change: a rotation step (prepare, activate, retire) run by `tlsmesh ca
 * rotate` against the store bumps its keys epoch; every CA process polls that epoch and loads its
 * keys again, so a rotation needs no restart. Readers take `current()` each time and never keep a
 * Keyring across calls; `onChange` tells the parts that hold derived state (CRL signers, the OCSP
 * responder, the CA's own TLS certificate, bundle watchers).
 */
import type { Keyring } from './keyring.js';

export class LiveKeyring {
  #current: Keyring;
  readonly #load: () => Promise<Keyring>;
  readonly #listeners = new Set<(keyring: Keyring) => void>();
  #loading: Promise<boolean> | undefined;
  #again: Promise<boolean> | undefined;

  constructor(initial: Keyring, load: () => Promise<Keyring>) {
    this.#current = initial;
    this.#load = load;
  }

  current(): Keyring {
    return this.#current;
  }

  onChange(listener: (keyring: Keyring) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Loads the keys again; true when they changed (then listeners have run). A load that fails
   * (ERR_CA_INTEGRITY, a store error) throws and keeps the current keys: a CA that cannot verify
   * a new key keeps signing with the one it trusts.
   */
  reload(): Promise<boolean> {
    // A load already running may have read the store before the change this call is about:
    // queue one more after it (callers arriving meanwhile share that one).
    if (this.#loading !== undefined) {
      this.#again ??= this.#loading.catch(() => false).then(() => {
        this.#again = undefined;
        return this.reload();
      });
      return this.#again;
    }
    this.#loading = (async () => {
      try {
        const next = await this.#load();
        if (next.fingerprint === this.#current.fingerprint) return false;
        this.#current = next;
        for (const listener of this.#listeners) listener(next);
        return true;
      } finally {
        this.#loading = undefined;
      }
    })();
    return this.#loading;
  }
}
