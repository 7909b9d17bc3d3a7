/**
 * The set of files the agent keeps for a workload, as data: its chain (leaf + intermediate), its
 * key, the trust bundle and the CRLs. Checked before every write and when the agent finds a set
 * on disk at start: the key must be the leaf's, the chain must lead to a root in the bundle, and
 * the identity must be the one configured. No I/O here.
 */
import { X509Certificate } from 'node:crypto';
import { TlsmeshError } from '../errors.js';
import { canonicalDnsName, canonicalIp, pemBlocks } from '../pki/index.js';
import { Identity } from '../sdk/identity.js';
import { validityProblem } from './schedule.js';

/** The PEM texts of one version of the agent's files. */
export interface CredentialSet {
  /** Leaf first, then the intermediate(s). */
  certPem: string;
  keyPem: string;
  /** Every root in use (the CA's trust bundle). */
  bundlePem: string;
  /** Every CRL (roots' and intermediates'), as the CA serves them; absent until first fetched. */
  crlPem?: string | undefined;
}

/** The names the leaf carries, to ask for the same ones at renewal. */
export interface LeafNames {
  spiffeId: string;
  dnsNames: string[];
  ipAddresses: string[];
}

export function leafNames(identity: Identity): LeafNames {
  const entries = (identity.leaf.subjectAltName ?? '').split(', ').filter(Boolean);
  return {
    spiffeId: identity.spiffeId,
    dnsNames: entries.filter((entry) => entry.startsWith('DNS:')).map((entry) => canonicalDnsName(entry.slice(4))),
    ipAddresses: entries.filter((entry) => entry.startsWith('IP Address:')).map((entry) => canonicalIp(entry.slice(11))),
  };
}

function certificatesIn(pem: string): X509Certificate[] {
  return pemBlocks(pem, 'CERTIFICATE').map((der) => new X509Certificate(der));
}

const signs = (parent: X509Certificate, child: X509Certificate): boolean => parent.ca && child.checkIssued(parent) && child.verify(parent.publicKey);

/**
 * Why the chain in `certPem` does not lead to a root in `bundlePem` (signatures and issuer names
 * only: dates are judged separately, with the clock-skew tolerance), or null when it does.
 */
export function chainProblem(certPem: string, bundlePem: string): string | null {
  let chain: X509Certificate[];
  let roots: X509Certificate[];
  try {
    chain = certificatesIn(certPem);
    roots = certificatesIn(bundlePem);
  } catch (error) {
    return `a certificate does not parse (${(error as Error).message})`;
  }
  if (chain.length === 0) return 'no certificate in the chain';
  if (roots.length === 0) return 'no certificate in the bundle';
  for (let i = 0; i + 1 < chain.length; i += 1) {
    if (!signs(chain[i + 1]!, chain[i]!)) return `certificate ${i + 1} of the chain did not issue certificate ${i}`;
  }
  const top = chain[chain.length - 1]!;
  if (roots.some((root) => root.raw.equals(top.raw) || signs(root, top))) return null;
  return 'the chain does not lead to any root in the bundle';
}

/**
 * Validates a set before it is written: cert, key and bundle fit together (the SDK's Identity
 * checks, which name the part at fault) and, unless `requireChain` is false, the chain leads to
 * the bundle. The CRLs are judged separately (`crlProblem`): a CRL that does not yet cover a new
 * intermediate must not stop a renewal. Returns the identity (without CRL); throws
 * ERR_IDENTITY_INVALID.
 */
export function checkSet(set: CredentialSet, options: { requireChain?: boolean } = {}): Identity {
  const identity = new Identity({ certPem: set.certPem, keyPem: set.keyPem, bundlePem: set.bundlePem });
  if (options.requireChain === false) return identity;
  const problem = chainProblem(set.certPem, set.bundlePem);
  if (problem !== null) throw new TlsmeshError('ERR_IDENTITY_INVALID', `certificate chain: ${problem}`);
  return identity;
}

/**
 * The set with these CRLs, as an Identity: built once per CRL text, it answers every question the
 * agent asks of CRLs (isRevoked, crlNextUpdate, crlRollbackFrom). Throws ERR_IDENTITY_INVALID
 * ("CRL: …") when they do not parse, verify, or cover every CA of the chain.
 */
export function crlView(set: CredentialSet, crlPem: string): Identity {
  return new Identity({ certPem: set.certPem, keyPem: set.keyPem, bundlePem: set.bundlePem, crlPem });
}

/** What the agent found in its output directory at start. */
export type Inspection =
  /** No cert.pem and no key.pem: a first start. */
  | { state: 'absent' }
  /**
   * A valid, unexpired set for the configured identity. `set` is what should be on disk: the
   * same as found, or with a broken bundle.pem / crl.pem replaced (then `repairs` says why and the
   * agent writes it at once, without a new certificate).
   */
  | { state: 'usable'; set: CredentialSet; identity: Identity; repairs: string[]; warnings: string[] }
  /** Only a new enrolment (a token) helps: `reason` says why, naming the file. */
  | { state: 'unusable'; reason: string; identity?: Identity };

/** The files as read from disk: text, or why it could not be read (missing, not a file, …). */
export type FileRead = { text: string } | { error: string };

export interface FoundFiles {
  cert: FileRead;
  key: FileRead;
  bundle: FileRead;
  crl: FileRead;
  /** Problems with the layout itself (a top-level file that is not the agent's symlink, a key readable by others). */
  layout: string[];
}

export interface InspectOptions {
  now: number;
  /** The bundle obtained out of band (the agent's --bundle), used when bundle.pem is damaged. */
  bootstrapBundlePem: string;
  /** The identity the set must have (configured, or named by the token at hand). */
  expectedSpiffeId?: string | undefined;
  clockSkewToleranceMs: number;
}

const textOf = (read: FileRead): string | undefined => ('text' in read ? read.text : undefined);

/** Decides what to do with what is on disk (see `Inspection`). Pure: the reading is the caller's. */
export function inspectFiles(found: FoundFiles, options: InspectOptions): Inspection {
  const certPem = textOf(found.cert);
  const keyPem = textOf(found.key);
  if (certPem === undefined && keyPem === undefined && 'error' in found.cert && 'error' in found.key && found.cert.error === 'missing' && found.key.error === 'missing') {
    return { state: 'absent' };
  }
  if (certPem === undefined) return { state: 'unusable', reason: `cert.pem: ${(found.cert as { error: string }).error}` };
  if (keyPem === undefined) return { state: 'unusable', reason: `key.pem: ${(found.key as { error: string }).error}` };

  const diskBundle = textOf(found.bundle);
  const repairs: string[] = [...found.layout];
  const warnings: string[] = [];
  let bundlePem = diskBundle;
  const bundleProblem = diskBundle === undefined ? (found.bundle as { error: string }).error : bundleDamage(certPem, keyPem, diskBundle);
  if (bundleProblem !== null) {
    bundlePem = options.bootstrapBundlePem;
    repairs.push(`bundle.pem: ${bundleProblem}; replaced by the configured bundle`);
  }

  let identity: Identity;
  try {
    identity = checkSet({ certPem, keyPem, bundlePem: bundlePem! });
  } catch (error) {
    const message = (error as Error).message;
    const file = /^private key/.test(message) ? 'key.pem' : 'cert.pem';
    return { state: 'unusable', reason: `${file}: ${message}` };
  }
  const set: CredentialSet = { certPem, keyPem, bundlePem: bundlePem! };
  if (options.expectedSpiffeId !== undefined && identity.spiffeId !== options.expectedSpiffeId) {
    return { state: 'unusable', reason: `cert.pem is for ${identity.spiffeId}, not ${options.expectedSpiffeId}`, identity };
  }
  const validity = validityProblem(options.now, identity, options.clockSkewToleranceMs);
  if (validity === 'expired') return { state: 'unusable', reason: `cert.pem expired at ${identity.notAfter.toISOString()}`, identity };
  if (validity === 'not-yet-valid') {
    warnings.push(`cert.pem is not valid before ${identity.notBefore.toISOString()}: this host's clock is behind by more than the tolerance`);
  }

  const crlPem = textOf(found.crl);
  if (crlPem !== undefined) {
    let view: Identity | undefined;
    try {
      view = crlView(set, crlPem);
    } catch (error) {
      repairs.push(`crl.pem: ${(error as Error).message}; dropped until the CA's CRLs are fetched`);
    }
    if (view?.isRevoked(identity.serial)) return { state: 'unusable', reason: `cert.pem (serial ${identity.serial}) is revoked (crl.pem lists it)`, identity };
    if (view !== undefined) set.crlPem = crlPem;
  } else if ((found.crl as { error: string }).error !== 'missing') {
    repairs.push(`crl.pem: ${(found.crl as { error: string }).error}; dropped until the CA's CRLs are fetched`);
  }
  return { state: 'usable', set, identity, repairs, warnings };
}

/** Why bundle.pem cannot stay (does not parse, or does not anchor the chain), or null. */
function bundleDamage(certPem: string, keyPem: string, bundlePem: string): string | null {
  if ((bundlePem.match(/-----BEGIN /g) ?? []).length !== (bundlePem.match(/-----END /g) ?? []).length) return 'a PEM block is cut short';
  try {
    if (certificatesIn(bundlePem).length === 0) return 'no CERTIFICATE PEM block';
  } catch (error) {
    return `a certificate does not parse (${(error as Error).message})`;
  }
  // Only the bundle's part: a bad certificate or key is judged (and named) by checkSet.
  try {
    new Identity({ certPem, keyPem, bundlePem });
  } catch (error) {
    if (/^trust bundle/.test((error as Error).message)) return (error as Error).message;
    return null;
  }
  return chainProblem(certPem, bundlePem);
}
