import { describe, expect, it } from 'vitest';
import { snippetAround } from './search-snippet.js';
import { foldForSearch } from './title.js';

const marked = (content: string, needle: string): string | undefined => {
  const s = snippetAround(content, foldForSearch(needle));
  return s && s.text.slice(s.start, s.start + s.length);
};

describe('search snippets', () => {
  it('folds one character at a time exactly as the whole text is folded', () => {
    const samples = ['ÉCOLE', 'İstanbul', 'ΣΊΣΥΦΟΣ ΟΔΟΣ', 'Straße', 'ﬁne ﬂow', 'ＦＵＬＬ width', 'e\u0301te\u0301', '👨‍👩‍👧 family', 'Ⅻ ㎏ ½', 'ǅemal'];
    for (const text of samples) expect([...text].map((ch) => foldForSearch(ch)).join('')).toBe(foldForSearch(text));
  });

  it('marks the match as written, accents and case kept, and whole characters only', () => {
    expect(marked('Les PASTÉIS de Belém', 'pasteis de belem')).toBe('PASTÉIS de Belém');
    expect(marked('cafe\u0301 noir', 'cafe')).toBe('cafe\u0301');
    expect(marked('a ﬁne day', 'fi')).toBe('ﬁ');
    expect(marked('ΟΔΟΣ end', 'οδοσ')).toBe('ΟΔΟΣ');
    expect(marked('İstanbul', 'istanbul')).toBe('İstanbul');
    expect(snippetAround('nothing here', 'absent')).toBeUndefined();
    expect(snippetAround('anything', '')).toBeUndefined();
  });

  it('keeps a line of context, cut at spaces and never inside a surrogate pair', () => {
    const content = `${'😀'.repeat(30)} start ${'word '.repeat(20)}NEEDLE ${'tail '.repeat(40)}`;
    const s = snippetAround(content, 'needle')!;
    expect(s.text.slice(s.start, s.start + s.length)).toBe('NEEDLE');
    expect(s.text.startsWith('…word ')).toBe(true);
    expect(s.text.endsWith('tail…')).toBe(true);
    const emoji = snippetAround(`${'😀'.repeat(50)}x`, 'x')!;
    expect(emoji.text.slice(emoji.start, emoji.start + emoji.length)).toBe('x');
    expect(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(emoji.text)).toBe(false);
    const lines = snippetAround('first line\n\n  second\tline with match', 'match')!;
    expect(lines.text).toBe('first line second line with match');
  });

  it('reads as the answer reads, without its Markdown marks, unless the match is in them', () => {
    const answer = '## Plan\n\n- **Day 1:** walk to [Belém](https://example.com/belem "tower") and try `pastéis`\n\n| Day | Where |\n|---|---|\n| 2 | Sintra |';
    expect(snippetAround(answer, foldForSearch('belem'))?.text).toBe('Plan Day 1: walk to Belém and try pastéis Day Where 2 Sintra');
    expect(marked(answer, 'walk to belem')).toBe('walk to Belém');
    // Searched for a mark itself: the snippet shows it as written.
    expect(marked(answer, '**day')).toBe('**Day');
    expect(marked(answer, 'example.com')).toBe('example.com');
  });
});
