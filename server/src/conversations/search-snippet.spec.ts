import { describe, expect, it } from 'vitest';
import { searchTextOf, snippetAround } from './search-snippet.js';
import { foldForSearch } from './title.js';

const marked = (content: string, needle: string): string | undefined => {
  const s = snippetAround(content, foldForSearch(needle));
  return s && s.text.slice(s.start, s.start + s.length);
};

describe('search snippets', () => {
  it('reads an answer without the thinking it began with, and a question as written', () => {
    expect(searchTextOf('assistant', '<think>Weighing ZANZIBAR</think>\n\nDodoma, in Tanzania')).toBe('dodoma, in tanzania');
    expect(searchTextOf('assistant', '<think>cut while thinking')).toBe('');
    expect(searchTextOf('assistant', 'Write <think> tags like <think>THIS</think>')).toBe('write <think> tags like <think>this</think>');
    expect(searchTextOf('user', '<think>My Tag</think> ok?')).toBe('<think>my tag</think> ok?');
  });

  it('folds one character at a time exactly as the whole text is folded', () => {
    const samples = ['ÉCOLE', 'İstanbul', 'ΣΊΣΥΦΟΣ ΟΔΟΣ', 'Straße', 'GROẞE', 'ﬁne ﬂow', 'ＦＵＬＬ width', 'e\u0301te\u0301', '👨‍👩‍👧 family', 'Ⅻ ㎏ ½', 'ǅemal'];
    for (const text of samples) expect([...text].map((ch) => foldForSearch(ch)).join('')).toBe(foldForSearch(text));
    // A long run of marks of two classes: NFKD's reordering was quadratic in it (16.7 s at this size).
    const started = process.cpuUsage();
    expect(foldForSearch(`a${'\u0301'.repeat(99_999)}${'\u0323'.repeat(100_000)}b`)).toBe('ab');
    const { user, system } = process.cpuUsage(started);
    expect((user + system) / 1000).toBeLessThan(1000);
  });

  it('marks the match as written, accents and case kept, and whole characters only', () => {
    expect(marked('Les PASTÉIS de Belém', 'pasteis de belem')).toBe('PASTÉIS de Belém');
    expect(marked('cafe\u0301 noir', 'cafe')).toBe('cafe\u0301');
    expect(marked('a ﬁne day', 'fi')).toBe('ﬁ');
    expect(marked('ΟΔΟΣ end', 'οδοσ')).toBe('ΟΔΟΣ');
    expect(marked('İstanbul', 'istanbul')).toBe('İstanbul');
    expect(marked('Die Straße', 'strasse')).toBe('Straße');
    expect(marked('GROẞE Pläne', 'grosse')).toBe('GROẞE');
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

  it('marks the first match far into a long text, and one across the point where folding checks for it', () => {
    const far = snippetAround(`${'x '.repeat(1_000)}Zürich ${'y '.repeat(1_000)}zurich`, 'zurich')!;
    expect(far.text.slice(far.start, far.start + far.length)).toBe('Zürich');
    expect(far.text).toMatch(/^…x .* Zürich y .*…$/);
    for (let lead = 1_015; lead < 1_025; lead++) {
      expect(marked(`${'a'.repeat(lead)} NEEDLE tail`, 'needle'), String(lead)).toBe('NEEDLE');
    }
  });

  it('makes snippets in linear time from messages made to make a pattern backtrack', () => {
    // An autolink's start repeated without a closing >: the pattern read from each < to the end (3,990 of them
    // took 0.1 s a matched conversation, 2.5 s a search; these 32,000 took 6 s). A table row's pipe pattern
    // tried each space of a run (these took 6 s).
    const hostile = [`hello\n${'<http://'.repeat(32_000)} zzneedle`, `|a${' '.repeat(96_000)}x zzneedle|`];
    for (const content of hostile) {
      const started = process.cpuUsage();
      expect(marked(content, 'zzneedle')).toBe('zzneedle');
      const { user, system } = process.cpuUsage(started);
      // Linear takes 20 to 100 ms of CPU (not wall-clock time, which a busy machine stretches).
      expect((user + system) / 1000, content.slice(0, 12)).toBeLessThan(1_000);
    }
  });
});
