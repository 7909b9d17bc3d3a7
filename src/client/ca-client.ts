/**
 * A client for the CA's HTTP API, used by the CLI (and later the agent). It trusts only the given
 * bundle and accepts only a server whose certificate names `spiffe://<trust-domain>/tlsmesh/ca`,
 * whatever host name or address it was reached by. Connections are kept alive and reused.
 */
import { Agent, request as httpsRequest, type AgentOptions } from 'node:https';
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

/** A PEM document the CA serves (CRLs, the bundle) with the ETag that names this version. */
export interface PemDocument {
  pem: string;
  etag: string;
}

/** A watch event carries every CRL; a 100,000-entry CRL is ~4 MB in DER, ~5.5 MB in PEM. */
const MAX_EVENT_BYTES = 64 * 1024 * 1024;

const isErrorCode = (code: unknown): code is ErrorCode => typeof code === 'string' && code in ERROR_REGISTRY;

export class CaClient {
  private readonly agent: Agent;
  private readonly agentOptions: AgentOptions;
  private readonly base: URL;
  private readonly timeoutMs: number;

  constructor(options: CaClientOptions) {
    this.base = new URL(options.url);
    if (this.base.protocol !== 'https:') throw new TlsmeshError('ERR_CONFIG', `the CA URL must be https:// (got ${options.url})`);
    this.timeoutMs = options.timeoutMs ?? 15_000;
    this.agentOptions = {
      ca: options.bundlePem,
      ...(options.certPem !== undefined ? { cert: options.certPem } : {}),
      ...(options.keyPem !== undefined ? { key: options.keyPem } : {}),
      minVersion: 'TLSv1.2',
      checkServerIdentity: expectSpiffeId(`spiffe://${options.trustDomain}/tlsmesh/ca`),
    };
    this.agent = new Agent({ ...this.agentOptions, keepAlive: true, maxSockets: options.maxSockets ?? 8 });
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

  /**
   * Every CRL a relying party needs (the root's and the intermediate's), PEM. With the ETag of
   * the last answer, 'not-modified' when nothing changed (a poll costs a few bytes).
   */
  fetchCrls(etag?: string): Promise<PemDocument | 'not-modified'> {
    return this.fetchPem('/v1/crl', etag, 'CRLs');
  }

  /** The trust bundle (every root in use), PEM, with its ETag; 'not-modified' as for fetchCrls. */
  fetchBundle(etag?: string): Promise<PemDocument | 'not-modified'> {
    return this.fetchPem('/v1/bundle', etag, 'trust bundle');
  }

  /**
   * Follows the CA's CRL watch stream (server-sent events): `onCrls` gets the current CRLs at
   * once and again each time they change; `onEnd` when the stream ends or fails (then poll with
   * `fetchCrls` and watch again later). Returns a function that closes the stream.
   */
  watchCrls(onCrls: (crls: PemDocument) => void, onEnd: (error?: Error) => void): () => void {
    return this.watchPem('/v1/crl?watch=1', 'CRL', onCrls, onEnd);
  }

  /** The same for the trust bundle: it changes when a CA rotation adds or retires a root. */
  watchBundle(onBundle: (bundle: PemDocument) => void, onEnd: (error?: Error) => void): () => void {
    return this.watchPem('/v1/bundle?watch=1', 'bundle', onBundle, onEnd);
  }

  private fetchPem(path: string, etag: string | undefined, what: string): Promise<PemDocument | 'not-modified'> {
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        new URL(path, this.base),
        { agent: this.agent, timeout: this.timeoutMs, headers: { accept: 'application/x-pem-file', ...(etag !== undefined ? { 'if-none-match': etag } : {}) } },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_EVENT_BYTES) req.destroy(new Error(`the CA's ${what} are larger than ${MAX_EVENT_BYTES} bytes`));
            else chunks.push(chunk);
          });
          res.on('error', reject);
          res.on('end', () => {
            if (res.statusCode === 304) return resolve('not-modified');
            if (res.statusCode !== 200) return reject(new TlsmeshError('ERR_CA_UNREACHABLE', `the CA answered HTTP ${res.statusCode} for its ${what}`));
            resolve({ pem: Buffer.concat(chunks).toString('utf8'), etag: String(res.headers.etag ?? '') });
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer from the CA within ${this.timeoutMs} ms`)));
      req.on('error', (cause: Error) => reject(new TlsmeshError('ERR_CA_UNREACHABLE', `cannot reach the CA at ${this.base.origin}: ${cause.message}`, { cause })));
      req.end();
    });
  }

  private watchPem(path: string, event: string, onDocument: (document: PemDocument) => void, onEnd: (error?: Error) => void): () => void {
    let ended = false;
    const end = (error?: Error): void => {
      if (ended) return;
      ended = true;
      onEnd(error);
    };
    // Its own connection: a stream that never ends must not hold one of the pool's sockets.
    const req = httpsRequest(new URL(path, this.base), { agent: this.streamAgent(), headers: { accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        end(new TlsmeshError('ERR_CA_UNREACHABLE', `the CA answered HTTP ${res.statusCode} to a ${event} watch`));
        return;
      }
      res.setEncoding('utf8');
      let buffer = '';
      res.on('data', (chunk: string) => {
        buffer += chunk;
        if (buffer.length > MAX_EVENT_BYTES) {
          req.destroy(new Error(`a ${event} watch event is larger than the limit`));
          return;
        }
        let boundary: number;
        while ((boundary = buffer.indexOf('\n\n')) >= 0) {
          const text = buffer.slice(0, boundary);
          buffer = buffer.slice(boundary + 2);
          const data = text.split('\n').filter((line) => line.startsWith('data: ')).map((line) => line.slice(6)).join('\n');
          if (data === '') continue; // a heartbeat comment
          try {
            const parsed = JSON.parse(data) as { pem?: unknown; etag?: unknown };
            if (typeof parsed.pem === 'string' && typeof parsed.etag === 'string') onDocument({ pem: parsed.pem, etag: parsed.etag });
          } catch (cause) {
            req.destroy(new Error(`the CA sent a ${event} watch event that is not JSON`, { cause }));
            return;
          }
        }
      });
      res.on('end', () => end());
      res.on('error', (error) => end(error));
    });
    req.on('error', (cause: Error) => end(new TlsmeshError('ERR_CA_UNREACHABLE', `${event} watch to ${this.base.origin} failed: ${cause.message}`, { cause })));
    req.end();
    return () => {
      req.destroy();
      end();
    };
  }

  close(): void {
    this.agent.destroy();
    this.#streamAgent?.destroy();
  }

  #streamAgent: Agent | undefined;
  private streamAgent(): Agent {
    this.#streamAgent ??= new Agent({ ...this.agentOptions, keepAlive: false, maxSockets: Infinity });
    return this.#streamAgent;
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
