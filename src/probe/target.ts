/** `HOST:PORT` as the prober reaches it: host, port, and the SNI name (DNS names only). */
import { isIP } from 'node:net';
import { TlsmeshError } from '../errors.js';

export interface ProbeTarget {
  host: string;
  port: number;
  /** Sent as SNI; undefined for IP addresses, which SNI may not carry (RFC 6066 §3). */
  servername: string | undefined;
  /** `host:port`, `[v6]:port`: for the report and the HTTP Host header. */
  label: string;
}

const HOST_PORT = /^(?:\[([^\]]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/;

/**
 * Parses `HOST:PORT` or `[IPv6]:PORT`; throws ERR_CONFIG naming what is wrong.
 *
 * @example parseTarget('api.internal:8443') // { host: 'api.internal', port: 8443, servername: 'api.internal', … }
 */
export function parseTarget(text: string): ProbeTarget {
  const match = HOST_PORT.exec(text);
  if (!match) throw new TlsmeshError('ERR_CONFIG', `the target must be HOST:PORT or [IPv6]:PORT (got ${JSON.stringify(text.slice(0, 100))})`);
  const bracketed = match[1];
  const host = bracketed ?? match[2]!;
  const port = Number(match[3]);
  if (port < 1 || port > 65_535) throw new TlsmeshError('ERR_CONFIG', `port ${port} is out of range 1-65535`);
  if (bracketed !== undefined && isIP(bracketed) !== 6) throw new TlsmeshError('ERR_CONFIG', `[${bracketed}] is not an IPv6 address`);
  const ip = isIP(host) !== 0;
  return { host, port, servername: ip ? undefined : host, label: isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}` };
}
