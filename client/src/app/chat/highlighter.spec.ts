import hljs from 'highlight.js/lib/core';
import csharp from 'highlight.js/lib/languages/csharp';
import { HIGHLIGHT_MAX_RUN_CHARS, highlightCode } from './highlighter';
import { HIGHLIGHT_MAX_CHARS } from './markdown-engine';

function dom(markup: string): HTMLElement {
  const el = document.createElement('div');
  el.innerHTML = markup;
  return el;
}

describe('highlightCode', () => {
  it('highlights C# of generic types with no `=` or `(` in bounded time (its declaration rule was cubic: 18 s)', () => {
    for (const unit of ['List<int> ', 'a<b> ', 'List<int>\n']) {
      const code = unit.repeat(Math.floor((HIGHLIGHT_MAX_CHARS - 100) / unit.length));
      const start = performance.now();
      const html = highlightCode(code, 'csharp');
      expect(performance.now() - start, unit).toBeLessThan(3_000);
      expect(dom(html ?? '').textContent, unit).toBe(code);
    }
  });

  it('highlights ordinary C# exactly as highlight.js\'s own grammar does', () => {
    const own = hljs.newInstance();
    own.registerLanguage('csharp', csharp);
    const code = [
      'namespace Demo.App',
      '{',
      '    public sealed class Repository<T> : IRepository<T> where T : class, new()',
      '    {',
      '        private readonly Dictionary<string, List<T>> _items = new();',
      '        public static async Task<List<int>> GetAsync<TKey>(int id, CancellationToken token = default) where TKey : struct',
      '        {',
      '            return await db.Items.Where(x => x.Id == id).Select(i => i.Value).ToListAsync(token);',
      '        }',
      '        protected virtual IEnumerable<KeyValuePair<string, int>> Pairs() => _items.Select(p => new KeyValuePair<string, int>(p.Key, 1));',
      '        public override string ToString() => $"Repository with {_items.Count} keys";',
      '        public IAsyncEnumerable<Result<Order, Error>> StreamAsync(Query<Order> query, CancellationToken ct) { yield break; }',
      '    }',
      '}',
    ].join('\n');
    const html = highlightCode(code, 'csharp');
    expect(html).toBe(own.highlight(code, { language: 'csharp', ignoreIllegals: true }).value);
    const el = dom(html ?? '');
    expect(Array.from(el.querySelectorAll('.hljs-function > .hljs-title')).map((t) => t.textContent)).toContain('GetAsync');
    expect(el.textContent).toBe(code);
  });

  it('leaves code with a run of non-space characters longer than HIGHLIGHT_MAX_RUN_CHARS plain (quadratic in every grammar)', () => {
    for (const [language, mark] of [['java', '$'], ['java', '_'], ['cpp', '_'], ['c', '_'], ['python', '.5']]) {
      const code = mark.repeat(Math.floor((HIGHLIGHT_MAX_CHARS - 100) / mark.length));
      const start = performance.now();
      expect(highlightCode(code, language), `${language} ${mark}`).toBeNull();
      expect(performance.now() - start, `${language} ${mark}`).toBeLessThan(100);
    }
    // Ordinary code, and a run at the bound, are highlighted.
    expect(dom(highlightCode('int x = 1;\n'.repeat(200), 'java') ?? '').querySelectorAll('.hljs-type, .hljs-keyword')).toHaveLength(200);
    const run = `x = "${'a'.repeat(HIGHLIGHT_MAX_RUN_CHARS - 2)}"`;
    expect(dom(highlightCode(run, 'python') ?? '').querySelector('.hljs-string')?.textContent).toBe(`"${'a'.repeat(HIGHLIGHT_MAX_RUN_CHARS - 2)}"`);
    expect(highlightCode(`x = "${'a'.repeat(HIGHLIGHT_MAX_RUN_CHARS)}"`, 'python')).toBeNull();
  });

  it('returns null for a language it does not know', () => {
    expect(highlightCode('x', 'brainfuck')).toBeNull();
    expect(highlightCode('x', '')).toBeNull();
  });
});
