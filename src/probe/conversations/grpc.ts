/**
 * gRPC: one unary call to grpc.health.v1.Health/Check over HTTP/2 on the established socket,
 * written with node:http2 rather than grpc-js so that the prober needs no optional dependency and
 * keeps the socket (and so sees the TLS alert itself). The request is a HealthCheckRequest with
 * every field at its default, which protobuf encodes as zero bytes: the message is just the
 * 5-byte gRPC frame header (uncompressed, length 0).
 *
 * Any gRPC response (even UNIMPLEMENTED, from a server without the health service) is an answer;
 * UNAUTHENTICATED and PERMISSION_DENIED are refusals by the application; a transport failure
 * before any response is a refusal by the server.
 */
import { connect, constants, type ClientHttp2Session, type IncomingHttpHeaders, type IncomingHttpStatusHeader } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import type { Answer, Conversation, ConversationEnd } from '../attempt.js';
import { GRPC_REFUSAL_STATUSES, GRPC_STATUS_NAMES, HTTP_REFUSAL_STATUSES, printable } from '../signals.js';

export const HEALTH_CHECK_PATH = '/grpc.health.v1.Health/Check';
const EMPTY_MESSAGE = Buffer.from([0, 0, 0, 0, 0]);

export interface GrpcResponse {
  httpStatus: number;
  /** From the trailers, or from the headers of a trailers-only response; undefined when absent. */
  grpcStatus: string | undefined;
  grpcMessage: string | undefined;
}

/** The answer a gRPC response carries. */
export function grpcAnswerOf(response: GrpcResponse): Answer {
  const { httpStatus, grpcMessage } = response;
  if (response.grpcStatus === undefined) {
    const refusal = HTTP_REFUSAL_STATUSES.has(httpStatus) ? `HTTP ${httpStatus}` : undefined;
    return { summary: `HTTP/2 :status ${httpStatus}, no grpc-status`, refusal };
  }
  const grpcStatus = Number(response.grpcStatus);
  const name = GRPC_STATUS_NAMES[grpcStatus] ?? 'unknown';
  const message = grpcMessage !== undefined && grpcMessage !== '' ? ` ${printable(safeDecode(grpcMessage))}` : '';
  return { summary: `grpc-status ${response.grpcStatus} (${name})${message}`, refusal: GRPC_REFUSAL_STATUSES.has(grpcStatus) ? `gRPC ${name}` : undefined };
}

/** grpc-message is percent-encoded; a server may send a malformed one. */
function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

const single = (value: string | string[] | undefined): string | undefined => (Array.isArray(value) ? value[0] : value);

function responseOf(headers: IncomingHttpHeaders & IncomingHttpStatusHeader, trailers: IncomingHttpHeaders | undefined): GrpcResponse {
  return {
    httpStatus: Number(headers[constants.HTTP2_HEADER_STATUS]),
    grpcStatus: single(trailers?.['grpc-status']) ?? single(headers['grpc-status']),
    grpcMessage: single(trailers?.['grpc-message']) ?? single(headers['grpc-message']),
  };
}

export function grpcConversation(authority: string): Conversation {
  return {
    name: 'grpc',
    alpn: ['h2'],
    expectsAnswer: true,
    converse(socket: TLSSocket): Promise<ConversationEnd> {
      return new Promise((resolve) => {
        let session: ClientHttp2Session | undefined;
        const end = (result: ConversationEnd): void => {
          resolve(result);
          session?.destroy();
        };
        socket.once('close', () => end({ kind: 'ended', detail: undefined }));
        try {
          session = connect(`https://${authority}`, { createConnection: () => socket });
        } catch (error) {
          end({ kind: 'ended', detail: `HTTP/2 could not start: ${String(error)}` });
          return;
        }
        session.on('error', (error: Error & { code?: string }) => end({ kind: 'ended', detail: `HTTP/2 session error ${error.code ?? error.message}` }));
        session.on('goaway', (code: number) => end({ kind: 'ended', detail: `HTTP/2 GOAWAY (error code ${code})` }));
        session.once('close', () => end({ kind: 'ended', detail: undefined }));
        const stream = session.request({
          [constants.HTTP2_HEADER_METHOD]: 'POST',
          [constants.HTTP2_HEADER_PATH]: HEALTH_CHECK_PATH,
          [constants.HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc',
          [constants.HTTP2_HEADER_TE]: 'trailers',
          [constants.HTTP2_HEADER_USER_AGENT]: 'tlsmesh-probe',
        });
        let headers: (IncomingHttpHeaders & IncomingHttpStatusHeader) | undefined;
        stream.on('response', (received) => {
          headers = received;
          // Trailers-only responses (errors such as UNIMPLEMENTED) carry grpc-status here.
          if (received['grpc-status'] !== undefined) end({ kind: 'answered', answer: grpcAnswerOf(responseOf(received, undefined)) });
        });
        stream.on('trailers', (trailers: IncomingHttpHeaders) => end({ kind: 'answered', answer: grpcAnswerOf(responseOf(headers ?? {}, trailers)) }));
        stream.on('data', () => undefined); // the response message is not needed; keep the stream flowing
        stream.on('close', () => {
          if (headers !== undefined) end({ kind: 'answered', answer: grpcAnswerOf(responseOf(headers, undefined)) });
          else end({ kind: 'ended', detail: stream.rstCode ? `HTTP/2 stream reset (code ${stream.rstCode})` : undefined });
        });
        stream.on('error', () => undefined); // reported through 'close' and the session
        stream.end(EMPTY_MESSAGE);
      });
    },
  };
}
