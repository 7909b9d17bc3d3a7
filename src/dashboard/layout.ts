/** The frame of every page: a skip link, a header with navigation and who is looking, one main. */
import { html, type Html } from './html.js';
import type { Viewer } from './access.js';

export const NAV: readonly { href: string; label: string }[] = [
  { href: '/ui/', label: 'Overview' },
  { href: '/ui/certs', label: 'Certificates' },
  { href: '/ui/timeline', label: 'Expiry timeline' },
  { href: '/ui/health', label: 'Renewal health' },
  { href: '/ui/revocations', label: 'Revocations' },
  { href: '/ui/audit', label: 'Audit trail' },
  { href: '/ui/keys', label: 'CA keys' },
];

export interface PageFrame {
  title: string;
  /** The nav entry to mark as current. */
  current?: string;
  viewer: Viewer | null;
  /** For the logout form of a read-only session. */
  csrf?: string;
  trustDomain: string;
}

export function page(frame: PageFrame, body: Html): Html {
  const who =
    frame.viewer === null
      ? null
      : frame.viewer.kind === 'admin'
        ? html`<span class="who">Admin: <code>${frame.viewer.spiffeId}</code></span>`
        : html`<span class="who">Read-only session
            <form method="post" action="/ui/logout"><input type="hidden" name="csrf" value="${frame.csrf}"><button type="submit">Log out</button></form></span>`;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${frame.title} · tlsmesh CA · ${frame.trustDomain}</title>
<link rel="stylesheet" href="/ui/static/dashboard.css">
</head>
<body>
<a class="skip" href="#content">Skip to content</a>
<header class="top">
  <a class="brand" href="/ui/">tlsmesh CA <span class="muted">${frame.trustDomain}</span></a>
  ${
    frame.viewer === null
      ? null
      : html`<nav class="main" aria-label="Dashboard"><ul>${NAV.map(
          (item) => html`<li><a href="${item.href}"${item.href === frame.current ? html` aria-current="page"` : null}>${item.label}</a></li>`,
        )}</ul></nav>`
  }
  ${who}
</header>
<main id="content" tabindex="-1">
<h1>${frame.title}</h1>
${body}
</main>
</body>
</html>
`;
}

export function dateTime(value: Date | null): Html {
  if (value === null) return html`<span class="muted">—</span>`;
  const iso = value.toISOString();
  return html`<time datetime="${iso}">${iso.slice(0, 19).replace('T', ' ')}Z</time>`;
}
