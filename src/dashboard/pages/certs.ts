/** The certificate list (search, status filter, paging), a certificate's detail, and the revoke confirmation. */
import { X509Certificate } from 'node:crypto';
import { REVOCATION_REASONS } from '../../pki/crl.js';
import type { CertificateRecord } from '../../store/index.js';
import { html, type Html } from '../html.js';
import { dateTime } from '../layout.js';
import { STATUS_FILTERS, STATUS_LABELS, statusOf, type Horizon, type StatusFilter } from '../queries.js';

export const PAGE_SIZE = 25;

export function statusBadge(record: CertificateRecord, horizon: Horizon): Html {
  const status = statusOf(record, horizon);
  // "expiring" is a valid certificate; show the more specific word.
  return html`<span class="status status-${status}">${STATUS_LABELS[status]}</span>`;
}

export const certLink = (serial: string): string => `/ui/certs/${encodeURIComponent(serial)}`;

export interface CertListView {
  records: CertificateRecord[];
  total: number;
  page: number;
  q: string;
  status: StatusFilter | undefined;
  horizon: Horizon;
  /** Set after a revocation through the UI. */
  revoked?: string | undefined;
}

function listHref(q: string, status: StatusFilter | undefined, page: number): string {
  const params = new URLSearchParams();
  if (q !== '') params.set('q', q);
  if (status !== undefined) params.set('status', status);
  if (page > 1) params.set('page', String(page));
  const text = params.toString();
  return text === '' ? '/ui/certs' : `/ui/certs?${text}`;
}

export function certListBody(view: CertListView): Html {
  const pages = Math.max(1, Math.ceil(view.total / PAGE_SIZE));
  const first = view.total === 0 ? 0 : (view.page - 1) * PAGE_SIZE + 1;
  const last = Math.min(view.total, view.page * PAGE_SIZE);
  return html`
${view.revoked === undefined ? null : html`<p class="notice" role="status">Certificate <code>${view.revoked}</code> was revoked; it is in the CRL published at <a href="/v1/crl">/v1/crl</a>.</p>`}
<form class="filters" method="get" action="/ui/certs" role="search" aria-label="Certificates">
  <div><label for="q">SPIFFE ID contains</label>
  <input type="search" id="q" name="q" value="${view.q}" maxlength="256" placeholder="e.g. ns/prod"></div>
  <div><label for="status">Status</label>
  <select id="status" name="status">
    <option value="">Any</option>
    ${STATUS_FILTERS.map((s) => html`<option value="${s}"${s === view.status ? html` selected` : null}>${STATUS_LABELS[s]}</option>`)}
  </select></div>
  <div><button type="submit">Search</button></div>
</form>
<table>
  <caption>${view.total === 0 ? 'No certificates match' : html`Certificates ${first}–${last} of ${view.total}`}${view.q === '' ? null : html` for “${view.q}”`}</caption>
  <thead><tr><th scope="col">SPIFFE ID</th><th scope="col">Serial</th><th scope="col">Kind</th><th scope="col">Status</th><th scope="col">Not after</th><th scope="col">Issuer key</th></tr></thead>
  <tbody>
  ${view.records.map(
    (r) => html`<tr>
      <td><code>${r.spiffeId}</code></td>
      <td><a class="mono" href="${certLink(r.serial)}">${r.serial}</a></td>
      <td>${r.kind}</td>
      <td>${statusBadge(r, view.horizon)}</td>
      <td>${dateTime(r.notAfter)}</td>
      <td><code>${r.issuerKeyId}</code></td>
    </tr>`,
  )}
  </tbody>
</table>
<nav class="pager" aria-label="Pages">
  ${view.page > 1 ? html`<a href="${listHref(view.q, view.status, view.page - 1)}" rel="prev">Previous page</a>` : null}
  <span>Page ${view.page} of ${pages}</span>
  ${view.page < pages ? html`<a href="${listHref(view.q, view.status, view.page + 1)}" rel="next">Next page</a>` : null}
</nav>`;
}

export function certDetailBody(record: CertificateRecord, horizon: Horizon, canRevoke: boolean): Html {
  const x509 = new X509Certificate(record.der);
  return html`
<dl class="facts">
  <dt>SPIFFE ID</dt><dd><code>${record.spiffeId}</code></dd>
  <dt>Serial</dt><dd><code>${record.serial}</code></dd>
  <dt>Status</dt><dd>${statusBadge(record, horizon)}</dd>
  <dt>Kind</dt><dd>${record.kind}</dd>
  <dt>Not before</dt><dd>${dateTime(record.notBefore)}</dd>
  <dt>Not after</dt><dd>${dateTime(record.notAfter)}</dd>
  <dt>DNS names</dt><dd>${record.dnsNames.length === 0 ? html`<span class="muted">none</span>` : record.dnsNames.map((n, i) => html`${i > 0 ? ', ' : ''}<code>${n}</code>`)}</dd>
  <dt>IP addresses</dt><dd>${record.ipAddresses.length === 0 ? html`<span class="muted">none</span>` : record.ipAddresses.map((n, i) => html`${i > 0 ? ', ' : ''}<code>${n}</code>`)}</dd>
  <dt>Issuer key</dt><dd><code>${record.issuerKeyId}</code></dd>
  <dt>Issued</dt><dd>${dateTime(record.createdAt)} (<code>${record.origin}</code>)</dd>
  <dt>SHA-256 fingerprint</dt><dd><code>${x509.fingerprint256}</code></dd>
  <dt>Revoked</dt><dd>${record.revokedAt === null ? html`<span class="muted">no</span>` : html`${dateTime(record.revokedAt)}, reason <code>${record.revocationReason}</code>`}</dd>
</dl>
${
  record.status === 'revoked'
    ? null
    : canRevoke
      ? html`<p><a class="button danger" href="${certLink(record.serial)}/revoke">Revoke…</a></p>`
      : html`<p class="muted">Revoking needs the admin client certificate; this is a read-only session.</p>`
}
<p><a href="/ui/certs?q=${encodeURIComponent(record.spiffeId)}">All certificates of this identity</a></p>`;
}

export function revokeConfirmBody(record: CertificateRecord, csrf: string): Html {
  return html`
<p class="alert">Revoking cannot be undone. The certificate goes into the CRL at once and every mTLS peer that checks the CRL will refuse it.</p>
<dl class="facts">
  <dt>Serial</dt><dd><code>${record.serial}</code></dd>
  <dt>Identity</dt><dd><code>${record.spiffeId}</code></dd>
  <dt>Not after</dt><dd>${dateTime(record.notAfter)}</dd>
</dl>
<form method="post" action="${certLink(record.serial)}/revoke">
  <input type="hidden" name="csrf" value="${csrf}">
  <p><label for="reason">Reason</label>
  <select id="reason" name="reason">${REVOCATION_REASONS.map((r) => html`<option value="${r}">${r}</option>`)}</select></p>
  <p><button type="submit" class="danger">Revoke certificate ${record.serial}</button>
  <a href="${certLink(record.serial)}">Cancel</a></p>
</form>`;
}
