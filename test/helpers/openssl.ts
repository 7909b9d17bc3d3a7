/** Running OpenSSL and GnuTLS as second implementations, in a temporary directory. */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ToolResult {
  status: number;
  output: string;
}

/** Runs a tool with files written into a fresh temp dir; returns exit status and stdout+stderr. */
export function runWithFiles(command: string, args: (dir: string) => string[], files: Record<string, string | Buffer>): ToolResult {
  const dir = mkdtempSync(join(tmpdir(), 'tlsmesh-tool-'));
  try {
    for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
    const result = spawnSync(command, args(dir), { cwd: dir, encoding: 'utf8' });
    return { status: result.status ?? -1, output: `${result.stdout}${result.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function hasCommand(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`]).status === 0;
}

/** A key and CSR made by OpenSSL (for keys and requests our own code would refuse to make). */
export function opensslCsr(keyArgs: string[], subjectAltName: string, extra: string[] = []): { csrPem: string; keyPem: string } {
  const dir = mkdtempSync(join(tmpdir(), 'tlsmesh-csr-'));
  try {
    execFileSync('openssl', [...keyArgs, '-out', join(dir, 'key.pem')], { stdio: 'pipe' });
    execFileSync('openssl', ['req', '-new', '-key', join(dir, 'key.pem'), '-subj', '/O=test', '-addext', `subjectAltName=${subjectAltName}`, ...extra, '-out', join(dir, 'csr.pem')], { stdio: 'pipe' });
    return { csrPem: execFileSync('cat', [join(dir, 'csr.pem')], { encoding: 'utf8' }), keyPem: execFileSync('cat', [join(dir, 'key.pem')], { encoding: 'utf8' }) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A self-signed certificate with a SPIFFE ID, from a CA nobody trusts. */
export function opensslSelfSigned(spiffeId: string): { certPem: string; keyPem: string } {
  const dir = mkdtempSync(join(tmpdir(), 'tlsmesh-self-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/O=stranger',
      '-addext', `subjectAltName=URI:${spiffeId}`, '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'pipe' });
    return { certPem: execFileSync('cat', [join(dir, 'cert.pem')], { encoding: 'utf8' }), keyPem: execFileSync('cat', [join(dir, 'key.pem')], { encoding: 'utf8' }) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Runs a command without blocking the event loop (needed when the server under test lives in
 * this process); resolves with exit status and output, never rejects on a non-zero exit.
 */
export function runAsync(command: string, args: string[], options: { cwd?: string; input?: string; timeoutMs?: number } = {}): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ status: code ?? -1, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}
