/**
 * A real CA for tests: `initDataDir` + `startCa` on 127.0.0.1 with a free port, on SQLite or a
 * given PostgreSQL database, with its JSON logs captured and a clock tests can move.
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { readCaFile, resolveCaConfig } from '../../src/ca/config.js';
import { initDataDir } from '../../src/ca/data-dir.js';
import { Authority } from '../../src/ca/authority.js';
import { startCa, type RunningCa, type StartCaOptions } from '../../src/ca/server.js';
import { CaClient } from '../../src/client/ca-client.js';
import { createLogger } from '../../src/observe/logger.js';
import { createCsr, generateKeyPair, type KeyType } from '../../src/pki/index.js';
import { caIdentity, type CaIdentitySource } from '../../src/sdk/sources/ca.js';

export const PASSPHRASE = 'test passphrase, long enough';
export const TRUST_DOMAIN = 'example.org';

export interface TestCa {
  url: string;
  dataDir: string;
  running: RunningCa;
  bundlePem: string;
  admin: CaClient;
  anonymous: CaClient;
  /** Every log line the CA wrote. */
  logs: string[];
  /** Milliseconds added to the CA's clock (not to OpenSSL's, which TLS uses). */
  clockOffsetMs: number;
  close(): Promise<void>;
}

/**
 * `configYaml` is appended to the ca.yaml `ca init` wrote; `prepare` runs after that, before ca.yaml
 * is read (to add settings and files); `start` adds options to startCa.
 */
export async function startTestCa(
  options: { store?: string; configYaml?: string; prepare?: (dataDir: string) => void; start?: Pick<StartCaOptions, 'metrics' | 'alertTimer'> } = {},
): Promise<TestCa> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tlsmesh-ca-'));
  await initDataDir({ dataDir, trustDomain: TRUST_DOMAIN, passphrase: PASSPHRASE, listen: '127.0.0.1:0', store: options.store });
  if (options.configYaml !== undefined) appendFileSync(join(dataDir, 'ca.yaml'), options.configYaml);
  options.prepare?.(dataDir);
  const config = resolveCaConfig(dataDir, await readCaFile(dataDir), {}, {});
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logs.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      callback();
    },
  });
  const state = { clockOffsetMs: 0 };
  const running = await startCa({
    config,
    passphrase: PASSPHRASE,
    logger: createLogger({ component: 'ca', level: 'debug', destination }),
    clock: () => new Date(Date.now() + state.clockOffsetMs),
    ...options.start,
  });
  const bundlePem = readFileSync(join(dataDir, 'bundle.pem'), 'utf8');
  const adminDir = join(dataDir, 'admin');
  const admin = new CaClient({
    url: running.url,
    bundlePem,
    trustDomain: TRUST_DOMAIN,
    certPem: readFileSync(join(adminDir, 'cert.pem'), 'utf8'),
    keyPem: readFileSync(join(adminDir, 'key.pem'), 'utf8'),
  });
  const anonymous = new CaClient({ url: running.url, bundlePem, trustDomain: TRUST_DOMAIN });
  const ca: TestCa = {
    url: running.url,
    dataDir,
    running,
    bundlePem,
    admin,
    anonymous,
    logs,
    get clockOffsetMs() {
      return state.clockOffsetMs;
    },
    set clockOffsetMs(value: number) {
      state.clockOffsetMs = value;
    },
    async close() {
      admin.close();
      anonymous.close();
      await running.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return ca;
}

export interface Workload {
  spiffeId: string;
  keyPem: string;
  certPem: string;
  serial: string;
  client: CaClient;
}

export async function csrFor(spiffeId: string, extra: { dnsNames?: string[]; ipAddresses?: string[]; keyType?: KeyType } = {}) {
  const key = generateKeyPair(extra.keyType ?? 'p256');
  const csr = await createCsr({ privateKey: key.privateKey, spiffeId, dnsNames: extra.dnsNames ?? [], ipAddresses: extra.ipAddresses ?? [] });
  return { csr, keyPem: key.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string };
}

/** Token + enrolment: a workload holding a fresh certificate and a client using it. */
export async function enrollWorkload(ca: TestCa, spiffeId: string, sans: { dnsNames?: string[]; ipAddresses?: string[] } = {}): Promise<Workload> {
  const { token } = await ca.admin.createToken({ spiffeId, dnsNames: sans.dnsNames ?? [], ipAddresses: sans.ipAddresses ?? [] });
  const { csr, keyPem } = await csrFor(spiffeId, sans);
  const issued = await ca.anonymous.enroll(token, csr);
  const client = new CaClient({ url: ca.url, bundlePem: ca.bundlePem, trustDomain: TRUST_DOMAIN, certPem: issued.certificatePem, keyPem });
  return { spiffeId, keyPem, certPem: issued.certificatePem, serial: issued.serial, client };
}

/**
 * The same CA (store, keys) with its clock shifted: to mint tokens and certificates "in the past"
 * without moving the running CA's clock (which would make the admin's own certificate invalid).
 */
export function shiftedAuthority(ca: TestCa, offsetMs: number): Authority {
  const { store, keyring, lifetimes } = ca.running.authority;
  return new Authority({ store, keyring, lifetimes, clock: () => new Date(Date.now() + offsetMs) });
}

/** A workload enrolled by a CA whose clock is shifted (e.g. three days ago: already expired). */
export async function enrollWorkloadAt(ca: TestCa, offsetMs: number, spiffeId: string): Promise<{ certPem: string; keyPem: string; serial: string }> {
  const authority = shiftedAuthority(ca, offsetMs);
  const admin = { spiffeId: authority.adminId, peer: null };
  const { token } = await authority.createToken({ spiffeId }, admin);
  const { csr, keyPem } = await csrFor(spiffeId);
  const issued = await authority.enroll({ token, csr }, { spiffeId: null, peer: '127.0.0.1' });
  return { certPem: issued.certificatePem, keyPem, serial: issued.serial };
}

/** A raw HTTPS request (for bodies CaClient would never send). */
export function rawRequest(
  ca: TestCa,
  options: { method: string; path: string; body?: string | Buffer; headers?: Record<string, string>; certPem?: string; keyPem?: string },
): Promise<{ status: number; json: { error?: { code: string; message: string } } & Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(options.path, ca.url),
      {
        method: options.method,
        ca: ca.bundlePem,
        ...(options.certPem !== undefined ? { cert: options.certPem, key: options.keyPem } : {}),
        agent: false,
        // The CA certificate names localhost and 127.0.0.1 as well as its SPIFFE ID.
        headers: { ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}), ...options.headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json = {} as { error?: { code: string; message: string } } & Record<string, unknown>;
          try {
            json = JSON.parse(text) as typeof json;
          } catch {
            // not JSON: leave empty, the status tells
          }
          resolve({ status: res.statusCode ?? 0, json });
        });
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/**
 * An in-process workload identity from the test CA (`caIdentity`: enrols with a fresh token, then
 * follows the CA's bundle and CRL streams). Closed with the CA by `closeAll`.
 */
export async function caWorkload(ca: TestCa, path: string, onError?: (error: Error) => void): Promise<CaIdentitySource> {
  const { token } = await ca.admin.createToken({ spiffeId: `spiffe://${TRUST_DOMAIN}/${path}` });
  return caIdentity({ url: ca.url, bundlePem: ca.bundlePem, token, ...(onError ? { onError } : {}) });
}
