/**
 * Name policy: what a CSR may ask for. The caller's allowance (from its token, or from the
 * certificate it renews) names one SPIFFE ID and the DNS/IP SANs it may carry; the CSR must name
 * that SPIFFE ID (or none: it is added) and a subset of those SANs, and must not ask for CA:true.
 */
import { TlsmeshError } from '../errors.js';
import type { ParsedCsr } from '../pki/index.js';
import { canonicalDnsName, canonicalIp } from '../pki/index.js';

export interface NameAllowance {
  spiffeId: string;
  dnsNames: readonly string[];
  ipAddresses: readonly string[];
}

export interface GrantedNames {
  spiffeId: string;
  dnsNames: string[];
  ipAddresses: string[];
}

export function grantNames(csr: ParsedCsr, allowance: NameAllowance): GrantedNames {
  if (csr.requestsCa) throw new TlsmeshError('ERR_CSR_CA_REQUESTED', 'the CSR asks for basicConstraints CA:true; only leaf certificates are issued');
  if (csr.uris.length > 1) throw new TlsmeshError('ERR_CSR_IDENTITY_MISMATCH', `the CSR names ${csr.uris.length} URIs; a certificate carries exactly one SPIFFE ID`);
  const [uri] = csr.uris;
  if (uri !== undefined && uri !== allowance.spiffeId) {
    throw new TlsmeshError('ERR_CSR_IDENTITY_MISMATCH', `the CSR asks for ${uri} but the caller may only have ${allowance.spiffeId}`);
  }
  const allowedDns = new Set(allowance.dnsNames.map(canonicalDnsName));
  const allowedIps = new Set(allowance.ipAddresses.map(canonicalIp));
  const deniedDns = csr.dnsNames.filter((name) => !allowedDns.has(name));
  const deniedIps = csr.ipAddresses.filter((ip) => !allowedIps.has(ip));
  if (deniedDns.length > 0 || deniedIps.length > 0) {
    throw new TlsmeshError('ERR_CSR_SAN_NOT_ALLOWED', `the CSR asks for SANs that are not allowed: ${[...deniedDns, ...deniedIps].join(', ')}`);
  }
  return { spiffeId: allowance.spiffeId, dnsNames: [...new Set(csr.dnsNames)], ipAddresses: [...new Set(csr.ipAddresses)] };
}
