/** The CA's keys and where a rotation stands (the same status as `tlsmesh ca rotate status`). */
import type { RotationStatus } from '../../ca/rotation.js';
import type { CaKeyRecord } from '../../store/index.js';
import { html, type Html } from '../html.js';
import { dateTime } from '../layout.js';

export function keysBody(keys: CaKeyRecord[], rotation: RotationStatus, activeIntermediate: string): Html {
  const valid = new Map(rotation.keys.map((k) => [k.id, k.validCertificates]));
  return html`
<p>Rotation: <strong>${rotation.next}</strong>. The CA signs with <code>${activeIntermediate}</code>.</p>
<table>
  <caption>CA keys, oldest first</caption>
  <thead><tr><th scope="col">Key</th><th scope="col">Kind</th><th scope="col">State</th><th scope="col">Not before</th><th scope="col">Not after</th><th scope="col">Private key</th><th scope="col" class="num">Valid certificates signed</th></tr></thead>
  <tbody>${keys.map(
    (k) => html`<tr><td><code>${k.id}</code></td><td>${k.kind}</td><td>${k.state}</td><td>${dateTime(k.notBefore)}</td><td>${dateTime(k.notAfter)}</td><td>${k.encryptedKey === null ? 'offline' : 'in the store (sealed)'}</td><td class="num">${valid.get(k.id) ?? html`<span class="muted">—</span>`}</td></tr>`,
  )}</tbody>
</table>
<p class="muted">Rotation steps are run with <code>tlsmesh ca rotate prepare|activate|retire</code> (docs/rotation-and-revocation.md).</p>`;
}
