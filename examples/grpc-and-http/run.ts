/**
 * Runs the example end to end:
 *
 *   npx tsx examples/grpc-and-http/run.ts          # every 3 s until Ctrl-C
 *   npx tsx examples/grpc-and-http/run.ts --once   # one round, then exit (0 when every hop worked)
 *
 * 1. plays the operator: a CA on SQLite in a temporary directory, and one-time tokens;
 * 2. plays the agent for orders: enrols it and writes its cert.pem / key.pem / bundle.pem;
 * 3. starts orders (Express, identity from those files) and inventory (gRPC, identity enrolled
 *    in process with its token), which call each other over mutual TLS;
 * 4. as the frontend, calls orders (allowed) and inventory (denied), printing every hop with the
 *    SPIFFE ID each side authenticated.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status, type ServiceError } from '@grpc/grpc-js';
import { createLogger } from 'tlsmesh';
import { caPaths, initDataDir, readCaFile, resolveCaConfig, startCa } from 'tlsmesh/ca';
import { CaClient, enrollWithToken, writeCredentials } from 'tlsmesh/client';
import { createMtlsDispatcher, staticIdentity } from 'tlsmesh/sdk';
import { grpcChannelCredentials, grpcChannelOptions } from 'tlsmesh/sdk/grpc';
import { fetch } from 'undici';
import { getStock, Inventory } from './inventory-api.js';
import { startInventory } from './inventory.js';
import { startOrders } from './orders.js';

const TRUST_DOMAIN = 'example.org';
const ID = {
  orders: `spiffe://${TRUST_DOMAIN}/orders`,
  inventory: `spiffe://${TRUST_DOMAIN}/inventory`,
  frontend: `spiffe://${TRUST_DOMAIN}/frontend`,
};
const ROUND_INTERVAL_MS = 3000;

const say = (line: string): void => {
  process.stdout.write(`${line}\n`);
};
const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

async function main(): Promise<boolean> {
  const runOnce = process.argv.includes('--once');
  const home = mkdtempSync(join(tmpdir(), 'tlsmesh-example-'));
  const cleanup: (() => Promise<void> | void)[] = [() => rmSync(home, { recursive: true, force: true })];
  try {
    // ---- 1. The operator: `tlsmesh ca init` + `tlsmesh ca serve`, then `tlsmesh token create` ----
    const dataDir = join(home, 'ca');
    const passphrase = randomBytes(24).toString('base64url'); // in production: from a secret store
    await initDataDir({ dataDir, trustDomain: TRUST_DOMAIN, passphrase, listen: '127.0.0.1:0' });
    const ca = await startCa({ config: resolveCaConfig(dataDir, await readCaFile(dataDir), {}, {}), passphrase, logger: createLogger({ component: 'ca', level: 'warn' }) });
    cleanup.unshift(() => ca.close());
    say(`CA for ${TRUST_DOMAIN} on ${ca.url} (SQLite store in ${dataDir})`);

    const paths = caPaths(dataDir);
    const bundlePem = readFileSync(paths.bundle, 'utf8'); // what every workload gets out of band
    const admin = new CaClient({
      url: ca.url,
      bundlePem,
      trustDomain: TRUST_DOMAIN,
      certPem: readFileSync(join(paths.adminDir, 'cert.pem'), 'utf8'),
      keyPem: readFileSync(join(paths.adminDir, 'key.pem'), 'utf8'),
    });
    const tokenFor = async (spiffeId: string): Promise<string> => (await admin.createToken({ spiffeId, ttlSeconds: 300 })).token;
    const tokens = { orders: await tokenFor(ID.orders), inventory: await tokenFor(ID.inventory), frontend: await tokenFor(ID.frontend) };
    admin.close();

    // ---- 2. The agent, for orders: enrol with the token, write the files orders reads ----------
    const ordersTlsDir = join(home, 'orders-tls');
    await writeCredentials(ordersTlsDir, await enrollWithToken({ url: ca.url, bundlePem, token: tokens.orders }));

    // ---- 3. The two services (in production: two deployments with these settings) -------------
    const [ordersPort, inventoryPort] = [await freePort(), await freePort()];
    // A name, not an IP: grpc-js sends the target host as TLS SNI, where an IP is not allowed.
    const inventoryAddress = `localhost:${inventoryPort}`;
    const orders = await startOrders({
      host: '127.0.0.1',
      port: ordersPort,
      tlsDir: ordersTlsDir,
      trustDomain: TRUST_DOMAIN,
      inventory: { address: inventoryAddress, spiffeId: ID.inventory },
      readers: ID.frontend,
      log: say,
    });
    cleanup.unshift(() => orders.close());
    say(`orders: ${orders.spiffeId} (fileIdentity from ${ordersTlsDir}), Express on ${orders.url}`);

    const inventory = await startInventory({
      listen: inventoryAddress,
      ca: { url: ca.url, bundlePem, token: tokens.inventory },
      orders: { url: orders.url, spiffeId: ID.orders },
      // orders and anything under it (spiffe://example.org/orders/worker, …)
      allowedCallers: { pathPrefix: ID.orders },
      log: say,
    });
    cleanup.unshift(() => inventory.close());
    say(`inventory: ${inventory.spiffeId} (caIdentity from ${ca.url}), gRPC on ${inventoryAddress}`);

    // ---- 4. The frontend: PEM in hand (staticIdentity), calls orders and, wrongly, inventory ----
    const frontend = staticIdentity(await enrollWithToken({ url: ca.url, bundlePem, token: tokens.frontend }));
    const toOrders = createMtlsDispatcher(frontend, ID.orders);
    const toInventory = new Inventory(inventoryAddress, grpcChannelCredentials(frontend, { expect: ID.inventory }), grpcChannelOptions());
    cleanup.unshift(async () => {
      toInventory.close();
      await toOrders.close();
      frontend.close();
    });
    say(`frontend: ${frontend.current().spiffeId} (staticIdentity)`);

    let orderId = 41;
    const round = async (): Promise<boolean> => {
      orderId += 1;
      say(`\n[frontend -> orders] GET /orders/${orderId}`);
      let ok: boolean;
      try {
        const response = await fetch(`${orders.url}/orders/${orderId}`, { dispatcher: toOrders });
        const body = (await response.json()) as { caller?: string };
        say(`[frontend -> orders] ${response.status} ${JSON.stringify(body)}; server ${ID.orders}, it saw us as ${body.caller}`);
        ok = response.status === 200;
      } catch (error) {
        say(`[frontend -> orders] failed: ${messageOf(error)}`);
        ok = false;
      }
      // Inventory takes GetStock only from orders: the frontend is turned away with a reason.
      try {
        await getStock(toInventory, 'sku-1');
        say('[frontend -> inventory] GetStock answered, but it should have been denied');
        ok = false;
      } catch (error) {
        const denied = (error as ServiceError).code === status.PERMISSION_DENIED;
        say(`[frontend -> inventory] GetStock ${denied ? 'denied as expected' : 'failed'}: ${messageOf(error)}`);
        ok &&= denied;
      }
      return ok;
    };

    let allOk = await round();
    if (runOnce) return allOk;
    let inFlight = Promise.resolve();
    const timer = setInterval(() => {
      inFlight = round().then((ok) => {
        allOk &&= ok;
      });
    }, ROUND_INTERVAL_MS);
    say('\nrunning; press Ctrl-C to stop');
    await new Promise<void>((stop) => {
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    clearInterval(timer);
    await inFlight; // let a round that has started finish before the services stop
    return allOk;
  } finally {
    for (const step of cleanup) await step();
    say('stopped');
  }
}

/** A free port for a service to listen on (in production: your configured ports). */
async function freePort(): Promise<number> {
  const probe = createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

main().then(
  (ok) => {
    process.exitCode = ok ? 0 : 1;
  },
  (error: unknown) => {
    process.stderr.write(`example failed: ${messageOf(error)}\n`);
    process.exitCode = 1;
  },
);
