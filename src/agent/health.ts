/**
 * The agent's health endpoint: `GET /healthz` answers the agent's status as JSON, 200 while the
 * workload holds a usable certificate (ok, or expiring while renewal is retried) and 503 when it
 * is expired, revoked or not there yet; `GET /metrics` serves its Prometheus metrics when given.
 *
 * Plain HTTP on a loopback address only, unless the operator says otherwise: the answer names the
 * workload's identity, its serial and the last error, and HTTP gives a network attacker no
 * assurance of who answers. A kubelet probe comes from outside the pod's loopback, so Kubernetes
 * needs `allowNonLoopback` (`--health-listen-any`) with a NetworkPolicy, or an exec probe.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isIP } from 'node:net';
import { TlsmeshError } from '../errors.js';
import { canonicalIp } from '../pki/index.js';
import type { AgentStatus } from './agent.js';
import { healthHttpStatus } from './schedule.js';
import type { TlsmeshMetrics } from '../observe/metrics.js';

export interface HealthListen {
  host: string;
  port: number;
}

export interface HealthServerOptions extends HealthListen {
  /** Listen on an address other than loopback (default false: refused). */
  allowNonLoopback?: boolean | undefined;
  /** Served at GET /metrics (Prometheus text format) beside /healthz. */
  metrics?: TlsmeshMetrics | undefined;
}

export interface HealthServer {
  /** `http://host:port` actually listened on (port 0 picks a free one). */
  url: string;
  close(): Promise<void>;
}

/** HOST:PORT or [IPv6]:PORT; throws ERR_CONFIG naming `key`. */
export function parseHealthListen(value: string, key = 'health listen address'): HealthListen {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) throw new TlsmeshError('ERR_CONFIG', `${key} must be HOST:PORT, e.g. 127.0.0.1:9180 (got "${value}")`);
  return { host: match[1] ?? match[2]!, port };
}

/** 127.0.0.0/8, ::1, ::ffff:127.x.y.z and `localhost`. */
export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost') return true;
  const v4 = host.toLowerCase().startsWith('::ffff:') ? host.slice(7) : host;
  if (isIP(v4) === 4) return v4.startsWith('127.');
  return isIP(host) === 6 && !host.includes('%') && canonicalIp(host) === '::1';
}

/** Starts the endpoint; `status` is asked on every request. */
export async function startHealthServer(source: { status(): AgentStatus }, options: HealthServerOptions): Promise<HealthServer> {
  if (!isLoopbackHost(options.host) && options.allowNonLoopback !== true) {
    throw new TlsmeshError(
      'ERR_CONFIG',
      `the health endpoint would listen on ${options.host}, which is not a loopback address: it is plain HTTP and shows the identity, serial and last error; pass --health-listen-any (health.listenAny) to allow it`,
    );
  }
  const metrics = options.metrics;
  // tlsmesh-audit-ignore node/plaintext-server: /healthz and /metrics only, loopback unless --health-listen-any (see the top of this file)
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (path !== '/healthz' && (path !== '/metrics' || metrics === undefined)) {
      response.writeHead(404, { 'content-type': 'application/json' }).end(`{"error":"not found: GET /healthz${metrics ? ' or /metrics' : ''}"}\n`);
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'application/json' }).end('{"error":"method not allowed"}\n');
      return;
    }
    if (path === '/metrics') {
      metrics!.exposition().then(
        (text) => {
          response.writeHead(200, { 'content-type': metrics!.contentType, 'cache-control': 'no-store' });
          response.end(request.method === 'HEAD' ? undefined : text);
        },
        () => response.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"metrics unavailable"}\n'),
      );
      return;
    }
    const status = source.status();
    const body = `${JSON.stringify(status)}\n`;
    response.writeHead(healthHttpStatus(status.status), { 'content-type': 'application/json', 'cache-control': 'no-store' });
    response.end(request.method === 'HEAD' ? undefined : body);
  });
  server.requestTimeout = 5_000;
  server.headersTimeout = 5_000;
  server.listen(options.port, options.host);
  try {
    await once(server, 'listening');
  } catch (cause) {
    throw new TlsmeshError('ERR_CONFIG', `the health endpoint cannot listen on ${options.host}:${options.port}: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`, { cause });
  }
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
