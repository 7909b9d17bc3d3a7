/**
 * The TLS option builder, and the two traps it exists for, over real sockets: a CRL must survive
 * every setSecureContext (it resets what it is not given), and session tickets must survive a new
 * leaf but not a new CRL (a resumed session is not checked against the CRL again).
 */
import type { Server } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Identity } from '../../src/sdk/identity.js';
import { MtlsHttpsAgent } from '../../src/sdk/https-agent.js';
import { createMtlsHttpsServer } from '../../src/sdk/https-server.js';
import type { Refusal } from '../../src/sdk/refusal.js';
import { staticIdentity } from '../../src/sdk/sources/static.js';
import { clientSecureContext, MAX_TLS_VERSION, MIN_TLS_VERSION, serverTlsOptions, TicketKeys } from '../../src/sdk/tls-options.js';
import { miniPki, type MiniPki } from './mini-pki.js';
import { capturedLogger, closeServer, getVia, listen, withDeadline } from './support.js';

const TD = 'mini.example';
const SERVER_ID = `spiffe://${TD}/api`;

let pki: MiniPki;
let server1: Identity;
let server2: Identity;
let alice: Identity;
let bob: Identity;

beforeAll(async () => {
  pki = await miniPki(TD);
  const identity = async (id: string) => new Identity({ ...(await pki.issue(id)), bundlePem: pki.rootPem });
  server1 = await identity(SERVER_ID);
  server2 = await identity(SERVER_ID);
  alice = await identity(`spiffe://${TD}/alice`);
  bob = await identity(`spiffe://${TD}/bob`);
});

const material = (identity: Identity) => ({ certPem: identity.certPem, keyPem: identity.keyPem, bundlePem: identity.bundlePem });

/** The identity with a fresh CRL revoking these (a new CRL each call: ECDSA signatures differ). */
const withCrl = async (identity: Identity, revoked: Identity[]) =>
  new Identity({ certPem: identity.certPem, keyPem: identity.keyPem, bundlePem: identity.bundlePem, crlPem: await pki.crl(revoked.map((i) => i.serial)) });

describe('serverTlsOptions', () => {
  it('is the whole set: chain, key, bundle, CRL when present, versions, ticket keys, client certificates required', async () => {
    const keys = Buffer.alloc(48, 7);
    const plain = serverTlsOptions(server1, keys);
    expect(plain).toMatchObject({ cert: server1.certPem, key: server1.keyPem, ca: server1.bundlePem, minVersion: MIN_TLS_VERSION, maxVersion: MAX_TLS_VERSION, ticketKeys: keys, requestCert: true, rejectUnauthorized: true });
    expect(plain).not.toHaveProperty('crl');
    const revoking = serverTlsOptions(await withCrl(server1, [bob]), keys);
    // A list, one CRL per entry (Node reads only the first CRL of a text), re-labelled X509 CRL.
    expect(Array.isArray(revoking.crl)).toBe(true);
    for (const crl of revoking.crl as string[]) expect(crl).toMatch(/^-----BEGIN X509 CRL-----[^]*-----END X509 CRL-----\n$/);
    expect(() => serverTlsOptions(server1, Buffer.alloc(32))).toThrow(TypeError);
  });

  it('TicketKeys: kept across a new leaf, new when the bundle or the CRL changes', async () => {
    const keys = new TicketKeys();
    const first = keys.for(server1);
    expect(keys.for(server2)).toBe(first);
    const revoking = await withCrl(server2, [bob]);
    const second = keys.for(revoking);
    expect(second.equals(first)).toBe(false);
    expect(keys.for(revoking)).toBe(second);
    expect(keys.for(await withCrl(server2, [bob, alice])).equals(second)).toBe(false);
  });

  it('TicketKeys for servers that check revocation per connection: kept across CRL updates, new with the bundle', async () => {
    const keys = new TicketKeys({ revocationCheckedPerConnection: true });
    const first = keys.for(server1);
    expect(keys.for(await withCrl(server2, [bob]))).toBe(first);
    expect(keys.for(await withCrl(server2, [bob, alice]))).toBe(first);
    const otherBundle = new Identity({ certPem: server1.certPem, keyPem: server1.keyPem, bundlePem: server1.bundlePem + pki.rootPem });
    expect(keys.for(otherBundle).equals(first)).toBe(false);
  });

  it('clientSecureContext: built once per identity', () => {
    expect(clientSecureContext(alice)).toBe(clientSecureContext(alice));
    expect(clientSecureContext(bob)).not.toBe(clientSecureContext(alice));
  });
});

describe('CRL over real sockets', () => {
  let refusals: Refusal[];
  let wake: (() => void) | undefined;
  const nextRefusal = () =>
    withDeadline(new Promise<Refusal>((resolve) => {
      const check = () => (refusals.length > 0 ? resolve(refusals.shift()!) : (wake = check));
      check();
    }), 10_000, 'refusal');
  const opened: Server[] = [];
  afterAll(async () => {
    for (const server of opened) await closeServer(server);
  });

  async function serve(identity: Identity) {
    refusals = [];
    const source = staticIdentity(identity);
    const server = createMtlsHttpsServer(source, { logger: capturedLogger().logger, onRefusal: (r) => (refusals.push(r), wake?.()) }, (_req, res) => res.end('ok'));
    opened.push(server);
    return { source, url: await listen(server) };
  }

  it('a revoked client is refused (revoked), and still is after the server leaf rotates', async () => {
    const { source, url } = await serve(await withCrl(server1, [bob]));
    const asAlice = new MtlsHttpsAgent(staticIdentity(alice), SERVER_ID, { keepAlive: false });
    const asBob = new MtlsHttpsAgent(staticIdentity(bob), SERVER_ID, { keepAlive: false });
    try {
      expect((await getVia(asAlice, url)).status).toBe(200);
      await expect(getVia(asBob, url)).rejects.toThrow();
      expect((await nextRefusal()).reason).toBe('revoked');

      source.update(await withCrl(server2, [bob])); // a new leaf, same CRL: setSecureContext gets it all again
      const after = await getVia(asAlice, url);
      expect(after.status).toBe(200);
      await expect(getVia(asBob, url)).rejects.toThrow();
      expect((await nextRefusal()).reason).toBe('revoked');
    } finally {
      asAlice.destroy();
      asBob.destroy();
    }
  });

  it('tickets survive a new leaf; a new CRL voids them, so a client revoked after getting one cannot resume', async () => {
    const revokingBob = await pki.crl([bob.serial]);
    const { source, url } = await serve(new Identity({ ...material(server1), crlPem: revokingBob }));
    const asAlice = new MtlsHttpsAgent(staticIdentity(alice), SERVER_ID, { keepAlive: false });
    try {
      expect((await getVia(asAlice, url)).reused).toBe(false);
      expect((await getVia(asAlice, url)).reused).toBe(true);

      source.update(new Identity({ ...material(server2), crlPem: revokingBob })); // same CRL: the ticket still resumes
      expect((await getVia(asAlice, url)).reused).toBe(true);

      source.update(await withCrl(server2, [bob, alice])); // alice revoked: her ticket must not let her back in
      await expect(getVia(asAlice, url)).rejects.toThrow();
      expect((await nextRefusal()).reason).toBe('revoked');
    } finally {
      asAlice.destroy();
    }
  });
});
