/**
 * tlsmesh/sdk/grpc: mutual TLS for @grpc/grpc-js servers and channels, with live rotation and
 * authorization by SPIFFE ID. A separate entry so that `tlsmesh/sdk` works without grpc-js
 * installed (it is an optional peer dependency: credentials must come from your grpc-js).
 *
 * @example
 * const source = await fileIdentity({ dir: '/var/run/tlsmesh' });
 * const server = new grpc.Server({ ...grpcServerOptions(source), interceptors: [grpcAuthzInterceptor({ default: { trustDomain: 'example.org' } })] });
 * server.bindAsync('0.0.0.0:50051', grpcServerCredentials(source), () => {});
 * const client = new HealthClient('payments.internal:50051', grpcChannelCredentials(source, { expect: 'spiffe://example.org/payments' }), grpcChannelOptions());
 */
export { callerSpiffeId, grpcAuthzInterceptor } from './authz.js';
export type { GrpcAuthzPolicy, GrpcDenial } from './authz.js';
export { grpcChannelCredentials, grpcChannelOptions, grpcServerCredentials, grpcServerOptions } from './credentials.js';
export type { GrpcChannelCredentialsOptions, GrpcCredentialsOptions } from './credentials.js';
export { IdentityCertificateProvider } from './provider.js';
export { grpcRevocationInterceptor } from './revocation.js';
export type { GrpcRevocationOptions } from './revocation.js';
export type { GrpcIdentity, GrpcIdentitySource } from './provider.js';
