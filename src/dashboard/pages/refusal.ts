/** The login form and the page every refusal gets (401/403/404/…), naming the error code. */
import type { TlsmeshError } from '../../errors.js';
import { html, type Html } from '../html.js';

export function loginBody(tokenEnabled: boolean, error: TlsmeshError | null): Html {
  return html`
${error === null ? null : html`<p class="alert" role="alert"><code>${error.code}</code>: ${error.message}</p>`}
<p>The dashboard is for the CA's admins: present the admin client certificate (mutual TLS) for full access.</p>
${
  tokenEnabled
    ? html`<p>Without it, the read-only token lets you view the pages (not revoke).</p>
<form method="post" action="/ui/login">
  <p><label for="token">Read-only token</label>
  <input type="password" id="token" name="token" autocomplete="current-password" required></p>
  <p><button type="submit">Log in (read-only)</button></p>
</form>`
    : html`<p class="muted">No read-only token is configured on this CA.</p>`
}`;
}

export function refusalBody(error: TlsmeshError): Html {
  return html`<p class="alert" role="alert"><code>${error.code}</code>: ${error.message}</p>
<p><a href="/ui/">Back to the dashboard</a></p>`;
}
