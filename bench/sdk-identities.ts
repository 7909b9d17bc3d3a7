/**
 * Identities for the SDK benchmark from a real tlsmesh CA: bench/ca-process.ts starts one (SQLite
 * in a temp dir), the admin API mints a one-time token per workload, each workload enrols with its
 * own fresh P-256 key, and the CA is stopped before anything is timed.
 */
import { adminClient, enrolmentClient } from './issuance-load.js';
import { startCaProcess } from './ca-process.js';
import { createCsr, generateKeyPair } from '../src/pki/index.js';
import type { BenchIdentity } from './sdk-shared.js';

export interface BenchIdentities {
  server: BenchIdentity;
  client: BenchIdentity;
}

export async function issueBenchIdentities(): Promise<BenchIdentities> {
  const ca = await startCaProcess();
  try {
    const admin = await adminClient(ca);
    const anonymous = await enrolmentClient(ca, 1);
    try {
      const enrol = async (path: string): Promise<BenchIdentity> => {
        const spiffeId = `spiffe://${ca.trustDomain}${path}`;
        const { token } = await admin.createToken({ spiffeId });
        const { privateKey } = generateKeyPair('p256');
        const issued = await anonymous.enroll(token, await createCsr({ privateKey, spiffeId }));
        return { spiffeId, certPem: issued.certificatePem, keyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, bundlePem: issued.bundlePem };
      };
      return { server: await enrol('/bench/server'), client: await enrol('/bench/client') };
    } finally {
      admin.close();
      anonymous.close();
    }
  } finally {
    await ca.stop();
  }
}
