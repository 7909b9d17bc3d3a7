/**
 * orders: an HTTP service (Express 5). Its identity comes from the files the tlsmesh agent (or
 * `tlsmesh cert request` / `cert renew`) keeps in one directory — cert.pem, key.pem, bundle.pem —
 * and fileIdentity watches them, so a renewal on disk reaches new handshakes without a restart.
 * GET /orders/:id is for the frontend and calls inventory over gRPC; GET /health is for any
 * workload of the trust domain.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { createMtlsHttpsServer, fileIdentity, peerIdentity, requirePeer, type SpiffeMatchers } from 'tlsmesh/sdk';
import { grpcChannelCredentials, grpcChannelOptions } from 'tlsmesh/sdk/grpc';
import { getStock, Inventory } from './inventory-api.js';

export interface OrdersConfig {
  host: string;
  port: number;
  /** The directory the agent writes cert.pem, key.pem and bundle.pem into. */
  tlsDir: string;
  trustDomain: string;
  /** Where inventory is, and the SPIFFE ID it must prove it has. */
  inventory: { address: string; spiffeId: string };
  /** Who may read orders. */
  readers: SpiffeMatchers;
  log: (line: string) => void;
}

export interface RunningOrders {
  url: string;
  spiffeId: string;
  close(): Promise<void>;
}

export async function startOrders(config: OrdersConfig): Promise<RunningOrders> {
  const { log } = config;

  // mTLS: our identity, from the agent's files (watched; a half-written file is ignored).
  const identity = await fileIdentity({ dir: config.tlsDir });
  // mTLS: a gRPC channel that presents our certificate and accepts only inventory's SPIFFE ID.
  const inventory = new Inventory(config.inventory.address, grpcChannelCredentials(identity, { expect: config.inventory.spiffeId }), grpcChannelOptions());

  const app = express();

  // mTLS: per-route authorization by the caller's SPIFFE ID (exact ID here).
  app.get('/orders/:id', requirePeer(config.readers), async (req, res) => {
    log(`[orders] GET /orders/${req.params.id} from ${peerIdentity(req)?.spiffeId}`);
    try {
      const stock = await getStock(inventory, `sku-${req.params.id}`);
      log(`[orders -> inventory] GetStock ${stock.sku}: ${stock.available} available; server ${config.inventory.spiffeId}, it saw us as ${stock.caller}`);
      res.json({ order: req.params.id, inStock: stock.available > 0, caller: peerIdentity(req)?.spiffeId });
    } catch (error) {
      res.status(502).json({ error: `inventory: ${error instanceof Error ? error.message : String(error)}` });
    }
  });

  // mTLS: any workload of our trust domain may ask for health.
  app.get('/health', requirePeer({ trustDomain: config.trustDomain }), (req, res) => {
    log(`[orders] GET /health from ${peerIdentity(req)?.spiffeId}`);
    res.json({ status: 'ok', caller: peerIdentity(req)?.spiffeId });
  });

  // mTLS: an HTTPS server that refuses any client without a certificate from our bundle, and any
  // SPIFFE ID outside the trust domain (refusals are logged with the reason and the address).
  const server = createMtlsHttpsServer(identity, { allow: { trustDomain: config.trustDomain } }, app);
  server.listen(config.port, config.host);
  await once(server, 'listening');

  return {
    url: `https://${config.host}:${(server.address() as AddressInfo).port}`,
    spiffeId: identity.current().spiffeId,
    async close() {
      inventory.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      identity.close();
    },
  };
}
