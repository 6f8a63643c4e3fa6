import { describe, expect, it } from 'vitest';
import { autoTitle } from '../chat/auto-title.js';
import { graphemes, truncateCodePoints } from './title.js';

/** The cut as the segmenter makes it, for comparing the ASCII shortcut against. */
function segmentedCut(text: string, max: number): string {
  let head = '';
  let points = 0;
  for (const { segment } of graphemes.segment(text)) {
    const size = Array.from(segment).length;
    if (points + size > max) break;
    head += segment;
    points += size;
  }
  return head;
}

describe('cutting titles', () => {
  it('cuts plain ASCII where the segmenter would', () => {
    for (const text of ['a'.repeat(200), 'a'.repeat(201), 'b'.repeat(250), `${'x '.repeat(120)}end`, `${'q'.repeat(200)}é`]) {
      expect(truncateCodePoints(text, 200)).toBe(text.length <= 200 ? text : segmentedCut(text, 200));
    }
  });

  it('never separates a mark or joiner right after the cut from its letter', () => {
    // The character after the cut is not ASCII: the shortcut does not apply and the letter goes whole.
    expect(truncateCodePoints(`${'a'.repeat(199)}e\u0301 more`, 200)).toBe('a'.repeat(199));
    expect(truncateCodePoints(`${'a'.repeat(199)}👍\u{1F3FD} more`, 200)).toBe('a'.repeat(199));
    expect(autoTitle(`${'a'.repeat(60)}\u0301 tail`)).toBe(`${'a'.repeat(60)}\u0301…`);
    expect(autoTitle(`${'a'.repeat(59)}e\u0301${'z'.repeat(10)}`)).toBe(`${'a'.repeat(59)}e\u0301…`);
  });

  it('keeps a title of exactly the limit uncut and marks one character more as cut', () => {
    expect(autoTitle('c'.repeat(60))).toBe('c'.repeat(60));
    expect(autoTitle('c'.repeat(61))).toBe(`${'c'.repeat(60)}…`);
  });
});
