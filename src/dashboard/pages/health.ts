/** Renewal health: identities overdue for renewal, identities expired, recent renewal refusals. */
import type { AuditRecord, IdentityCertificate } from '../../store/index.js';
import { html, type Html } from '../html.js';
import { dateTime } from '../layout.js';
import { HEALTH_LOOKBACK_MS, type RenewalHealth } from '../queries.js';
import { certLink } from './certs.js';

function identityTable(id: string, caption: string, records: readonly IdentityCertificate[], empty: string): Html {
  if (records.length === 0) return html`<p id="${id}">${empty}</p>`;
  return html`<table id="${id}">
  <caption>${caption}</caption>
  <thead><tr><th scope="col">SPIFFE ID</th><th scope="col">Newest certificate</th><th scope="col">Not before</th><th scope="col">Not after</th></tr></thead>
  <tbody>${records.map((r) => html`<tr><td><code>${r.spiffeId}</code></td><td><a class="mono" href="${certLink(r.serial)}">${r.serial}</a></td><td>${dateTime(r.notBefore)}</td><td>${dateTime(r.notAfter)}</td></tr>`)}</tbody>
</table>`;
}

export function refusalTable(id: string, caption: string, entries: AuditRecord[], empty: string): Html {
  if (entries.length === 0) return html`<p id="${id}">${empty}</p>`;
  return html`<table id="${id}">
  <caption>${caption}</caption>
  <thead><tr><th scope="col">When</th><th scope="col">Actor</th><th scope="col">Subject</th><th scope="col">Code</th><th scope="col">Peer</th></tr></thead>
  <tbody>${entries.map((e) => html`<tr><td>${dateTime(e.at)}</td><td><code>${e.actor}</code></td><td><code>${e.subject}</code></td><td><code>${e.code}</code></td><td>${e.peer}</td></tr>`)}</tbody>
</table>`;
}

export function healthBody(health: RenewalHealth): Html {
  return html`
<p>${health.identities} workload identities had a certificate valid at some point in the last ${HEALTH_LOOKBACK_MS / 86_400_000} days.
An identity is overdue when its newest certificate is past its renewal point (2/3 of its lifetime, plus the agent's jitter of 1/20) and none newer exists.</p>
<h2>Overdue for renewal</h2>
${identityTable('overdue', 'Identities overdue for renewal', health.overdue, 'No identity is overdue for renewal.')}
<h2>Expired</h2>
${identityTable('expired', 'Identities whose newest certificate has expired', health.expired, 'No identity has expired.')}
<h2>Recent renewal refusals</h2>
${refusalTable('refusals', 'Renewals the CA refused, newest first', health.refusals, 'No renewal was refused.')}`;
}
