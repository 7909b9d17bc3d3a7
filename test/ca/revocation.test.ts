/**
 * The CA's revocation publishing, checked with OpenSSL: CRLs (DER, PEM, per issuer, validators,
 * the watch stream) and the OCSP responder (POST through `openssl ocsp -url`, GET by hand).
 */
import { request } from 'node:https';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCrl } from '../../src/pki/crl.js';
import { createOcspRequest, parseOcspResponse } from '../../src/pki/ocsp.js';
import { pemBlocks } from '../../src/pki/index.js';
import { enrollWorkload, startTestCa, type TestCa } from '../helpers/ca.js';
import { runAsync } from '../helpers/openssl.js';

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

function get(ca: TestCa, path: string, options: { method?: string; headers?: Record<string, string>; body?: Buffer } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, ca.url), { method: options.method ?? 'GET', ca: ca.bundlePem, agent: false, headers: options.headers ?? {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

describe('CA revocation publishing', () => {
  let ca: TestCa;
  let dir: string;
  const file = (name: string, content: string | Buffer): string => {
    const path = join(dir, name);
    writeFileSync(path, content);
    return path;
  };

  beforeAll(async () => {
    ca = await startTestCa();
    dir = mkdtempSync(join(tmpdir(), 'tlsmesh-revocation-'));
  });
  afterAll(async () => {
    await ca?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const intermediatePem = (certPem: string): string => certPem.slice(certPem.indexOf('-----BEGIN CERTIFICATE-----', 10));

  it('a revoked leaf is in the CRL: openssl crl -verify accepts the CRL, openssl verify -crl_check_all refuses the leaf and accepts another', async () => {
    const before = parseCrl((await get(ca, '/v1/crl')).body);
    const revoked = await enrollWorkload(ca, 'spiffe://example.org/crl/revoked');
    const kept = await enrollWorkload(ca, 'spiffe://example.org/crl/kept');
    await ca.admin.revoke({ serial: revoked.serial, reason: 'keyCompromise' });

    const der = await get(ca, '/v1/crl');
    expect(der.status).toBe(200);
    expect(der.headers['content-type']).toBe('application/pkix-crl');
    const crl = parseCrl(der.body);
    expect(crl.crlNumber! > before.crlNumber!).toBe(true);
    expect(crl.revoked.get(revoked.serial)?.reason).toBe('keyCompromise');
    expect(crl.revoked.has(kept.serial)).toBe(false);

    const intermediate = file('intermediate.pem', intermediatePem(revoked.certPem));
    const crlFile = file('intermediate.crl', der.body);
    const checked = await runAsync('openssl', ['crl', '-inform', 'DER', '-in', crlFile, '-CAfile', intermediate, '-noout', '-verify']);
    expect(checked.stderr + checked.stdout).toContain('verify OK');

    const allPem = await get(ca, '/v1/crl', { headers: { accept: 'application/x-pem-file' } });
    expect(allPem.headers['content-type']).toContain('application/x-pem-file');
    expect(pemBlocks(allPem.body.toString(), 'X509 CRL')).toHaveLength(2); // the root's and the intermediate's
    const crls = file('all.crl.pem', allPem.body);
    const bundle = file('bundle.pem', ca.bundlePem);
    const verify = (leafPem: string, name: string) =>
      runAsync('openssl', ['verify', '-x509_strict', '-crl_check_all', '-CAfile', bundle, '-untrusted', intermediate, '-CRLfile', crls, file(name, leafPem.slice(0, leafPem.indexOf('-----BEGIN CERTIFICATE-----', 10)))]);
    const refused = await verify(revoked.certPem, 'revoked.pem');
    expect(refused.status).not.toBe(0);
    expect(refused.stdout + refused.stderr).toContain('certificate revoked');
    const accepted = await verify(kept.certPem, 'kept.pem');
    expect(accepted.stdout + accepted.stderr).toContain(': OK');
  });

  it('each leaf names its issuer\'s CRL, served there as DER or PEM, with validators and no-cache', async () => {
    const workload = await enrollWorkload(ca, 'spiffe://example.org/crl/dp');
    const text = (await runAsync('openssl', ['x509', '-noout', '-ext', 'crlDistributionPoints,authorityInfoAccess'], { input: workload.certPem })).stdout;
    const url = /URI:(https:\/\/\S+\/v1\/crl\/intermediate-[0-9a-f]{16})/.exec(text)?.[1];
    expect(url, text).toBeDefined();
    // (The test CA listens on port 0, so its configured public URL says :0; the paths are what matter.)
    expect(text).toMatch(/OCSP - URI:https:\/\/\S+\/v1\/ocsp\n/);
    const path = new URL(url!).pathname;
    expect(path).toBe(`/v1/crl/${ca.running.authority.keyring.issuer.record.id}`);
    const der = await get(ca, path);
    expect(der.status).toBe(200);
    expect(der.headers['cache-control']).toBe('public, no-cache');
    expect(new Date(String(der.headers['expires'])).getTime()).toBeGreaterThan(Date.now());
    const etag = String(der.headers['etag']);
    expect((await get(ca, path, { headers: { 'if-none-match': etag } })).status).toBe(304);
    const pem = await get(ca, path, { headers: { accept: 'application/x-pem-file' } });
    expect(pem.body.toString()).toMatch(/^-----BEGIN X509 CRL-----/);
    expect(pem.headers['etag']).not.toBe(etag);
    // After a revocation the old validator no longer matches.
    await ca.admin.revoke({ serial: workload.serial });
    expect((await get(ca, path, { headers: { 'if-none-match': etag } })).status).toBe(200);
    const unknown = await get(ca, '/v1/crl/intermediate-0000000000000000');
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.body.toString())).toMatchObject({ error: { code: 'ERR_NOT_FOUND' } });
  });

  it('every publication is in the audit log with its cRLNumber', async () => {
    const workload = await enrollWorkload(ca, 'spiffe://example.org/crl/audited');
    const before = parseCrl((await get(ca, '/v1/crl')).body).crlNumber!;
    await ca.admin.revoke({ spiffeId: workload.spiffeId, reason: 'cessationOfOperation' });
    const entries = await ca.running.authority.store.listAudit({ action: 'crl.publish' });
    const last = entries[entries.length - 1]!;
    expect(last.detail).toMatchObject({ crlNumber: String(before + 1n), why: 'revocation' });
  });

  it('the watch stream pushes the new CRL when something is revoked', async () => {
    const workload = await enrollWorkload(ca, 'spiffe://example.org/crl/watched');
    const events: { etag: string; pem: string }[] = [];
    let buffer = '';
    const req = request(new URL('/v1/crl?watch=1', ca.url), { ca: ca.bundlePem, agent: false });
    const firstTwo = new Promise<void>((resolve, reject) => {
      req.on('response', (res) => {
        expect(res.headers['content-type']).toBe('text/event-stream');
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffer += chunk;
          let end: number;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const event = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const data = /^data: (.*)$/m.exec(event)?.[1];
            if (data !== undefined) events.push(JSON.parse(data) as { etag: string; pem: string });
            if (events.length === 1) void ca.admin.revoke({ serial: workload.serial }).catch(reject);
            if (events.length === 2) resolve();
          }
        });
      });
      req.on('error', reject);
    });
    req.end();
    await firstTwo;
    req.destroy();
    expect(events[1]!.etag).not.toBe(events[0]!.etag);
    const crl = parseCrl(pemBlocks(events[1]!.pem, 'X509 CRL')[1]!);
    expect(crl.revoked.has(workload.serial)).toBe(true);
  });

  describe('OCSP', () => {
    it('openssl ocsp -url gets good, revoked (with reason) and verifies the responder and the nonce', async () => {
      const good = await enrollWorkload(ca, 'spiffe://example.org/ocsp/good');
      const bad = await enrollWorkload(ca, 'spiffe://example.org/ocsp/bad');
      // Asked once before the revocation: the cached "good" must not survive it.
      const ask = (leafPem: string, name: string) =>
        runAsync('openssl', ['ocsp', '-url', `${ca.url}/v1/ocsp`, '-issuer', file('issuer.pem', intermediatePem(leafPem)), '-cert', file(name, leafPem), '-CAfile', file('bundle.pem', ca.bundlePem), '-resp_text']);
      const early = await ask(bad.certPem, 'bad.pem');
      expect(early.stdout + early.stderr).toContain(': good');
      await ca.admin.revoke({ serial: bad.serial, reason: 'keyCompromise' });

      const okAnswer = await ask(good.certPem, 'good.pem');
      const okText = okAnswer.stdout + okAnswer.stderr;
      expect(okText).toContain('Response verify OK');
      expect(okText).toContain('good.pem: good');
      expect(okText).not.toContain('WARNING: no nonce');
      expect(okText).toContain('OCSP Nonce');
      const revokedAnswer = await ask(bad.certPem, 'bad.pem');
      const revokedText = revokedAnswer.stdout + revokedAnswer.stderr;
      expect(revokedText).toContain('Response verify OK');
      expect(revokedText).toContain('bad.pem: revoked');
      expect(revokedText).toContain('Reason: keyCompromise');
      expect(revokedText).toContain('OCSP Signing');
    });

    it('GET /v1/ocsp/{base64} answers too; an unknown serial is "unknown"; garbage is malformedRequest', async () => {
      const workload = await enrollWorkload(ca, 'spiffe://example.org/ocsp/get');
      const issuerDer = pemBlocks(workload.certPem, 'CERTIFICATE')[1]!;
      const serials = [Buffer.from(workload.serial, 'hex'), Buffer.from('7fffffffffffffffffffffffffffff01', 'hex')];
      const nonce = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
      const der = createOcspRequest({ issuerCertDer: issuerDer, serials, nonce });
      const response = await get(ca, `/v1/ocsp/${encodeURIComponent(der.toString('base64'))}`);
      expect(response.status).toBe(200);
      expect(response.headers['content-type']).toBe('application/ocsp-response');
      const parsed = parseOcspResponse(response.body);
      expect(parsed.status).toBe('successful');
      expect(parsed.nonce?.equals(nonce)).toBe(true);
      expect(parsed.answers.map((answer) => answer.status.kind)).toEqual(['good', 'unknown']);

      const garbage = await get(ca, '/v1/ocsp', { method: 'POST', headers: { 'content-type': 'application/ocsp-request' }, body: Buffer.from('30030201ff', 'hex') });
      expect(parseOcspResponse(garbage.body).status).toBe('malformedRequest');
      const notBase64 = await get(ca, '/v1/ocsp/not*base64!');
      expect(parseOcspResponse(notBase64.body).status).toBe('malformedRequest');
      // A URL that is not even percent-encoding is refused by the HTTP layer, with a coded error.
      const badUrl = await get(ca, '/v1/ocsp/%%%');
      expect(badUrl.status).toBe(400);
      expect(JSON.parse(badUrl.body.toString())).toMatchObject({ error: { code: 'ERR_BAD_REQUEST' } });
    });

    it('a CertID for another issuer is "unauthorized"; an oversized request is ERR_BODY_TOO_LARGE; JSON is ERR_BAD_REQUEST', async () => {
      const workload = await enrollWorkload(ca, 'spiffe://example.org/ocsp/other');
      const leafDer = pemBlocks(workload.certPem, 'CERTIFICATE')[0]!;
      // The leaf as "issuer": hashes that match no CA of ours.
      const foreign = createOcspRequest({ issuerCertDer: leafDer, serials: [Buffer.from(workload.serial, 'hex')] });
      const unauthorized = await get(ca, '/v1/ocsp', { method: 'POST', headers: { 'content-type': 'application/ocsp-request' }, body: foreign });
      expect(parseOcspResponse(unauthorized.body).status).toBe('unauthorized');
      const huge = await get(ca, '/v1/ocsp', { method: 'POST', headers: { 'content-type': 'application/ocsp-request' }, body: Buffer.alloc(64 * 1024, 0x30) });
      expect(huge.status).toBe(413);
      expect(JSON.parse(huge.body.toString())).toMatchObject({ error: { code: 'ERR_BODY_TOO_LARGE' } });
      const json = await get(ca, '/v1/ocsp', { method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.from('{}') });
      expect(json.status).toBe(400);
      expect(JSON.parse(json.body.toString())).toMatchObject({ error: { code: 'ERR_BAD_REQUEST' } });
    });
  });
});
