/**
 * Incremental parsers for the two streaming formats: Server-Sent Events (the WHATWG
 * `text/event-stream` rules: `data`, `id`, `event`, `retry`, comments, CR/LF/CRLF line ends) and
 * newline-delimited JSON. Feed them text as it arrives; they call back once per complete item.
 * @module
 */

/** One raw SSE event: the joined `data` lines, plus `id`, `event` and `retry` when sent. */
export interface RawSseEvent {
  data: string;
  id: string | undefined;
  event: string | undefined;
}

/** SSE parser. `onEvent` gets each dispatched event; `lastEventId` and `retryMs` track the stream. */
export class SseParser {
  lastEventId: string | undefined;
  retryMs: number | undefined;
  #buffer = '';
  #data: string[] = [];
  #event: string | undefined;
  #pendingCr = false;
  #dataLength = 0;

  constructor(
    private readonly onEvent: (event: RawSseEvent) => void,
    lastEventId?: string,
  ) {
    this.lastEventId = lastEventId;
  }

  /** Characters held for an event not complete yet (a guard against endless events). */
  get buffered(): number {
    return this.#buffer.length + this.#dataLength;
  }

  /** Feeds decoded text. */
  push(text: string): void {
    let buf = this.#buffer + text;
    if (this.#pendingCr && buf.startsWith('\n')) buf = buf.slice(1);
    this.#pendingCr = false;
    let start = 0;
    for (let i = 0; i < buf.length; i++) {
      const c = buf.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      this.#line(buf.slice(start, i));
      if (c === 13) {
        if (i + 1 === buf.length) this.#pendingCr = true;
        else if (buf.charCodeAt(i + 1) === 10) i++;
      }
      start = i + 1;
    }
    this.#buffer = buf.slice(start);
  }

  #line(line: string): void {
    if (line === '') {
      if (this.#data.length > 0) {
        const event = { data: this.#data.join('\n'), id: this.lastEventId, event: this.#event };
        this.#data = [];
        this.#dataLength = 0;
        this.#event = undefined;
        this.onEvent(event);
      } else this.#event = undefined;
      return;
    }
    if (line.charCodeAt(0) === 58) return; // ':' comment (keep-alive)
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    switch (field) {
      case 'data':
        this.#data.push(value);
        this.#dataLength += value.length;
        break;
      case 'id':
        if (!value.includes('\0')) this.lastEventId = value;
        break;
      case 'event':
        this.#event = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retryMs = Number(value);
        break;
    }
  }
}

/** NDJSON parser: each non-empty line goes to `onLine` (a trailing `\r` is dropped). */
export class NdjsonParser {
  #buffer = '';
  constructor(private readonly onLine: (line: string) => void) {}

  /** Characters held for a line not complete yet. */
  get buffered(): number {
    return this.#buffer.length;
  }

  push(text: string): void {
    const buf = this.#buffer + text;
    let start = 0;
    let nl = buf.indexOf('\n', start);
    while (nl !== -1) {
      let line = buf.slice(start, nl);
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line.trim() !== '') this.onLine(line);
      start = nl + 1;
      nl = buf.indexOf('\n', start);
    }
    this.#buffer = buf.slice(start);
  }

  /** The text after the last newline, at the end of the stream. */
  end(): void {
    const rest = this.#buffer.trim();
    this.#buffer = '';
    if (rest !== '') this.onLine(rest);
  }
}
