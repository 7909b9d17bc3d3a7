/**
 * The CA client trusts the bundle AND requires the CA's SPIFFE ID: a server holding any other
 * certificate from the same CA (a workload impersonating the CA) is refused before a token or a
 * CSR is sent.
 */
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaClient } from '../../src/client/ca-client.js';
import { enrollWorkload, startTestCa, TRUST_DOMAIN, type TestCa } from '../helpers/ca.js';

describe('CaClient and the CA identity', () => {
  let ca: TestCa;
  let impostor: Server;
  let impostorUrl: string;
  let requestsSeen = 0;

  beforeAll(async () => {
    ca = await startTestCa();
    const workload = await enrollWorkload(ca, `spiffe://${TRUST_DOMAIN}/impostor`, { ipAddresses: ['127.0.0.1'] });
    workload.client.close();
    impostor = createServer({ key: workload.keyPem, cert: workload.certPem }, (_req, res) => {
      requestsSeen++;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
    await new Promise<void>((resolve) => impostor.listen(0, '127.0.0.1', resolve));
    impostorUrl = `https://127.0.0.1:${(impostor.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => impostor?.close(() => resolve()));
    await ca?.close();
  });

  it('fail/a server with another SPIFFE ID from the same CA is refused, nothing is sent', async () => {
    const client = new CaClient({ url: impostorUrl, bundlePem: ca.bundlePem, trustDomain: TRUST_DOMAIN });
    try {
      const error = await client.enroll('secret-token', 'csr').catch((caught: unknown) => caught);
      expect(error).toMatchObject({ code: 'ERR_CA_UNREACHABLE' });
      expect(String((error as Error).message)).toContain(`expected spiffe://${TRUST_DOMAIN}/tlsmesh/ca`);
      expect(requestsSeen).toBe(0);
    } finally {
      client.close();
    }
  });

  it('ok/the real CA is accepted by its SPIFFE ID whatever the host name', async () => {
    const client = new CaClient({ url: ca.url.replace('127.0.0.1', 'localhost'), bundlePem: ca.bundlePem, trustDomain: TRUST_DOMAIN });
    try {
      await expect(client.bundle()).resolves.toContain('BEGIN CERTIFICATE');
    } finally {
      client.close();
    }
  });

  it('fail/the real CA is refused when the client expects another trust domain', async () => {
    const client = new CaClient({ url: ca.url, bundlePem: ca.bundlePem, trustDomain: 'other.org' });
    try {
      await expect(client.bundle()).rejects.toMatchObject({ code: 'ERR_CA_UNREACHABLE' });
    } finally {
      client.close();
    }
  });
});
