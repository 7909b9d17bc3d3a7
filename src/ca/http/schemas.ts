/** Request bodies of the CA API, validated with zod; a failure names the field. */
import { z } from 'zod';
import { REVOCATION_REASONS } from '../../pki/crl.js';
import { TlsmeshError } from '../../errors.js';
import { MAX_TOKEN_LENGTH } from '../tokens.js';

const MAX_CSR_TEXT = 32 * 1024;
const MAX_SANS = 100;

export const enrollBody = z.strictObject({
  token: z.string().min(1).max(MAX_TOKEN_LENGTH),
  csr: z.string().min(1).max(MAX_CSR_TEXT),
});

export const renewBody = z.strictObject({ csr: z.string().min(1).max(MAX_CSR_TEXT) });

export const tokenBody = z.strictObject({
  spiffeId: z.string().min(1).max(2048),
  dnsNames: z.array(z.string().max(253)).max(MAX_SANS).optional(),
  ipAddresses: z.array(z.string().max(64)).max(MAX_SANS).optional(),
  ttlSeconds: z.number().int().optional(),
});


export const revokeBody = z.strictObject({
  serial: z.string().regex(/^[0-9a-fA-F:]{1,64}$/).optional(),
  spiffeId: z.string().min(1).max(2048).optional(),
  reason: z.enum(REVOCATION_REASONS).optional(),
});

export const certsQuery = z.strictObject({
  spiffeId: z.string().max(2048).optional(),
  status: z.enum(['valid', 'revoked']).optional(),
  kind: z.enum(['workload', 'admin', 'ca-server']).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
  offset: z.coerce.number().int().min(0).optional(),
});

export function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const result = schema.safeParse(body ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const where = issue && issue.path.length > 0 ? issue.path.join('.') : 'body';
  throw new TlsmeshError('ERR_BAD_REQUEST', `invalid request: ${where}: ${issue?.message ?? 'invalid'}`);
}
