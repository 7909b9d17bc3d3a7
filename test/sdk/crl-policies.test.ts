/**
 * CRL policies with hand-built CRLs (signed by the test CA's own keys):
 * - a CRL past its nextUpdate with nothing newer: OpenSSL alone would refuse every handshake
 *   (CRL_HAS_EXPIRED). `keep-last-good` (the default) keeps serving, still refuses what the stale
 *   CRL lists, and raises the alarm; `fail-closed` refuses everyone. Both ends: servers and clients;
 * - permissive mode: a revoked certificate is refused, not let through as "no mTLS yet".
 */
import { request as httpsRequest } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CrlIssuer, crlToPem } from '../../src/pki/crl.js';
import { certificatesToPem, createIntermediateCertificate, createRootCertificate, generateKeyPair, LeafIssuer, randomSerial, spkiOf } from '../../src/pki/index.js';
import { createMtlsHttpsServer, createPermissiveHttpsServer, MtlsHttpsAgent, staticIdentity, type Refusal, type StaleCrlPolicy } from '../../src/sdk/index.js';
import { Identity, type IdentityMaterial } from '../../src/sdk/identity.js';
import { IdentityPublisher, type IdentitySource } from '../../src/sdk/identity-source.js';
import { startTestCa, type TestCa } from '../helpers/ca.js';
import { capturedLogger, closeServer, getVia, listen, materialFor } from './support.js';

let ca: TestCa;
let server: IdentityMaterial & { serial: string };
let goodClient: IdentityMaterial & { serial: string };
let revokedClient: IdentityMaterial & { serial: string };

beforeAll(async () => {
  ca = await startTestCa();
  server = await materialFor(ca, 'spiffe://example.org/stale/server');
  goodClient = await materialFor(ca, 'spiffe://example.org/stale/good');
  revokedClient = await materialFor(ca, 'spiffe://example.org/stale/revoked');
});
afterAll(async () => ca?.close());

/** The root's and the intermediate's CRLs, signed by the test CA's own keys, valid until `nextUpdate`. */
function crls(nextUpdate: Date, revokedSerials: string[], crlNumber = 1n): string {
  const { issuer, root } = ca.running.authority.keyring;
  const thisUpdate = new Date(Math.min(Date.now(), nextUpdate.getTime()) - 3_600_000);
  const entries = revokedSerials.map((serial) => ({ serial: Buffer.from(serial, 'hex'), revokedAt: thisUpdate, reason: 'keyCompromise' as const }));
  const rootCrl = new CrlIssuer({ issuerCertDer: root.certDer, issuerPrivateKey: root.privateKey! }).issue({ crlNumber, thisUpdate, nextUpdate, entries: [] });
  const intermediateCrl = new CrlIssuer({ issuerCertDer: issuer.certDer, issuerPrivateKey: issuer.privateKey }).issue({ crlNumber, thisUpdate, nextUpdate, entries });
  return crlToPem(rootCrl) + crlToPem(intermediateCrl);
}

const wholeSecondsFromNow = (ms: number): Date => new Date(Math.ceil((Date.now() + ms) / 1000) * 1000);

async function serve(crlPem: string, staleCrl: StaleCrlPolicy | undefined) {
  const refusals: Refusal[] = [];
  const staleAlerts: Date[] = [];
  const log = capturedLogger();
  const instance = createMtlsHttpsServer(
    staticIdentity({ ...server, crlPem }),
    { logger: log.logger, onRefusal: (refusal) => refusals.push(refusal), onCrlStale: (at) => staleAlerts.push(at), ...(staleCrl ? { staleCrl } : {}) },
    (_req, res) => res.end('ok'),
  );
  const url = await listen(instance);
  return { instance, url, refusals, staleAlerts, log };
}

async function statusFor(client: IdentityMaterial, url: string): Promise<number | string> {
  const agent = new MtlsHttpsAgent(staticIdentity(client), 'spiffe://example.org/stale/server');
  try {
    return (await getVia(agent, url)).status;
  } catch (error) {
    return (error as Error & { code?: string }).code ?? (error as Error).message;
  } finally {
    agent.destroy();
  }
}

describe('servers with a stale CRL', () => {
  it('keep-last-good (default): keeps serving, still refuses the serials it lists, and alerts', async () => {
    const { instance, url, refusals, staleAlerts, log } = await serve(crls(new Date(Date.now() - 60_000), [revokedClient.serial]), undefined);
    try {
      expect(await statusFor(goodClient, url)).toBe(200);
      expect(await statusFor(revokedClient, url)).not.toBe(200);
      expect(refusals.map((refusal) => refusal.reason)).toEqual(['revoked']);
      expect(staleAlerts).toHaveLength(1);
      expect(log.lines.some((line) => line['event'] === 'crl.stale' && line.level === 50)).toBe(true);
    } finally {
      await closeServer(instance);
    }
  });

  it('fail-closed: refuses every client while the CRL is stale, naming why', async () => {
    const { instance, url, refusals } = await serve(crls(new Date(Date.now() - 60_000), [revokedClient.serial]), 'fail-closed');
    try {
      expect(await statusFor(goodClient, url)).not.toBe(200);
      expect(refusals.map((refusal) => refusal.reason)).toEqual(['crl-unusable']);
      expect(refusals[0]!.detail).toMatch(/CRL_HAS_EXPIRED|expired/);
    } finally {
      await closeServer(instance);
    }
  });

  it('a CRL that goes stale while serving: handshakes keep working past its nextUpdate (OpenSSL alone would refuse them all)', async () => {
    const nextUpdate = wholeSecondsFromNow(1_500);
    const { instance, url, staleAlerts, refusals } = await serve(crls(nextUpdate, [revokedClient.serial]), undefined);
    try {
      expect(await statusFor(goodClient, url)).toBe(200);
      // Wait (bounded) until the CRL is past its nextUpdate and the server has noticed.
      const deadline = Date.now() + 10_000;
      while (staleAlerts.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(staleAlerts).toEqual([nextUpdate]);
      expect(Date.now()).toBeGreaterThanOrEqual(nextUpdate.getTime());
      expect(await statusFor(goodClient, url)).toBe(200);
      expect(await statusFor(revokedClient, url)).not.toBe(200);
      expect(refusals.map((refusal) => refusal.reason)).toEqual(['revoked']);
    } finally {
      await closeServer(instance);
    }
  });
});

describe('clients with a stale CRL', () => {
  const request = (agent: MtlsHttpsAgent, url: string): Promise<number | string> =>
    new Promise((resolve) => {
      const req = httpsRequest(url, { agent }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', (error: Error & { code?: string }) => resolve(error.code ?? error.message));
      req.end();
    });

  it('keep-last-good: a server the stale CRL lists is refused by the SDK itself (ERR_CERT_REVOKED); others are reached', async () => {
    const { instance, url } = await serve(crls(new Date(Date.now() + 3_600_000), []), undefined);
    const stale = crls(new Date(Date.now() - 60_000), [server.serial]);
    const staleOk = crls(new Date(Date.now() - 60_000), []);
    const refusing = new MtlsHttpsAgent(staticIdentity({ ...goodClient, crlPem: stale }), 'spiffe://example.org/stale/server');
    const reaching = new MtlsHttpsAgent(staticIdentity({ ...goodClient, crlPem: staleOk }), 'spiffe://example.org/stale/server');
    const failClosed = new MtlsHttpsAgent(staticIdentity({ ...goodClient, crlPem: staleOk }), 'spiffe://example.org/stale/server', { staleCrl: 'fail-closed' });
    try {
      expect(await request(refusing, url)).toBe('ERR_CERT_REVOKED');
      expect(await request(reaching, url)).toBe(200);
      // fail-closed: OpenSSL gets the stale CRL and refuses the handshake itself.
      expect(await request(failClosed, url)).toBe('CRL_HAS_EXPIRED');
    } finally {
      for (const agent of [refusing, reaching, failClosed]) agent.destroy();
      await closeServer(instance);
    }
  });
});

describe('a client connection whose CRL changed during its handshake', () => {
  it('is still closed when a later CRL revokes its server (the serial stays known after the re-check at secureConnect)', async () => {
    const { instance, url } = await serve(crls(new Date(Date.now() + 3_600_000), []), undefined);
    // The identity the connection is opened with, then a newer one (a new CRL, nothing revoked)
    // from the first read on: the SDK re-checks the server at secureConnect, which is the path that
    // once read the serial with getPeerX509Certificate() and so lost it for every later check.
    const opened = new Identity({ ...goodClient, crlPem: crls(new Date(Date.now() + 3_600_000), [], 1n) });
    const publisher = new IdentityPublisher(new Identity({ ...goodClient, crlPem: crls(new Date(Date.now() + 3_600_000), [], 2n) }), (error) => {
      throw error;
    });
    let handedOut = false;
    const source: IdentitySource = {
      current: () => {
        if (handedOut) return publisher.current();
        handedOut = true;
        return opened;
      },
      subscribe: (listener) => publisher.subscribe(listener),
      close: () => publisher.clear(),
    };
    const agent = new MtlsHttpsAgent(source, 'spiffe://example.org/stale/server');
    try {
      const { socket, status } = await new Promise<{ socket: TLSSocket; status: number }>((resolve, reject) => {
        const req = httpsRequest(url, { agent }, (res) => {
          const socket = res.socket as TLSSocket;
          res.resume();
          res.on('end', () => resolve({ socket, status: res.statusCode ?? 0 }));
        });
        req.on('error', reject);
        req.end();
      });
      expect(status).toBe(200);
      expect(handedOut).toBe(true);
      expect(socket.destroyed).toBe(false);
      const closedWith = new Promise<string | undefined>((resolve) => socket.once('error', (error: Error & { code?: string }) => resolve(error.code)));
      publisher.publish(new Identity({ ...goodClient, crlPem: crls(new Date(Date.now() + 3_600_000), [server.serial], 3n) }));
      expect(socket.destroyed).toBe(true);
      expect(await closedWith).toBe('ERR_CERT_REVOKED');
    } finally {
      agent.destroy();
      await closeServer(instance);
    }
  });
});

describe('permissive mode', () => {
  it('refuses a revoked client certificate (reason revoked) rather than admitting it as unauthenticated', async () => {
    const refusals: Refusal[] = [];
    let served = 0;
    const instance = createPermissiveHttpsServer(
      staticIdentity({ ...server, crlPem: crls(new Date(Date.now() + 3_600_000), [revokedClient.serial]) }),
      { logger: capturedLogger().logger, onRefusal: (refusal) => refusals.push(refusal) },
      (_req, res) => {
        served += 1;
        res.end('ok');
      },
    );
    const url = await listen(instance);
    try {
      expect(await statusFor(goodClient, url)).toBe(200);
      expect(await statusFor(revokedClient, url)).not.toBe(200);
      expect(served).toBe(1);
      expect(refusals.map((refusal) => refusal.reason)).toEqual(['revoked']);
    } finally {
      await new Promise<void>((resolve) => {
        instance.close(() => resolve());
        instance.closeAllConnections();
      });
    }
  });
});

describe('refusal reasons with a CRL configured', () => {
  it('a client from an unknown CA is refused as unknown-ca (OpenSSL itself says UNABLE_TO_GET_CRL)', async () => {
    // Another CA of the same trust domain, with an intermediate: the chain the client sends is
    // complete, it just ends at a root this server does not trust.
    const notBefore = new Date(Date.now() - 60_000);
    const notAfter = new Date(Date.now() + 3_600_000);
    const rootKey = generateKeyPair('p256');
    const intermediateKey = generateKeyPair('p256');
    const rootDer = await createRootCertificate({ trustDomain: 'example.org', privateKey: rootKey.privateKey, serial: randomSerial(), notBefore, notAfter });
    const intermediateDer = await createIntermediateCertificate({ trustDomain: 'example.org', publicKey: intermediateKey.publicKey, label: 'x', issuerCertDer: rootDer, issuerPrivateKey: rootKey.privateKey, serial: randomSerial(), notBefore, notAfter });
    const leafKey = generateKeyPair('p256');
    const leafDer = new LeafIssuer({ issuerCertDer: intermediateDer, issuerNotAfter: notAfter, issuerPrivateKey: intermediateKey.privateKey }).issue({
      serial: randomSerial(),
      spki: spkiOf(leafKey.publicKey),
      rsaKey: false,
      spiffeId: 'spiffe://example.org/stale/good',
      dnsNames: [],
      ipAddresses: [],
      notBefore,
      notAfter,
    });
    const stranger = { certPem: certificatesToPem([leafDer, intermediateDer]), keyPem: leafKey.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, bundlePem: server.bundlePem };
    const { instance, url, refusals } = await serve(crls(new Date(Date.now() + 3_600_000), []), undefined);
    try {
      expect(await statusFor(stranger, url)).not.toBe(200);
      expect(refusals.map((refusal) => [refusal.reason, refusal.detail])).toEqual([['unknown-ca', 'UNABLE_TO_GET_CRL']]);
    } finally {
      await closeServer(instance);
    }
  });
});

describe('CRLs that must not be taken', () => {
  it('a crl.pem without a verified CRL for our own CAs is refused (a forged file cannot drop our revocations)', async () => {
    const stranger = generateKeyPair('p256');
    const strangerRoot = await createRootCertificate({ trustDomain: 'evil.example', privateKey: stranger.privateKey, serial: randomSerial(), notBefore: new Date(Date.now() - 7_200_000), notAfter: new Date(Date.now() + 86_400_000) });
    const expiredForeign = crlToPem(
      new CrlIssuer({ issuerCertDer: strangerRoot, issuerPrivateKey: stranger.privateKey }).issue({ crlNumber: 1n, thisUpdate: new Date(Date.now() - 7_200_000), nextUpdate: new Date(Date.now() - 3_600_000), entries: [] }),
    );
    expect(() => new Identity({ ...server, crlPem: expiredForeign })).toThrow(/no CRL for .*tlsmesh intermediate/);
    // With ours present, a foreign expired CRL is kept for OpenSSL but never makes the set stale.
    const identity = new Identity({ ...server, crlPem: crls(new Date(Date.now() + 3_600_000), [revokedClient.serial]) + expiredForeign });
    expect(identity.crlStale(Date.now())).toBe(false);
    expect(identity.isRevoked(revokedClient.serial)).toBe(true);
  });

  it('a CRL numbered below the one in use is a rollback, refused by crlRollbackFrom', () => {
    const newer = new Identity({ ...server, crlPem: crls(new Date(Date.now() + 3_600_000), [revokedClient.serial], 5n) });
    const older = new Identity({ ...server, crlPem: crls(new Date(Date.now() + 7_200_000), [], 4n) });
    expect(older.crlRollbackFrom(newer)).toMatch(/numbered 4 would replace number 5/);
    expect(newer.crlRollbackFrom(older)).toBeNull();
  });
});
