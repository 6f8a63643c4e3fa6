import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { once } from 'node:events';
import type { IncomingMessage, Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import express, { type Response } from 'express';
import { of, Subject } from 'rxjs';
import type { SequencedEvent } from './chat-events.js';
import { InMemoryGenerationRegistry } from './generation-registry.js';
import { SseParser } from './sse-parser.js';
import { MAX_QUEUED_CHARS, SerializedEvent, SSE_HEARTBEAT, STALL_HEARTBEATS, TokenSse, writeChunk, writeSse } from './sse-writer.js';

/** Reads a raw HTTP/1.1 response off a socket: status line, headers, and the body's chunks exactly as framed. */
function decodeChunked(raw: Buffer): { head: string; chunks: string[]; isTerminated: boolean } {
  const split = raw.indexOf('\r\n\r\n');
  const head = raw.subarray(0, split).toString('latin1');
  const chunks: string[] = [];
  let at = split + 4;
  for (;;) {
    const eol = raw.indexOf('\r\n', at);
    if (eol === -1) return { head, chunks, isTerminated: false };
    const size = Number.parseInt(raw.subarray(at, eol).toString('latin1'), 16);
    if (Number.isNaN(size)) throw new Error(`bad chunk size line at byte ${at}`);
    if (size === 0) return { head, chunks, isTerminated: raw.subarray(eol, eol + 4).toString('latin1') === '\r\n\r\n' };
    const data = raw.subarray(eol + 2, eol + 2 + size);
    if (raw.subarray(eol + 2 + size, eol + 4 + size).toString('latin1') !== '\r\n') throw new Error(`chunk of ${size} bytes not followed by CRLF`);
    chunks.push(data.toString('utf8'));
    at = eol + 4 + size;
  }
}

/** Sends raw request text and collects every byte until the server closes or `until` matches. */
async function rawExchange(port: number, requestText: string, until: (raw: Buffer) => boolean): Promise<Buffer> {
  const socket = connect(port, '127.0.0.1');
  const parts: Buffer[] = [];
  socket.write(requestText);
  return new Promise((resolve, reject) => {
    socket.on('data', (d: Buffer) => {
      parts.push(d);
      const raw = Buffer.concat(parts);
      if (until(raw)) { socket.destroy(); resolve(raw); }
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(parts)));
  });
}

/** Sends a request that closes its connection after the response, and reads every byte of it. */
async function readWhole(port: number, path: string): Promise<Buffer> {
  const socket = connect(port, '127.0.0.1');
  const parts: Buffer[] = [];
  socket.on('data', (d: Buffer) => parts.push(d));
  socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  await once(socket, 'close');
  return Buffer.concat(parts);
}

/** The SSE events of a chunked body, as sent. */
function eventsOf(raw: Buffer): { id: number; token?: string; type: string }[] {
  const { chunks, isTerminated } = decodeChunked(raw);
  expect(isTerminated).toBe(true);
  // No cap on a line: one test sends an event of 16 MB.
  return new SseParser(Infinity).push(chunks.join('')).map((e) => ({ id: Number(e.id), ...(JSON.parse(e.data) as { token?: string; type: string }) }));
}

/** A finished answer of `count` tokens of `size` characters each, in a registry, as a resume replays it. */
function finishedAnswer(count: number, size: number): { registry: InMemoryGenerationRegistry; tokens: string[] } {
  const registry = new InMemoryGenerationRegistry();
  registry.open('m', 'c');
  registry.publish('m', { type: 'start', conversation_id: 'c', user_message_id: 'u', message_id: 'm', provider: 'openai', model: 'x', finished: false });
  const tokens = Array.from({ length: count }, (_, i) => `${i} `.padEnd(size, 'x'));
  for (const token of tokens) registry.publishToken('m', token, Date.now());
  registry.publish('m', { type: 'done', finished: true, message_id: 'm', status: 'complete', finish_reason: 'stop', usage: { prompt_tokens: 1, completion_tokens: count, total_tokens: count + 1 } });
  return { registry, tokens };
}

describe('TokenSse', () => {
  it('writes its SSE text and its JSON by hand exactly as SerializedEvent and JSON.stringify do', () => {
    for (const token of ['plain', ' "quoted" \\ back', 'line\nbreak\ttab', 'é 漢字 🎉', '\u2028\u0000', '']) {
      const fast = new TokenSse(42, token, '2026-11-29T00:00:00.123Z');
      expect(fast.sse).toBe(new SerializedEvent(42, fast.event).sse);
      expect(fast.json).toBe(JSON.stringify(fast));
      expect(JSON.parse(fast.json)).toEqual({ id: 42, event: { type: 'token', token, finished: false, timestamp: '2026-11-29T00:00:00.123Z' } });
    }
  });
});

describe('SSE body writing', () => {
  let server: Server;
  let port: number;
  let handler: (res: Response) => void = () => undefined;
  beforeAll(async () => {
    const app = express();
    app.use((_req, res) => handler(res));
    server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => { server.closeAllConnections(); server.close(); });

  const tokens = ['Grüße', ' 😀 emoji', ' "quoted" \\ back\nslash', ' plain'];

  it('frames each event as one exact chunk, multi-byte text included, and ends the body properly', async () => {
    const events = new Subject<SequencedEvent>();
    handler = (res) => {
      writeSse(res, events, { heartbeatMs: 60_000 });
      // One token per tick, as they arrive from the model; then the end.
      let i = 0;
      const next = (): void => {
        if (i < tokens.length) { events.next(new TokenSse(i, tokens[i], '2026-11-29T00:00:00.000Z')); i++; setImmediate(next); } else events.complete();
      };
      setImmediate(next);
    };
    const raw = await rawExchange(port, 'GET /s HTTP/1.1\r\nHost: x\r\n\r\n', (r) => r.includes('\r\n0\r\n\r\n'));
    const { head, chunks, isTerminated } = decodeChunked(raw);
    expect(head).toMatch(/^HTTP\/1\.1 200/);
    expect(head.toLowerCase()).toContain('transfer-encoding: chunked');
    expect(head.toLowerCase()).toContain('content-type: text/event-stream');
    expect(isTerminated).toBe(true);
    expect(chunks).toEqual(tokens.map((t, i) => new TokenSse(i, t, '2026-11-29T00:00:00.000Z').sse));
    const events_ = chunks.map((c) => JSON.parse(c.split('\n')[1].slice(6)) as { token: string });
    expect(events_.map((e) => e.token)).toEqual(tokens);
  });

  it("sends a reply's last token, its final event and the body's end in one chunk when the end comes from the same run's promise", async () => {
    const events = new Subject<SequencedEvent>();
    const last = new TokenSse(7, 'last', '2026-11-29T00:00:00.000Z');
    const done = new SerializedEvent(8, { type: 'done', finished: true, message_id: 'm', status: 'complete' } as never);
    handler = (res) => {
      writeSse(res, events, { heartbeatMs: 60_000 });
      setImmediate(() => {
        // As a generation ends: the batch that brings the last token also resolves the provider's
        // promise, and the generation publishes its final event when its await resumes.
        let resolveStream!: () => void;
        const streamed = new Promise<void>((resolve) => { resolveStream = resolve; });
        void (async () => {
          await streamed;
          events.next(done);
          events.complete();
        })();
        events.next(last);
        resolveStream();
      });
    };
    const raw = await rawExchange(port, 'GET /end HTTP/1.1\r\nHost: x\r\n\r\n', (r) => r.includes('\r\n0\r\n\r\n'));
    const { chunks, isTerminated } = decodeChunked(raw);
    expect(chunks).toEqual([last.sse + done.sse]);
    expect(isTerminated).toBe(true);
  });

  it('marks the first token on its way to the client on the diagnostics channel, once per response', async () => {
    const marks: { request: IncomingMessage; written: number }[] = [];
    let written = 0;
    const onMark = (message: unknown): void => { marks.push({ request: (message as { request: IncomingMessage }).request, written }); };
    subscribe('parley:chat.first-token-written', onMark);
    try {
      const requests: IncomingMessage[] = [];
      handler = (res) => {
        requests.push(res.req);
        const events = new Subject<SequencedEvent>();
        writeSse(res, events, { heartbeatMs: 60_000 });
        const started = new SerializedEvent(0, { type: 'start', message_id: 'm', conversation_id: 'c', finished: false } as never);
        // `start` alone is not a token: nothing marked until the first token has been written.
        events.next(started);
        setImmediate(() => {
          written = 1;
          events.next(new TokenSse(1, 'a', '2026-11-29T00:00:00.000Z'));
          setImmediate(() => { events.next(new TokenSse(2, 'b', '2026-11-29T00:00:00.000Z')); events.complete(); });
        });
      };
      for (const path of ['/m1', '/m2']) {
        await rawExchange(port, `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`, (r) => r.includes('\r\n0\r\n\r\n'));
        written = 0;
      }
      expect(marks.map((m) => m.request)).toEqual(requests);
      expect(marks.every((m) => m.written === 1)).toBe(true);
    } finally {
      unsubscribe('parley:chat.first-token-written', onMark);
    }
  });

  it('closes at once, releasing what it holds, when the client went away before the stream opened', async () => {
    const live = new Subject<SequencedEvent>();
    let closes = 0;
    let resolveClosed: () => void = () => undefined;
    const closed = new Promise<void>((resolve) => { resolveClosed = resolve; });
    let resolveReached: () => void = () => undefined;
    const reached = new Promise<void>((resolve) => { resolveReached = resolve; });
    handler = (res) => {
      // As the route does while it stores the turn: the stream opens only once the client is gone.
      res.once('close', () => {
        writeSse(res, live, { heartbeatMs: 60_000, onClose: () => { closes++; resolveClosed(); } });
      });
      resolveReached();
    };
    const socket = connect(port, '127.0.0.1');
    socket.write('GET /gone HTTP/1.1\r\nHost: x\r\n\r\n');
    await reached;
    socket.destroy();
    await closed;
    expect(closes).toBe(1);
    // Nothing stays subscribed to the generation for a client that is gone.
    expect(live.observed).toBe(false);
    live.next(new SerializedEvent(0, { type: 'token', token: 'late', finished: false, timestamp: 'now' }));
    live.complete();
    expect(closes).toBe(1);
  });

  it('skips an empty piece: it would otherwise be the terminator of the chunked body', async () => {
    handler = (res) => {
      res.setHeader('Content-Type', 'text/event-stream');
      writeChunk(res, 'a');
      setImmediate(() => { writeChunk(res, ''); writeChunk(res, 'b'); res.end(); });
    };
    const raw = await rawExchange(port, 'GET /e HTTP/1.1\r\nHost: x\r\n\r\n', (r) => r.includes('\r\n0\r\n\r\n'));
    expect(decodeChunked(raw)).toMatchObject({ chunks: ['a', 'b'], isTerminated: true });
  });

  it('leaves the writing to res.write when a middleware wrapped it', async () => {
    const seen: string[] = [];
    handler = (res) => {
      const write = res.write.bind(res) as (chunk: string) => boolean;
      res.write = ((chunk: string) => { seen.push(chunk); return write(chunk.toUpperCase()); }) as typeof res.write;
      res.setHeader('Content-Type', 'text/event-stream');
      writeChunk(res, 'one ');
      setImmediate(() => { writeChunk(res, 'two'); res.end(); });
    };
    const raw = await rawExchange(port, 'GET /w HTTP/1.1\r\nHost: x\r\n\r\n', (r) => r.includes('\r\n0\r\n\r\n'));
    expect(seen).toEqual(['one ', 'two']);
    expect(decodeChunked(raw).chunks.join('')).toBe('ONE TWO');
  });

  it('writes through res.write while the headers are not out, and on a body that is not chunked', async () => {
    handler = (res) => {
      res.setHeader('Content-Type', 'text/plain');
      writeChunk(res, 'first ');
      setImmediate(() => { writeChunk(res, 'second'); res.end(); });
    };
    // HTTP/1.0: no chunked encoding, the body ends with the connection.
    const raw = await rawExchange(port, 'GET /plain HTTP/1.0\r\nHost: x\r\n\r\n', () => false);
    const text = raw.toString('utf8');
    expect(text.toLowerCase()).not.toContain('transfer-encoding');
    expect(text.slice(text.indexOf('\r\n\r\n') + 4)).toBe('first second');
  });

  it('keeps pipelined responses apart: a response still queued behind another is written through res.write', async () => {
    let n = 0;
    handler = (res) => {
      const mine = ++n;
      res.setHeader('Content-Type', 'text/event-stream');
      // The first response is slow; the second one writes while it still waits for the socket.
      if (mine === 1) {
        setTimeout(() => { writeChunk(res, 'one-a '); writeChunk(res, 'one-b'); res.end(); }, 50);
      } else {
        writeChunk(res, 'two-a ');
        setImmediate(() => { writeChunk(res, `two-b ${SSE_HEARTBEAT}`); res.end(); });
      }
    };
    const req = 'GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n';
    const raw = await rawExchange(port, req, (r) => r.toString('latin1').split('\r\n0\r\n\r\n').length === 3);
    const [first, second] = raw.toString('latin1').split(/(?<=\r\n0\r\n\r\n)/);
    expect(decodeChunked(Buffer.from(first, 'latin1')).chunks.join('')).toBe('one-a one-b');
    expect(decodeChunked(Buffer.from(second, 'latin1')).chunks.join('')).toBe(`two-a two-b ${SSE_HEARTBEAT}`);
  });

  describe('a slow reader', () => {
    // 8 M characters: more than the loopback connection's buffers take, so the rest waits in the server.
    const { registry, tokens } = finishedAnswer(2000, 4000);
    const eventChars = new TokenSse(9999, tokens[0], new Date().toISOString()).sse.length;

    it('gets a long replay in bounded pieces, holds at most MAX_QUEUED_CHARS of it and is cut once it reads nothing, its stream held until then', async () => {
      let response!: Response;
      let closedAt = 0;
      handler = (res) => {
        response = res;
        writeSse(res, registry.follow('m', -1)!, { heartbeatMs: 100, onClose: () => { closedAt = Date.now(); } });
      };
      const reader = connect(port, '127.0.0.1');
      reader.pause();
      reader.write('GET /never-reads HTTP/1.1\r\nHost: x\r\n\r\n');
      let most = 0;
      let backedUpAt = 0;
      while (closedAt === 0) {
        const waiting = response?.socket?.writableLength ?? 0;
        if (waiting > 0 && backedUpAt === 0) {
          backedUpAt = Date.now();
          // The whole answer was replayed to the writer at once, yet the stream is not given back before the response ends.
          expect(closedAt).toBe(0);
        }
        most = Math.max(most, waiting);
        await sleep(5);
        if (Date.now() - (backedUpAt || Date.now()) > 5_000) throw new Error('the reader was never cut');
      }
      expect(backedUpAt).toBeGreaterThan(0);
      expect(most).toBeLessThanOrEqual(MAX_QUEUED_CHARS + eventChars);
      // Cut after STALL_HEARTBEATS beats of 100 ms with nothing read, not at once.
      expect(closedAt - backedUpAt).toBeGreaterThanOrEqual((STALL_HEARTBEATS - 1) * 100 - 20);
      expect(response.destroyed).toBe(true);
      reader.destroy();
    });

    // A phone on a poor link reads all the time, but slowly, and its queue stays above the mark.
    // Progress was seen only when the socket's queue shrank, which it does a whole write at a
    // time, and one write (a replay's MAX_QUEUED_CHARS, or what queued meanwhile) outlasted
    // STALL_HEARTBEATS beats at 2 KB/s: the reader was cut as stalled while it read. A phone's
    // connection buffers some 64 KB in the system; loopback's, with its 64 KB segments, some
    // 4 MB, taking more only after a third of it was read: so the write here is scaled up likewise,
    // one event of 16 MB, read at up to 2 MB/s.
    it('is not cut while it reads slowly but steadily, though one write outlasts many heartbeats', async () => {
      const beatMs = 500;
      const big = 'y'.repeat(16 * 1024 * 1024);
      const done = new SerializedEvent(1, { type: 'done', finished: true, message_id: 'm', status: 'complete' } as never);
      let response!: Response;
      let closedAt = 0;
      handler = (res) => {
        response = res;
        writeSse(res, of(new TokenSse(0, big, '2026-11-29T00:00:00.000Z'), done), { heartbeatMs: beatMs, onClose: () => { closedAt = Date.now(); } });
      };
      const reader = connect(port, '127.0.0.1');
      reader.pause();
      reader.write('GET /reads-slowly HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      const parts: Buffer[] = [];
      let read = 0;
      const trickle = setInterval(() => {
        const piece = reader.read(20_000) as Buffer | null;
        if (piece) { parts.push(piece); read += piece.length; }
      }, 10);
      const slowFor = (STALL_HEARTBEATS + 3) * beatMs;
      let most = 0;
      for (const began = Date.now(); Date.now() - began < slowFor && closedAt === 0;) {
        most = Math.max(most, response?.socket?.writableLength ?? 0);
        await sleep(10);
      }
      clearInterval(trickle);
      expect(closedAt, `cut after reading ${read} bytes`).toBe(0);
      // The one write was still on its way all along, and the reader did read.
      expect(most).toBeGreaterThan(big.length);
      expect(response.socket?.writableLength).toBeGreaterThan(big.length);
      expect(read).toBeGreaterThan(2 * 1024 * 1024);
      // Then it reads at full speed: the whole event, and the end.
      for (let piece = reader.read() as Buffer | null; piece; piece = reader.read() as Buffer | null) parts.push(piece);
      reader.on('data', (d: Buffer) => parts.push(d));
      reader.resume();
      await once(reader, 'close');
      const events = eventsOf(Buffer.concat(parts));
      expect(events.map((e) => e.id)).toEqual([0, 1]);
      expect(events[0].token?.length).toBe(big.length);
    }, 30_000);

    it('gets the whole replay, every event once and in order, when it reads', async () => {
      handler = (res) => writeSse(res, registry.follow('m', -1)!, { heartbeatMs: 60_000 });
      const events = eventsOf(await readWhole(port, '/reads'));
      expect(events.map((e) => e.id)).toEqual(Array.from({ length: tokens.length + 2 }, (_, i) => i));
      expect(events.filter((e) => e.type === 'token').map((e) => e.token)).toEqual(tokens);
      expect(events.at(-1)).toMatchObject({ type: 'done' });
    });

    it('falls behind a live answer without holding it all: it takes up again after the last event it has', async () => {
      const live = new InMemoryGenerationRegistry();
      live.open('m', 'c');
      live.publish('m', { type: 'start', conversation_id: 'c', user_message_id: 'u', message_id: 'm', provider: 'openai', model: 'x', finished: false });
      let response!: Response;
      handler = (res) => {
        response = res;
        writeSse(res, live.follow('m', -1)!, { heartbeatMs: 60_000 });
      };
      const reader = connect(port, '127.0.0.1');
      reader.pause();
      reader.write('GET /behind HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      await sleep(20);
      let most = 0;
      for (let i = 0; i < tokens.length; i += 50) {
        for (const token of tokens.slice(i, i + 50)) live.publishToken('m', token, Date.now());
        await sleep(1);
        most = Math.max(most, response.socket?.writableLength ?? 0);
      }
      live.publish('m', { type: 'done', finished: true, message_id: 'm', status: 'complete', finish_reason: 'stop', usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } });
      expect(most).toBeGreaterThan(0);
      expect(most).toBeLessThanOrEqual(MAX_QUEUED_CHARS + 50 * eventChars);
      const parts: Buffer[] = [];
      reader.on('data', (d: Buffer) => parts.push(d));
      reader.resume();
      await once(reader, 'close');
      const events = eventsOf(Buffer.concat(parts));
      expect(events.map((e) => e.id)).toEqual(Array.from({ length: tokens.length + 2 }, (_, i) => i));
      expect(events.filter((e) => e.type === 'token').map((e) => e.token)).toEqual(tokens);
    });

    it('is not cut while it reads an idle stream: only heartbeats wait for it', async () => {
      const idle = new Subject<SequencedEvent>();
      let closes = 0;
      handler = (res) => writeSse(res, idle, { heartbeatMs: 20, onClose: () => { closes++; } });
      const reader = connect(port, '127.0.0.1');
      let raw = '';
      reader.on('data', (d: Buffer) => { raw += d.toString('latin1'); });
      reader.write('GET /idle HTTP/1.1\r\nHost: x\r\n\r\n');
      await sleep(STALL_HEARTBEATS * 20 * 5);
      expect(closes).toBe(0);
      expect(raw.split(SSE_HEARTBEAT).length).toBeGreaterThan(STALL_HEARTBEATS * 2);
      idle.complete();
      await once(reader, 'data');
      reader.destroy();
      await sleep(20);
      expect(closes).toBe(1);
    });
  });
});
