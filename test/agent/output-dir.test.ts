/**
 * The output directory: the Kubernetes-style layout (`..data` -> version directory, stable links),
 * modes, leftovers, the older regular-file layout, `fileIdentity` reading it — and the crash
 * proof: the file system "dies" after each of the write's calls in turn, and every time the
 * directory holds the complete old set or the complete new one, never a mix.
 */
import { lstatSync, mkdirSync, readdirSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATA_LINK, NODE_FS, prepareOutputDir, readCredentialFiles, removeLeftovers, writeCredentialSet, type CredentialSet, type DirectoryFs } from '../../src/agent/index.js';
import { writeCredentials } from '../../src/client/index.js';
import { Identity } from '../../src/sdk/identity.js';
import { fileIdentity } from '../../src/sdk/sources/file.js';
import { startTestCa, type TestCa } from '../helpers/ca.js';
import { capturedLogger, materialFor, withDeadline } from '../sdk/support.js';
import { ID, readText, tempRoot } from './support.js';

let ca: TestCa;
let temp: ReturnType<typeof tempRoot>;
let A: CredentialSet & { serial: string };
let B: CredentialSet & { serial: string };
let dirCount = 0;
const freshDir = (): string => temp.dir(`d${dirCount++}`);

beforeAll(async () => {
  ca = await startTestCa();
  temp = tempRoot();
  A = await materialFor(ca, ID('files'));
  B = await materialFor(ca, ID('files'));
  B.crlPem = (await ca.anonymous.fetchCrls() as { pem: string }).pem;
});
afterAll(async () => {
  temp.cleanup();
  await ca.close();
});

/** What a reader sees through the stable names: which set, and whether it is whole. */
function visible(dir: string): { serial: string; whole: boolean } {
  const certPem = readText(join(dir, 'cert.pem'));
  const keyPem = readText(join(dir, 'key.pem'));
  const bundlePem = readText(join(dir, 'bundle.pem'));
  const identity = new Identity({ certPem, keyPem, bundlePem }); // throws if the key is not the certificate's
  return { serial: identity.serial, whole: true };
}

const entries = (dir: string): string[] => readdirSync(dir).sort();

describe('layout', () => {
  it('ok/a version directory, ..data pointing at it, stable links; key 0600, the rest 0644', async () => {
    const dir = freshDir();
    await prepareOutputDir(dir);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const version = await writeCredentialSet(dir, B);
    expect(version).toMatch(/^\.tlsmesh-\d{8}T\d{9}Z-[0-9a-f]{8}$/);
    expect(readlinkSync(join(dir, DATA_LINK))).toBe(version);
    for (const name of ['cert.pem', 'key.pem', 'bundle.pem', 'crl.pem']) {
      expect(lstatSync(join(dir, name)).isSymbolicLink(), name).toBe(true);
      expect(readlinkSync(join(dir, name))).toBe(`${DATA_LINK}/${name}`);
    }
    expect(statSync(join(dir, 'key.pem')).mode & 0o777).toBe(0o600);
    for (const name of ['cert.pem', 'bundle.pem', 'crl.pem']) expect(statSync(join(dir, name)).mode & 0o777, name).toBe(0o644);
    expect(readText(join(dir, 'crl.pem'))).toBe(B.crlPem);
    expect(entries(dir)).toEqual([DATA_LINK, version, 'bundle.pem', 'cert.pem', 'crl.pem', 'key.pem'].sort());
  });

  it('ok/keyMode 0640; a later version without CRLs removes the crl.pem link; older versions go, other files stay', async () => {
    const dir = freshDir();
    await prepareOutputDir(dir);
    writeFileSync(join(dir, 'README'), 'not ours');
    await writeCredentialSet(dir, B);
    const second = await writeCredentialSet(dir, { ...A, crlPem: undefined }, { keyMode: 0o640 });
    expect(statSync(join(dir, 'key.pem')).mode & 0o777).toBe(0o640);
    expect(entries(dir)).toEqual([DATA_LINK, second, 'README', 'bundle.pem', 'cert.pem', 'key.pem'].sort());
    expect(visible(dir).serial).toBe(A.serial);
  });

  it('ok/the older layout (regular files from `tlsmesh cert request`) becomes links', async () => {
    const dir = freshDir();
    await writeCredentials(dir, A);
    const found = await readCredentialFiles(dir);
    expect(found.layout).toEqual([expect.stringMatching(/cert\.pem is a regular file/), expect.stringMatching(/key\.pem is a regular file/), expect.stringMatching(/bundle\.pem is a regular file/)]);
    await writeCredentialSet(dir, B);
    expect((await readCredentialFiles(dir)).layout).toEqual([]);
    expect(visible(dir).serial).toBe(B.serial);
  });

  it('ok/a key readable beyond keyMode is noted', async () => {
    const dir = freshDir();
    await writeCredentialSet(dir, A, { keyMode: 0o640 });
    expect((await readCredentialFiles(dir, 0o600)).layout).toEqual([expect.stringMatching(/key\.pem has mode 0640, wider than 0600/)]);
  });

  it('fail/an output path under a regular file: ERR_IDENTITY_FILE naming it (what root cannot write either)', async () => {
    const file = join(temp.root, 'a-file');
    writeFileSync(file, 'x');
    await expect(prepareOutputDir(join(file, 'out'))).rejects.toMatchObject({ code: 'ERR_IDENTITY_FILE', message: expect.stringContaining(join(file, 'out')) as unknown });
  });

  it('ok/fileIdentity reads the layout and picks up a swap', async () => {
    const dir = freshDir();
    await writeCredentialSet(dir, A);
    const source = await fileIdentity({ dir }, { debounceMs: 20, logger: capturedLogger().logger });
    try {
      expect(source.current().serial).toBe(A.serial);
      const updated = withDeadline(new Promise<string>((resolve) => source.subscribe((identity) => resolve(identity.serial))), 10_000, 'file identity update');
      await writeCredentialSet(dir, B);
      expect(await updated).toBe(B.serial);
      expect(source.current().crlPem).toBeDefined();
    } finally {
      source.close();
    }
  });
});

/** Counts calls; after `limit` of them every call fails, as if the process had died (no cleanup either). */
function dyingFs(limit: number): { fs: DirectoryFs; calls: string[] } {
  const calls: string[] = [];
  const wrap =
    <A extends unknown[], R>(name: string, fn: (...args: A) => Promise<R>) =>
    (...args: A): Promise<R> => {
      if (calls.length >= limit) return Promise.reject(Object.assign(new Error(`crashed before ${name}`), { code: 'ECRASH' }));
      calls.push(`${name} ${args.filter((arg): arg is string => typeof arg === 'string').map((arg) => arg.split('/').at(-1)).join(' ')}`);
      return fn(...args);
    };
  const fs: DirectoryFs = {
    mkdir: wrap('mkdir', NODE_FS.mkdir),
    writeFile: wrap('writeFile', NODE_FS.writeFile),
    syncDir: wrap('syncDir', NODE_FS.syncDir),
    symlink: wrap('symlink', NODE_FS.symlink),
    rename: wrap('rename', NODE_FS.rename),
    remove: wrap('remove', NODE_FS.remove),
    readdir: wrap('readdir', NODE_FS.readdir),
    readlink: wrap('readlink', NODE_FS.readlink),
  };
  return { fs, calls };
}

/** Fails one call (by index) with `code`, like a full disk at that moment; the others work. */
function failingFs(index: number, code: string): DirectoryFs {
  let count = 0;
  const wrap =
    <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
    (...args: A): Promise<R> =>
      count++ === index ? Promise.reject(Object.assign(new Error(code), { code })) : fn(...args);
  return {
    mkdir: wrap(NODE_FS.mkdir),
    writeFile: wrap(NODE_FS.writeFile),
    syncDir: wrap(NODE_FS.syncDir),
    symlink: wrap(NODE_FS.symlink),
    rename: wrap(NODE_FS.rename),
    remove: wrap(NODE_FS.remove),
    readdir: wrap(NODE_FS.readdir),
    readlink: wrap(NODE_FS.readlink),
  };
}

describe('crash safety', () => {
  it('ok/a crash after any step leaves the whole old set or the whole new one; a restart cleans up and writes again', async () => {
    // How many calls a whole write makes, over an existing older layout-free set.
    const probe = freshDir();
    await writeCredentialSet(probe, A);
    const counting = dyingFs(Infinity);
    await writeCredentialSet(probe, B, { fs: counting.fs });
    const total = counting.calls.length;
    expect(total).toBeGreaterThan(10);
    const commit = counting.calls.findIndex((call) => call.startsWith('rename ') && call.endsWith(` ${DATA_LINK}`));
    expect(commit).toBeGreaterThan(0);

    const outcomes: string[] = [];
    for (let limit = 0; limit <= total; limit += 1) {
      const dir = freshDir();
      await writeCredentialSet(dir, A);
      const dying = dyingFs(limit);
      const result = await writeCredentialSet(dir, B, { fs: dying.fs }).then(
        () => 'completed',
        (error: unknown) => `died (${(error as { code?: string }).code})`,
      );
      const seen = visible(dir); // throws on a mix: key.pem not the cert.pem's
      expect(seen.whole).toBe(true);
      // Before the rename of ..data: the old set; from it on: the new one.
      expect(seen.serial, `crash after ${limit} calls (${dying.calls.at(-1) ?? 'none'})`).toBe(limit <= commit ? A.serial : B.serial);
      outcomes.push(`${limit}: ${result} -> ${seen.serial === A.serial ? 'old' : 'new'}`);

      // The restart: leftovers go, and the next write works.
      await prepareOutputDir(dir);
      const versions = readdirSync(dir).filter((name) => name.startsWith('.tlsmesh-'));
      expect(versions, `leftovers after a crash at ${limit}`).toEqual([readlinkSync(join(dir, DATA_LINK))]);
      await writeCredentialSet(dir, B);
      expect(visible(dir).serial).toBe(B.serial);
    }
    expect(outcomes.filter((line) => line.endsWith('old')).length).toBe(commit + 1);
  });

  it('fail/disk full or read-only at any step before the commit: ERR_IDENTITY_FILE, old set intact, nothing left behind', async () => {
    const counting = dyingFs(Infinity);
    const probe = freshDir();
    await writeCredentialSet(probe, A);
    await writeCredentialSet(probe, B, { fs: counting.fs });
    const commit = counting.calls.findIndex((call) => call.startsWith('rename ') && call.endsWith(` ${DATA_LINK}`));
    expect(commit).toBeGreaterThan(4);
    for (let index = 0; index <= commit; index += 1) {
      for (const code of ['ENOSPC', 'EROFS']) {
        const dir = freshDir();
        const before = await writeCredentialSet(dir, A);
        const error = await writeCredentialSet(dir, B, { fs: failingFs(index, code) }).catch((e: unknown) => e);
        expect(error, `${code} at call ${index} (${counting.calls[index]})`).toMatchObject({ code: 'ERR_IDENTITY_FILE', message: expect.stringContaining(code) as unknown });
        expect((error as Error).message).toMatch(/previous files are unchanged/);
        expect(visible(dir).serial).toBe(A.serial);
        expect(readdirSync(dir).filter((name) => name.startsWith('.tlsmesh-'))).toEqual([before]);
      }
    }
  });

  it('ok/removeLeftovers removes only .tlsmesh-* entries that ..data does not name', async () => {
    const dir = freshDir();
    const version = await writeCredentialSet(dir, A);
    mkdirSync(join(dir, '.tlsmesh-20300101T000000000Z-deadbeef'));
    writeFileSync(join(dir, '.tlsmesh-link-0000'), '');
    writeFileSync(join(dir, '.other'), '');
    expect(await removeLeftovers(dir)).toEqual([]);
    expect(entries(dir)).toEqual(['.other', DATA_LINK, version, 'bundle.pem', 'cert.pem', 'key.pem'].sort());
  });
});
