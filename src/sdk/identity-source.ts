/**
 * Where an identity comes from and how updates reach the transports. Every transport reads
 * `current()` for new handshakes and subscribes to swap what it holds (a server's context).
 */
import type { Identity } from './identity.js';

export type IdentityListener = (identity: Identity) => void;

export interface IdentitySource {
  /** The identity to use for a handshake starting now. */
  current(): Identity;
  /** Called with every accepted update (never with the initial identity); returns an unsubscribe. */
  subscribe(listener: IdentityListener): () => void;
  /** Stops watching or renewing; `current()` keeps answering with the last identity. */
  close(): void;
}

/** Reports problems a source survives (a bad file, an unreachable CA): the current identity is kept. */
export type SourceErrorHandler = (error: Error) => void;

/** The shared part of every source: holds the current identity and tells subscribers. */
export class IdentityPublisher {
  #current: Identity;
  readonly #listeners = new Set<IdentityListener>();
  readonly #onListenerError: SourceErrorHandler;

  constructor(initial: Identity, onListenerError: SourceErrorHandler) {
    this.#current = initial;
    this.#onListenerError = onListenerError;
  }

  current(): Identity {
    return this.#current;
  }

  subscribe(listener: IdentityListener): () => void {
    if (typeof listener !== 'function') throw new TypeError('listener must be a function');
    // A wrapper per subscription, so subscribing one function twice gives two independent handles.
    const entry: IdentityListener = (identity) => listener(identity);
    this.#listeners.add(entry);
    return () => {
      this.#listeners.delete(entry);
    };
  }

  /** Makes `identity` current and tells every subscriber; a throwing subscriber does not stop the others. */
  publish(identity: Identity): void {
    this.#current = identity;
    for (const listener of [...this.#listeners]) {
      try {
        listener(identity);
      } catch (error) {
        this.#onListenerError(error instanceof Error ? error : new Error(String(error)));
      }
    }
  }

  clear(): void {
    this.#listeners.clear();
  }
}
