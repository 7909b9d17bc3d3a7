/** The overview: certificate counts by status, renewal health in numbers, the CA keys at a glance. */
import type { CaKeyRecord } from '../../store/index.js';
import { html, type Html } from '../html.js';
import { dateTime } from '../layout.js';
import { STATUS_FILTERS, STATUS_LABELS, type StatusFilter } from '../queries.js';

export interface OverviewView {
  counts: Record<StatusFilter, number>;
  overdue: number;
  expiredIdentities: number;
  recentRefusals: number;
  keys: CaKeyRecord[];
  activeIntermediate: string;
  store: string;
}

export function overviewBody(view: OverviewView): Html {
  const active = view.keys.filter((k) => k.state === 'active' || k.state === 'prepared' || k.state === 'superseded');
  return html`
<section aria-labelledby="h-certs">
<h2 id="h-certs">Certificates</h2>
<div class="cards">
${STATUS_FILTERS.map((s) => html`<div class="card"><a href="/ui/certs?status=${s}"><span class="n">${view.counts[s]}</span>${STATUS_LABELS[s]}</a></div>`)}
</div>
<p class="muted">Valid counts every unrevoked, unexpired certificate, the ones expiring soon included.</p>
</section>
<section aria-labelledby="h-health">
<h2 id="h-health">Renewal health</h2>
<div class="cards">
  <div class="card"><a href="/ui/health#overdue"><span class="n">${view.overdue}</span>Identities overdue for renewal</a></div>
  <div class="card"><a href="/ui/health#expired"><span class="n">${view.expiredIdentities}</span>Identities expired</a></div>
  <div class="card"><a href="/ui/health#refusals"><span class="n">${view.recentRefusals}</span>Recent renewal refusals</a></div>
</div>
</section>
<section aria-labelledby="h-keys">
<h2 id="h-keys">CA keys</h2>
<table>
  <caption>Keys in use (store: ${view.store}); signing with <code>${view.activeIntermediate}</code></caption>
  <thead><tr><th scope="col">Key</th><th scope="col">Kind</th><th scope="col">State</th><th scope="col">Not after</th></tr></thead>
  <tbody>${active.map((k) => html`<tr><td><code>${k.id}</code></td><td>${k.kind}</td><td>${k.state}</td><td>${dateTime(k.notAfter)}</td></tr>`)}</tbody>
</table>
<p><a href="/ui/keys">All keys and rotation state</a></p>
</section>`;
}
