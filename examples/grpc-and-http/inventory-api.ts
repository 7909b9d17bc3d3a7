/**
 * inventory.proto loaded at run time with @grpc/proto-loader (no protoc step), plus the types
 * that generated code would give you. Nothing here is about TLS.
 */
import { fileURLToPath } from 'node:url';
import {
  type CallOptions,
  type Client,
  type ClientUnaryCall,
  loadPackageDefinition,
  type ServiceClientConstructor,
  type ServiceDefinition,
  type ServiceError,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

export interface StockRequest {
  sku: string;
}

export interface StockReply {
  sku: string;
  available: number;
  caller: string;
  ordersHealth: string; // orders_health in the .proto: proto-loader camel-cases field names
}

export interface InventoryClient extends Client {
  GetStock(request: StockRequest, options: CallOptions, callback: (error: ServiceError | null, reply?: StockReply) => void): ClientUnaryCall;
}

const definition = loadSync(fileURLToPath(new URL('inventory.proto', import.meta.url)), { defaults: true });
const { shop } = loadPackageDefinition(definition) as unknown as { shop: { Inventory: ServiceClientConstructor } };

/** `Inventory.service` for `server.addService`, `new Inventory(address, credentials, options)` for clients. */
export const Inventory = shop.Inventory as unknown as {
  new (...args: ConstructorParameters<ServiceClientConstructor>): InventoryClient;
  service: ServiceDefinition;
};

/** Full method path, as authorization rules and logs name it. */
export const GET_STOCK = '/shop.Inventory/GetStock';

/** GetStock as a promise, with a deadline. */
export function getStock(client: InventoryClient, sku: string): Promise<StockReply> {
  return new Promise((resolve, reject) => {
    client.GetStock({ sku }, { deadline: Date.now() + 5000 }, (error, reply) => (error || !reply ? reject(error ?? new Error('empty reply')) : resolve(reply)));
  });
}
