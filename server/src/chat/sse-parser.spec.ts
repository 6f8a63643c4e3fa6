import { MAX_SSE_LINE_CHARS, SseLineTooLongError, SseParser, type ParsedSseEvent } from './sse-parser.js';

function parseInPieces(text: string, cuts: number[]): ParsedSseEvent[] {
  const parser = new SseParser();
  const out: ParsedSseEvent[] = [];
  let from = 0;
  for (const cut of [...cuts, text.length]) {
    out.push(...parser.push(text.slice(from, cut)));
    from = cut;
  }
  return out;
}

describe('SseParser', () => {
  const stream = 'id: 0\ndata: {"a":1}\n\n: ping\n\nid: 1\ndata: line1\ndata: line2\n\nevent: x\ndata: [DONE]\n\n';
  const expected: ParsedSseEvent[] = [
    { event: null, data: '{"a":1}', id: '0' },
    { event: null, data: 'line1\nline2', id: '1' },
    { event: 'x', data: '[DONE]', id: '1' },
  ];

  it('parses a whole stream', () => {
    expect(parseInPieces(stream, [])).toEqual(expected);
  });

  it('gives the same events however the text is cut (every single cut point and byte by byte)', () => {
    for (let cut = 1; cut < stream.length; cut++) expect(parseInPieces(stream, [cut])).toEqual(expected);
    expect(parseInPieces(stream, Array.from({ length: stream.length }, (_, i) => i))).toEqual(expected);
  });

  it('handles CR LF and lone CR line breaks, also a CR LF split between packets', () => {
    const crlf = stream.replace(/\n/g, '\r\n');
    for (let cut = 1; cut < crlf.length; cut++) expect(parseInPieces(crlf, [cut])).toEqual(expected);
    expect(parseInPieces(stream.replace(/\n/g, '\r'), [])).toEqual(expected);
  });

  it('keeps a CR LF split between packets whole across an empty chunk', () => {
    expect(parseInPieces('data: a\r\n\r\n', [7, 8, 8])).toEqual([{ event: null, data: 'a', id: null }]);
    expect(parseInPieces('data: a\r\ndata: b\r\n\r\n', [7, 8, 8])).toEqual([{ event: null, data: 'a\nb', id: null }]);
  });

  it('does not dispatch an event that was not ended by a blank line', () => {
    const parser = new SseParser();
    expect(parser.push('data: {"a":1}\n')).toEqual([]);
    expect(parser.hasPartial).toBe(true);
  });
});

// The model provider's stream is read with this parser: a provider (or whatever answers at its
// address) sending one endless line, without a line break, in small pieces, had every piece
// rescan all that was held before it (quadratic: 4.8 s for a 1 MB line in 1 KB pieces) and was
// held whole, however long.
describe('SseParser on a very long line', () => {
  const inPieces = (parser: SseParser, prefix: string, total: number, size = 1024): ParsedSseEvent[] => {
    const out = parser.push(prefix);
    const piece = 'x'.repeat(size);
    for (let sent = 0; sent < total; sent += size) out.push(...parser.push(piece));
    return out;
  };

  it('scans only what is new: a line just under the cap, in 1 KB pieces, in linear time', () => {
    const parser = new SseParser();
    const total = MAX_SSE_LINE_CHARS - 64 * 1024;
    const began = performance.now();
    inPieces(parser, 'data: ', total);
    const [event] = parser.push('\n\n');
    const took = performance.now() - began;
    expect(event.data.length).toBe(Math.ceil(total / 1024) * 1024);
    expect(took).toBeLessThan(500);
  });

  it('refuses a line longer than the cap, arriving in pieces or at once, once it passes the cap', () => {
    const pieces = new SseParser();
    expect(() => inPieces(pieces, 'data: ', MAX_SSE_LINE_CHARS + 4096)).toThrow(SseLineTooLongError);
    const atOnce = new SseParser();
    expect(() => atOnce.push(`data: ${'x'.repeat(MAX_SSE_LINE_CHARS)}\n\n`)).toThrow(SseLineTooLongError);
    const small = new SseParser(100);
    expect(small.push(`data: ${'x'.repeat(94)}\n\n`)).toEqual([{ event: null, data: 'x'.repeat(94), id: null }]);
    expect(() => small.push(`data: ${'x'.repeat(95)}`)).toThrow(/longer than 100 characters/);
  });

  it('refuses an event whose data lines add up to more than the cap', () => {
    const parser = new SseParser(100);
    expect(parser.push('data: 0123456789\n'.repeat(9))).toEqual([]);
    expect(() => parser.push('data: 0123456789\n')).toThrow(SseLineTooLongError);
  });
});
