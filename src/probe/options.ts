/** What a probe is given: the target, the material, what to expect and how to talk. */
import type { CheckedMaterial } from './material.js';
import type { ExpectedId } from './server-chain.js';
import type { ProbeTarget } from './target.js';

/** What the prober says after the handshake. */
export type ApplicationRequest = { kind: 'tls' } | { kind: 'http'; path: string } | { kind: 'grpc' };

export interface ProbeOptions {
  target: ProbeTarget;
  material: CheckedMaterial;
  /** The server must name one of these (exact IDs, or trust domains; see expectedId). */
  expect: readonly ExpectedId[];
  application: ApplicationRequest;
  /** Per connection: TCP + handshake, and waiting for an answer to a request. Default 5 s. */
  timeoutMs?: number;
  /** Plain TLS: how long a connection must stay open without a refusal to count as accepted. Default 2 s. */
  settleMs?: number;
  /** Current time, for minted certificates and validity checks. */
  now?: () => Date;
}

export const DEFAULT_TIMEOUT_MS = 5000;
export const DEFAULT_SETTLE_MS = 2000;

