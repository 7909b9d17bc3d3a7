/** An identity from PEM the caller already holds; rotated by hand with `update()`. */
import { Identity, type IdentityMaterial } from '../identity.js';
import { IdentityPublisher, type IdentitySource } from '../identity-source.js';
import { errorReporter, type ReportingOptions } from '../report.js';

export interface StaticIdentitySource extends IdentitySource {
  /** Validates and publishes new material; throws ERR_IDENTITY_INVALID and keeps the current identity if it is bad. */
  update(material: IdentityMaterial | Identity): Identity;
}

/**
 * An identity source holding the given material until `update()` replaces it.
 *
 * @example
 * const source = staticIdentity(await enrollWithToken({ url, bundlePem, token }));
 * source.update(await renewCredentials({ ... })); // servers swap, clients use it for new connections
 */
export function staticIdentity(material: IdentityMaterial | Identity, options: ReportingOptions = {}): StaticIdentitySource {
  const publisher = new IdentityPublisher(toIdentity(material), errorReporter(options, 'static identity'));
  return {
    current: () => publisher.current(),
    subscribe: (listener) => publisher.subscribe(listener),
    update(next) {
      const identity = toIdentity(next);
      publisher.publish(identity);
      return identity;
    },
    close: () => publisher.clear(),
  };
}

const toIdentity = (material: IdentityMaterial | Identity): Identity => (material instanceof Identity ? material : new Identity(material));
