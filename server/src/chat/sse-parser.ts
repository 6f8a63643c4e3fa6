/** One Server-Sent Event as dispatched by a blank line (comments and empty events are dropped). */
export interface ParsedSseEvent {
  event: string | null;
  data: string;
  id: string | null;
}

/**
 * An incremental Server-Sent Events parser (WHATWG "event stream interpretation").
 * Feed it text as it arrives, in chunks cut anywhere: a line break or the blank line
 * that ends an event may be split across TCP packets, including a CR LF cut between
 * its two characters. Used for the upstream model's stream and by the tests.
 */
export class SseParser {
  private buffer = '';
  /** The last chunk ended with CR: a LF starting the next one belongs to the same line break. */
  private pendingCr = false;
  private data: string[] = [];
  private hasData = false;
  private eventName: string | null = null;
  private lastId: string | null = null;

  /** Parses a chunk; returns the events it completed. */
  push(chunk: string): ParsedSseEvent[] {
    const out: ParsedSseEvent[] = [];
    let text = chunk;
    if (this.pendingCr && text.startsWith('\n')) text = text.slice(1);
    this.pendingCr = false;
    this.buffer += text;
    let start = 0;
    for (let i = 0; i < this.buffer.length; i++) {
      const c = this.buffer.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      const line = this.buffer.slice(start, i);
      if (c === 13) {
        if (i + 1 < this.buffer.length) {
          if (this.buffer.charCodeAt(i + 1) === 10) i++;
        } else {
          this.pendingCr = true;
        }
      }
      start = i + 1;
      this.line(line, out);
    }
    this.buffer = this.buffer.slice(start);
    return out;
  }

  /** True when a partial line or an undispatched event is pending (the stream ended mid-event). */
  get hasPartial(): boolean {
    return this.buffer.length > 0 || this.hasData;
  }

  private line(line: string, out: ParsedSseEvent[]): void {
    if (line === '') {
      if (this.hasData) out.push({ event: this.eventName, data: this.data.join('\n'), id: this.lastId });
      this.data = [];
      this.hasData = false;
      this.eventName = null;
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
        this.hasData = true;
        break;
      case 'event':
        this.eventName = value;
        break;
      case 'id':
        if (!value.includes('\0')) this.lastId = value;
        break;
      default:
        // "retry" and unknown fields do not matter to us.
        break;
    }
  }
}
