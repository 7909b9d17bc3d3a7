/**
 * Shared pieces of the gRPC tests: an identity source the test can rotate (a fake, not a mock),
 * a grpc-js server with the health and "who" services, and a raw TLS probe for serials.
 */
import { connect } from 'node:tls';
import { type ChannelOptions, type sendUnaryData, Server, type ServerCredentials, type ServerInterceptor, type ServerUnaryCall, status } from '@grpc/grpc-js';
import { callerSpiffeId } from '../../src/sdk/grpc/authz.js';
import type { GrpcIdentity, GrpcIdentitySource } from '../../src/sdk/grpc/provider.js';
import { checkServerSpiffeId, spiffeMatcher } from '../../src/sdk/spiffe-matcher.js';
import { enrollWorkload, type TestCa, type Workload } from '../helpers/ca.js';
import { healthService, SERVING_STATUS, whoService } from './grpc-health.js';

export class MutableIdentity implements GrpcIdentitySource {
  #identity: GrpcIdentity;
  readonly #listeners = new Set<() => void>();

  constructor(identity: GrpcIdentity) {
    this.#identity = identity;
  }

  current(): GrpcIdentity {
    return this.#identity;
  }

  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  set(identity: GrpcIdentity): void {
    this.#identity = identity;
    for (const listener of this.#listeners) listener();
  }

  get listeners(): number {
    return this.#listeners.size;
  }
}

/** A fresh certificate from the test CA; its renewal client is closed (these tests never renew). */
export async function enrolled(ca: TestCa, spiffeId: string): Promise<Workload> {
  const workload = await enrollWorkload(ca, spiffeId);
  workload.client.close();
  return workload;
}

export function identityOf(workload: Pick<Workload, 'certPem' | 'keyPem' | 'spiffeId'>, bundlePem: string): GrpcIdentity {
  return { certPem: workload.certPem, keyPem: workload.keyPem, bundlePem, spiffeId: workload.spiffeId };
}

/** Serials compare as Node prints them (uppercase hex, no leading zeros) or as the CA does. */
export const sameSerial = (a: string | null | undefined, b: string): boolean =>
  typeof a === 'string' && a.toLowerCase().replace(/^0+/, '') === b.toLowerCase().replace(/^0+/, '');

export interface HandledCall {
  method: string;
  spiffeId: string | undefined;
  serial: string | undefined;
}

export interface TestServer {
  address: string;
  port: number;
  /** Calls that reached a handler (denied or refused ones never do). */
  calls: HandledCall[];
  close(): void;
}

export async function startGrpcServer(
  credentials: ServerCredentials,
  options: { interceptors?: ServerInterceptor[]; serverOptions?: ChannelOptions } = {},
): Promise<TestServer> {
  const server = new Server({ ...options.serverOptions, interceptors: options.interceptors ?? [] });
  const calls: HandledCall[] = [];
  const record = (method: string, call: ServerUnaryCall<unknown, unknown>): HandledCall => {
    const handled = { method, spiffeId: callerSpiffeId(call), serial: call.getAuthContext()?.sslPeerCertificate?.serialNumber };
    calls.push(handled);
    return handled;
  };
  server.addService(healthService, {
    Check: (call: ServerUnaryCall<{ service: string }, { status: number }>, callback: sendUnaryData<{ status: number }>) => {
      record('Check', call);
      if (call.request.service === '') callback(null, { status: SERVING_STATUS.SERVING });
      else callback({ code: status.NOT_FOUND, details: `unknown service ${call.request.service}` });
    },
  });
  const who = (method: string) => (call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) => {
    const handled = record(method, call);
    callback(null, Buffer.from(JSON.stringify({ spiffeId: handled.spiffeId ?? null, serial: handled.serial ?? null })));
  };
  server.addService(whoService, { Who: who('Who'), Admin: who('Admin') });
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', credentials, (error, bound) => (error ? reject(error) : resolve(bound)));
  });
  return { address: `127.0.0.1:${port}`, port, calls, close: () => server.forceShutdown() };
}

/** Handshakes with the server directly and returns the serial of the leaf it presents. */
export function serverSerial(port: number, client: GrpcIdentity, expectedServerId: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(
      {
        host: '127.0.0.1',
        port,
        ca: client.bundlePem,
        cert: client.certPem,
        key: client.keyPem,
        ALPNProtocols: ['h2'],
        checkServerIdentity: checkServerSpiffeId(spiffeMatcher(expectedServerId)),
      },
      () => {
        const serial = socket.getPeerCertificate().serialNumber;
        socket.destroy();
        resolve(serial);
      },
    );
    socket.once('error', reject);
  });
}
