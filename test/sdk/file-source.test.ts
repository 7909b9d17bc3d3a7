/**
 * fileIdentity against real files: the first load names the file at fault; atomic rewrites (as
 * the agent and `writeCredentials` do them) and Kubernetes-style symlink swaps are picked up; a
 * half-written set is ignored, a corrupt one reported, and the next good write recovers.
 */
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeCredentials } from '../../src/client/index.js';
import type { Identity, IdentityMaterial } from '../../src/sdk/identity.js';
import { fileIdentity, type FileIdentitySource } from '../../src/sdk/sources/file.js';
import { startTestCa, type TestCa } from '../helpers/ca.js';
import { expectCodeAsync } from '../pki/support.js';
import { capturedLogger, materialFor, withDeadline } from './support.js';

let ca: TestCa;
let root: string;
const materials: (IdentityMaterial & { serial: string })[] = [];

beforeAll(async () => {
  ca = await startTestCa();
  root = mkdtempSync(join(tmpdir(), 'tlsmesh-sdk-files-'));
  for (let i = 0; i < 4; i += 1) materials.push(await materialFor(ca, 'spiffe://example.org/files'));
});
afterAll(async () => {
  rmSync(root, { recursive: true, force: true });
  await ca.close();
});

let dirCount = 0;
const freshDir = (): string => {
  const dir = join(root, `d${dirCount++}`);
  mkdirSync(dir);
  return dir;
};

const nextUpdate = (source: FileIdentitySource): Promise<Identity> =>
  withDeadline(new Promise<Identity>((resolve) => {
    const stop = source.subscribe((identity) => {
      stop();
      resolve(identity);
    });
  }), 10_000, 'identity update');

describe('fileIdentity: first load', () => {
  it('ok/reads cert.pem, key.pem and bundle.pem from the directory', async () => {
    const dir = freshDir();
    await writeCredentials(dir, materials[0]!);
    const source = await fileIdentity({ dir });
    expect(source.current().serial).toBe(materials[0]!.serial);
    source.close();
  });

  it('ok/explicit paths', async () => {
    const dir = freshDir();
    writeFileSync(join(dir, 'chain.crt'), materials[0]!.certPem);
    writeFileSync(join(dir, 'private.key'), materials[0]!.keyPem);
    writeFileSync(join(dir, 'roots.crt'), materials[0]!.bundlePem);
    const source = await fileIdentity({ certPath: join(dir, 'chain.crt'), keyPath: join(dir, 'private.key'), bundlePath: join(dir, 'roots.crt') });
    expect(source.current().serial).toBe(materials[0]!.serial);
    source.close();
  });

  it('fail/a missing file → ERR_IDENTITY_FILE naming it', async () => {
    const dir = freshDir();
    writeFileSync(join(dir, 'cert.pem'), materials[0]!.certPem);
    writeFileSync(join(dir, 'bundle.pem'), materials[0]!.bundlePem);
    const error = await fileIdentity({ dir }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ERR_IDENTITY_FILE', message: expect.stringContaining(join(dir, 'key.pem')) as unknown });
  });

  it('fail/an explicit crlPath that does not exist → ERR_IDENTITY_FILE', async () => {
    const dir = freshDir();
    await writeCredentials(dir, materials[0]!);
    await expectCodeAsync(
      fileIdentity({ certPath: join(dir, 'cert.pem'), keyPath: join(dir, 'key.pem'), bundlePath: join(dir, 'bundle.pem'), crlPath: join(dir, 'crl.pem') }),
      'ERR_IDENTITY_FILE',
    );
  });

  it('fail/a key that is not the certificate\'s → ERR_IDENTITY_INVALID naming key.pem', async () => {
    const dir = freshDir();
    await writeCredentials(dir, { ...materials[0]!, keyPem: materials[1]!.keyPem });
    const error = await fileIdentity({ dir }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ERR_IDENTITY_INVALID', message: expect.stringContaining(join(dir, 'key.pem')) as unknown });
  });
});

describe('fileIdentity: changes', () => {
  it('ok/atomic rewrites are picked up, each publishing the new certificate', async () => {
    const dir = freshDir();
    await writeCredentials(dir, materials[0]!);
    const source = await fileIdentity({ dir }, { debounceMs: 20, logger: capturedLogger().logger });
    try {
      for (const material of [materials[1]!, materials[2]!]) {
        const updated = nextUpdate(source);
        await writeCredentials(dir, material);
        expect((await updated).serial).toBe(material.serial);
        expect(source.current().serial).toBe(material.serial);
      }
      expect(await source.reload()).toBe('unchanged');
    } finally {
      source.close();
    }
  });

  it('ok/a Kubernetes-style swap of the ..data symlink is picked up', async () => {
    const dir = freshDir();
    const write = (name: string, material: IdentityMaterial) => {
      mkdirSync(join(dir, name));
      writeFileSync(join(dir, name, 'cert.pem'), material.certPem);
      writeFileSync(join(dir, name, 'key.pem'), material.keyPem);
      writeFileSync(join(dir, name, 'bundle.pem'), material.bundlePem);
    };
    write('..v1', materials[0]!);
    symlinkSync('..v1', join(dir, '..data'));
    for (const file of ['cert.pem', 'key.pem', 'bundle.pem']) symlinkSync(join('..data', file), join(dir, file));
    const source = await fileIdentity({ dir }, { debounceMs: 20, logger: capturedLogger().logger });
    try {
      write('..v2', materials[3]!);
      const updated = nextUpdate(source);
      symlinkSync('..v2', join(dir, '..data_tmp'));
      renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
      expect((await updated).serial).toBe(materials[3]!.serial);
    } finally {
      source.close();
    }
  });

  it('fail/a half-written certificate is ignored (current kept) until the write completes', async () => {
    const dir = freshDir();
    await writeCredentials(dir, materials[0]!);
    const log = capturedLogger();
    const source = await fileIdentity({ dir }, { debounceMs: 20, settleMs: 60_000, logger: log.logger });
    try {
      // The writer has replaced the key and is part-way through the certificate (not atomic).
      writeFileSync(join(dir, 'key.pem'), materials[1]!.keyPem);
      writeFileSync(join(dir, 'cert.pem'), materials[1]!.certPem.slice(0, materials[1]!.certPem.length / 2));
      expect(await source.reload()).toBe('failed');
      expect(source.current().serial).toBe(materials[0]!.serial);

      const updated = nextUpdate(source);
      writeFileSync(join(dir, 'cert.pem'), materials[1]!.certPem);
      expect((await updated).serial).toBe(materials[1]!.serial);
      // It was only a moment: nothing was reported.
      expect(log.lines.filter((line) => line.level >= 40)).toEqual([]);
    } finally {
      source.close();
    }
  });

  it('fail/a corrupt file is reported (code, file name), the current identity kept; the next good write recovers', async () => {
    const dir = freshDir();
    await writeCredentials(dir, materials[0]!);
    const log = capturedLogger();
    const errors: Error[] = [];
    const source = await fileIdentity({ dir }, { debounceMs: 20, settleMs: 50, logger: log.logger, onError: (e) => errors.push(e) });
    try {
      writeFileSync(join(dir, 'bundle.pem'), '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n');
      const line = await log.next((l) => l.source === 'file identity');
      expect(line).toMatchObject({ level: 40, code: 'ERR_IDENTITY_INVALID' });
      expect(errors[0]).toMatchObject({ code: 'ERR_IDENTITY_INVALID', message: expect.stringContaining(join(dir, 'bundle.pem')) as unknown });
      expect(source.current().serial).toBe(materials[0]!.serial);

      const updated = nextUpdate(source);
      await writeCredentials(dir, materials[2]!);
      expect((await updated).serial).toBe(materials[2]!.serial);
    } finally {
      source.close();
    }
  });

  it('a removed directory is reported, not thrown', async () => {
    const dir = freshDir();
    await writeCredentials(dir, materials[0]!);
    const errors: Error[] = [];
    const source = await fileIdentity({ dir }, { debounceMs: 20, settleMs: 20, logger: capturedLogger().logger, onError: (e) => errors.push(e) });
    try {
      rmSync(dir, { recursive: true });
      expect(await source.reload()).toBe('failed');
      await withDeadline(new Promise<void>((resolve) => {
        const check = () => (errors.length > 0 ? resolve() : setTimeout(check, 10));
        check();
      }), 5000, 'reported error');
      expect(errors[0]).toMatchObject({ code: 'ERR_IDENTITY_FILE' });
      expect(source.current().serial).toBe(materials[0]!.serial);
    } finally {
      source.close();
    }
  });
});
