/**
 * Someone who can write to the store but has neither the passphrase nor ca.yaml: a root they add,
 * or an intermediate certificate they swap, stops the CA from starting (ERR_CA_INTEGRITY) instead
 * of being trusted.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readCaFile, resolveCaConfig } from '../../src/ca/config.js';
import { initDataDir } from '../../src/ca/data-dir.js';
import { startCa } from '../../src/ca/server.js';
import { createLogger } from '../../src/observe/logger.js';
import { createRootCertificate, fingerprintOf, generateKeyPair, randomSerial } from '../../src/pki/index.js';
import { openSqliteStore, type Store } from '../../src/store/index.js';
import { PASSPHRASE, TRUST_DOMAIN } from '../helpers/ca.js';

describe('CA key integrity at start', () => {
  let dataDir: string;

  beforeEach(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'tlsmesh-integrity-'));
    await initDataDir({ dataDir, trustDomain: TRUST_DOMAIN, passphrase: PASSPHRASE, listen: '127.0.0.1:0' });
  });
  afterEach(() => {
    rmSync(dataDir, { recursive: true, force: true });
  });

  const start = async () => {
    const config = resolveCaConfig(dataDir, await readCaFile(dataDir), {}, {});
    return startCa({ config, passphrase: PASSPHRASE, logger: createLogger({ component: 'ca', level: 'silent' }) });
  };
  const withStore = async (work: (store: Store) => Promise<void>): Promise<void> => {
    const store = await openSqliteStore({ path: join(dataDir, 'ca.db') });
    try {
      await work(store);
    } finally {
      await store.close();
    }
  };
  const strangerRoot = async (): Promise<Buffer> => {
    const key = generateKeyPair('p256');
    const now = new Date();
    return createRootCertificate({ trustDomain: TRUST_DOMAIN, privateKey: key.privateKey, serial: randomSerial(), notBefore: now, notAfter: new Date(now.getTime() + 86_400_000) });
  };

  it('ok/ca init pins its root in ca.yaml, and the CA starts', async () => {
    const file = parseYaml(readFileSync(join(dataDir, 'ca.yaml'), 'utf8')) as { rootFingerprints: string[] };
    const bundle = readFileSync(join(dataDir, 'bundle.pem'), 'utf8');
    const { pemBlocks } = await import('../../src/pki/index.js');
    expect(file.rootFingerprints).toEqual([fingerprintOf(pemBlocks(bundle, 'CERTIFICATE')[0]!)]);
    const running = await start();
    await running.close();
  });

  it('fail/a root added to the store but not pinned stops the CA', async () => {
    const der = await strangerRoot();
    await withStore((store) =>
      store.putCaKey({ id: 'root-attacker', kind: 'root', state: 'active', certDer: der, encryptedKey: null, notBefore: new Date(), notAfter: new Date(Date.now() + 86_400_000), createdAt: new Date() }),
    );
    await expect(start()).rejects.toMatchObject({ code: 'ERR_CA_INTEGRITY' });
  });

  it('fail/an intermediate certificate swapped in the store stops the CA', async () => {
    const der = await strangerRoot();
    await withStore(async (store) => {
      const intermediate = (await store.listCaKeys()).find((key) => key.kind === 'intermediate')!;
      await store.putCaKey({ ...intermediate, certDer: der });
    });
    await expect(start()).rejects.toMatchObject({ code: 'ERR_CA_INTEGRITY' });
  });

  it('ok/without pins (an older ca.yaml) the CA starts but says so', async () => {
    const path = join(dataDir, 'ca.yaml');
    const file = parseYaml(readFileSync(path, 'utf8')) as Record<string, unknown>;
    delete file['rootFingerprints'];
    writeFileSync(path, toYaml(file));
    const lines: string[] = [];
    const config = resolveCaConfig(dataDir, await readCaFile(dataDir), {}, {});
    const { Writable } = await import('node:stream');
    const destination = new Writable({ write: (chunk: Buffer, _e, done) => (lines.push(chunk.toString()), done()) });
    const running = await startCa({ config, passphrase: PASSPHRASE, logger: createLogger({ component: 'ca', destination }) });
    await running.close();
    expect(lines.join('')).toMatch(/pins no rootFingerprints/);
  });
});
