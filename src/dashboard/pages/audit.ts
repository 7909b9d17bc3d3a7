/** The audit trail (paged newest first, filtered by action and outcome) and the recent revocations. */
import type { AuditOutcome, AuditRecord } from '../../store/index.js';
import { html, type Html } from '../html.js';
import { dateTime } from '../layout.js';

export const AUDIT_PAGE_SIZE = 50;
export const OUTCOMES: readonly AuditOutcome[] = ['ok', 'refused', 'error'];

export interface AuditView {
  entries: AuditRecord[];
  action: string;
  outcome: AuditOutcome | undefined;
  before: number | undefined;
  hasOlder: boolean;
}

function auditHref(action: string, outcome: AuditOutcome | undefined, before: number | undefined): string {
  const params = new URLSearchParams();
  if (action !== '') params.set('action', action);
  if (outcome !== undefined) params.set('outcome', outcome);
  if (before !== undefined) params.set('before', String(before));
  const text = params.toString();
  return text === '' ? '/ui/audit' : `/ui/audit?${text}`;
}

export function auditBody(view: AuditView): Html {
  const oldest = view.entries.at(-1)?.id;
  return html`
<form class="filters" method="get" action="/ui/audit" aria-label="Audit trail filters">
  <div><label for="action">Action</label>
  <input type="text" id="action" name="action" value="${view.action}" maxlength="64" placeholder="e.g. revoke, renew, ui.view"></div>
  <div><label for="outcome">Outcome</label>
  <select id="outcome" name="outcome"><option value="">Any</option>${OUTCOMES.map((o) => html`<option value="${o}"${o === view.outcome ? html` selected` : null}>${o}</option>`)}</select></div>
  <div><button type="submit">Filter</button></div>
</form>
<table>
  <caption>Audit entries, newest first${view.before === undefined ? null : html` (older than #${view.before})`}</caption>
  <thead><tr><th scope="col" class="num">#</th><th scope="col">When</th><th scope="col">Actor</th><th scope="col">Action</th><th scope="col">Subject</th><th scope="col">Outcome</th><th scope="col">Code</th><th scope="col">Peer</th><th scope="col">Detail</th></tr></thead>
  <tbody>${view.entries.map(
    (e) => html`<tr><td class="num">${e.id}</td><td>${dateTime(e.at)}</td><td><code>${e.actor}</code></td><td>${e.action}</td><td><code>${e.subject}</code></td><td>${e.outcome}</td><td><code>${e.code}</code></td><td>${e.peer}</td><td><code>${JSON.stringify(e.detail)}</code></td></tr>`,
  )}</tbody>
</table>
${view.entries.length === 0 ? html`<p>No audit entries match.</p>` : null}
<nav class="pager" aria-label="Pages">
  ${view.before === undefined ? null : html`<a href="${auditHref(view.action, view.outcome, undefined)}">Newest entries</a>`}
  ${view.hasOlder && oldest !== undefined ? html`<a href="${auditHref(view.action, view.outcome, oldest)}" rel="next">Older entries</a>` : null}
</nav>`;
}

export function revocationsBody(entries: AuditRecord[]): Html {
  if (entries.length === 0) return html`<p>Nothing has been revoked.</p>`;
  return html`<table>
  <caption>Revocations, newest first (from the audit log)</caption>
  <thead><tr><th scope="col">When</th><th scope="col">By</th><th scope="col">Serial or identity</th><th scope="col">Reason</th></tr></thead>
  <tbody>${entries.map((e) => {
    const subject = e.subject ?? '';
    const reason = typeof e.detail['reason'] === 'string' ? e.detail['reason'] : '';
    return html`<tr><td>${dateTime(e.at)}</td><td><code>${e.actor}</code></td><td>${
      subject.startsWith('spiffe://') ? html`<a href="/ui/certs?q=${encodeURIComponent(subject)}"><code>${subject}</code></a>` : html`<a class="mono" href="/ui/certs/${encodeURIComponent(subject)}">${subject}</a>`
    }</td><td><code>${reason}</code></td></tr>`;
  })}</tbody>
</table>`;
}
