/**
 * The expiry timeline: a bar chart drawn as inline SVG on the server (no script), labelled with
 * <title>/<desc>, each bar with its own <title>, and the same numbers as a table.
 */
import { html, type Html } from '../html.js';
import type { TimelineBucket } from '../queries.js';

const WIDTH = 760;
const HEIGHT = 260;
const PAD = { left: 44, right: 12, top: 14, bottom: 40 };

const label = (date: Date, unit: 'hour' | 'day'): string => (unit === 'hour' ? `${date.toISOString().slice(5, 13).replace('T', ' ')}h` : date.toISOString().slice(0, 10));

export function timelineChart(buckets: TimelineBucket[], unit: 'hour' | 'day'): Html {
  const max = Math.max(1, ...buckets.map((b) => b.count));
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const slot = plotW / Math.max(1, buckets.length);
  const total = buckets.reduce((n, b) => n + b.count, 0);
  const peak = buckets.reduce<TimelineBucket | null>((best, b) => (best === null || b.count > best.count ? b : best), null);
  const every = Math.max(1, Math.ceil(buckets.length / 8));
  const y = (n: number): number => PAD.top + plotH - (n / max) * plotH;
  const desc = `${total} unrevoked certificates expire in the ${buckets.length} ${unit}s shown` + (peak !== null && peak.count > 0 ? `; the most, ${peak.count}, in the ${unit} from ${label(peak.start, unit)}.` : '.');
  return html`<svg class="chart" role="img" aria-labelledby="chart-title chart-desc" viewBox="0 0 ${WIDTH} ${HEIGHT}" width="${WIDTH}" height="${HEIGHT}" xmlns="http://www.w3.org/2000/svg">
<title id="chart-title">Certificates expiring per ${unit}</title>
<desc id="chart-desc">${desc}</desc>
<line class="axis" x1="${PAD.left}" y1="${PAD.top + plotH}" x2="${WIDTH - PAD.right}" y2="${PAD.top + plotH}"/>
<line class="axis" x1="${PAD.left}" y1="${PAD.top}" x2="${PAD.left}" y2="${PAD.top + plotH}"/>
<text x="${PAD.left - 6}" y="${PAD.top + 4}" text-anchor="end">${max}</text>
<text x="${PAD.left - 6}" y="${PAD.top + plotH}" text-anchor="end">0</text>
${buckets.map((b, i) => {
  const x = PAD.left + i * slot + slot * 0.1;
  const h = PAD.top + plotH - y(b.count);
  return html`<rect class="bar" x="${x.toFixed(1)}" y="${y(b.count).toFixed(1)}" width="${(slot * 0.8).toFixed(1)}" height="${h.toFixed(1)}"><title>${label(b.start, unit)}: ${b.count}</title></rect>${
    i % every === 0 ? html`<text x="${(x + slot * 0.4).toFixed(1)}" y="${HEIGHT - PAD.bottom + 16}" text-anchor="middle">${label(b.start, unit)}</text>` : null
  }`;
})}
</svg>`;
}

export function timelineBody(buckets: TimelineBucket[], unit: 'hour' | 'day', leafSeconds: number): Html {
  return html`
<p>Unrevoked certificates by the ${unit} they expire in, over the next two leaf lifetimes (${Math.round((2 * leafSeconds) / 3600)} h). Times are UTC.</p>
<figure>
${timelineChart(buckets, unit)}
<figcaption class="muted">The data table below gives the same numbers.</figcaption>
</figure>
<details>
<summary>Data table</summary>
<table>
  <caption>Certificates expiring per ${unit}</caption>
  <thead><tr><th scope="col">From (UTC)</th><th scope="col">Until (UTC)</th><th scope="col" class="num">Expiring</th></tr></thead>
  <tbody>${buckets.map((b) => html`<tr><td><time datetime="${b.start.toISOString()}">${b.start.toISOString().slice(0, 16).replace('T', ' ')}</time></td><td><time datetime="${b.end.toISOString()}">${b.end.toISOString().slice(0, 16).replace('T', ' ')}</time></td><td class="num">${b.count}</td></tr>`)}</tbody>
</table>
</details>`;
}
