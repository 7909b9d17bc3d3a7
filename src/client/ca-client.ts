/**
 * A client for the CA's HTTP API, used by the CLI (and later the agent). It trusts only the given
 * bundle and accepts only a server whose certificate names `spiffe://<trust-domain>/tlsmesh/ca`,
 * whatever host name or address it was reached by. Connections are kept alive and reused.
 */
import { Agent, request as httpsRequest } from 'node:https';
import { ERROR_REGISTRY, TlsmeshError, type ErrorCode } from '../errors.js';
import { expectSpiffeId } from '../pki/index.js';

export interface CaClientOptions {
  /** `https://host:port` of the CA. */
  url: string;
  /** PEM roots to trust for the CA's server certificate. */
  bundlePem: string;
  trustDomain: string;
  /** Client chain and key, for renewal and admin routes. */
  certPem?: string | undefined;
  keyPem?: string | undefined;
  timeoutMs?: number | undefined;
  /** Sockets kept open to the CA (benchmarks raise it). */
  maxSockets?: number | undefined;
}

export interface IssuedResponse {
  serial: string;
  spiffeId: string;
  dnsNames: string[];
  ipAddresses: string[];
  notBefore: string;
  notAfter: string;
  certificatePem: string;
  bundlePem: string;
}

export interface CertificateSummary {
  serial: string;
  spiffeId: string;
  dnsNames: string[];
  ipAddresses: string[];
  kind: string;
  status: string;
  notBefore: string;
  notAfter: string;
  revokedAt: string | null;
  revocationReason: string | null;
  issuerKeyId: string;
  origin: string;
}

export interface TokenResponse {
  token: string;
  jti: string;
  spiffeId: string;
  expiresAt: string;
}

const isErrorCode = (code: unknown): code is ErrorCode => typeof code === 'string' && code in ERROR_REGISTRY;

export class CaClient {
  private readonly agent: Agent;
  private readonly base: URL;
  private readonly timeoutMs: number;

  constructor(options: CaClientOptions) {
    this.base = new URL(options.url);
    if (this.base.protocol !== 'https:') throw new TlsmeshError('ERR_CONFIG', `the CA URL must be https:// (got ${options.url})`);
    this.timeoutMs = options.timeoutMs ?? 15_000;
    this.agent = new Agent({
      keepAlive: true,
      maxSockets: options.maxSockets ?? 8,
      ca: options.bundlePem,
      ...(options.certPem !== undefined ? { cert: options.certPem } : {}),
      ...(options.keyPem !== undefined ? { key: options.keyPem } : {}),
      minVersion: 'TLSv1.2',
      checkServerIdentity: expectSpiffeId(`spiffe://${options.trustDomain}/tlsmesh/ca`),
    });
  }

  enroll(token: string, csrPem: string): Promise<IssuedResponse> {
    return this.call('POST', '/v1/enroll', { token, csr: csrPem });
  }

  renew(csrPem: string): Promise<IssuedResponse> {
    return this.call('POST', '/v1/renew', { csr: csrPem });
  }

  async bundle(): Promise<string> {
    return this.call<string>('GET', '/v1/bundle');
  }

  createToken(request: { spiffeId: string; dnsNames?: string[]; ipAddresses?: string[]; ttlSeconds?: number }): Promise<TokenResponse> {
    return this.call('POST', '/v1/tokens', request);
  }

  listCertificates(query: Record<string, string | number | undefined> = {}): Promise<{ certificates: CertificateSummary[] }> {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, String(value));
    const suffix = params.size > 0 ? `?${params.toString()}` : '';
    return this.call('GET', `/v1/certs${suffix}`);
  }

  revoke(request: { serial?: string; spiffeId?: string; reason?: string }): Promise<{ revoked: CertificateSummary[] }> {
    return this.call('POST', '/v1/revoke', request);
  }

  status(): Promise<Record<string, unknown>> {
    return this.call('GET', '/v1/status');
  }

  close(): void {
    this.agent.destroy();
  }

  private call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise<T>((resolve, reject) => {
      const req = httpsRequest(
        new URL(path, this.base),
        {
          method,
          agent: this.agent,
          timeout: this.timeoutMs,
          headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const isJson = (res.headers['content-type'] ?? '').startsWith('application/json');
            let parsed: unknown = text;
            if (isJson) {
              try {
                parsed = JSON.parse(text);
              } catch (cause) {
                reject(new TlsmeshError('ERR_CA_UNREACHABLE', `the CA answered ${res.statusCode} with invalid JSON`, { cause }));
                return;
              }
            }
            if ((res.statusCode ?? 500) >= 400) {
              const error = (parsed as { error?: { code?: unknown; message?: unknown } }).error;
              const code = isErrorCode(error?.code) ? error.code : 'ERR_CA_UNREACHABLE';
              reject(new TlsmeshError(code, typeof error?.message === 'string' ? error.message : `the CA answered HTTP ${res.statusCode}`));
              return;
            }
            resolve(parsed as T);
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer from the CA within ${this.timeoutMs} ms`)));
      req.on('error', (cause: Error & { code?: string }) => {
        reject(new TlsmeshError('ERR_CA_UNREACHABLE', `cannot reach the CA at ${this.base.origin}: ${cause.message}`, { cause }));
      });
      req.end(payload);
    });
  }
}
