/**
 * Shared helpers for the src/pki tests: coded-error assertions, cached test keys, temp dirs,
 * OpenSSL/GnuTLS runners and @peculiar/x509 set up as the oracle.
 *
 * The oracle is configured here, independently of src/pki/x509-library.ts, so the tests never
 * lean on the code under test to build what they compare against.
 */
import { inspect } from 'node:util';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { execFileSync } from 'node:child_process';
import { webcrypto } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TlsmeshError, type ErrorCode } from '../../src/errors.js';
import { createIntermediateCertificate, createRootCertificate } from '../../src/pki/authority-certificates.js';
import { generateKeyPair, type KeyPair } from '../../src/pki/keys.js';
import { randomSerial } from '../../src/pki/serial.js';

// ---------------------------------------------------------------------------------------------
// Coded errors

/** Runs `fn` and returns the TlsmeshError it throws; fails the test if it returns or throws anything else. */
export function thrownBy(fn: () => unknown): TlsmeshError {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  if (!(thrown instanceof TlsmeshError)) {
    throw new Error(`expected a TlsmeshError, got ${thrown === undefined ? 'no error' : inspect(thrown)}`, { cause: thrown });
  }
  return thrown;
}

export function expectCode(fn: () => unknown, code: ErrorCode): void {
  expect(thrownBy(fn).code).toBe(code);
}

export async function expectCodeAsync(promise: Promise<unknown>, code: ErrorCode): Promise<void> {
  let thrown: unknown;
  try {
    await promise;
  } catch (error) {
    thrown = error;
  }
  if (!(thrown instanceof TlsmeshError)) {
    throw new Error(`expected a TlsmeshError ${code}, got ${thrown === undefined ? 'no error' : inspect(thrown)}`, { cause: thrown });
  }
  expect(thrown.code).toBe(code);
}

// ---------------------------------------------------------------------------------------------
// Keys

/** The key types the profile tests exercise for CAs and leaves. */
export const KEY_TYPES_UNDER_TEST = ['p256', 'p384', 'ed25519', 'rsa2048'] as const;
export type TestKeyType = (typeof KEY_TYPES_UNDER_TEST)[number];

const keyCache = new Map<string, KeyPair>();

/** A key pair per (type, slot), generated once per test file: RSA generation is slow. */
export function testKey(type: TestKeyType, slot = 0): KeyPair {
  const id = `${type}/${slot}`;
  let pair = keyCache.get(id);
  if (pair === undefined) {
    pair = generateKeyPair(type);
    keyCache.set(id, pair);
  }
  return pair;
}

// ---------------------------------------------------------------------------------------------
// PEM (written here rather than taken from src/pki/pem.ts, so files fed to OpenSSL do not depend on it)

export function pem(der: Buffer, label: string): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

// ---------------------------------------------------------------------------------------------
// Temp dirs and external tools

export interface Scratch {
  readonly dir: string;
  /** Writes a file in the dir and returns its path. */
  write(name: string, data: string | Buffer): string;
  read(name: string): Buffer;
  remove(): void;
}

export function scratchDir(): Scratch {
  const dir = mkdtempSync(join(tmpdir(), 'tlsmesh-pki-'));
  return {
    dir,
    write(name, data) {
      const path = join(dir, name);
      writeFileSync(path, data);
      return path;
    },
    read(name) {
      return readFileSync(join(dir, name));
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs a command; a non-zero exit is returned, not thrown (tests assert on it). */
export function run(command: string, args: readonly string[], cwd: string): RunResult {
  try {
    const stdout = execFileSync(command, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return { status: 0, stdout, stderr: '' };
  } catch (error) {
    const failed = error as { status?: number | null; stdout?: string; stderr?: string };
    if (typeof failed.status !== 'number') throw error; // could not start the command at all
    return { status: failed.status, stdout: String(failed.stdout ?? ''), stderr: String(failed.stderr ?? '') };
  }
}

/** Runs openssl for test setup; any failure fails the test with openssl's own message. */
export function openssl(args: readonly string[], cwd: string): string {
  const result = run('openssl', args, cwd);
  if (result.status !== 0) throw new Error(`openssl ${args.join(' ')} failed (${result.status}): ${result.stderr}${result.stdout}`);
  return result.stdout;
}

function commandAvailable(command: string, args: readonly string[]): boolean {
  try {
    execFileSync(command, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export const certtoolAvailable = commandAvailable('certtool', ['--version']);

/**
 * A describe block that needs GnuTLS `certtool`. Without it the block is skipped with the reason
 * in the test name, except under CI=true, where it fails: CI must never pass by skipping GnuTLS.
 */
export function describeCerttool(name: string, body: () => void): void {
  describe(name, () => {
    if (!certtoolAvailable) {
      const reason = 'GnuTLS certtool is not installed (apt-get install gnutls-bin)';
      if (process.env['CI'] === 'true') {
        it(`certtool is required under CI: ${reason}`, () => {
          throw new Error(`CI requires certtool: ${reason}`);
        });
        return;
      }
      it.skip(`skipped: ${reason}`, () => {});
      return;
    }
    body();
  });
}

// ---------------------------------------------------------------------------------------------
// The @peculiar/x509 oracle

let oracleReady = false;

export function oracle(): typeof x509 {
  if (!oracleReady) {
    x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
    oracleReady = true;
  }
  return x509;
}

/**
 * WebCrypto parameters each CA key type must sign with, written out here as the expectation
 * (ECDSA uses the curve's matching SHA-2; RSA is PKCS#1 v1.5 with SHA-256).
 */
export const ORACLE_SIGNING: Readonly<Record<TestKeyType, webcrypto.EcKeyImportParams | webcrypto.RsaHashedImportParams | webcrypto.Algorithm>> = {
  p256: { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' },
  p384: { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' },
  ed25519: { name: 'Ed25519' },
  rsa2048: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
};

export async function oracleSigningKey(type: TestKeyType, pair: KeyPair): Promise<webcrypto.CryptoKey> {
  return webcrypto.subtle.importKey('pkcs8', pair.privateKey.export({ format: 'der', type: 'pkcs8' }), ORACLE_SIGNING[type], false, ['sign']);
}

// ---------------------------------------------------------------------------------------------
// A CA made with the real root/intermediate builders

export interface CaFixture {
  trustDomain: string;
  rootDer: Buffer;
  rootKey: KeyPair;
  intermediateDer: Buffer;
  intermediateKey: KeyPair;
  intermediateType: TestKeyType;
  notBefore: Date;
  notAfter: Date;
}

/** Validity around the real clock (OpenSSL and GnuTLS check against it), whole seconds. */
export function validityAroundNow(): { notBefore: Date; notAfter: Date } {
  const now = Math.floor(Date.now() / 1000) * 1000;
  return { notBefore: new Date(now - 5 * 60_000), notAfter: new Date(now + 24 * 3600_000) };
}

export async function makeCa(rootType: TestKeyType, intermediateType: TestKeyType, trustDomain = 'example.org'): Promise<CaFixture> {
  const { notBefore, notAfter } = validityAroundNow();
  const rootKey = testKey(rootType, 1);
  const intermediateKey = testKey(intermediateType, 2);
  const rootDer = await createRootCertificate({ trustDomain, privateKey: rootKey.privateKey, serial: randomSerial(), notBefore, notAfter });
  const intermediateDer = await createIntermediateCertificate({
    trustDomain,
    publicKey: intermediateKey.publicKey,
    label: 'g1',
    issuerCertDer: rootDer,
    issuerPrivateKey: rootKey.privateKey,
    serial: randomSerial(),
    notBefore,
    notAfter,
  });
  return { trustDomain, rootDer, rootKey, intermediateDer, intermediateKey, intermediateType, notBefore, notAfter };
}
