/**
 * Authorization of gRPC callers by the SPIFFE ID in their verified client certificate, as a
 * grpc-js server interceptor: allow-lists per method, per service, and a default.
 */
import type { PeerCertificate } from 'node:tls';
import { sdkMetrics, type SdkMetrics } from '../../observe/metrics.js';
import {
  type Metadata,
  ResponderBuilder,
  ServerInterceptingCall,
  type ServerInterceptor,
  ServerListenerBuilder,
  status,
} from '@grpc/grpc-js';
import { parseSpiffeId } from '../../pki/index.js';
import { type CompiledMatcher, peerSpiffeId, spiffeMatcher, type SpiffeMatchers } from '../spiffe-matcher.js';

export interface GrpcAuthzPolicy {
  /** By method path (`/pkg.Service/Method`); the most specific rule wins over `services`. */
  readonly methods?: Readonly<Record<string, SpiffeMatchers>>;
  /** By full service name (`pkg.Service`). */
  readonly services?: Readonly<Record<string, SpiffeMatchers>>;
  /** For methods with no method or service rule. Omitted: those methods are denied to everyone. */
  readonly default?: SpiffeMatchers;
  /** Told about every denial, for logs. */
  readonly onDeny?: (denial: GrpcDenial) => void;
  /** Where denials are counted (`tlsmesh_authz_denied_total{transport="grpc"}`; default: `sdkMetrics()`). */
  readonly metrics?: SdkMetrics;
}

export interface GrpcDenial {
  method: string;
  /** The caller's SPIFFE ID, when it had a usable one. */
  spiffeId: string | undefined;
  reason: string;
  /** The caller's address as grpc-js reports it. */
  peer: string;
}

/**
 * A server interceptor that lets a call reach its handler only if the caller's SPIFFE ID is on
 * the rule for its method; otherwise the call ends with PERMISSION_DENIED and a reason (which
 * names only the caller's own ID and the method, nothing about the policy).
 *
 * @example
 * new Server({ interceptors: [grpcAuthzInterceptor({
 *   services: { 'shop.Orders': { pathPrefix: 'spiffe://example.org/ns/shop' } },
 *   methods: { '/shop.Orders/Refund': 'spiffe://example.org/ns/shop/billing' },
 * })] });
 */
export function grpcAuthzInterceptor(policy: GrpcAuthzPolicy): ServerInterceptor {
  const rules = compilePolicy(policy);
  const metrics = policy.metrics ?? sdkMetrics();
  return (method, call) => {
    const path = method.path;
    const listener = new ServerListenerBuilder()
      .withOnReceiveMetadata((metadata: Metadata, next: (metadata: Metadata) => void) => {
        const caller = callerOf(call.getAuthContext().sslPeerCertificate);
        const accepts = rules.forMethod(path);
        if ('id' in caller && accepts?.(caller.id) === true) {
          next(metadata);
          return;
        }
        const reason =
          'problem' in caller
            ? `${caller.problem}: ${path} needs a caller with a SPIFFE ID`
            : `${caller.id} is not allowed to call ${path}`;
        metrics.deniedCalls.inc({ transport: 'grpc' });
        policy.onDeny?.({ method: path, spiffeId: 'id' in caller ? caller.id : undefined, reason, peer: call.getPeer() });
        // Not calling next() keeps the handler from ever running.
        call.sendStatus({ code: status.PERMISSION_DENIED, details: reason });
      })
      .build();
    return new ServerInterceptingCall(call, new ResponderBuilder().withStart((next) => next(listener)).build());
  };
}

/**
 * The caller's SPIFFE ID, for use inside handlers (`callerSpiffeId(call)`); undefined when the
 * connection is not mutual TLS or the certificate does not carry exactly one valid SPIFFE ID.
 */
export function callerSpiffeId(call: { getAuthContext(): { sslPeerCertificate?: PeerCertificate | undefined } | null }): string | undefined {
  const caller = callerOf(call.getAuthContext()?.sslPeerCertificate);
  return 'id' in caller ? caller.id : undefined;
}

/**
 * grpc-js gives a certificate only for a connection whose chain verified; the ID in it must still
 * be the single, valid SPIFFE ID of the leaf before anyone is told "this caller is X".
 */
function callerOf(certificate: PeerCertificate | undefined): { id: string } | { problem: string } {
  if (certificate === undefined) return { problem: 'no verified client certificate' };
  const found = peerSpiffeId(certificate);
  if (!('id' in found)) return found;
  try {
    return { id: parseSpiffeId(found.id).uri };
  } catch {
    return { problem: 'the certificate names an invalid SPIFFE ID' };
  }
}

function compilePolicy(policy: GrpcAuthzPolicy): { forMethod(path: string): CompiledMatcher | undefined } {
  const methods = compileTable(policy.methods, (key) => /^\/[^/]+\/[^/]+$/.test(key), '"/package.Service/Method"');
  const services = compileTable(policy.services, (key) => /^[^/]+$/.test(key), '"package.Service" (no slashes)');
  const fallback = policy.default === undefined ? undefined : spiffeMatcher(policy.default);
  return {
    forMethod(path) {
      const service = path.slice(1, path.lastIndexOf('/'));
      return methods.get(path) ?? services.get(service) ?? fallback;
    },
  };
}

// A Map, not the object itself: a path like "/constructor" must not find Object.prototype members.
function compileTable(
  table: Readonly<Record<string, SpiffeMatchers>> | undefined,
  valid: (key: string) => boolean,
  shape: string,
): Map<string, CompiledMatcher> {
  const compiled = new Map<string, CompiledMatcher>();
  for (const [key, matchers] of Object.entries(table ?? {})) {
    if (!valid(key)) throw new TypeError(`authorization rule key "${key}" must look like ${shape}`);
    compiled.set(key, spiffeMatcher(matchers));
  }
  return compiled;
}
