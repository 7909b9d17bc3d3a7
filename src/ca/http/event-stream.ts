/**
 * Watch streams (server-sent events) for documents the CA publishes — the CRLs, the trust bundle:
 * the current version at once, then every new one, as `event: <name>` with
 * `data: {"etag","pem"}`, and a comment every 15 s so proxies and NATs keep the stream open.
 *
 * Anyone may watch, so the CA bounds what a watcher can cost: streams per process and per client
 * address, and the bytes a watcher may leave unread (one that never reads would otherwise make the
 * CA buffer every version it is sent); a watcher over a limit is dropped and reconnects or polls.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { TlsmeshError } from '../../errors.js';

const HEARTBEAT_MS = 15_000;
const MAX_WATCHERS = 10_000;
/** A NATed fleet behind one address still fits. */
const MAX_WATCHERS_PER_ADDRESS = 256;
const MAX_UNREAD_BYTES = 16 * 1024 * 1024;

export interface WatchedDocument {
  etag: string;
  pem: string;
}

export interface WatchSource {
  /** The event name (`crl`, `bundle`). */
  event: string;
  current(): WatchedDocument;
  /** Calls back with each new version; returns the unsubscribe. */
  subscribe(listener: () => void): () => unknown;
}

/** One registry per app: the limits hold across every watched document. */
export class EventStreams {
  readonly #ends = new Set<() => void>();
  readonly #byAddress = new Map<string, number>();

  constructor(app: FastifyInstance) {
    app.addHook('onClose', (_instance, done) => {
      for (const end of this.#ends) end();
      done();
    });
  }

  serve(request: FastifyRequest, reply: FastifyReply, source: WatchSource): FastifyReply {
    const address = request.socket.remoteAddress ?? 'unknown';
    const fromAddress = this.#byAddress.get(address) ?? 0;
    if (this.#ends.size >= MAX_WATCHERS || fromAddress >= MAX_WATCHERS_PER_ADDRESS) {
      throw new TlsmeshError('ERR_CA_UNREACHABLE', `too many watch streams (${this.#ends.size} open, ${fromAddress} from ${address}); poll instead`);
    }
    void reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
    const send = (text: string): void => {
      if (raw.writableLength > MAX_UNREAD_BYTES) end();
      else raw.write(text);
    };
    let lastEtag: string | undefined;
    const push = (): void => {
      const document = source.current();
      if (document.etag === lastEtag) return;
      lastEtag = document.etag;
      send(`event: ${source.event}\nid: ${document.etag}\ndata: ${JSON.stringify({ etag: document.etag, pem: document.pem })}\n\n`);
    };
    const heartbeat = setInterval(() => send(': keep-alive\n\n'), HEARTBEAT_MS);
    let unsubscribe: () => unknown = () => undefined;
    const end = (): void => {
      if (!this.#ends.delete(end)) return;
      const left = (this.#byAddress.get(address) ?? 1) - 1;
      if (left > 0) this.#byAddress.set(address, left);
      else this.#byAddress.delete(address);
      clearInterval(heartbeat);
      unsubscribe();
      raw.end();
    };
    this.#ends.add(end);
    this.#byAddress.set(address, fromAddress + 1);
    push();
    unsubscribe = source.subscribe(push);
    request.raw.socket.once('close', end);
    return reply;
  }
}
