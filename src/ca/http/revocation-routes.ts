/**
 * Public revocation routes: CRLs (DER or PEM, with validators for cheap polling, and a watch
 * stream that pushes every new CRL) and the OCSP responder (RFC 6960 POST and GET).
 *
 * Caching: CRLs and OCSP answers change the moment something is revoked, and tlsmesh promises
 * that revocation takes effect in seconds, so shared caches are told to revalidate every time
 * (`no-cache` with an ETag; a 304 costs a few bytes). `Expires` still carries the CRL's
 * nextUpdate for tools that look for it.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { TlsmeshError } from '../../errors.js';
import { MAX_OCSP_REQUEST_BYTES, ocspErrorResponse } from '../../pki/ocsp.js';
import type { CrlPublisher, PublishedCrl, PublishedCrls } from '../crl-publisher.js';
import type { OcspService } from '../ocsp-service.js';

/** Seconds between comments on an idle watch stream, so proxies and NATs keep it open. */
const WATCH_HEARTBEAT_MS = 15_000;
/** Watch streams one CA process keeps open; more are refused (each holds a socket). */
const MAX_WATCHERS = 10_000;
/** …and per client address, so one host cannot take every slot (a NATed fleet still fits). */
const MAX_WATCHERS_PER_ADDRESS = 256;
/**
 * A watcher that leaves this much unread is dropped (it reconnects or polls): a client that
 * never reads would otherwise make the CA buffer every CRL it is sent.
 */
const MAX_UNREAD_BYTES = 16 * 1024 * 1024;

const PEM_MEDIA = 'application/x-pem-file';
const wantsPem = (request: FastifyRequest): boolean => /application\/x-pem-file|text\/plain/.test(request.headers.accept ?? '');

interface Representation {
  body: string | Buffer;
  type: string;
  etag: string;
  thisUpdate: Date;
  nextUpdate: Date;
}

function send(request: FastifyRequest, reply: FastifyReply, representation: Representation): FastifyReply {
  void reply
    .header('etag', representation.etag)
    .header('cache-control', 'public, no-cache')
    .header('last-modified', representation.thisUpdate.toUTCString())
    .header('expires', representation.nextUpdate.toUTCString())
    .header('vary', 'accept');
  if (request.headers['if-none-match'] === representation.etag) return reply.status(304).send();
  return reply.type(representation.type).send(representation.body);
}

function single(request: FastifyRequest, crl: PublishedCrl): Representation {
  const pem = wantsPem(request);
  return {
    body: pem ? crl.pem : crl.record.der,
    type: pem ? PEM_MEDIA : 'application/pkix-crl',
    etag: `"${crl.issuerKeyId}-${crl.record.crlNumber}${pem ? '-pem' : ''}"`,
    thisUpdate: crl.record.thisUpdate,
    nextUpdate: crl.record.nextUpdate,
  };
}

/** Every CRL a relying party needs (root's and intermediate's), as one PEM text. */
function all(crls: PublishedCrls): Representation {
  const nextUpdates = [crls.intermediate, ...(crls.root ? [crls.root] : [])].map((crl) => crl.record.nextUpdate.getTime());
  return { body: crls.pem, type: PEM_MEDIA, etag: crls.etag, thisUpdate: crls.intermediate.record.thisUpdate, nextUpdate: new Date(Math.min(...nextUpdates)) };
}

export function registerRevocationRoutes(app: FastifyInstance, crls: CrlPublisher, ocsp: OcspService): void {
  const watchers = new Set<() => void>();
  const watchersByAddress = new Map<string, number>();
  app.addHook('onClose', (_instance, done) => {
    for (const end of watchers) end();
    done();
  });

  // GET /v1/crl: the active intermediate's CRL as DER (what a leaf's CRL distribution point
  // names); with Accept: application/x-pem-file, every CRL in PEM (what Node's `crl` option
  // needs). ?watch=1 streams the PEM form as server-sent events whenever it changes.
  app.get('/v1/crl', async (request, reply) => {
    const query = request.query as Record<string, unknown>;
    if (query['watch'] !== undefined) return watch(request, reply);
    return wantsPem(request) ? send(request, reply, all(crls.current())) : send(request, reply, single(request, crls.current().intermediate));
  });

  app.get('/v1/crl/:issuer', async (request, reply) => {
    const { issuer } = request.params as { issuer: string };
    const current = crls.current();
    const crl = [current.intermediate, ...(current.root ? [current.root] : [])].find((candidate) => candidate.issuerKeyId === issuer);
    if (crl === undefined) throw new TlsmeshError('ERR_NOT_FOUND', `no CRL is published for issuer ${issuer}`);
    return send(request, reply, single(request, crl));
  });

  function watch(request: FastifyRequest, reply: FastifyReply): FastifyReply {
    const address = request.socket.remoteAddress ?? 'unknown';
    const fromAddress = watchersByAddress.get(address) ?? 0;
    if (watchers.size >= MAX_WATCHERS || fromAddress >= MAX_WATCHERS_PER_ADDRESS) {
      throw new TlsmeshError('ERR_CA_UNREACHABLE', `too many CRL watch streams (${watchers.size} open, ${fromAddress} from ${address}); poll /v1/crl instead`);
    }
    void reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
    const send = (text: string): void => {
      if (raw.writableLength > MAX_UNREAD_BYTES) {
        end();
        return;
      }
      raw.write(text);
    };
    const push = (current: PublishedCrls): void => send(`event: crl\nid: ${current.etag}\ndata: ${JSON.stringify({ etag: current.etag, pem: current.pem })}\n\n`);
    const heartbeat = setInterval(() => send(': keep-alive\n\n'), WATCH_HEARTBEAT_MS);
    let unsubscribe: () => unknown = () => undefined;
    const end = (): void => {
      if (!watchers.delete(end)) return;
      const left = (watchersByAddress.get(address) ?? 1) - 1;
      if (left > 0) watchersByAddress.set(address, left);
      else watchersByAddress.delete(address);
      clearInterval(heartbeat);
      unsubscribe();
      raw.end();
    };
    watchers.add(end);
    watchersByAddress.set(address, fromAddress + 1);
    push(crls.current());
    unsubscribe = crls.onChange(push);
    request.raw.socket.once('close', end);
    return reply;
  }

  app.addContentTypeParser('application/ocsp-request', { parseAs: 'buffer', bodyLimit: MAX_OCSP_REQUEST_BYTES }, (_request, body, done) => {
    done(null, body);
  });

  const ocspReply = (reply: FastifyReply, der: Buffer): FastifyReply => reply.type('application/ocsp-response').header('cache-control', 'no-cache').send(der);

  app.post('/v1/ocsp', async (request, reply) => {
    if (!Buffer.isBuffer(request.body)) {
      throw new TlsmeshError('ERR_BAD_REQUEST', 'an OCSP request must be sent as Content-Type: application/ocsp-request');
    }
    return ocspReply(reply, await ocsp.answer(request.body));
  });

  // RFC 6960 Appendix A.1: GET {url}/{url-encoding of base-64 encoding of the DER OCSPRequest}.
  // A wildcard, because base64 may contain '/' that a client did not escape.
  app.get('/v1/ocsp/*', async (request, reply) => {
    const encoded = (request.params as { '*': string })['*'];
    let text: string;
    try {
      text = decodeURIComponent(encoded);
    } catch {
      return ocspReply(reply, ocspErrorResponse('malformedRequest'));
    }
    if (text.length > Math.ceil((MAX_OCSP_REQUEST_BYTES * 4) / 3) + 4 || !/^[A-Za-z0-9+/]+={0,2}$/.test(text)) {
      return ocspReply(reply, ocspErrorResponse('malformedRequest'));
    }
    return ocspReply(reply, await ocsp.answer(Buffer.from(text, 'base64')));
  });
}
