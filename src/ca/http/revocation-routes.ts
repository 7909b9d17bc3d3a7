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
import type { EventStreams, WatchSource } from './event-stream.js';

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

/** Every CRL a relying party needs (roots' and intermediates'), as one PEM text. */
function all(crls: PublishedCrls): Representation {
  const nextUpdate = new Date(Math.min(...crls.all.map((crl) => crl.record.nextUpdate.getTime())));
  return { body: crls.pem, type: PEM_MEDIA, etag: crls.etag, thisUpdate: crls.active.record.thisUpdate, nextUpdate };
}

export function registerRevocationRoutes(app: FastifyInstance, crls: CrlPublisher, ocsp: OcspService, streams: EventStreams): void {
  const watched: WatchSource = { event: 'crl', current: () => crls.current(), subscribe: (listener) => crls.onChange(listener) };

  // GET /v1/crl: the active intermediate's CRL as DER; with Accept: application/x-pem-file,
  // every CRL in PEM (what Node's `crl` option needs, one entry per CRL). A leaf's CRL
  // distribution point names its own issuer's CRL: /v1/crl/<issuer key id>. ?watch=1 streams the PEM form as server-sent events whenever it changes.
  app.get('/v1/crl', async (request, reply) => {
    const query = request.query as Record<string, unknown>;
    if (query['watch'] !== undefined) return streams.serve(request, reply, watched);
    return wantsPem(request) ? send(request, reply, all(crls.current())) : send(request, reply, single(request, crls.current().active));
  });

  app.get('/v1/crl/:issuer', async (request, reply) => {
    const { issuer } = request.params as { issuer: string };
    const crl = crls.current().all.find((candidate) => candidate.issuerKeyId === issuer);
    if (crl === undefined) throw new TlsmeshError('ERR_NOT_FOUND', `no CRL is published for issuer ${issuer}`);
    return send(request, reply, single(request, crl));
  });

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
