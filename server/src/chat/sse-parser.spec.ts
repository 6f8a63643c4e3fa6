import { SseParser, type ParsedSseEvent } from './sse-parser.js';

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

  it('does not dispatch an event that was not ended by a blank line', () => {
    const parser = new SseParser();
    expect(parser.push('data: {"a":1}\n')).toEqual([]);
    expect(parser.hasPartial).toBe(true);
  });
});
