/**
 * An identity straight from the CA, in process: enrols once with a one-time token (the key is
 * made here and never leaves), then renews over mTLS at 2/3 of each certificate's lifetime with a
 * new key each time. While the CA is unreachable it retries with backoff and keeps serving the
 * current certificate. The CA's CRLs come with it: fetched at enrolment, then followed through
 * the CA's watch stream (with a poll beside it), so a revocation reaches every transport built on
 * this source within about a second.
 */
import { CaClient, enrollWithToken, renewCredentials } from '../../client/index.js';
import { TlsmeshError } from '../../errors.js';
import { parseSpiffeId, type KeyType } from '../../pki/index.js';
import { Identity } from '../identity.js';
import { IdentityPublisher, type IdentitySource } from '../identity-source.js';
import { errorReporter, type ReportingOptions } from '../report.js';
import type { BackoffPolicy } from './renew-schedule.js';
import { startBundleFeed, startCrlFeed } from './crl-feed.js';
import { startRenewalLoop, type Timers } from './renewal-loop.js';

export interface CaIdentityOptions extends ReportingOptions {
  /** `https://host:port` of the CA. */
  url: string;
  /** The CA's roots, obtained out of band (the enrolment call trusts only these). */
  bundlePem: string;
  /** A one-time enrolment token (`tlsmesh token create`). */
  token: string;
  keyType?: KeyType;
  clock?: () => number;
  timers?: Timers;
  random?: () => number;
  backoff?: BackoffPolicy;
  /** CRL following: watch stream on (default) or poll only, and the poll interval; `false` turns CRLs off (not recommended). */
  crl?: { watch?: boolean; pollMs?: number } | false;
}

export interface CaIdentitySource extends IdentitySource {
  /** When the next renewal attempt is due (undefined once closed). */
  nextRenewalAt(): Date | undefined;
  /** Renews at once (for example to move onto a CA's newly activated intermediate sooner). */
  renewNow(): void;
}

/**
 * Enrols now (throwing the CA's coded error, e.g. ERR_TOKEN_REUSED, if it refuses), then renews in
 * the background; renewal problems go to the logger and `onError`.
 *
 * @example
 * const source = await caIdentity({ url: 'https://ca.internal:8443', bundlePem, token: process.env.TLSMESH_TOKEN! });
 */
export async function caIdentity(options: CaIdentityOptions): Promise<CaIdentitySource> {
  const keyType = options.keyType ?? 'p256';
  const enrolled = await enrollWithToken({ url: options.url, bundlePem: options.bundlePem, token: options.token, keyType });
  const names = { spiffeId: enrolled.issued.spiffeId, dnsNames: enrolled.issued.dnsNames, ipAddresses: enrolled.issued.ipAddresses };
  const report = errorReporter(options, 'CA identity');
  const trustDomain = parseSpiffeId(enrolled.issued.spiffeId).trustDomain;
  // The CA is reached with the newest bundle: after a root rotation its own certificate chains to
  // the new root. Feeds go through this forwarder so they always use the current client.
  let ca = new CaClient({ url: options.url, bundlePem: enrolled.bundlePem, trustDomain });
  const client: Pick<CaClient, 'fetchCrls' | 'watchCrls' | 'fetchBundle' | 'watchBundle'> = {
    fetchCrls: (etag) => ca.fetchCrls(etag),
    watchCrls: (on, end) => ca.watchCrls(on, end),
    fetchBundle: (etag) => ca.fetchBundle(etag),
    watchBundle: (on, end) => ca.watchBundle(on, end),
  };
  let crlPem: string | undefined;
  if (options.crl !== false) {
    try {
      const answer = await client.fetchCrls();
      if (answer !== 'not-modified') crlPem = answer.pem;
    } catch (error) {
      report(error instanceof Error ? error : new Error(String(error)));
    }
  }
  const publisher = new IdentityPublisher(new Identity({ ...enrolled, crlPem }), report);
  const feed =
    options.crl === false
      ? undefined
      : startCrlFeed({
          client,
          initialPem: crlPem,
          onCrls(pem) {
            try {
              const next = publisher.current().withCrl(pem);
              const rollback = next.crlRollbackFrom(publisher.current());
              if (rollback !== null) throw new TlsmeshError('ERR_IDENTITY_INVALID', `CRL from the CA refused: ${rollback}`);
              crlPem = pem;
              publisher.publish(next);
            } catch (error) {
              report(error instanceof Error ? error : new Error(String(error))); // an unusable CRL: keep the last good one
            }
          },
          onError: report,
          ...(options.crl?.watch !== undefined ? { watch: options.crl.watch } : {}),
          ...(options.crl?.pollMs !== undefined ? { pollMs: options.crl.pollMs } : {}),
          ...(options.timers ? { timers: options.timers } : {}),
          ...(options.random ? { random: options.random } : {}),
        });
  // The trust bundle: a CA rotation adds a root (trusted before anything it signs is used) and
  // later retires the old one.
  const bundleFeed = startBundleFeed({
    client,
    initialPem: enrolled.bundlePem,
    onDocument(pem) {
      try {
        const next = publisher.current().withBundle(pem);
        const previous = ca;
        ca = new CaClient({ url: options.url, bundlePem: pem, trustDomain });
        // The streams move to the new client before the old one goes (quietly: this is no failure).
        feed?.reconnect();
        bundleFeed.reconnect();
        previous.close();
        publisher.publish(next);
      } catch (error) {
        report(error instanceof Error ? error : new Error(String(error))); // an unusable bundle: keep the last good one
      }
    },
    onError: report,
    ...(options.crl !== false && options.crl?.pollMs !== undefined ? { pollMs: options.crl.pollMs } : {}),
    ...(options.timers ? { timers: options.timers } : {}),
    ...(options.random ? { random: options.random } : {}),
  });

  const loop = startRenewalLoop({
    initial: publisher.current(),
    async renew(current) {
      const renewed = await renewCredentials({
        url: options.url,
        // The newest bundle: after a root rotation the CA's own certificate chains to the new root.
        current: { certPem: current.certPem, keyPem: current.keyPem, bundlePem: publisher.current().bundlePem },
        ...names,
        keyType,
      });
      return new Identity(renewed);
    },
    // The renewed certificate with the newest CRL and bundle (the loop's own copy may predate them).
    onRenewed: (identity) => publisher.publish(new Identity({ certPem: identity.certPem, keyPem: identity.keyPem, bundlePem: publisher.current().bundlePem, crlPem })),
    onError: report,
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.timers ? { timers: options.timers } : {}),
    ...(options.random ? { random: options.random } : {}),
    ...(options.backoff ? { backoff: options.backoff } : {}),
  });

  return {
    current: () => publisher.current(),
    subscribe: (listener) => publisher.subscribe(listener),
    nextRenewalAt: () => loop.nextAttemptAt(),
    renewNow: () => loop.renewNow(),
    close() {
      loop.stop();
      feed?.stop();
      bundleFeed.stop();
      ca.close();
      publisher.clear();
    },
  };
}
