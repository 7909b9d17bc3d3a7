/**
 * Staged CA rotation with live workloads: two SDK services (on `caIdentity`, following the CA's
 * bundle and CRL streams) call each other over new mTLS handshakes the whole time while the CA
 * prepares a new root and intermediate, activates them, the services renew onto them, and the old
 * ones are retired. Zero failed handshakes is the requirement; the count is asserted.
 */
import { X509Certificate } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { updateDataDirTrust } from '../../src/ca/data-dir.js';
import { activateRotation, prepareRotation, retireRotation, rotationStatus } from '../../src/ca/rotation.js';
import { pemBlocks } from '../../src/pki/index.js';
import type { CaIdentitySource } from '../../src/sdk/sources/ca.js';
import { createMtlsHttpsServer, MtlsHttpsAgent } from '../../src/sdk/index.js';
import { expectCodeAsync } from '../pki/support.js';
import { caWorkload, PASSPHRASE, startTestCa, type TestCa } from '../helpers/ca.js';
import { closeServer, listen } from '../sdk/support.js';

let ca: TestCa;
const sources: CaIdentitySource[] = [];
/** Problems the workloads' identity sources reported (a bundle or CRL they could not take, a failed renewal). */
const sourceErrors: string[] = [];
beforeAll(async () => {
  ca = await startTestCa();
});
afterAll(async () => {
  for (const source of sources) source.close();
  await ca?.close();
});

async function workload(path: string): Promise<CaIdentitySource> {
  const source = await caWorkload(ca, path, (error) => sourceErrors.push(`${path}: ${error.message}`));
  sources.push(source);
  return source;
}

async function until(condition: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const issuerOf = (certPem: string): string => new X509Certificate(pemBlocks(certPem, 'CERTIFICATE')[1]!).subject;
const rootsIn = (bundlePem: string): number => pemBlocks(bundlePem, 'CERTIFICATE').length;

describe('staged CA rotation', () => {
  it('new root and intermediate: prepare → activate → renew → retire with zero failed handshakes', async () => {
    const serverSource = await workload('rotation/server');
    const clientSource = await workload('rotation/client');
    const server = createMtlsHttpsServer(serverSource, {}, (_req, res) => res.end('ok'));
    const url = await listen(server);
    // keepAlive off: every call is a new TLS handshake (full or resumed), which is what rotation can break.
    const agent = new MtlsHttpsAgent(clientSource, 'spiffe://example.org/rotation/server', { keepAlive: false });
    const outcome = { ok: 0, failed: [] as string[] };
    let running = true;
    const traffic = (async () => {
      while (running) {
        const result = await new Promise<string>((resolve) => {
          const req = httpsRequest(url, { agent }, (res) => {
            res.resume();
            res.on('end', () => resolve(String(res.statusCode)));
          });
          req.on('error', (error: Error & { code?: string }) => resolve(error.code ?? error.message));
          req.end();
        });
        if (result === '200') outcome.ok += 1;
        else outcome.failed.push(result);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    const store = ca.running.authority.store;
    const oldIssuer = issuerOf(serverSource.current().certPem);
    try {
      await until(() => outcome.ok >= 5, 'traffic before the rotation');

      // 1. prepare: a new root (in the bundle at once) and intermediate (its CRL published at once).
      const prepared = await prepareRotation({ store, passphrase: PASSPHRASE, newRoot: true });
      await updateDataDirTrust(ca.dataDir, store, { add: [prepared.root!.fingerprint] });
      await ca.running.keys.reload();
      await ca.running.crls.refresh();
      for (const source of [serverSource, clientSource]) {
        await until(() => rootsIn(source.current().bundlePem) === 2 && source.current().crlList.length === 4, 'both workloads trust the new root and hold its CRLs');
      }
      const afterPrepare = outcome.ok;
      await until(() => outcome.ok >= afterPrepare + 5, 'traffic after prepare');

      // 2. activate, and the workloads renew onto the new intermediate (they would at 2/3 of their lifetime).
      await activateRotation({ store });
      await ca.running.keys.reload();
      expect(ca.running.authority.keyring.issuer.record.id).toBe(prepared.intermediateId);
      // The CA's own TLS certificate follows the keys (workloads reach the CA with the new bundle).
      let caIssuer = '';
      const label = prepared.intermediateId.slice(-8);
      const deadline = Date.now() + 10_000;
      while (!caIssuer.includes(label) && Date.now() < deadline) {
        caIssuer = await new Promise<string>((resolve) => {
          const socket = tlsConnect({ host: '127.0.0.1', port: ca.running.port, rejectUnauthorized: false }, () => {
            resolve(String(socket.getPeerCertificate().issuer.CN ?? ''));
            socket.destroy();
          });
          socket.on('error', () => resolve(''));
        });
      }
      expect(caIssuer).toContain(label);
      for (const source of [serverSource, clientSource]) source.renewNow();
      for (const source of [serverSource, clientSource]) await until(() => issuerOf(source.current().certPem) !== oldIssuer, 'renewed onto the new intermediate');
      const afterActivate = outcome.ok;
      await until(() => outcome.ok >= afterActivate + 5, 'traffic after activate');

      // 3. retire: the old certificates are not revoked and still valid, so retiring needs --force
      //    here (in use it would wait for them to expire: 24 h).
      await expectCodeAsync(retireRotation({ store }), 'ERR_ROTATION_IN_USE');
      const retired = await retireRotation({ store, force: true });
      expect(retired.retiredRootFingerprints).toHaveLength(1);
      await updateDataDirTrust(ca.dataDir, store, { remove: retired.retiredRootFingerprints });
      await ca.running.keys.reload();
      await ca.running.crls.refresh();
      for (const source of [serverSource, clientSource]) await until(() => rootsIn(source.current().bundlePem) === 1, 'the old root left the bundle');
      const afterRetire = outcome.ok;
      await until(() => outcome.ok >= afterRetire + 5, 'traffic after retire');
    } finally {
      running = false;
      await traffic;
      agent.destroy();
      await closeServer(server);
    }
    expect(outcome.failed).toEqual([]);
    expect(outcome.ok).toBeGreaterThanOrEqual(20);
    expect(sourceErrors).toEqual([]);
    const status = await rotationStatus({ store });
    expect(status.keys.filter((key) => key.state === 'active').map((key) => key.kind).sort()).toEqual(['intermediate', 'root']);
    expect(status.next).toMatch(/nothing in progress/);
  });

  it('steps out of order are refused with ERR_ROTATION_STATE; a second prepare waits for activate', async () => {
    const store = ca.running.authority.store;
    await expectCodeAsync(activateRotation({ store }), 'ERR_ROTATION_STATE');
    await prepareRotation({ store, passphrase: PASSPHRASE });
    await expectCodeAsync(prepareRotation({ store, passphrase: PASSPHRASE }), 'ERR_ROTATION_STATE');
    expect((await rotationStatus({ store })).next).toMatch(/^activate/);
    await activateRotation({ store });
    await ca.running.keys.reload();
    const status = await rotationStatus({ store });
    expect(status.next).toMatch(/^(wait|retire)/);
  });
});
