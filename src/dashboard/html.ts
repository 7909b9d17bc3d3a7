/**
 * The one escaping helper: every page is built with the `html` tag, which escapes each
 * interpolated value unless it is already `Html` (made by `html` itself). Nothing else writes
 * markup, so a value from the store (a SPIFFE ID, an audit entry's detail, a search string) can
 * never become markup. Escaping covers text and double-quoted attribute values alike.
 *
 * @example
 * html`<td>${record.spiffeId}</td>`           // escaped
 * html`<ul>${items.map((i) => html`<li>${i}</li>`)}</ul>` // arrays of Html are joined
 */

/** Markup that is safe to send: only `html` makes it. */
export class Html {
  readonly #text: string;
  private constructor(text: string) {
    this.#text = text;
  }
  toString(): string {
    return this.#text;
  }
  /** @internal the tag's own constructor; not exported from the module's index. */
  static trusted(text: string): Html {
    return new Html(text);
  }
}

const ENTITIES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

export type HtmlValue = Html | string | number | bigint | boolean | null | undefined | readonly HtmlValue[];

function render(value: HtmlValue): string {
  if (value === null || value === undefined || value === false) return '';
  if (value instanceof Html) return value.toString();
  if (Array.isArray(value)) return (value as readonly HtmlValue[]).map(render).join('');
  return escapeHtml(String(value));
}

export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): Html {
  let out = strings[0] ?? '';
  for (let i = 0; i < values.length; i++) out += render(values[i]) + (strings[i + 1] ?? '');
  return Html.trusted(out);
}
