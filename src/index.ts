/**
 * tlsmesh: mutual TLS between services. The package's parts are subpaths — `tlsmesh/pki`,
 * `tlsmesh/ca`, `tlsmesh/store`, `tlsmesh/client`; this entry holds what every part shares.
 */
export { ERROR_REGISTRY, isTlsmeshError, TlsmeshError } from './errors.js';
export type { ErrorCode } from './errors.js';
export { createLogger, REDACTED_PATHS } from './observe/logger.js';
export type { Logger, LoggerOptions } from './observe/logger.js';
export { AgentMetrics, CaMetrics, Registry, SdkMetrics, sdkMetrics, TlsmeshMetrics } from './observe/metrics.js';
export type { CertificateState, CrlState, MetricSources, MetricsComponent, OperationResult, Transport } from './observe/metrics.js';
export type { RefusalReason } from './observe/tls-refusal.js';
