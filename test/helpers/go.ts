/**
 * The grpc-go interop programs in test/interop/go, built offline from Debian's packaged sources
 * (golang-go + golang-google-grpc-dev) and run as child processes.
 *
 * Build: GOPATH mode (GO111MODULE=off) with GOPATH=/usr/share/gocode, where Debian installs the
 * grpc, x/net, genproto and protobuf sources; no module download is possible or attempted
 * (GOPROXY=off, GOFLAGS cleared so a user's -mod=… cannot switch modules back on). CGO is off so
 * no C compiler is needed. Binaries go to a temp directory named after a hash of the Go sources,
 * the Go version and the grpc version, so test files share one build and a changed source rebuilds.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runAsync } from './openssl.js';

const GO_SOURCES = join(dirname(fileURLToPath(import.meta.url)), '..', 'interop', 'go');
const GOPATH = '/usr/share/gocode';
const GRPC_VERSION_FILE = join(GOPATH, 'src', 'google.golang.org', 'grpc', 'version.go');
const PROGRAMS = ['server', 'client'] as const;

export type GoStatus = { ok: true } | { ok: false; reason: string };

/**
 * Whether the Go toolchain and grpc sources are installed. Missing tools skip the interop tests
 * with this reason, except in CI (`CI=true`), where they are a failure: CI must install them.
 */
export function goInteropStatus(): GoStatus {
  const status = findProblem();
  if (status.ok) return status;
  if (process.env['CI'] === 'true') throw new Error(`grpc-go interop cannot run in CI: ${status.reason}`);
  // The default reporter does not print why a suite was skipped; this line does.
  console.warn(`grpc-go interop tests skipped: ${status.reason}`);
  return status;
}

function findProblem(): GoStatus {
  if (spawnSync('go', ['version']).status !== 0) return { ok: false, reason: '`go` is not installed (apt: golang-go)' };
  if (!existsSync(GRPC_VERSION_FILE)) return { ok: false, reason: `no grpc-go sources in ${GOPATH} (apt: golang-google-grpc-dev)` };
  return { ok: true };
}

function goEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    GO111MODULE: 'off',
    GOPATH,
    GOFLAGS: '',
    GOPROXY: 'off',
    CGO_ENABLED: '0',
    // Outside HOME, so a CI user without one (or a read-only one) can still build.
    GOCACHE: join(tmpdir(), 'tlsmesh-go-cache'),
  };
}

/** Builds (or reuses) the server and client binaries; returns their paths. */
export function buildGoInterop(): { server: string; client: string } {
  const hash = createHash('sha256');
  hash.update(spawnSync('go', ['version'], { encoding: 'utf8' }).stdout);
  hash.update(readFileSync(GRPC_VERSION_FILE));
  for (const program of PROGRAMS) {
    for (const file of readdirSync(join(GO_SOURCES, program)).sort()) hash.update(file).update(readFileSync(join(GO_SOURCES, program, file)));
  }
  const binDir = join(tmpdir(), `tlsmesh-go-interop-${hash.digest('hex').slice(0, 16)}`);
  const paths = { server: join(binDir, 'server'), client: join(binDir, 'client') };
  if (existsSync(paths.server) && existsSync(paths.client)) return paths;

  // Build into a private directory and rename it into place, so two test files building at the
  // same time never see a half-written binary.
  const staging = mkdtempSync(`${binDir}.staging-`);
  for (const program of PROGRAMS) {
    const result = spawnSync('go', ['build', '-o', join(staging, program), '.'], { cwd: join(GO_SOURCES, program), env: goEnv(), encoding: 'utf8' });
    if (result.status !== 0) {
      rmSync(staging, { recursive: true, force: true });
      throw new Error(`go build ${program} failed:\n${result.stdout}${result.stderr}`);
    }
  }
  try {
    renameSync(staging, binDir);
  } catch {
    rmSync(staging, { recursive: true, force: true }); // another worker won the race
  }
  return paths;
}

/** A directory holding cert.pem, key.pem and bundle.pem, the layout the tlsmesh agent writes. */
export function writeCredentialDir(files: { certPem?: string; keyPem?: string; bundlePem: string }): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'tlsmesh-go-creds-'));
  writeCredentials(dir, files);
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Rewrites the files the way the agent does (write aside, rename over), for the Go server's per-handshake read. */
export function writeCredentials(dir: string, files: { certPem?: string; keyPem?: string; bundlePem: string }): void {
  const entries: [string, string | undefined][] = [['key.pem', files.keyPem], ['cert.pem', files.certPem], ['bundle.pem', files.bundlePem]];
  for (const [name, content] of entries) {
    if (content === undefined) continue;
    writeFileSync(join(dir, `${name}.tmp`), content);
    renameSync(join(dir, `${name}.tmp`), join(dir, name));
  }
}

export interface GoServer {
  /** host:port it listens on. */
  address: string;
  /** Every "peer <spiffe-id> <method>" line it printed so far, as [id, method]. */
  peers(): [string, string][];
  /**
   * Waits until at least `count` peer lines have arrived (the server prints them before answering,
   * but its stdout reaches us on its own schedule); rejects if the server exits first.
   */
  waitForPeers(count: number): Promise<[string, string][]>;
  output(): string;
  close(): Promise<void>;
}

/** Starts the grpc-go health server on 127.0.0.1 with a free port; resolves once it listens. */
export function startGoServer(binary: string, dir: string): Promise<GoServer> {
  const child: ChildProcessWithoutNullStreams = spawn(binary, ['-dir', dir, '-listen', '127.0.0.1:0']);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const peers = () => [...stdout.matchAll(/^peer (\S+) (\S+)$/gm)].map((m): [string, string] => [m[1] as string, m[2] as string]);

  // Resolves with the value once `read()` gives one, on each stdout chunk; rejects if the server exits first.
  const waitFor = <T>(read: () => T | undefined, what: string): Promise<T> =>
    new Promise((resolve, reject) => {
      const stop = () => {
        child.stdout.off('data', check);
        child.off('exit', onExit);
        child.off('error', onExit);
      };
      const check = () => {
        const value = read();
        if (value === undefined) return;
        stop();
        resolve(value);
      };
      const onExit = () => {
        stop();
        reject(new Error(`grpc-go server exited before ${what}:\n${stdout}${stderr}`));
      };
      child.stdout.on('data', check);
      child.once('exit', onExit);
      child.once('error', onExit);
      if (child.exitCode !== null) onExit();
      else check();
    });

  return waitFor(() => /^listening (\S+)$/m.exec(stdout)?.[1], 'listening').then((address) => ({
    address,
    peers,
    waitForPeers: (count) => waitFor(() => (peers().length >= count ? peers() : undefined), `printing ${count} peers`),
    output: () => `${stdout}${stderr}`,
    close: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  }));
}

/** Runs the grpc-go client: `-n` Health/Check calls to `address`, expecting the server's SPIFFE ID. */
export function runGoClient(
  binary: string,
  options: { address: string; dir: string; expect: string; count?: number; noCert?: boolean },
): Promise<{ status: number; stdout: string; stderr: string }> {
  const args = ['-addr', options.address, '-dir', options.dir, '-expect', options.expect, '-n', String(options.count ?? 1)];
  if (options.noCert === true) args.push('-no-cert');
  return runAsync(binary, args, { timeoutMs: 30_000 });
}
