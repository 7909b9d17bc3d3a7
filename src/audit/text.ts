/** Offsets to lines and columns, and the normalised text fingerprints are made from. */

export interface Position {
  /** 1-based. */
  line: number;
  /** 1-based, UTF-16 code units. */
  column: number;
}

/** Line starts of a text, for offset → line/column by binary search. `\r\n`, `\n` and `\r` end lines. */
export class LineIndex {
  readonly #starts: number[] = [0];
  readonly #text: string;

  constructor(text: string) {
    this.#text = text;
    for (let index = 0; index < text.length; index++) {
      const code = text.charCodeAt(index);
      if (code === 10) this.#starts.push(index + 1);
      else if (code === 13) {
        if (text.charCodeAt(index + 1) === 10) index++;
        this.#starts.push(index + 1);
      }
    }
  }

  get lineCount(): number {
    return this.#starts.length;
  }

  position(offset: number): Position {
    const clamped = Math.max(0, Math.min(offset, this.#text.length));
    let low = 0;
    let high = this.#starts.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if (this.#starts[middle]! <= clamped) low = middle;
      else high = middle - 1;
    }
    return { line: low + 1, column: clamped - this.#starts[low]! + 1 };
  }

  /** The text of a 1-based line, without its line break. */
  lineText(line: number): string {
    const start = this.#starts[line - 1];
    if (start === undefined) return '';
    const next = this.#starts[line];
    return this.#text.slice(start, next ?? this.#text.length).replace(/\r?\n$|\r$/, '');
  }

  lineStart(line: number): number {
    return this.#starts[line - 1] ?? this.#text.length;
  }
}

/** Whitespace runs collapsed to one space, trimmed, cut to `max` characters. */
export function normalizeCode(text: string, max = 200): string {
  const collapsed = text.replace(/\s+/g, ' ').trim();
  return collapsed.length > max ? `${collapsed.slice(0, max - 1)}…` : collapsed;
}
