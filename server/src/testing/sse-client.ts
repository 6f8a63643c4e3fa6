import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ClientRequest } from 'node:http';
import { SseParser } from '../chat/sse-parser.js';

export interface ReceivedEvent {
  id: number | null;
  // Tests read the fields they assert on.
  data: Record<string, unknown>;
}

/**
 * A raw HTTP client for SSE routes (tests and scripts): real sockets, incremental parsing,
 * and `destroy()` to drop the connection mid-stream like a closed tab.
 */
export class SseConnection {
  readonly events: ReceivedEvent[] = [];
  /** Raw text received (to check framing, heartbeats). */
  raw = '';
  status = 0;
  headers: IncomingHttpHeaders = {};
  /** The JSON body when the answer was not a stream (an error envelope). */
  json: unknown;
  /** Resolves when the response has ended or the connection is gone. */
  readonly ended: Promise<void>;
  /** The body was received to its end (not cut with the connection). */
  isComplete = false;
  private readonly waiters: (() => void)[] = [];
  private req!: ClientRequest;
  private isEnded = false;

  private constructor(url: string, init: { method: string; headers: Record<string, string>; body?: unknown }) {
    this.ended = new Promise<void>((resolve) => {
      const body = init.body === undefined ? undefined : JSON.stringify(init.body);
      this.req = httpRequest(url, {
        method: init.method,
        headers: { ...(body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body).toString() } : {}), ...init.headers },
      }, (res: IncomingMessage) => {
        this.status = res.statusCode ?? 0;
        this.headers = res.headers;
        const parser = new SseParser();
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          this.raw += chunk;
          if (!String(res.headers['content-type']).startsWith('text/event-stream')) return;
          for (const e of parser.push(chunk)) this.events.push({ id: e.id === null ? null : Number(e.id), data: JSON.parse(e.data) as Record<string, unknown> });
          this.wake();
        });
        const finish = (): void => {
          if (!String(res.headers['content-type']).startsWith('text/event-stream') && this.raw) this.json = JSON.parse(this.raw);
          this.isComplete = res.complete;
          this.isEnded = true;
          this.wake();
          resolve();
        };
        res.on('end', finish);
        res.on('close', finish);
        this.wake();
      });
      this.req.on('error', () => { this.isEnded = true; this.wake(); resolve(); });
      if (body) this.req.write(body);
      this.req.end();
    });
  }

  static open(url: string, init: { method?: string; headers?: Record<string, string>; body?: unknown } = {}): SseConnection {
    return new SseConnection(url, { method: init.method ?? 'GET', headers: init.headers ?? {}, body: init.body });
  }

  /** Waits until `predicate` holds for the events so far (or the stream ended). */
  async until(predicate: (events: ReceivedEvent[]) => boolean, timeoutMs = 10_000): Promise<ReceivedEvent[]> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this.events)) {
      if (this.isEnded) throw new Error(`stream ended before the condition held; status ${this.status}, got ${JSON.stringify(this.events.map((e) => e.data))}${this.raw.slice(0, 300)}`);
      if (Date.now() > deadline) throw new Error(`timed out; got ${JSON.stringify(this.events.map((e) => e.data))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50);
        this.waiters.push(() => { clearTimeout(timer); resolve(); });
      });
    }
    return this.events;
  }

  /** Waits for the end of the response and returns every event. */
  async all(): Promise<ReceivedEvent[]> {
    await this.ended;
    return this.events;
  }

  /** Drops the connection (like closing the tab). */
  destroy(): void {
    this.req.destroy();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

export function tokensOf(events: ReceivedEvent[]): string {
  return events.filter((e) => e.data.type === 'token').map((e) => e.data.token as string).join('');
}

/** The `start` event of a whole SSE response body (as supertest reads it). */
export function startEventOf(sse: string): Record<string, unknown> {
  const line = sse.split('\n').find((l) => l.startsWith('data: ') && l.includes('"type":"start"'));
  if (!line) throw new Error(`no start event in ${sse.slice(0, 300)}`);
  return JSON.parse(line.slice(6)) as Record<string, unknown>;
}
