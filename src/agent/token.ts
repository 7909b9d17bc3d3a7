/**
 * Where the one-time enrolment token comes from: a file (`--token-file`, a Kubernetes secret, a
 * systemd credential) or the environment (TLSMESH_TOKEN) — never argv, which every user of the
 * host can read in `ps`. The source is read each time a token is needed, not once at start, so a
 * new token dropped into the file after the old certificate expired is picked up without a restart.
 *
 * The agent does not delete the file after enrolling: the token is single-use and expires within
 * an hour, so once redeemed it is worth nothing; the file is usually on a read-only mount (a
 * Secret, LoadCredential=) the agent could not delete from anyway; and the file belongs to
 * whoever provisioned it.
 */
import { readFile } from 'node:fs/promises';
import { TlsmeshError } from '../errors.js';

/** Resolves with the token, or undefined when there is none (an empty or missing file, an unset variable). */
export type TokenSource = () => Promise<string | undefined>;

/** A token file, read on each use; a missing or empty file means no token. */
export function tokenFromFile(path: string): TokenSource {
  return async () => {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new TlsmeshError('ERR_CONFIG', `cannot read the token file ${path} (${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message})`, { cause });
    }
    const token = text.trim();
    return token === '' ? undefined : token;
  };
}

/** A token given as a value (TLSMESH_TOKEN). */
export function tokenFromValue(value: string | undefined): TokenSource {
  const token = value?.trim();
  return () => Promise.resolve(token === '' ? undefined : token);
}
