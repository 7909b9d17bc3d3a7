/**
 * Rotation of server and client certificates while calls keep flowing: no call fails, the next
 * handshake uses the new server leaf, and the server sees the new client leaf once connections
 * are recycled by `grpc.max_connection_age_ms` (set very short here to force that).
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { grpcChannelCredentials, grpcChannelOptions, grpcServerCredentials, grpcServerOptions } from '../../src/sdk/grpc/credentials.js';
import { startTestCa, type TestCa } from '../helpers/ca.js';
import { enrolled, identityOf, MutableIdentity, sameSerial, serverSerial, startGrpcServer, type TestServer } from './grpc-fixtures.js';
import { TestClient } from './grpc-health.js';

const SERVER_ID = 'spiffe://example.org/rotate/server';
const CLIENT_ID = 'spiffe://example.org/rotate/client';
const ROTATIONS = 3;
const CHANNELS = 4;
const CONCURRENT = 16;
/** Batches allowed per rotation before the new client leaf must have been seen. */
const MAX_BATCHES = 400;

let ca: TestCa;
let server: TestServer;
const clients: TestClient[] = [];

beforeAll(async () => {
  ca = await startTestCa();
});

afterAll(async () => {
  for (const made of clients) made.close();
  server?.close();
  await ca?.close();
});

test('ok/server and client certificates rotate during continuous calls with zero failures', async () => {
  const serverSource = new MutableIdentity(identityOf(await enrolled(ca, SERVER_ID), ca.bundlePem));
  const clientSource = new MutableIdentity(identityOf(await enrolled(ca, CLIENT_ID), ca.bundlePem));
  server = await startGrpcServer(grpcServerCredentials(serverSource), { serverOptions: grpcServerOptions(serverSource, { maxConnectionAgeMs: 200 }) });
  // One credentials object for every channel: rotation must reach all of them through it.
  const channelCredentials = grpcChannelCredentials(clientSource, { expect: SERVER_ID });
  for (let i = 0; i < CHANNELS; i++) clients.push(new TestClient(server.address, channelCredentials, grpcChannelOptions()));

  const failures: string[] = [];
  let calls = 0;
  const batch = async () => {
    const results = await Promise.all(Array.from({ length: CONCURRENT }, (_, i) => (clients[i % CHANNELS] as TestClient).who()));
    calls += results.length;
    for (const result of results) if (!result.ok) failures.push(`${result.error.code} ${result.error.details}`);
    return results.flatMap((result) => (result.ok ? [result.value.serial] : []));
  };

  await batch();
  for (let rotation = 1; rotation <= ROTATIONS; rotation++) {
    const [nextServer, nextClient] = await Promise.all([enrolled(ca, SERVER_ID), enrolled(ca, CLIENT_ID)]);
    // Calls are in flight on the old connections while both sides switch.
    const inFlight = batch();
    serverSource.set(identityOf(nextServer, ca.bundlePem));
    clientSource.set(identityOf(nextClient, ca.bundlePem));
    await inFlight;

    expect(sameSerial(await serverSerial(server.port, clientSource.current(), SERVER_ID), nextServer.serial)).toBe(true);
    let seen = false;
    for (let i = 0; i < MAX_BATCHES && !seen; i++) seen = (await batch()).some((serial) => sameSerial(serial, nextClient.serial));
    expect(seen, `rotation ${rotation}: the server never saw the new client certificate`).toBe(true);
  }
  expect(failures).toEqual([]);
  expect(calls).toBeGreaterThan(ROTATIONS * CONCURRENT);
  // Handlers saw only the rotating client's identity.
  expect(new Set(server.calls.map((call) => call.spiffeId))).toEqual(new Set([CLIENT_ID]));
});
