/**
 * Authorization by the caller's SPIFFE ID on real mTLS servers: Express middleware per route,
 * the Fastify plugin (whole app) and hook (per route), plain node:http2 — denied callers get 403
 * with a JSON reason naming them; handlers see who called.
 */
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import { fetch as undiciFetch, type Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorizePeer, fastifyRequirePeer, requirePeer, tlsmeshFastify } from '../../src/sdk/authz.js';
import { http2Connect } from '../../src/sdk/http2-client.js';
import { createMtlsHttp2Server } from '../../src/sdk/http2-server.js';
import { createMtlsHttpsServer } from '../../src/sdk/https-server.js';
import { peerIdentity } from '../../src/sdk/peer.js';
import { staticIdentity, type StaticIdentitySource } from '../../src/sdk/sources/static.js';
import { createMtlsDispatcher } from '../../src/sdk/undici-dispatcher.js';
import { startTestCa, type TestCa } from '../helpers/ca.js';
import { h2Get } from './h2.js';
import { capturedLogger, closeServer, listen, materialFor } from './support.js';

const SERVER_ID = 'spiffe://example.org/api';
const BILLING_ID = 'spiffe://example.org/billing/worker';
const WEB_ID = 'spiffe://example.org/web';

let ca: TestCa;
let serverSource: StaticIdentitySource;
let billing: StaticIdentitySource;
let web: StaticIdentitySource;
let asBilling: Agent;
let asWeb: Agent;

beforeAll(async () => {
  ca = await startTestCa();
  serverSource = staticIdentity(await materialFor(ca, SERVER_ID));
  billing = staticIdentity(await materialFor(ca, BILLING_ID));
  web = staticIdentity(await materialFor(ca, WEB_ID));
  asBilling = createMtlsDispatcher(billing, SERVER_ID);
  asWeb = createMtlsDispatcher(web, SERVER_ID);
});
afterAll(async () => {
  await asBilling.close();
  await asWeb.close();
  await ca.close();
});

const get = async (dispatcher: Agent, url: string) => {
  const response = await undiciFetch(url, { dispatcher });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
};

describe('Express', () => {
  it('requirePeer per route: 403 with a JSON reason for others; the handler sees the caller', async () => {
    const app = express();
    app.get('/open', (req, res) => {
      res.json({ caller: peerIdentity(req)?.spiffeId });
    });
    app.get('/invoices', requirePeer({ pathPrefix: 'spiffe://example.org/billing' }), (req, res) => {
      res.json({ caller: peerIdentity(req)?.spiffeId });
    });
    const server = createMtlsHttpsServer(serverSource, { logger: capturedLogger().logger }, app);
    const url = await listen(server);
    try {
      expect(await get(asWeb, `${url}/open`)).toEqual({ status: 200, json: { caller: WEB_ID } });
      expect(await get(asBilling, `${url}/invoices`)).toEqual({ status: 200, json: { caller: BILLING_ID } });
      expect(await get(asWeb, `${url}/invoices`)).toEqual({
        status: 403,
        json: { error: { code: 'ERR_FORBIDDEN', message: `${WEB_ID} is not allowed to call this route` } },
      });
    } finally {
      await closeServer(server);
    }
  });
});

describe('Fastify', () => {
  let app: FastifyInstance;
  let url: string;

  beforeAll(async () => {
    app = Fastify({ serverFactory: (handler) => createMtlsHttpsServer(serverSource, { logger: capturedLogger().logger }, handler) });
    await app.register(tlsmeshFastify, { allow: [BILLING_ID, WEB_ID] });
    app.get('/open', (request) => Promise.resolve({ caller: peerIdentity(request)?.spiffeId }));
    app.get('/invoices', { onRequest: fastifyRequirePeer({ pathPrefix: 'spiffe://example.org/billing' }) }, (request) => Promise.resolve({ caller: peerIdentity(request)?.spiffeId }));
    await app.listen({ port: 0, host: '127.0.0.1' });
    url = `https://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await app.close();
  });

  it('the plugin applies to every route; the per-route hook narrows it', async () => {
    expect(await get(asWeb, `${url}/open`)).toEqual({ status: 200, json: { caller: WEB_ID } });
    expect(await get(asBilling, `${url}/invoices`)).toEqual({ status: 200, json: { caller: BILLING_ID } });
    expect(await get(asWeb, `${url}/invoices`)).toMatchObject({ status: 403, json: { error: { code: 'ERR_FORBIDDEN' } } });
  });

  it('a caller the plugin does not allow is refused on every route', async () => {
    const other = staticIdentity(await materialFor(ca, 'spiffe://example.org/intruder'));
    const dispatcher = createMtlsDispatcher(other, SERVER_ID);
    try {
      const denied = await get(dispatcher, `${url}/open`);
      expect(denied).toEqual({ status: 403, json: { error: { code: 'ERR_FORBIDDEN', message: 'spiffe://example.org/intruder is not allowed to call this route' } } });
    } finally {
      await dispatcher.close();
    }
  });
});

describe('node:http2', () => {
  it('requirePeer works on http2 compat requests; peerIdentity on streams', async () => {
    const only = requirePeer(BILLING_ID);
    const server = createMtlsHttp2Server(serverSource, { logger: capturedLogger().logger }, (request, response) => {
      only(request, response, () => response.end(JSON.stringify({ caller: peerIdentity(request)?.spiffeId, viaStream: peerIdentity(request.stream)?.spiffeId })));
    });
    const url = await listen(server);
    const sessions = [http2Connect(billing, url, SERVER_ID), http2Connect(web, url, SERVER_ID)];
    try {
      const allowed = await h2Get(sessions[0]!, '/');
      expect(JSON.parse(allowed.body)).toEqual({ caller: BILLING_ID, viaStream: BILLING_ID });
      const denied = await h2Get(sessions[1]!, '/');
      expect(denied.status).toBe(403);
      expect(JSON.parse(denied.body)).toMatchObject({ error: { code: 'ERR_FORBIDDEN' } });
    } finally {
      for (const session of sessions) session.close();
      await closeServer(server);
    }
  });
});

describe('authorizePeer', () => {
  it('no verified certificate on the connection → 401 ERR_CLIENT_CERT_REQUIRED', () => {
    expect(authorizePeer({ socket: {} }, { trustDomain: 'example.org' })).toMatchObject({ allowed: false, status: 401, code: 'ERR_CLIENT_CERT_REQUIRED' });
    expect(authorizePeer(undefined, { trustDomain: 'example.org' })).toMatchObject({ allowed: false, status: 401 });
  });
});
