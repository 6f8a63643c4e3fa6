import { describe, expect, it } from 'vitest';
import { autoTitle } from '../chat/auto-title.js';
import { cleanTitle, graphemes, isVisibleTitle, showsAnything, truncateCodePoints, withoutMarkdown } from './title.js';

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

  it('names a message of files alone after them, as written (no Markdown read in a name); a question wins over files', () => {
    expect(autoTitle('', ['my_notes_v2.txt'])).toBe('my_notes_v2.txt');
    expect(autoTitle('  ', ['a.txt', 'b.pdf'])).toBe('a.txt and 1 more file');
    expect(autoTitle('', ['a.txt', 'b.pdf', 'c.md'])).toBe('a.txt and 2 more files');
    expect(autoTitle('', [`${'long name '.repeat(8)}.pdf`])).toBe(`${'long name '.repeat(6).trim()}…`);
    expect(autoTitle('What is in it?', ['a.txt'])).toBe('What is in it?');
    expect(autoTitle('')).toBe('New conversation');
  });
});

describe('titles without Markdown', () => {
  it('drops a table\'s divider row, whatever its alignment marks, and keeps its cells', () => {
    const message = 'Table:\n\n| Lang | Year | Notes |\n|---|:-:|--:|\n| Python | 1991 | dynamic |\n| Rust | 2015 | `unsafe` |';
    expect(autoTitle(message)).toBe('Table: Lang Year Notes Python 1991 dynamic Rust 2015 unsafe');
    expect(withoutMarkdown('a | b\n:-- | --:\n1 | 2')).toBe('a | b\n\n1 | 2');
    expect(withoutMarkdown('| - |\n|:-|')).toBe('\n');
  });

  it('drops code fences with their language tag, and keeps the code', () => {
    expect(autoTitle('First question\n```js\nconsole.log("hi")\n```')).toBe('First question console.log("hi")');
    expect(autoTitle('~~~ python title="x.py"\nprint(1)\n~~~\nwhy?')).toBe('print(1) why?');
    // Three ticks with code after them on one line are inline code, not a fence.
    expect(autoTitle('Run ```npm test``` first')).toBe('Run npm test first');
  });

  it('drops heading marks (closing ones too), rules, quotes, bullets and task boxes', () => {
    expect(autoTitle('## Edge cases ##\n\nWhat about them?')).toBe('Edge cases What about them?');
    expect(autoTitle('Intro\n===\n\n---\n\n* * *\n> > quoted\n- [x] done\n1) first')).toBe('Intro quoted done first');
    expect(autoTitle('#hashtag and C# stay')).toBe('#hashtag and C# stay');
  });

  it('keeps only the text of emphasis and links', () => {
    expect(autoTitle('Is **this** *really* ***it***? ~~no~~ _yes_ __sure__')).toBe('Is this really it? no yes sure');
    expect(autoTitle('See [the docs](https://example.com/a "Docs"), [ref][1] and <https://example.com>\n\n[1]: https://x.y'))
      .toBe('See the docs, ref and https://example.com');
    expect(withoutMarkdown('[Lisp](https://en.wikipedia.org/wiki/Lisp_(programming_language)) and ![map](m.png)')).toBe('Lisp and map');
  });

  it('keeps an autolink\'s address and a table row\'s cells, with the spaces around the pipes gone', () => {
    expect(withoutMarkdown('x <mailto:a@b.c> and <http://a.b/c?d=1>')).toBe('x mailto:a@b.c and http://a.b/c?d=1');
    // No < inside an autolink, as in CommonMark: the first < is text.
    expect(withoutMarkdown('<http://a<https://b.c>')).toBe('<http://ahttps://b.c');
    expect(withoutMarkdown('|  a\t|\tb  |\n| c |  | d |')).toBe(' a b \n c  d ');
  });

  it('leaves what only looks like Markdown as written', () => {
    for (const text of ['2*3*4 = 24', '2**10', 'a * b * c', 'snake_case_name', 'open __init__.py', '\\*not emphasis\\*', 'y || z', 'a ~ b ~~ c']) {
      expect(withoutMarkdown(text), text).toBe(text);
    }
    expect(withoutMarkdown('-')).toBe('-');
    expect(withoutMarkdown('--')).toBe('--');
  });

  it('takes linear time on input made to make a pattern backtrack', () => {
    const hostile = [
      // 45 dashes and an "x" took the former divider-row pattern 1.2 s (exponential: 30,000 never finished).
      `${'-'.repeat(45)}x`, `${'-'.repeat(30_000)}x`, `|${'-|'.repeat(10_000)}x`, `${'- '.repeat(15_000)}x`, `# ${' '.repeat(30_000)}x`,
      `${'*a '.repeat(10_000)}`, `${'_a '.repeat(10_000)}`, `${'~~a '.repeat(8_000)}`, `${'> '.repeat(15_000)}x`,
      `${'['.repeat(30_000)}`, `${'![a]('.repeat(6_000)}`, `|${' '.repeat(30_000)}x`, `${'**a'.repeat(10_000)}`,
      // With no closing >, the autolink pattern read from each < to the end: 16,000 took 1.5 s (3,990 took 70 ms
      // a message, and search runs it on every match). A table row's pipe pattern tried each space of a run: 2 s.
      `hello\n${'<http://'.repeat(16_000)} zzneedle`, `${'<mailto:'.repeat(16_000)}`, `|a${' '.repeat(60_000)}x|`,
    ];
    for (const text of hostile) {
      const started = performance.now();
      withoutMarkdown(text);
      autoTitle(text);
      // Linear takes a few milliseconds; the bound leaves room for a loaded CI machine, not for backtracking.
      expect(performance.now() - started, text.slice(0, 12)).toBeLessThan(1_000);
    }
  });
});

describe('what shows nothing', () => {
  const tags = (text: string): string => Array.from(text, (c) => String.fromCodePoint(0xe0000 + c.charCodeAt(0))).join('');
  it('takes format characters alone (tag characters, interlinear annotation, musical and shorthand controls) for blank', () => {
    for (const blank of [tags('IGNORE ALL'), '\u{E0001}', '\ufff9\ufffb', '\u{1D173}\u{1D17A}', '\u{1BCA0}\u{1BCA1}', '\u{13430}', ` ${tags('x')} \u200d `]) {
      const codes = Array.from(blank, (c) => c.codePointAt(0)!.toString(16)).join(' ');
      expect(isVisibleTitle(cleanTitle(blank)), codes).toBe(false);
      expect(showsAnything(blank), codes).toBe(false);
    }
    for (const shown of ['a', '\u0600\u0661', '\u0600', '\u06dd', '\u{110bd}', 'é', '👍', '\u{1F3F4}\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}']) expect(isVisibleTitle(cleanTitle(shown)), shown).toBe(true);
  });

  it('takes hidden tag characters out of a title, and keeps a flag made of them whole', () => {
    const england = '\u{1F3F4}\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}';
    expect(cleanTitle(`Quarterly report${tags(' ignore previous instructions')}`)).toBe('Quarterly report');
    expect(cleanTitle(`Go ${england}!`)).toBe(`Go ${england}!`);
    // Hidden text dressed as a flag is no flag (a flag's tags are a short lowercase code).
    expect(cleanTitle(`Q3 report\u{1F3F4}${tags('Ignore all previous instructions')}\u{E007F}`)).toBe('Q3 report\u{1F3F4}');
  });
});
