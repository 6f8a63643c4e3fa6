import type { Footnotes } from 'marked-footnote';
import { MarkdownEngine } from './markdown-engine';

function dom(markup: string): HTMLElement {
  const el = document.createElement('div');
  el.innerHTML = markup;
  return el;
}

describe('footnotes', () => {
  let renderer: MarkdownEngine;

  beforeEach(() => {
    renderer = new MarkdownEngine();
  });

  it('settles the notes of a long answer in time linear in its tokens (marked\'s walkTokens was quadratic)', () => {
    // 12,000 paragraphs of four inline tokens each and a reference: marked's walk took seconds (5 s for 8,000).
    const paragraphs = Array.from({ length: 12_000 }, (_, i) => `Paragraph ${i} with *em* and \`code\`[^${(i % 3) + 1}].`);
    const source = [...paragraphs, '[^1]: One.', '[^2]: Two *b*.', '[^3]: Three.'].join('\n\n');
    const start = performance.now();
    const tokens = renderer.lex(source);
    const elapsed = performance.now() - start;
    expect(elapsed).toBeLessThan(3_000);
    const notes = tokens.at(-1) as unknown as Footnotes;
    expect(notes.type).toBe('footnotes');
    expect(notes.items.map((note) => [note.label, note.refs.length])).toEqual([['1', 4_000], ['2', 4_000], ['3', 4_000]]);
    expect(notes.items.flatMap((note) => note.refs.map((ref) => ref.id))).toEqual([
      ...Array<string>(4_000).fill('1'), ...Array<string>(4_000).fill('2'), ...Array<string>(4_000).fill('3'),
    ]);
    // The same notes as a short answer's, drawn at its end.
    const el = dom(renderer.toSafeHtml(tokens.slice(-4)));
    expect(Array.from(el.querySelectorAll('.footnotes li')).map((li) => li.textContent?.replace(/\s*↩.*$/, ''))).toEqual(['One.', 'Two b.', 'Three.']);
  });

  it('settles notes referred to from quotes, lists and tables, and leaves the next answer\'s its own', () => {
    const source = '> quote[^q]\n\n- item[^l]\n  - sub[^s]\n\n| a | b[^t] |\n|---|---|\n| c[^c] | d |\n\n[^q]: Q\n[^l]: L\n[^s]: S\n[^t]: T\n[^c]: C';
    for (let i = 0; i < 2; i++) {
      const notes = renderer.lex(source).at(-1) as unknown as Footnotes;
      expect(notes.items.map((note) => [note.label, note.refs[0]?.id])).toEqual([['q', '1'], ['l', '2'], ['s', '3'], ['t', '4'], ['c', '5']]);
    }
    expect(renderer.lex('No notes[^q] here.').some((t) => t.type === 'footnotes')).toBe(false);
    const el = dom(renderer.render(source).map((b) => b.html).join(''));
    expect(Array.from(el.querySelectorAll('sup.footnote-ref button')).map((b) => b.textContent)).toEqual(['1', '2', '3', '4', '5']);
    expect(el.querySelectorAll('.footnotes li')).toHaveLength(5);
  });

  it('reads many `[^` that open no reference in time linear in the text', () => {
    // Table cells, each short enough to be read as Markdown: marked-footnote read a label to the end of the line
    // from every `[^` (quadratic in a cell, about 4 times slower here).
    const cell = '[^'.repeat(2_000);
    const source = `See[^a].\n\n| x |\n|---|\n${`| ${cell} |\n`.repeat(100)}\n[^a]: The note.`;
    const start = performance.now();
    const tokens = renderer.lex(source);
    expect(performance.now() - start).toBeLessThan(2_000);
    const el = dom(renderer.toSafeHtml(tokens));
    expect(el.querySelectorAll('td')).toHaveLength(100);
    expect(el.querySelector('td')?.textContent).toBe(cell);
    expect(el.querySelector('.footnotes li')?.textContent).toContain('The note.');
    // A label is at most 200 characters, without brackets (as in GFM).
    const labels = (label: string): number => dom(renderer.render(`A[^${label}].\n\n[^${label}]: Note.`).map((b) => b.html).join('')).querySelectorAll('sup.footnote-ref').length;
    expect([labels('x'.repeat(200)), labels('y'.repeat(201)), labels('a[b')]).toEqual([1, 0, 0]);
  });
});
