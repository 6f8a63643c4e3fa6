import { SseParser, readSse, type SseMessage } from './sse-parser';

const encoder = new TextEncoder();

function feed(parser: SseParser, ...chunks: (string | Uint8Array)[]): SseMessage[] {
  return chunks.flatMap((chunk) => parser.push(chunk));
}

function streamOf(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
      controller.close();
    },
  });
}

describe('SseParser', () => {
  it('parses events with ids and JSON data', () => {
    const events = feed(new SseParser(), 'id: 0\ndata: {"type":"start"}\n\nid: 1\ndata: {"type":"token","token":"Hi"}\n\n');
    expect(events).toEqual([
      { id: '0', event: 'message', data: '{"type":"start"}' },
      { id: '1', event: 'message', data: '{"type":"token","token":"Hi"}' },
    ]);
  });

  it('reassembles events split anywhere, even inside a multi-byte character', () => {
    const bytes = encoder.encode('id: 7\ndata: {"token":"héllo 👋"}\n\n');
    for (let cut = 1; cut < bytes.length; cut++) {
      const parser = new SseParser();
      const events = feed(parser, bytes.slice(0, cut), bytes.slice(cut));
      expect(events).toEqual([{ id: '7', event: 'message', data: '{"token":"héllo 👋"}' }]);
    }
  });

  it('feeds byte by byte', () => {
    const parser = new SseParser();
    const bytes = encoder.encode('data: a\n\ndata: b\n\n');
    const events = Array.from(bytes).flatMap((b) => parser.push(new Uint8Array([b])));
    expect(events.map((e) => e.data)).toEqual(['a', 'b']);
  });

  it('joins multi-line data with newlines', () => {
    expect(feed(new SseParser(), 'data: line one\ndata: line two\ndata:\ndata:  indented\n\n')[0]?.data)
      .toBe('line one\nline two\n\n indented');
  });

  it('ignores comments (heartbeats) without dispatching or moving the last id', () => {
    const parser = new SseParser();
    const events = feed(parser, 'id: 4\ndata: x\n\n', ': ping\n\n', ':another comment\n', 'data: y\n\n');
    expect(events).toEqual([
      { id: '4', event: 'message', data: 'x' },
      { id: '4', event: 'message', data: 'y' },
    ]);
    expect(parser.lastId).toBe('4');
  });

  it('keeps the last event id across events and starts from a given one', () => {
    const parser = new SseParser('9');
    expect(feed(parser, 'data: a\n\n')[0]?.id).toBe('9');
    expect(feed(parser, 'id: 10\n\n')).toEqual([]);
    expect(parser.lastId).toBe('10');
    expect(feed(parser, 'data: b\n\n')[0]?.id).toBe('10');
  });

  it('ignores ids containing NUL', () => {
    const parser = new SseParser();
    feed(parser, 'id: 1\n\n', 'id: 2\u0000\n\n');
    expect(parser.lastId).toBe('1');
  });

  it('accepts CRLF and CR line endings, also split between chunks', () => {
    expect(feed(new SseParser(), 'data: a\r\n\r\ndata: b\r\rdata: c\n\n').map((e) => e.data)).toEqual(['a', 'b', 'c']);
    const parser = new SseParser();
    expect(feed(parser, 'data: a\r', '\n', '\r', '\ndata: b\r\n\r\n').map((e) => e.data)).toEqual(['a', 'b']);
  });

  it('reads the event field, a value without a space, and strips a leading BOM', () => {
    expect(feed(new SseParser(), '\ufeffevent: custom\ndata:tight\n\n')).toEqual([{ id: undefined, event: 'custom', data: 'tight' }]);
  });

  it('ignores unknown fields and retry, and dispatches nothing for an event without data', () => {
    expect(feed(new SseParser(), 'retry: 1000\nfoo: bar\n\nevent: x\n\n')).toEqual([]);
  });

  it('drops an unterminated event when the stream ends', () => {
    const parser = new SseParser();
    expect(feed(parser, 'data: complete\n\ndata: partial')).toHaveLength(1);
    expect(parser.end()).toEqual([]);
  });
});

describe('readSse', () => {
  it('reads a long event arriving in many small chunks in linear time', () => {
    const parser = new SseParser();
    const data = 'x'.repeat(4_000_000);
    const wire = `id: 1\ndata: ${data}\n\n`;
    const started = performance.now();
    const out: SseMessage[] = [];
    for (let at = 0; at < wire.length; at += 1024) out.push(...parser.push(wire.slice(at, at + 1024)));
    // Rescanning the buffer at each chunk took minutes at this size (4,000 chunks over up to 4 MB each).
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(out.map((m) => m.data.length)).toEqual([data.length]);
    expect(out[0].id).toBe('1');
  });

  it('delivers every event of a body stream in order', async () => {
    const body = streamOf([encoder.encode('id: 0\nda'), encoder.encode('ta: one\n\n: ping\n\nid: 1\ndata: two\n'), encoder.encode('\n')]);
    const seen: SseMessage[] = [];
    await readSse(body, (m) => seen.push(m));
    expect(seen).toEqual([{ id: '0', event: 'message', data: 'one' }, { id: '1', event: 'message', data: 'two' }]);
  });
});
