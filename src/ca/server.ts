/**
 * `tlsmesh ca serve`: opens the store and the keys, issues the CA's own TLS certificate
 * (spiffe://<td>/tlsmesh/ca plus the configured DNS/IP names), and serves the API over HTTPS.
 * The server certificate is re-issued when 2/3 of its lifetime has passed and swapped in live.
 */
import type { ServerOptions as HttpsServerOptions, Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { createCsr, generateKeyPair } from '../pki/index.js';
import { createLogger, type Logger } from '../observe/logger.js';
import { openStore, type Store } from '../store/index.js';
import { Authority, type IssuedCertificate } from './authority.js';
import type { CaConfig } from './config.js';
import { CrlPublisher } from './crl-publisher.js';
import { buildCaApp } from './http/app.js';
import { OcspService } from './ocsp-service.js';
import { caSpiffeId } from './identities.js';
import { readCaFile } from './config.js';
import { Keyring } from './keyring.js';
import { LiveKeyring } from './live-keyring.js';
import { KEYS_EPOCH } from './rotation.js';

export interface StartCaOptions {
  config: Readonly<CaConfig>;
  passphrase: string;
  logger?: Logger;
  clock?: () => Date;
  /** An already open store (tests); otherwise `config.store` is opened, migrated and closed with the server. */
  store?: Store;
}

export interface RunningCa {
  /** `https://host:port` actually listened on (port 0 in the config picks a free one). */
  url: string;
  port: number;
  authority: Authority;
  /** The CRLs being served; `crls.refresh()` publishes at once. */
  crls: CrlPublisher;
  /** The CA's keys; `keys.reload()` applies a rotation step at once (otherwise within the poll interval). */
  keys: LiveKeyring;
  app: FastifyInstance;
  /** Re-issues the CA's TLS certificate now and swaps it in for new handshakes. */
  refreshServerCertificate(): Promise<void>;
  close(): Promise<void>;
}

export async function startCa(options: StartCaOptions): Promise<RunningCa> {
  const { config } = options;
  const logger = options.logger ?? createLogger({ component: 'ca' });
  const ownsStore = options.store === undefined;
  const store = options.store ?? (await openStore(config.store));
  const stopOnFailure: (() => void)[] = [];
  try {
    if (ownsStore) await store.migrate();
    if (config.rootFingerprints === null) {
      logger.warn('ca.yaml pins no rootFingerprints: anyone who can write to the store could add a root this CA would trust');
    }
    // Kept for the life of the process: a rotation step run elsewhere (`tlsmesh ca rotate`) is
    // applied by loading the keys again, which needs the passphrase (SECURITY.md). The pins are
    // read from ca.yaml each time, because `rotate prepare --root` adds the new root's there.
    const passphrase = options.passphrase;
    const loadKeys = async (): Promise<Keyring> => {
      const pins = await readCaFile(config.dataDir).then(
        (file) => file.rootFingerprints ?? null,
        () => config.rootFingerprints,
      );
      return Keyring.load(store, passphrase, { crlUrl: `${config.publicUrl}/v1/crl`, ocspUrl: `${config.publicUrl}/v1/ocsp`, pinnedRoots: pins ?? undefined });
    };
    const keys = new LiveKeyring(await loadKeys(), loadKeys);
    const keyring = keys;
    const current = (): Keyring => keys.current();
    const clock = options.clock ?? (() => new Date());
    const publisher = new CrlPublisher({
      store,
      keyring,
      clock,
      logger,
      policy: { validityMs: config.crl.validitySeconds * 1000, refreshBeforeMs: config.crl.refreshBeforeSeconds * 1000, pollMs: config.crl.pollSeconds * 1000 },
    });
    await publisher.start();
    stopOnFailure.push(() => publisher.stop());
    const authority = new Authority({
      store,
      keyring,
      lifetimes: { leafSeconds: config.leafSeconds, adminSeconds: config.adminSeconds },
      clock,
      // A revoke call returns once the new CRL is published; if publishing fails, the poll
      // retries every second, and the revocation itself is already stored either way.
      afterRevoke: () => publisher.refresh().catch((error: unknown) => logger.error({ err: error, event: 'crl.publish_failed' }, 'could not publish the CRL after a revocation; retrying')),
    });
    const ocsp = new OcspService({ store, keyring, clock, logger, publisher });
    await ocsp.start();
    stopOnFailure.push(() => ocsp.stop());

    let serverKeyPem = '';
    let serverCertificate: IssuedCertificate;
    const issueServerCertificate = async (): Promise<void> => {
      const key = generateKeyPair('p256');
      const id = caSpiffeId(current().trustDomain);
      const csr = await createCsr({ privateKey: key.privateKey, spiffeId: id, dnsNames: config.serverDnsNames, ipAddresses: config.serverIpAddresses });
      serverCertificate = await authority.issueDirect(csr, { spiffeId: id, dnsNames: config.serverDnsNames, ipAddresses: config.serverIpAddresses }, 'ca-server', 'serve');
      serverKeyPem = key.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
    };
    await issueServerCertificate();

    // Every option, every time: setSecureContext() resets whatever is not passed (DESIGN.md traps).
    const tlsOptions = (): HttpsServerOptions => ({
      key: serverKeyPem,
      cert: serverCertificate.certificatePem,
      ca: [current().bundlePem, current().chainPem(current().issuer.certDer)],
      // The handshake asks for a client certificate but completes without one, because enrolment
      // and the bundle serve callers that have none yet. Routes that need one check
      // `socket.authorized` themselves (http/peer.ts requirePeerCertificate) and refuse otherwise.
      requestCert: true,
      // tlsmesh-audit-ignore node/request-cert-unverified: enrolment and the bundle serve callers without a certificate; routes that need one check socket.authorized (http/peer.ts)
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
    });

    const app = buildCaApp({ authority, crls: publisher, ocsp, keys, logger, https: tlsOptions(), bodyLimit: config.bodyLimitBytes, ...(config.adminIds ? { adminIds: config.adminIds } : {}) });
    await app.listen({ host: config.listen.host, port: config.listen.port });
    const address = app.server.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    const url = `https://${host}:${address.port}`;

    const refreshServerCertificate = async (): Promise<void> => {
      await issueServerCertificate();
      (app.server as HttpsServer).setSecureContext(tlsOptions());
      logger.info({ serial: serverCertificate.serial, notAfter: serverCertificate.notAfter.toISOString() }, 'CA server certificate renewed');
    };
    const renewEveryMs = Math.floor((config.leafSeconds * 1000 * 2) / 3);
    const timer = setInterval(() => {
      refreshServerCertificate().catch((error: unknown) => logger.error({ err: error }, 'could not renew the CA server certificate; will retry'));
    }, Math.min(renewEveryMs, 2 ** 31 - 1));
    timer.unref();

    // Rotation steps made by `tlsmesh ca rotate` (in any process) bump the store's keys epoch;
    // every CA process polls it with the CRL poll and loads its keys again.
    let keysEpoch = await store.getMeta(KEYS_EPOCH);
    let checkingKeys = false;
    const keysTimer = setInterval(() => {
      if (checkingKeys) return;
      checkingKeys = true;
      void (async () => {
        const epoch = await store.getMeta(KEYS_EPOCH);
        if (epoch === keysEpoch) return;
        await keys.reload();
        keysEpoch = epoch;
      })()
        .catch((error: unknown) => logger.error({ err: error, event: 'ca.keys_reload_failed' }, 'could not load the rotated CA keys; still using the previous ones'))
        .finally(() => (checkingKeys = false));
    }, config.crl.pollSeconds * 1000);
    keysTimer.unref();
    // However the keys were reloaded (this poll, or `running.keys.reload()`): the CA's own TLS
    // certificate comes from the active intermediate, and the CRLs follow the keys.
    keys.onChange(() => {
      logger.info({ event: 'ca.keys_reloaded', intermediate: current().issuer.record.id, roots: current().rootAuthorities.map((root) => root.record.id) }, 'CA keys changed: now signing with the active intermediate');
      refreshServerCertificate()
        .then(() => publisher.refresh())
        .catch((error: unknown) => logger.error({ err: error, event: 'ca.keys_apply_failed' }, 'could not apply the new CA keys everywhere; retrying with the next poll'));
    });

    logger.info({ url, trustDomain: current().trustDomain, store: store.backend, intermediate: current().issuer.record.id }, 'CA serving');
    return {
      url,
      port: address.port,
      authority,
      app,
      refreshServerCertificate,
      crls: publisher,
      keys,
      close: async () => {
        clearInterval(timer);
        clearInterval(keysTimer);
        publisher.stop();
        ocsp.stop();
        await app.close();
        if (ownsStore) await store.close();
      },
    };
  } catch (error) {
    for (const stop of stopOnFailure) stop();
    if (ownsStore) await store.close();
    throw error;
  }
}
