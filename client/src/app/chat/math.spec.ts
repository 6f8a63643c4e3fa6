import type { Token } from 'marked';
import { MarkdownEngine } from './markdown-engine';
import { MATH_MAX_CHARS } from './math';

function dom(markup: string): HTMLElement {
  const el = document.createElement('div');
  el.innerHTML = markup;
  return el;
}

function mathTokens(tokens: Token[]): Token[] {
  return tokens.filter((t) => t.type === 'blockKatex' || t.type === 'latexBlock');
}

describe('math', () => {
  let renderer: MarkdownEngine;

  beforeEach(async () => {
    renderer = new MarkdownEngine();
    await renderer.whenMathReady();
  });

  it('shows a display formula longer than MATH_MAX_CHARS as its TeX, without typesetting it (KaTeX took seconds)', () => {
    const formula = `${'x+'.repeat(4_000)}x`;
    expect(formula.length).toBeGreaterThan(MATH_MAX_CHARS);
    for (const block of [`$$\n${formula}\n$$`, `\\[\n${formula}\n\\]`]) {
      const start = performance.now();
      const el = dom(renderer.render(`Before.\n\n${block}\n\nAfter.`).map((b) => b.html).join(''));
      expect(performance.now() - start).toBeLessThan(1_000);
      expect(el.querySelector('.katex')).toBeNull();
      expect(el.querySelector('.katex-error')?.textContent).toBe(formula);
      expect(el.textContent).toContain('After.');
    }
    // At the bound, typeset.
    const fits = `\\text{${'a'.repeat(MATH_MAX_CHARS - 7)}}`;
    expect(fits).toHaveLength(MATH_MAX_CHARS);
    expect(dom(renderer.render(`$$\n${fits}\n$$`).map((b) => b.html).join('')).querySelector('.katex-display')).not.toBeNull();
  });

  it('finds display formulas in time linear in the answer, however many openings never close', () => {
    const unclosed: Record<string, string> = {
      brackets: '\\[\n\n'.repeat(40_000),
      bracketsClosedMidLine: '\\[x\\] y\n\n'.repeat(10_000),
      escapedDollars: '$$\nx\n# h\\\n'.repeat(10_000),
      spaces: `\\[x${' '.repeat(200_000)}`,
    };
    for (const [name, source] of Object.entries(unclosed)) {
      const start = performance.now();
      const tokens = renderer.lex(source);
      expect(performance.now() - start, name).toBeLessThan(1_500);
      expect(mathTokens(tokens), name).toEqual([]);
      expect(tokens.map((t) => t.raw).join(''), name).toBe(source);
    }
    // Formulas after many lines that close none are found, and end where they did. (An opening with no closing of its
    // own runs to the next closing line: `\[x\] y` lines would all be read into the formula below.)
    const tokens = renderer.lex(`${'So \\] y and $$ z.\n\n'.repeat(1_000)}\\[\n  a^2 \n\\]  \n\n$$\nb\\\n$$\nc\n$$\n\n$\nd\n$`);
    expect(mathTokens(tokens).map((t) => [t.type, (t as Token & { text: string }).text])).toEqual([
      ['latexBlock', 'a^2'], ['blockKatex', 'b\\\n$$\nc'], ['blockKatex', 'd'],
    ]);
  });

  it('reads a $$ formula on lines of its own straight after a line of text as a formula, its backslashes kept', () => {
    const formula = String.raw`\begin{pmatrix} a \\ b \end{pmatrix} \{x\}`;
    const el = dom(renderer.render(`The roots are:\n$$\n${formula}\n$$\nwhere a is not 0.`).map((b) => b.html).join(''));
    expect([...el.querySelectorAll('p')].map((p) => p.textContent)).toEqual(['The roots are:', 'where a is not 0.']);
    expect(el.querySelector('.katex-display annotation')?.textContent).toBe(formula);
    expect(el.querySelectorAll('.katex-display .katex-mathml mtr')).toHaveLength(2);
    // In a quote too; and while the closing line has not streamed in, the paragraph goes on as text.
    const quoted = dom(renderer.render('> So:\n> $$\n> x^2\n> $$').map((b) => b.html).join(''));
    expect(quoted.querySelector('blockquote .katex-display')).not.toBeNull();
    expect(quoted.querySelector('blockquote p')?.textContent).toBe('So:');
    const open = renderer.lex('The roots are:\n$$\nx^2');
    expect(mathTokens(open)).toEqual([]);
    expect(open.map((t) => t.type)).toEqual(['paragraph']);
  });

  it('reads formulas in quotes and lists as before', () => {
    const el = dom(renderer.render('> $$\n> x^2\n> $$\n\n- \\[\n  y^2\n  \\]\n- $$\n  z\n  $$').map((b) => b.html).join(''));
    expect(el.querySelectorAll('blockquote .katex-display, li .katex-display')).toHaveLength(3);
  });

  it('shows TeX it cannot read in the theme\'s error colour, not KaTeX\'s fixed red (3:1 on the dark theme)', () => {
    const el = dom(renderer.render('Broken: $\\frac{a}{$ and unknown: $\\foo + x$.').map((b) => b.html).join(''));
    const error = el.querySelector('.katex-error');
    expect(error?.textContent).toBe('\\frac{a}{');
    expect(error?.getAttribute('style')).toBe('color:var(--danger)');
    const unknown = [...el.querySelectorAll('.katex-html [style*="color"]')].find((e) => e.textContent === '\\foo');
    expect(unknown?.getAttribute('style')).toContain('color:var(--danger)');
    expect(el.innerHTML).not.toMatch(/#cc0000/i);
  });
});
