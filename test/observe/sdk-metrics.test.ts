/**
 * The SDK's metrics over real sockets: refused handshakes by reason and transport, authorization
 * denials, permissive-mode plaintext callers, rotations, and the identity's expiry and CRL gauges,
 * each checked in the exposition after the action that should move it.
 */
import { request as httpRequest } from 'node:http';
import { connect } from 'node:tls';
import type { Server } from 'node:https';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SdkMetrics } from '../../src/observe/metrics.js';
import { requirePeer } from '../../src/sdk/authz.js';
import { createMtlsHttp2Server } from '../../src/sdk/http2-server.js';
import { MtlsHttpsAgent } from '../../src/sdk/https-agent.js';
import { createMtlsHttpsServer } from '../../src/sdk/https-server.js';
import type { IdentityMaterial } from '../../src/sdk/identity.js';
import { createPermissiveHttpsServer } from '../../src/sdk/permissive-server.js';
import { staticIdentity, type StaticIdentitySource } from '../../src/sdk/sources/static.js';
import { startTestCa, type TestCa } from '../helpers/ca.js';
import { opensslSelfSigned } from '../helpers/openssl.js';
import { parseExposition, promtoolCheckMetrics, requirePromtool, type Exposition } from '../helpers/prometheus.js';
import { capturedLogger, closeServer, getVia, listen, materialFor, portOf } from '../sdk/support.js';

const SERVER_ID = 'spiffe://example.org/metrics/server';
const CLIENT_ID = 'spiffe://example.org/metrics/client';

let ca: TestCa;
let serverMaterial: IdentityMaterial & { serial: string };
let client: IdentityMaterial;
const opened: Server[] = [];
const agents: MtlsHttpsAgent[] = [];

beforeAll(async () => {
  ca = await startTestCa();
  serverMaterial = await materialFor(ca, SERVER_ID, { ipAddresses: ['127.0.0.1'] });
  client = await materialFor(ca, CLIENT_ID);
});
afterEach(async () => {
  for (const agent of agents.splice(0)) agent.destroy();
  for (const server of opened.splice(0)) await closeServer(server);
});
afterAll(() => ca?.close());

const read = async (metrics: SdkMetrics): Promise<Exposition> => parseExposition(await metrics.exposition());

/** Resolves once the server side has dealt with a raw TLS attempt (it closes the socket). */
function rawTls(port: number, material: { certPem?: string; keyPem?: string }): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, ca: ca.bundlePem, cert: material.certPem, key: material.keyPem, checkServerIdentity: () => undefined });
    socket.on('secureConnect', () => socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve());
    socket.resume();
  });
}

describe('SDK metrics', () => {
  it('counts refused clients by reason and transport, and exports the identity it serves', async () => {
    const metrics = new SdkMetrics();
    const log = capturedLogger();
    const server = createMtlsHttpsServer(staticIdentity(serverMaterial), { metrics, logger: log.logger }, (_request, response) => response.end('ok'));
    opened.push(server);
    const url = await listen(server);

    const agent = new MtlsHttpsAgent(staticIdentity(client), SERVER_ID);
    agents.push(agent);
    expect((await getVia(agent, url)).status).toBe(200);
    await rawTls(portOf(url), {});
    await rawTls(portOf(url), opensslSelfSigned(CLIENT_ID));
    await log.next((line) => line.event === 'mtls.refused' && line.reason === 'unknown-ca');

    const m = await read(metrics);
    expect(m.value('tlsmesh_tls_handshake_refusals_total', { component: 'sdk', transport: 'https', reason: 'no-certificate' })).toBe(1);
    expect(m.value('tlsmesh_tls_handshake_refusals_total', { component: 'sdk', transport: 'https', reason: 'unknown-ca' })).toBe(1);
    expect(m.find('tlsmesh_tls_handshake_refusals_total')).toHaveLength(2);
    const leaf = staticIdentity(serverMaterial).current();
    expect(m.value('tlsmesh_certificate_expiry_timestamp_seconds', { spiffe_id: SERVER_ID, kind: 'workload' })).toBe(leaf.notAfter.getTime() / 1000);
    expect(m.value('tlsmesh_certificate_not_before_timestamp_seconds', { spiffe_id: SERVER_ID })).toBe(leaf.notBefore.getTime() / 1000);
  });

  it('an identity outside the server allow-list is refused as identity-not-allowed on http2', async () => {
    const metrics = new SdkMetrics();
    const log = capturedLogger();
    const server = createMtlsHttp2Server(staticIdentity(serverMaterial), { metrics, logger: log.logger, allow: { pathPrefix: 'spiffe://example.org/only' } });
    opened.push(server as unknown as Server);
    const url = await listen(server);
    await rawTls(portOf(url), client);
    const line = await log.next((entry) => entry.event === 'mtls.refused');
    // The stable log fields: reason, peer and the caller's SPIFFE ID under snake_case.
    expect(line).toMatchObject({ reason: 'identity-not-allowed', spiffe_id: CLIENT_ID, component: 'test' });
    expect(typeof line.peer).toBe('string');
    const m = await read(metrics);
    expect(m.value('tlsmesh_tls_handshake_refusals_total', { transport: 'http2', reason: 'identity-not-allowed' })).toBe(1);
  });

  it('route-level denials are counted apart from handshake refusals', async () => {
    const metrics = new SdkMetrics();
    const guard = requirePeer({ pathPrefix: 'spiffe://example.org/admins' }, { metrics });
    const server = createMtlsHttpsServer(staticIdentity(serverMaterial), { metrics, logger: capturedLogger().logger }, (request, response) =>
      guard(request, response, () => response.end('ok')),
    );
    opened.push(server);
    const url = await listen(server);
    const agent = new MtlsHttpsAgent(staticIdentity(client), SERVER_ID);
    agents.push(agent);
    expect((await getVia(agent, url)).status).toBe(403);
    const m = await read(metrics);
    expect(m.value('tlsmesh_authz_denied_total', { transport: 'https' })).toBe(1);
    expect(m.find('tlsmesh_tls_handshake_refusals_total')).toEqual([]);
  });

  it('permissive mode counts plaintext requests and each new insecure caller once', async () => {
    const metrics = new SdkMetrics();
    const server = createPermissiveHttpsServer(staticIdentity(serverMaterial), { metrics, logger: capturedLogger().logger }, (_request, response) => response.end('ok'));
    opened.push(server as unknown as Server);
    const url = await listen(server);
    const plaintextGet = () =>
      new Promise<number>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port: portOf(url), path: '/', agent: false }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
        req.end();
      });
    expect(await plaintextGet()).toBe(200);
    expect(await plaintextGet()).toBe(200);
    expect(await plaintextGet()).toBe(200);
    const m = await read(metrics);
    expect(m.value('tlsmesh_permissive_plaintext_requests_total', { transport: 'https' })).toBe(3);
    expect(m.value('tlsmesh_permissive_insecure_callers_total', { transport: 'https', mode: 'plaintext' })).toBe(1);
  });

  it('rotations are counted by what changed, and the expiry gauge follows the new leaf', async () => {
    const metrics = new SdkMetrics();
    const source: StaticIdentitySource = staticIdentity(serverMaterial);
    const server = createMtlsHttpsServer(source, { metrics, logger: capturedLogger().logger }, (_request, response) => response.end('ok'));
    opened.push(server);
    await listen(server);
    const renewed = await materialFor(ca, SERVER_ID, { ipAddresses: ['127.0.0.1'] });
    source.update(renewed);
    const m = await read(metrics);
    expect(m.value('tlsmesh_rotations_total', { component: 'sdk', what: 'leaf' })).toBe(1);
    expect(m.find('tlsmesh_rotations_total', { what: 'bundle' })).toEqual([]);
    expect(m.value('tlsmesh_certificate_expiry_timestamp_seconds', { spiffe_id: SERVER_ID })).toBe(source.current().notAfter.getTime() / 1000);
    await closeServer(opened.pop()!);
    // A closed server's identity is no longer exported.
    expect((await read(metrics)).find('tlsmesh_certificate_expiry_timestamp_seconds')).toEqual([]);
  });

  it('promtool accepts the SDK exposition', async (context) => {
    if (!requirePromtool()) return context.skip('promtool (Debian prometheus) is not installed');
    const metrics = new SdkMetrics();
    const server = createMtlsHttpsServer(staticIdentity(serverMaterial), { metrics, logger: capturedLogger().logger });
    opened.push(server);
    await rawTls(portOf(await listen(server)), {});
    const lint = promtoolCheckMetrics(await metrics.exposition());
    expect(lint.output).toBe('');
    expect(lint.status).toBe(0);
  });
});
