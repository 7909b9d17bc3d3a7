/**
 * The agent's exit codes (for `--once`, and for a daemon that cannot start), so that an init
 * container, a systemd unit or a script can tell "get a new token" from "try again later".
 */
import { isTlsmeshError, type ErrorCode } from '../errors.js';

export const AGENT_EXIT_CODES = {
  /** A valid, unexpired set is on disk. */
  ok: 0,
  /** Anything else: the output directory cannot be written, an unexpected error. */
  error: 1,
  /** A flag, a config file or an environment variable is wrong (ERR_CONFIG). */
  usage: 2,
  /**
   * Only a new enrolment token helps: none was given and no usable set is on disk, the CA refused
   * the token (expired, already used, unknown, malformed), or the certificate expired or was
   * revoked and could not be renewed.
   */
  needsToken: 3,
  /** `--once` only: no valid set on disk and the CA could not be reached before the deadline. */
  caUnreachable: 4,
} as const;

const NEEDS_TOKEN: readonly ErrorCode[] = ['ERR_CERT_REVOKED', 'ERR_CERT_UNKNOWN', 'ERR_CLIENT_CERT_REJECTED', 'ERR_CLIENT_CERT_REQUIRED'];
const UNREACHABLE: readonly ErrorCode[] = ['ERR_CA_UNREACHABLE', 'ERR_STORE'];

/** The exit code for the error that ended the agent. */
export function exitCodeFor(error: unknown): number {
  if (!isTlsmeshError(error)) return AGENT_EXIT_CODES.error;
  if (error.code.startsWith('ERR_TOKEN_') || NEEDS_TOKEN.includes(error.code)) return AGENT_EXIT_CODES.needsToken;
  if (error.code === 'ERR_CONFIG') return AGENT_EXIT_CODES.usage;
  if (UNREACHABLE.includes(error.code)) return AGENT_EXIT_CODES.caUnreachable;
  return AGENT_EXIT_CODES.error;
}
