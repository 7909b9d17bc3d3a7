/**
 * tlsmesh/ca: the certificate authority — authority logic, configuration, data directory, server.
 *
 * @example
 * const config = resolveCaConfig(dataDir, await readCaFile(dataDir));
 * const ca = await startCa({ config, passphrase: process.env.TLSMESH_CA_PASSPHRASE! });
 */
export { alertsFileSchema, resolveAlertsConfig } from './alerts/config.js';
export type { AlertsConfig, AlertsFileConfig, WebhookConfig } from './alerts/config.js';
export { DEFAULT_ALERT_POLICY, evaluateAlerts } from './alerts/evaluate.js';
export type { Alert, AlertName, AlertPolicy, AlertSignals, CertificateSignal, CounterSample, CounterSignals, CrlSignal, Severity } from './alerts/evaluate.js';
export { AlertLoop } from './alerts/loop.js';
export type { AlertLoopOptions, AlertSink, IntervalTimer } from './alerts/loop.js';
export { WebhookNotifier } from './alerts/notifier.js';
export type { Backoff, WebhookNotifierOptions, WebhookTarget } from './alerts/notifier.js';
export { ALERT_METRICS, createSignalSource } from './alerts/signals.js';
export type { SignalSource, SignalSourceOptions } from './alerts/signals.js';
export { alertFingerprint } from './alerts/webhook.js';
export type { WebhookAlert, WebhookMessage } from './alerts/webhook.js';
export { Authority, DEFAULT_LIFETIMES } from './authority.js';
export type { AuthorityOptions, Caller, IssuedCertificate, Lifetimes, TokenRequest } from './authority.js';
export { CrlPublisher, DEFAULT_CRL_POLICY } from './crl-publisher.js';
export type { CrlPolicy, CrlPublisherOptions, PublishedCrl, PublishedCrls } from './crl-publisher.js';
export { caFileSchema, CONFIG_FILE, DEFAULT_LISTEN, parseListen, readCaFile, readPassphrase, resolveCaConfig } from './config.js';
export type { CaConfig, CaConfigOverrides, CaFileConfig } from './config.js';
export { caPaths, initDataDir } from './data-dir.js';
export type { InitDataDirOptions, InitDataDirResult } from './data-dir.js';
export { formatDuration, parseDuration } from './duration.js';
export { adminSpiffeId, caSpiffeId, enrollAudience, RESERVED_PATH_PREFIX } from './identities.js';
export { DEFAULT_CA_LIFETIMES, initCa } from './init.js';
export type { CaLifetimes, InitCaOptions, InitCaResult } from './init.js';
export { Keyring } from './keyring.js';
export { grantNames } from './name-policy.js';
export type { GrantedNames, NameAllowance } from './name-policy.js';
export { DEFAULT_OCSP_POLICY, OcspService } from './ocsp-service.js';
export type { OcspPolicy } from './ocsp-service.js';
export { startCa } from './server.js';
export type { RunningCa, StartCaOptions } from './server.js';
export { DEFAULT_TOKEN_TTL_SECONDS, MAX_TOKEN_TTL_SECONDS, mintToken, verifyToken } from './tokens.js';
export type { TokenClaims } from './tokens.js';
