/** Shared pieces for the SDK tests: a real CA, workload identities, captured logs, listening servers. */
import { once } from 'node:events';
import type { Server as HttpServer } from 'node:http';
import type { Http2SecureServer, Http2Session } from 'node:http2';
import type { Server as NetServer } from 'node:net';
import { request as httpsRequest, type Agent } from 'node:https';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { createLogger, type Logger } from '../../src/observe/logger.js';
import type { IdentityMaterial } from '../../src/sdk/identity.js';
import { csrFor, enrollWorkload, TRUST_DOMAIN, type TestCa } from '../helpers/ca.js';

export const DAY_MS = 24 * 3600_000;

/** A fresh certificate for `spiffeId` from the test CA, as identity material. */
export async function materialFor(ca: TestCa, spiffeId: string, sans: { dnsNames?: string[]; ipAddresses?: string[] } = {}): Promise<IdentityMaterial & { serial: string }> {
  const workload = await enrollWorkload(ca, spiffeId, sans);
  workload.client.close();
  return { certPem: workload.certPem, keyPem: workload.keyPem, bundlePem: ca.bundlePem, serial: workload.serial };
}

/**
 * A certificate that expired a day ago: issued on a CA clock moved two days back. The token comes
 * straight from the authority, because the admin's own certificate is not valid yet on that clock.
 */
export async function expiredMaterialFor(ca: TestCa, spiffeId: string): Promise<IdentityMaterial & { serial: string }> {
  ca.clockOffsetMs = -2 * DAY_MS;
  try {
    const { token } = await ca.running.authority.createToken({ spiffeId }, { spiffeId: `spiffe://${TRUST_DOMAIN}/tlsmesh/admin`, peer: 'test' });
    const { csr, keyPem } = await csrFor(spiffeId);
    const issued = await ca.anonymous.enroll(token, csr);
    return { certPem: issued.certificatePem, keyPem, bundlePem: ca.bundlePem, serial: issued.serial };
  } finally {
    ca.clockOffsetMs = 0;
  }
}

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** A logger whose JSON lines are kept, with a way to wait for one. */
export function capturedLogger(): { logger: Logger; lines: LogLine[]; next(predicate: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine> } {
  const lines: LogLine[] = [];
  const waiters: { predicate: (line: LogLine) => boolean; resolve: (line: LogLine) => void }[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const text of chunk.toString('utf8').split('\n').filter(Boolean)) {
        const line = JSON.parse(text) as LogLine;
        lines.push(line);
        for (const waiter of [...waiters]) {
          if (waiter.predicate(line)) {
            waiters.splice(waiters.indexOf(waiter), 1);
            waiter.resolve(line);
          }
        }
      }
      callback();
    },
  });
  const logger = createLogger({ component: 'test', level: 'debug', destination });
  return {
    logger,
    lines,
    next(predicate, timeoutMs = 10_000) {
      const seen = lines.find(predicate);
      if (seen) return Promise.resolve(seen);
      return withDeadline(new Promise<LogLine>((resolve) => waiters.push({ predicate, resolve })), timeoutMs, 'log line');
    },
  };
}

/** Rejects if `promise` has not settled by the deadline (tests wait for events, never for time). */
export function withDeadline<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** Listens on 127.0.0.1 with a free port; returns the https URL. */
export async function listen(server: HttpServer | NetServer): Promise<string> {
  // http2 servers close only when every session has: keep them, for closeServer.
  const sessions = new Set<Http2Session>();
  sessionsOf.set(server, sessions);
  server.on('session', (session: Http2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

export const portOf = (url: string): number => Number(new URL(url).port);

export interface AgentResponse {
  status: number;
  body: string;
  /** The server certificate's serial (null on a resumed session: the client is not sent one). */
  serverSerial: string | null;
  reused: boolean;
  protocol: string | null;
}

/** One GET through an https Agent. */
export function getVia(agent: Agent, url: string): Promise<AgentResponse> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { agent }, (res) => {
      const socket = res.socket as TLSSocket;
      const serverSerial = (socket.getPeerCertificate().serialNumber as string | undefined)?.toLowerCase() ?? null;
      const reused = socket.isSessionReused();
      const protocol = socket.getProtocol();
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, serverSerial, reused, protocol }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Writes PEM files for command-line tools into a temp dir; `cleanup` removes it. */
export function pemFiles(files: Record<string, string>): { path: (name: string) => string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'tlsmesh-sdk-pem-'));
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  return { path: (name) => join(dir, name), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Closes a server and every connection it still has. */
export async function closeServer(server: HttpServer | Http2SecureServer): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  if ('closeAllConnections' in server) server.closeAllConnections();
  for (const session of sessionsOf.get(server) ?? []) session.destroy();
  await closed;
}

const sessionsOf = new WeakMap<object, Set<Http2Session>>();
