/**
 * The third-party servers of the probe tests, each started by the test itself on 127.0.0.1:
 * `openssl s_server`, nginx (foreground, its own prefix, config and logs in a temp dir) and a Go
 * HTTPS server (test/probe/go/mtls-server, built offline in GOPATH mode).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, NGINX, runs, startServerProcess, toolStatus, type ServerProcess, type ToolStatus } from './tools.js';

// ---- openssl s_server ---------------------------------------------------------------------------

export const opensslStatus = (): ToolStatus => toolStatus('openssl s_server', () => (runs('openssl', ['version']) ? undefined : '`openssl` is not installed (apt: openssl)'));

/** `openssl s_server -www` with the given flags; it prints the port it bound ("ACCEPT 127.0.0.1:PORT"). */
export function startOpensslServer(flags: string[]): Promise<ServerProcess> {
  return startServerProcess('openssl', ['s_server', '-accept', '127.0.0.1:0', '-www', ...flags], { pattern: /ACCEPT 127\.0\.0\.1:(\d+)/ });
}

// ---- nginx --------------------------------------------------------------------------------------

export const nginxStatus = (): ToolStatus =>
  toolStatus('nginx', () => (runs(NGINX, ['-v']) ? undefined : `nginx is not installed at ${NGINX} (apt: nginx-light)`));

/**
 * nginx in the foreground with one TLS server block whose directives are `tls` (certificate,
 * client verification, protocols…), answering `return 200 "ok"`. `master_process off` keeps it
 * one process that never switches user, so it runs the same as root and as an unprivileged user.
 */
export async function startNginx(tls: string[]): Promise<ServerProcess> {
  for (let attempt = 1; ; attempt++) {
    const dir = mkdtempSync(join(tmpdir(), 'tlsmesh-probe-nginx-'));
    const port = await freePort();
    const config = [
      'daemon off;',
      'master_process off;',
      'worker_processes 1;',
      `pid ${dir}/nginx.pid;`,
      `error_log ${dir}/error.log info;`,
      'events { worker_connections 64; }',
      'http {',
      '  access_log off;',
      ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((kind) => `  ${kind}_temp_path ${dir}/${kind}_temp;`),
      '  server {',
      `    listen 127.0.0.1:${port} ssl;`,
      ...tls.map((line) => `    ${line}`),
      '    location / { return 200 "ok"; }',
      '  }',
      '}',
    ].join('\n');
    writeFileSync(join(dir, 'nginx.conf'), config);
    try {
      const server = await startServerProcess(NGINX, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], { port });
      return {
        ...server,
        output: () => `${server.output()}${existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8') : ''}`,
        close: async () => {
          await server.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    } catch (error) {
      const log = existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8') : '';
      rmSync(dir, { recursive: true, force: true });
      // Another process may have taken the port between freePort() and nginx's bind.
      if (attempt < 3 && /Address already in use/.test(`${String(error)}${log}`)) continue;
      throw new Error(`${String(error)}\n${log}`, { cause: error });
    }
  }
}

// ---- Go ----------------------------------------------------------------------------------------

const GO_SOURCE = join(dirname(fileURLToPath(import.meta.url)), '..', 'go', 'mtls-server');

export const goStatus = (): ToolStatus => toolStatus('Go', () => (runs('go', ['version']) ? undefined : '`go` is not installed (apt: golang-go)'));

/**
 * Builds the Go server once per source and Go version (standard library only, so GOPATH mode
 * with no module download), into a temp dir named by their hash; concurrent builds rename into
 * place, so nobody runs a half-written binary.
 */
export function buildGoServer(): string {
  const hash = createHash('sha256').update(spawnSync('go', ['version'], { encoding: 'utf8' }).stdout).update(readFileSync(join(GO_SOURCE, 'main.go')));
  const binDir = join(tmpdir(), `tlsmesh-probe-go-${hash.digest('hex').slice(0, 16)}`);
  const binary = join(binDir, 'mtls-server');
  if (existsSync(binary)) return binary;
  const staging = mkdtempSync(`${binDir}.staging-`);
  const result = spawnSync('go', ['build', '-o', join(staging, 'mtls-server'), '.'], {
    cwd: GO_SOURCE,
    encoding: 'utf8',
    env: { ...process.env, GO111MODULE: 'off', GOFLAGS: '', GOPROXY: 'off', CGO_ENABLED: '0', GOPATH: '/usr/share/gocode', GOCACHE: join(tmpdir(), 'tlsmesh-go-cache') },
  });
  if (result.status !== 0) {
    rmSync(staging, { recursive: true, force: true });
    throw new Error(`go build test/probe/go/mtls-server failed:\n${result.stdout}${result.stderr}`);
  }
  try {
    renameSync(staging, binDir);
  } catch {
    rmSync(staging, { recursive: true, force: true }); // another worker built it first
  }
  return binary;
}

export interface GoServerFlags {
  clientAuth: 'none' | 'request' | 'require-any' | 'verify-if-given' | 'require-and-verify';
  clientCas: boolean;
  minVersion: '1.0' | '1.1' | '1.2' | '1.3';
  ciphers: 'aead' | 'default';
  /** Refuse the CRL's serials (Go's crypto/tls never checks revocation itself). */
  crl: boolean;
}

export const GO_CORRECT: GoServerFlags = { clientAuth: 'require-and-verify', clientCas: true, minVersion: '1.2', ciphers: 'aead', crl: true };

export function startGoServer(binary: string, files: { serverCert: string; serverKey: string; bundle: string; crl: string }, flags: GoServerFlags): Promise<ServerProcess> {
  return startServerProcess(
    binary,
    [
      '-cert', files.serverCert,
      '-key', files.serverKey,
      '-bundle', files.bundle,
      ...(flags.crl ? ['-crl', files.crl] : []),
      '-client-auth', flags.clientAuth,
      `-client-cas=${flags.clientCas}`,
      '-min-version', flags.minVersion,
      '-ciphers', flags.ciphers,
    ],
    { pattern: /^listening 127\.0\.0\.1:(\d+)$/m },
  );
}
