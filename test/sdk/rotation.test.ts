/**
 * Live rotation under continuous load: 32 request loops over 24 keep-alive connections (an
 * MtlsHttpsAgent and an undici dispatcher, 12 each) against one https server, while server and
 * client identities are replaced 50 times by `update()` and then again through files rewritten
 * atomically under a fileIdentity. Then an HTTP/2 session across a rotation. No request may fail, and after each rotation the new serial
 * must be seen on new connections (the client's by the server, the server's by the client).
 * Nothing here waits for time: each step waits for the event it needs, bounded by a deadline.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { request as httpsRequest, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { fetch as undiciFetch, type Agent as UndiciAgent } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { writeCredentials } from '../../src/client/index.js';
import type { IdentitySource } from '../../src/sdk/identity-source.js';
import { http2Connect } from '../../src/sdk/http2-client.js';
import { createMtlsHttp2Server } from '../../src/sdk/http2-server.js';
import { MtlsHttpsAgent } from '../../src/sdk/https-agent.js';
import { createMtlsHttpsServer } from '../../src/sdk/https-server.js';
import { peerIdentity } from '../../src/sdk/peer.js';
import { fileIdentity } from '../../src/sdk/sources/file.js';
import { staticIdentity } from '../../src/sdk/sources/static.js';
import { createMtlsDispatcher } from '../../src/sdk/undici-dispatcher.js';
import { startTestCa, type TestCa } from '../helpers/ca.js';
import { h2Get } from './h2.js';
import { capturedLogger, closeServer, listen, materialFor, withDeadline } from './support.js';

const SERVER_ID = 'spiffe://example.org/api';
const CLIENT_ID = 'spiffe://example.org/web';
const LOOPS_PER_CLIENT = 16;
const SOCKETS_PER_CLIENT = 12;
const MAX_REQUESTS = 200_000; // the load is bounded even if a rotation never shows up
const STEP_DEADLINE_MS = 20_000;

let ca: TestCa;
let dir: string;

beforeAll(async () => {
  ca = await startTestCa();
  dir = mkdtempSync(join(tmpdir(), 'tlsmesh-sdk-rotation-'));
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await ca.close();
});

interface Answer {
  clientSerial: string;
  serverSerial: string;
}

/** Answers with what this connection carries: the client's certificate and the server's own. */
function whoHandler(request: IncomingMessage, response: ServerResponse): void {
  const socket = request.socket as TLSSocket;
  const answer: Answer = { clientSerial: peerIdentity(request)?.serial ?? 'none', serverSerial: (socket.getCertificate() as PeerCertificate).serialNumber.toLowerCase() };
  response.setHeader('content-type', 'application/json');
  response.end(JSON.stringify(answer));
}

/** One request through the https agent; checks that a full handshake showed the client the same server certificate. */
function viaAgent(agent: MtlsHttpsAgent, url: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { agent }, (res) => {
      const socket = res.socket as TLSSocket;
      const seen = socket.isSessionReused() ? null : (socket.getPeerCertificate().serialNumber as string | undefined)?.toLowerCase();
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`HTTP ${res.statusCode}`));
        const answer = JSON.parse(body) as Answer;
        if (seen != null && seen !== answer.serverSerial) return reject(new Error(`client saw server ${seen}, server says ${answer.serverSerial}`));
        resolve(answer);
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function viaUndici(dispatcher: UndiciAgent, url: string): Promise<Answer> {
  const response = await undiciFetch(url, { dispatcher });
  if (response.status !== 200) throw new Error(`HTTP ${response.status}`);
  return (await response.json()) as Answer;
}

interface LoadResult {
  requests: number;
  failures: string[];
  maxConnections: number;
}

/**
 * Runs the load while `rotate` runs; `rotate` gets a `seen(predicate)` that resolves when a
 * response matching it arrives.
 */
async function underLoad(serverSource: IdentitySource, clientSource: IdentitySource, rotate: (seen: (match: (answer: Answer) => boolean, what: string) => Promise<void>) => Promise<void>): Promise<LoadResult> {
  let open = 0;
  let maxConnections = 0;
  const server: Server = createMtlsHttpsServer(serverSource, { logger: capturedLogger().logger }, whoHandler);
  server.on('secureConnection', (socket: TLSSocket) => {
    maxConnections = Math.max(maxConnections, ++open);
    socket.once('close', () => (open -= 1));
  });
  const url = `${await listen(server)}/who`;
  const agent = new MtlsHttpsAgent(clientSource, SERVER_ID, { maxSockets: SOCKETS_PER_CLIENT });
  const dispatcher = createMtlsDispatcher(clientSource, SERVER_ID, { connections: SOCKETS_PER_CLIENT });

  const failures: string[] = [];
  let requests = 0;
  let stop = false;
  const waiters = new Set<{ match: (answer: Answer) => boolean; resolve: () => void }>();
  const record = (answer: Answer): void => {
    requests += 1;
    for (const waiter of waiters) {
      if (waiter.match(answer)) {
        waiters.delete(waiter);
        waiter.resolve();
      }
    }
  };
  const loop = async (call: () => Promise<Answer>): Promise<void> => {
    while (!stop && requests < MAX_REQUESTS) {
      try {
        record(await call());
      } catch (error) {
        failures.push((error as Error).message);
      }
    }
  };
  const loops = [
    ...Array.from({ length: LOOPS_PER_CLIENT }, () => loop(() => viaAgent(agent, url))),
    ...Array.from({ length: LOOPS_PER_CLIENT }, () => loop(() => viaUndici(dispatcher, url))),
  ];
  const seen = (match: (answer: Answer) => boolean, what: string): Promise<void> =>
    withDeadline(new Promise<void>((resolve) => waiters.add({ match, resolve })), STEP_DEADLINE_MS, what);

  try {
    await seen(() => true, 'a first answer');
    await rotate(seen);
  } catch (error) {
    // Say what the load saw: a rotation that never shows up is usually failing requests.
    const distinct = [...new Set(failures)].slice(0, 5).join('; ');
    throw new Error(`${(error as Error).message} (after ${requests} requests, ${failures.length} failed: ${distinct})`, { cause: error });
  } finally {
    stop = true;
    await Promise.all(loops);
    agent.destroy();
    await dispatcher.close();
    await closeServer(server);
  }
  return { requests, failures, maxConnections };
}

it('50 rotations of server and client by update(): no failed request, new serials on new connections', async () => {
  const servers = await Promise.all(Array.from({ length: 26 }, () => materialFor(ca, SERVER_ID)));
  const clients = await Promise.all(Array.from({ length: 26 }, () => materialFor(ca, CLIENT_ID)));
  const serverSource = staticIdentity(servers[0]!);
  const clientSource = staticIdentity(clients[0]!);

  const result = await underLoad(serverSource, clientSource, async (seen) => {
    for (let rotation = 1; rotation <= 50; rotation += 1) {
      const index = Math.ceil(rotation / 2);
      if (rotation % 2 === 1) {
        const serial = serverSource.update(servers[index]!).serial;
        await seen((answer) => answer.serverSerial === serial, `server serial ${serial} (rotation ${rotation})`);
      } else {
        const serial = clientSource.update(clients[index]!).serial;
        await seen((answer) => answer.clientSerial === serial, `client serial ${serial} (rotation ${rotation})`);
      }
      // Some traffic on the new identities before the next rotation.
      let more = 0;
      await seen(() => ++more >= 50, 'traffic after the rotation');
    }
  });

  expect(result.failures).toEqual([]);
  expect(result.maxConnections).toBeGreaterThanOrEqual(20);
  expect(result.requests).toBeGreaterThan(50 * 50);
});

it('rotation through files rewritten atomically under a fileIdentity: no failed request', async () => {
  const servers = await Promise.all(Array.from({ length: 4 }, () => materialFor(ca, SERVER_ID)));
  await writeCredentials(dir, servers[0]!);
  const serverSource = await fileIdentity({ dir }, { debounceMs: 20, logger: capturedLogger().logger });
  const clientSource = staticIdentity(await materialFor(ca, CLIENT_ID));
  try {
    const result = await underLoad(serverSource, clientSource, async (seen) => {
      for (const material of servers.slice(1)) {
        await writeCredentials(dir, material);
        await seen((answer) => answer.serverSerial === material.serial, `server serial ${material.serial} from the files`);
        let more = 0;
        await seen(() => ++more >= 50, 'traffic after the rotation');
      }
    });
    expect(result.failures).toEqual([]);
    expect(serverSource.current().serial).toBe(servers[3]!.serial);
  } finally {
    serverSource.close();
  }
});

it('http2: a rotation sends GOAWAY to open sessions, lets the stream in flight finish, and new sessions get the new certificate', async () => {
  const serverSource = staticIdentity(await materialFor(ca, SERVER_ID));
  const clientSource = staticIdentity(await materialFor(ca, CLIENT_ID));
  let release: (() => void) | undefined;
  const inFlight = new Promise<void>((resolve) => (release = resolve));
  let arrived: (() => void) | undefined;
  const requestArrived = new Promise<void>((resolve) => (arrived = resolve));
  const server = createMtlsHttp2Server(serverSource, { logger: capturedLogger().logger }, (request, response) => {
    const serverSerial = ((request.socket as unknown as TLSSocket).getCertificate() as PeerCertificate).serialNumber.toLowerCase();
    if (request.url === '/slow') {
      arrived!();
      void inFlight.then(() => response.end(serverSerial));
    } else {
      response.end(serverSerial);
    }
  });
  const url = await listen(server);
  const old = http2Connect(clientSource, url, SERVER_ID);
  try {
    const before = serverSource.current().serial;
    const slow = h2Get(old, '/slow');
    await withDeadline(requestArrived, 10_000, 'the slow request');
    const goaway = withDeadline(new Promise<void>((resolve) => old.once('goaway', () => resolve())), 10_000, 'GOAWAY');
    const after = serverSource.update(await materialFor(ca, SERVER_ID)).serial;
    await goaway;
    release!();
    expect(await slow).toMatchObject({ status: 200, body: before });

    const fresh = http2Connect(clientSource, url, SERVER_ID);
    try {
      expect((await h2Get(fresh, '/')).body).toBe(after);
    } finally {
      fresh.close();
    }
  } finally {
    old.close();
    await closeServer(server);
  }
});
