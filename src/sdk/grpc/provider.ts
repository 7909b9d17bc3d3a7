/**
 * A grpc-js `CertificateProvider` fed by a tlsmesh identity source, so grpc-js servers and
 * channels pick up a rotated leaf or trust bundle on their next handshake without a restart.
 */
import type { experimental } from '@grpc/grpc-js';

/**
 * What this module needs from an identity source: the SDK's `IdentitySource` (./identity-source.ts)
 * fits it as is, and so does any object with these two methods (a test fake, a custom source).
 * Kept structural so the gRPC transport does not depend on how sources are built.
 */
export interface GrpcIdentitySource {
  current(): GrpcIdentity;
  /** The listener may be given the new identity; it is not needed, `current()` is read instead. */
  subscribe(listener: () => void): () => void;
}

export interface GrpcIdentity {
  /** Leaf first, then intermediates. */
  certPem: string;
  keyPem: string;
  /** Trust anchors for the peer's chain. */
  bundlePem: string;
  spiffeId: string;
  /** Is a peer serial in the identity's CRL? (The SDK's Identity has it; without it nothing counts as revoked.) */
  isRevoked?(serial: string): boolean;
  /** Entries in the CRL; 0 or absent: nothing to check. */
  readonly revokedCount?: number;
}

type CaListener = experimental.CaCertificateUpdateListener;
type IdentityListener = experimental.IdentityCertificateUpdateListener;

/**
 * Serves both roles (CA and identity) from one source. It subscribes to the source while grpc-js
 * holds a listener (a bound server or a channel with a connection) and lets go when the last one is
 * removed, like grpc-js's own `FileWatcherCertificateProvider`.
 */
export class IdentityCertificateProvider implements experimental.CertificateProvider {
  readonly #source: GrpcIdentitySource;
  readonly #caListeners = new Set<CaListener>();
  readonly #identityListeners = new Set<IdentityListener>();
  #unsubscribe: (() => void) | undefined;
  #latest: GrpcIdentity | undefined;

  readonly #onError: (error: unknown) => void;

  /** `onError` hears about a source that failed to give an identity (the previous one is kept). */
  constructor(source: GrpcIdentitySource, options: { onError?: (error: unknown) => void } = {}) {
    this.#source = source;
    this.#onError = options.onError ?? (() => {});
  }

  addCaCertificateListener(listener: CaListener): void {
    this.#caListeners.add(listener);
    this.#start();
    // Delivered on the next tick, never synchronously: grpc-js's server credentials subscribe
    // here *before* registering the server's own watcher, so a synchronous first update would be
    // lost and the server would drop every connection until the next rotation.
    process.nextTick(() => {
      if (this.#caListeners.has(listener) && this.#latest !== undefined) listener(caUpdate(this.#latest));
    });
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.#caListeners.delete(listener);
    this.#maybeStop();
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.#identityListeners.add(listener);
    this.#start();
    process.nextTick(() => {
      if (this.#identityListeners.has(listener) && this.#latest !== undefined) listener(identityUpdate(this.#latest));
    });
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.#identityListeners.delete(listener);
    this.#maybeStop();
  }

  #start(): void {
    if (this.#unsubscribe !== undefined) return;
    this.#unsubscribe = this.#source.subscribe(() => this.#update());
    this.#latest = this.#read() ?? this.#latest; // delivered by the add*Listener ticks
  }

  #maybeStop(): void {
    if (this.#caListeners.size > 0 || this.#identityListeners.size > 0) return;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  #update(): void {
    const previous = this.#latest;
    const next = this.#read();
    if (next === undefined) return;
    this.#latest = next;
    // Only what changed is pushed: each push makes a grpc-js server call setSecureContext, which
    // also starts a new TLS session-ticket epoch.
    if (next.bundlePem !== previous?.bundlePem) for (const listener of this.#caListeners) listener(caUpdate(next));
    if (next.certPem !== previous?.certPem || next.keyPem !== previous.keyPem) {
      for (const listener of this.#identityListeners) listener(identityUpdate(next));
    }
  }

  /**
   * A source that cannot give an identity right now (not enrolled yet, a file half written) must
   * not take the working one away: grpc-js treats a `null` update as "no credentials" and drops
   * every new connection, so the previous identity stays until a readable one arrives.
   */
  #read(): GrpcIdentity | undefined {
    try {
      return this.#source.current();
    } catch (error) {
      this.#onError(error);
      return undefined;
    }
  }
}

function caUpdate(identity: GrpcIdentity): experimental.CaCertificateUpdate {
  return { caCertificate: Buffer.from(identity.bundlePem) };
}

function identityUpdate(identity: GrpcIdentity): experimental.IdentityCertificateUpdate {
  return { certificate: Buffer.from(identity.certPem), privateKey: Buffer.from(identity.keyPem) };
}
