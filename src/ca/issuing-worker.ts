/**
 * The thread side of IssuingPool (issuing-pool.ts): parses and verifies a CSR, applies the name
 * policy and signs the leaf, with the issuer the main thread last sent. No store, no network.
 */
import { parentPort } from 'node:worker_threads';
import { isTlsmeshError } from '../errors.js';
import { LeafIssuer, parseCsr } from '../pki/index.js';
import { grantNames } from './name-policy.js';
import type { WorkerAnswer, WorkerMessage } from './issuing-pool.js';

if (parentPort === null) throw new TypeError('issuing-worker.ts runs as a worker thread only');
const port = parentPort;
let issuer: { generation: number; leafIssuer: LeafIssuer } | undefined;

port.on('message', (message: WorkerMessage) => {
  if (message.type === 'issuer') {
    // Only the newest: a job for an older one is answered `stale` and built again by the caller.
    issuer = { generation: message.generation, leafIssuer: new LeafIssuer({ ...message.options, issuerNotAfter: new Date(message.options.issuerNotAfter) }) };
    return;
  }
  if (message.type === 'crash') process.exit(70); // tests: a worker that dies mid-job
  let answer: WorkerAnswer;
  try {
    if (issuer === undefined || issuer.generation !== message.generation) {
      answer = { id: message.id, stale: true };
    } else {
      const csr = parseCsr(Buffer.from(message.csr.buffer, message.csr.byteOffset, message.csr.byteLength));
      const names = grantNames(csr, message.allowance);
      const der = issuer.leafIssuer.issue({
        serial: Buffer.from(message.serial),
        spki: csr.spki,
        rsaKey: csr.key.algorithm === 'rsa',
        spiffeId: names.spiffeId,
        dnsNames: names.dnsNames,
        ipAddresses: names.ipAddresses,
        notBefore: new Date(message.notBefore),
        notAfter: new Date(message.notAfter),
      });
      answer = { id: message.id, der, names };
    }
  } catch (error) {
    answer = isTlsmeshError(error)
      ? { id: message.id, error: { code: error.code, message: error.message } }
      : { id: message.id, error: { code: 'ERR_INTERNAL', message: error instanceof Error ? error.message : String(error) } };
  }
  port.postMessage(answer);
});
