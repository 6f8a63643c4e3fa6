/** One dispatched Server-Sent Event. `id` is the stream's last event id at dispatch time. */
export interface SseMessage {
  id: string | undefined;
  event: string;
  data: string;
}

/**
 * An incremental parser of the text/event-stream format (WHATWG HTML, "event stream interpretation"):
 * bytes may be split anywhere, lines end in CRLF, LF or CR, `data` lines join with "\n",
 * comment lines (heartbeats) dispatch nothing and leave the last event id alone.
 */
export class SseParser {
  private readonly decoder = new TextDecoder();
  /** The pieces of a line whose end has not come yet. */
  private partial: string[] = [];
  private isFirstChunk = true;
  private pendingCr = false;
  private data: string[] = [];
  private eventType = '';
  private lastEventId: string | undefined;

  constructor(initialLastEventId?: string) {
    this.lastEventId = initialLastEventId;
  }

  get lastId(): string | undefined {
    return this.lastEventId;
  }

  /** Feeds bytes (or text) and returns the events completed by them. */
  push(chunk: Uint8Array | string): SseMessage[] {
    let text = typeof chunk === 'string' ? chunk : this.decoder.decode(chunk, { stream: true });
    if (this.isFirstChunk && text.length > 0) {
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      this.isFirstChunk = false;
    }
    // A CR at the end of the previous chunk already ended its line; a LF right after it is part of that CRLF.
    if (this.pendingCr && text.startsWith('\n')) text = text.slice(1);
    this.pendingCr = false;
    // The start of a line not ended yet waits as pieces, joined once when its end comes: only new text is scanned,
    // and a long line arriving in many small chunks costs its length once (appending each chunk to one string and
    // reading it by index flattened the whole string at every chunk, quadratic again).
    const out: SseMessage[] = [];
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const ch = text.charCodeAt(i);
      if (ch !== 10 && ch !== 13) continue;
      let line = text.slice(start, i);
      if (this.partial.length > 0) {
        this.partial.push(line);
        line = this.partial.join('');
        this.partial = [];
      }
      this.processLine(line, out);
      if (ch === 13) {
        if (i + 1 < text.length) {
          if (text.charCodeAt(i + 1) === 10) i++;
        } else {
          this.pendingCr = true;
        }
      }
      start = i + 1;
    }
    if (start < text.length) this.partial.push(start === 0 ? text : text.slice(start));
    return out;
  }

  /** The stream ended: an unterminated event is discarded, as the standard says. */
  end(): SseMessage[] {
    const rest = this.decoder.decode();
    const out = rest ? this.push(rest) : [];
    this.partial = [];
    this.data = [];
    this.eventType = '';
    return out;
  }

  private processLine(line: string, out: SseMessage[]): void {
    if (line === '') {
      this.dispatch(out);
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'data':
        this.data.push(value);
        break;
      case 'event':
        this.eventType = value;
        break;
      case 'id':
        if (!value.includes('\0')) this.lastEventId = value;
        break;
      default:
        // `retry` and unknown fields: the client reconnects on its own terms.
        break;
    }
  }

  private dispatch(out: SseMessage[]): void {
    if (this.data.length > 0) {
      out.push({ id: this.lastEventId, event: this.eventType || 'message', data: this.data.join('\n') });
    }
    this.data = [];
    this.eventType = '';
  }
}

/** Reads a whole body stream, calling `onMessage` per event; resolves when the body ends. */
export async function readSse(
  body: ReadableStream<Uint8Array>,
  onMessage: (message: SseMessage) => void,
  parser = new SseParser(),
): Promise<void> {
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      for (const message of parser.push(value)) onMessage(message);
    }
    for (const message of parser.end()) onMessage(message);
  } finally {
    reader.releaseLock();
  }
}
