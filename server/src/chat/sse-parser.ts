/** One Server-Sent Event as dispatched by a blank line (comments and empty events are dropped). */
export interface ParsedSseEvent {
  event: string | null;
  data: string;
  id: string | null;
}

/**
 * The longest line (and the most data of one event) the parser holds, in characters. The model
 * provider's chunks are a few hundred characters, and a reply is cut at MAX_REPLY_CHARS anyway
 * (200,000 by default, JSON-escaped at most 6 times as long in a chunk): whatever sends more
 * without a line break is not a stream worth reading, and would otherwise be held whole.
 */
export const MAX_SSE_LINE_CHARS = 2 * 1024 * 1024;

/** The stream sent a line (or an event's data) longer than the parser holds. */
export class SseLineTooLongError extends Error {
  constructor(readonly maxChars: number, what: 'line' | 'event') {
    super(`The event stream sent ${what === 'line' ? 'a line' : 'an event'} longer than ${maxChars} characters`);
    this.name = 'SseLineTooLongError';
  }
}

/**
 * An incremental Server-Sent Events parser (WHATWG "event stream interpretation").
 * Feed it text as it arrives, in chunks cut anywhere: a line break or the blank line
 * that ends an event may be split across TCP packets, including a CR LF cut between
 * its two characters. Used for the upstream model's stream and by the tests.
 *
 * Each chunk is scanned once: the start of an unfinished line is held as the pieces it came in
 * and joined once its line ends, so a long line in many small chunks costs its length, not its
 * length squared. A line, or an event's data, longer than `maxLineChars` throws SseLineTooLongError.
 */
export class SseParser {
  /** The unfinished line's pieces, and their length. */
  private partial: string[] = [];
  private partialLength = 0;
  /** The last chunk ended with CR: a LF starting the next one belongs to the same line break. */
  private pendingCr = false;
  private data: string[] = [];
  /** The pending event's data as it will be dispatched (its lines joined by LF), in characters. */
  private dataLength = 0;
  private hasData = false;
  private eventName: string | null = null;
  private lastId: string | null = null;

  constructor(private readonly maxLineChars = MAX_SSE_LINE_CHARS) {}

  /** Parses a chunk; returns the events it completed. */
  push(chunk: string): ParsedSseEvent[] {
    const out: ParsedSseEvent[] = [];
    // Nothing to read, and a CR held from the last chunk still waits for its LF.
    if (chunk.length === 0) return out;
    let start = 0;
    if (this.pendingCr && chunk.charCodeAt(0) === 10) start = 1;
    this.pendingCr = false;
    for (let i = start; i < chunk.length; i++) {
      const c = chunk.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      let line = chunk.slice(start, i);
      if (this.partialLength > 0) {
        this.partial.push(line);
        line = this.partial.join('');
        this.partial = [];
        this.partialLength = 0;
      }
      if (line.length > this.maxLineChars) throw new SseLineTooLongError(this.maxLineChars, 'line');
      if (c === 13) {
        if (i + 1 < chunk.length) {
          if (chunk.charCodeAt(i + 1) === 10) i++;
        } else {
          this.pendingCr = true;
        }
      }
      start = i + 1;
      this.line(line, out);
    }
    if (start < chunk.length) {
      this.partialLength += chunk.length - start;
      if (this.partialLength > this.maxLineChars) throw new SseLineTooLongError(this.maxLineChars, 'line');
      this.partial.push(start === 0 ? chunk : chunk.slice(start));
    }
    return out;
  }

  /** True when a partial line or an undispatched event is pending (the stream ended mid-event). */
  get hasPartial(): boolean {
    return this.partialLength > 0 || this.hasData;
  }

  private line(line: string, out: ParsedSseEvent[]): void {
    if (line === '') {
      if (this.hasData) out.push({ event: this.eventName, data: this.data.join('\n'), id: this.lastId });
      this.data = [];
      this.dataLength = 0;
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
        this.dataLength += (this.hasData ? 1 : 0) + value.length;
        if (this.dataLength > this.maxLineChars) throw new SseLineTooLongError(this.maxLineChars, 'event');
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
