/**
 * grpc.health.v1.Health/Check for grpc-js without protoc or a .proto file: the two messages are
 * one field each, so their protobuf encoding is written out by hand here. This keeps the wire
 * bytes visible (SERVING is `08 01`) and makes grpc-go's generated code the second implementation
 * that checks them. Also a raw-bytes test service whose handlers report who called.
 */
import {
  Client,
  type ChannelCredentials,
  type ChannelOptions,
  Metadata,
  type MethodDefinition,
  type ServiceDefinition,
  type ServiceError,
} from '@grpc/grpc-js';

export const SERVING_STATUS = { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 } as const;
export const HEALTH_CHECK = '/grpc.health.v1.Health/Check';

function varint(value: number): number[] {
  const bytes: number[] = [];
  let rest = value;
  while (rest > 0x7f) {
    bytes.push((rest & 0x7f) | 0x80);
    rest >>>= 7;
  }
  bytes.push(rest);
  return bytes;
}

/** Field number → last value (varint as number, length-delimited as Buffer); other wire types skipped. */
export function decodeFields(buffer: Buffer): Map<number, number | Buffer> {
  const fields = new Map<number, number | Buffer>();
  let offset = 0;
  const readVarint = (): number => {
    let result = 0;
    for (let shift = 0; ; shift += 7) {
      const byte = buffer[offset++];
      if (byte === undefined || shift > 28) throw new Error('truncated or oversized varint');
      result += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return result;
    }
  };
  while (offset < buffer.length) {
    const tag = readVarint();
    const field = Math.floor(tag / 8);
    const wireType = tag & 7;
    if (wireType === 0) fields.set(field, readVarint());
    else if (wireType === 2) {
      const length = readVarint();
      if (offset + length > buffer.length) throw new Error('truncated length-delimited field');
      fields.set(field, buffer.subarray(offset, offset + length));
      offset += length;
    } else if (wireType === 1) offset += 8;
    else if (wireType === 5) offset += 4;
    else throw new Error(`unsupported wire type ${wireType}`);
  }
  return fields;
}

// proto3 leaves default values (empty string, enum 0) off the wire.
export const encodeCheckRequest = (request: { service: string }): Buffer => {
  const bytes = Buffer.from(request.service, 'utf8');
  return bytes.length === 0 ? Buffer.alloc(0) : Buffer.from([0x0a, ...varint(bytes.length), ...bytes]);
};
export const decodeCheckRequest = (buffer: Buffer): { service: string } => {
  const service = decodeFields(buffer).get(1);
  return { service: Buffer.isBuffer(service) ? service.toString('utf8') : '' };
};
export const encodeCheckResponse = (response: { status: number }): Buffer =>
  response.status === 0 ? Buffer.alloc(0) : Buffer.from([0x08, ...varint(response.status)]);
export const decodeCheckResponse = (buffer: Buffer): { status: number } => {
  const status = decodeFields(buffer).get(1);
  return { status: typeof status === 'number' ? status : 0 };
};

const checkMethod: MethodDefinition<{ service: string }, { status: number }> = {
  path: HEALTH_CHECK,
  requestStream: false,
  responseStream: false,
  requestSerialize: encodeCheckRequest,
  requestDeserialize: decodeCheckRequest,
  responseSerialize: encodeCheckResponse,
  responseDeserialize: decodeCheckResponse,
};
export const healthService: ServiceDefinition = { Check: checkMethod };

const raw = (path: string): MethodDefinition<Buffer, Buffer> => ({
  path,
  requestStream: false,
  responseStream: false,
  requestSerialize: (value) => value,
  requestDeserialize: (value) => value,
  responseSerialize: (value) => value,
  responseDeserialize: (value) => value,
});
/** A test service; both methods answer with JSON naming the caller (see the tests' handlers). */
export const whoService: ServiceDefinition = { Who: raw('/tlsmesh.test.Who/Who'), Admin: raw('/tlsmesh.test.Who/Admin') };

export type CallResult<T> = { ok: true; value: T } | { ok: false; error: ServiceError };

/** A generic client with typed unary calls that resolve (never reject) with the status. */
export class TestClient extends Client {
  constructor(target: string, credentials: ChannelCredentials, options: ChannelOptions = {}) {
    super(target, credentials, options);
  }

  check(service = ''): Promise<CallResult<{ status: number }>> {
    return this.#unary(HEALTH_CHECK, encodeCheckRequest, decodeCheckResponse, { service });
  }

  who(method: 'Who' | 'Admin' = 'Who'): Promise<CallResult<{ spiffeId: string | null; serial: string | null }>> {
    return this.#unary(`/tlsmesh.test.Who/${method}`, (value: Buffer) => value, (value) => JSON.parse(value.toString('utf8')) as { spiffeId: string | null; serial: string | null }, Buffer.alloc(0));
  }

  #unary<Req, Res>(path: string, serialize: (value: Req) => Buffer, deserialize: (value: Buffer) => Res, request: Req): Promise<CallResult<Res>> {
    return new Promise((resolve) => {
      this.makeUnaryRequest(path, serialize, deserialize, request, new Metadata(), { deadline: Date.now() + 15_000 }, (error, value) => {
        if (error) resolve({ ok: false, error });
        else resolve({ ok: true, value: value as Res });
      });
    });
  }
}
