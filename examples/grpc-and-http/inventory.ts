/**
 * inventory: a gRPC service (grpc-js). Its identity comes straight from the CA: it enrols in
 * process with a one-time token handed to it at deploy time, and renews itself (caIdentity).
 * Only orders may call GetStock; while answering, inventory calls orders' GET /health with fetch,
 * over mutual TLS too.
 */
import { Server, status, type handleUnaryCall } from '@grpc/grpc-js';
import { caIdentity, createMtlsDispatcher, type SpiffeMatchers } from 'tlsmesh/sdk';
import { callerSpiffeId, grpcAuthzInterceptor, grpcServerCredentials, grpcServerOptions } from 'tlsmesh/sdk/grpc';
import { fetch } from 'undici'; // Node's global fetch takes the same dispatcher (its types need a cast on Node 20)
import { GET_STOCK, Inventory, type StockReply, type StockRequest } from './inventory-api.js';

export interface InventoryConfig {
  /** host:port to serve gRPC on. */
  listen: string;
  /** The CA's URL, its root bundle (obtained out of band) and a one-time enrolment token. */
  ca: { url: string; bundlePem: string; token: string };
  /** Where orders is, and the SPIFFE ID it must prove it has. */
  orders: { url: string; spiffeId: string };
  /** Who may call GetStock. */
  allowedCallers: SpiffeMatchers;
  log: (line: string) => void;
}

export interface RunningInventory {
  spiffeId: string;
  close(): Promise<void>;
}

export async function startInventory(config: InventoryConfig): Promise<RunningInventory> {
  const { log } = config;

  // mTLS: our identity, enrolled now and renewed in the background at 2/3 of its lifetime.
  const identity = await caIdentity(config.ca);
  // mTLS: an HTTP client that presents our certificate and accepts only orders' SPIFFE ID.
  const toOrders = createMtlsDispatcher(identity, config.orders.spiffeId);

  const ordersHealth = async (): Promise<string> => {
    const response = await fetch(`${config.orders.url}/health`, { dispatcher: toOrders });
    const body = (await response.json()) as { status: string; caller: string };
    log(`[inventory -> orders] GET /health: ${response.status} ${body.status}; server ${config.orders.spiffeId}, it saw us as ${body.caller}`);
    return body.status;
  };

  const getStock: handleUnaryCall<StockRequest, StockReply> = (call, callback) => {
    // The interceptor below has already checked the caller; this is who it was.
    const caller = callerSpiffeId(call) ?? '(none)';
    log(`[inventory] GetStock ${call.request.sku} from ${caller}`);
    ordersHealth().then(
      (health) => callback(null, { sku: call.request.sku, available: call.request.sku.length % 7, caller, ordersHealth: health }),
      (error: unknown) => callback({ code: status.UNAVAILABLE, details: `orders /health: ${error instanceof Error ? error.message : String(error)}` }),
    );
  };

  const server = new Server({
    // mTLS: recycle connections well before the certificate they were opened with expires.
    ...grpcServerOptions(identity),
    // mTLS: authorize every call by the caller's SPIFFE ID; methods with no rule are denied.
    interceptors: [
      grpcAuthzInterceptor({
        methods: { [GET_STOCK]: config.allowedCallers },
        onDeny: (denial) => log(`[inventory] denied ${denial.method} to ${denial.spiffeId ?? denial.peer}: ${denial.reason}`),
      }),
    ],
  });
  server.addService(Inventory.service, { GetStock: getStock });
  // mTLS: server credentials that require a client certificate from our trust bundle.
  await new Promise<number>((resolve, reject) => server.bindAsync(config.listen, grpcServerCredentials(identity), (error, port) => (error ? reject(error) : resolve(port))));

  return {
    spiffeId: identity.current().spiffeId,
    async close() {
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      await toOrders.close();
      identity.close();
    },
  };
}
