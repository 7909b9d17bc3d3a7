/** Before any check: can the target be reached at all? If not, the probe has nothing to judge. */
import { connect } from 'node:net';
import { TlsmeshError } from '../errors.js';
import type { ProbeTarget } from './target.js';

/**
 * Resolves once a TCP connection to the target opens (and closes it); otherwise throws
 * ERR_CONFIG, the closest code for "the target given cannot be reached" (see the docs).
 */
export function ensureReachable(target: ProbeTarget, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: target.host, port: target.port });
    const timer = setTimeout(() => socket.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })), timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve();
    });
    socket.once('error', (error: Error & { code?: string }) => {
      clearTimeout(timer);
      reject(new TlsmeshError('ERR_CONFIG', `cannot reach ${target.label}: ${error.code ?? error.message}`, { cause: error }));
    });
  });
}
