/**
 * A client-side rotation with an undici dispatcher: requests after `update()` reach the server
 * with the new certificate even though the server (not rotating) would keep the old connection
 * open for an hour, and a request in flight on the old connection still completes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createMtlsHttpsServer } from '../../src/sdk/https-server.js';
import { peerIdentity } from '../../src/sdk/peer.js';
import { staticIdentity } from '../../src/sdk/sources/static.js';
import { createMtlsDispatcher } from '../../src/sdk/undici-dispatcher.js';
import { startTestCa, type TestCa } from '../helpers/ca.js';
import { closeServer, listen, materialFor, withDeadline } from './support.js';

const SERVER_ID = 'spiffe://example.org/undici-rotation/server';
const CLIENT_ID = 'spiffe://example.org/undici-rotation/client';
const DEADLINE_MS = 20_000;

let ca: TestCa;
beforeAll(async () => {
  ca = await startTestCa();
});
afterAll(async () => ca?.close());

it('after a client rotation, the next request uses the new certificate; one in flight on the old connection completes', async () => {
  const [server, before, after] = await Promise.all([materialFor(ca, SERVER_ID), materialFor(ca, CLIENT_ID), materialFor(ca, CLIENT_ID)]);
  let openGate!: () => void;
  const gate = new Promise<void>((resolve) => (openGate = resolve));
  let slowArrived!: () => void;
  const slowIsIn = new Promise<void>((resolve) => (slowArrived = resolve));
  const sockets = new Set<object>();
  const instance = createMtlsHttpsServer(staticIdentity(server), {}, (req: IncomingMessage, res: ServerResponse) => {
    sockets.add(req.socket);
    const answer = (): void => {
      res.end(peerIdentity(req)?.serial ?? '(none)');
    };
    if (req.url === '/slow') {
      slowArrived();
      void gate.then(answer);
    } else answer();
  });
  const url = await listen(instance);
  const source = staticIdentity(before);
  // One connection: with the old behaviour every request after the rotation would queue on it.
  const dispatcher = createMtlsDispatcher(source, SERVER_ID, { connections: 1 });
  const get = async (path: string): Promise<{ status: number; serial: string }> => {
    const { statusCode, body } = await dispatcher.request({ origin: url, path, method: 'GET' });
    return { status: statusCode, serial: await body.text() };
  };
  try {
    expect(await get('/')).toEqual({ status: 200, serial: before.serial.toLowerCase() });
    const slow = get('/slow');
    await withDeadline(slowIsIn, DEADLINE_MS, 'the slow request reaches the server');
    source.update(after);
    const next = get('/');
    openGate();
    expect(await withDeadline(slow, DEADLINE_MS, 'the request in flight during the rotation')).toEqual({ status: 200, serial: before.serial.toLowerCase() });
    expect(await withDeadline(next, DEADLINE_MS, 'the request after the rotation')).toEqual({ status: 200, serial: after.serial.toLowerCase() });
    expect(sockets.size).toBe(2);
  } finally {
    await dispatcher.close();
    source.close();
    await closeServer(instance);
  }
});
