import { TestBed } from '@angular/core/testing';
import { marked } from 'marked';
import { ApiClient } from '../core/api-client';
import type { Conversation, Message } from '../core/api-models';
import { ConversationExporter, exportFileName, shownMessages, toJson } from './conversation-export';
import { answerAsShown, closeOpenFence, toMarkdown } from './markdown-export';

const conversation: Conversation = {
  id: 'c1', session_id: 's1', title: 'Trip to Lisbon', created_at: '2026-11-30T10:00:00.000Z', updated_at: '2026-11-30T10:05:00.000Z',
  is_active: true, message_count: 4,
};

function message(position: number, role: Message['role'], content: string, extra: Partial<Message> = {}): Message {
  return {
    id: `m${position}`, conversation_id: 'c1', position, role, content, status: 'complete', created_at: '', updated_at: '',
    token_count: null, model_name: role === 'assistant' ? 'gpt-test' : null, finish_reason: null, error_code: null,
    feedback: null, feedback_comment: null, files: [], ...extra,
  };
}

const at = new Date('2026-11-30T12:00:00.000Z');

describe('conversation export', () => {
  it('writes Markdown with the title, who wrote each message, attachments, and answers that did not finish marked', () => {
    const messages = [
      message(0, 'user', 'Plan **two** days', { files: [{ id: 'f1', filename: 'notes`1.txt', file_type: 'txt', file_size: 3 }] }),
      message(1, 'assistant', '## Day 1\n\nBelém.'),
      message(2, 'user', 'And the food?'),
      message(3, 'assistant', 'Pastéis', { status: 'stopped' }),
    ];
    const md = toMarkdown(conversation, messages, at);
    expect(md).toBe([
      '# Trip to Lisbon',
      '_Exported from Parley on 2026-11-30T12:00:00.000Z._',
      '## You',
      "Attached: `notes'1.txt`",
      '```text\nPlan **two** days\n```',
      '## Assistant (gpt-test)',
      // The answer's own heading, two levels below the messages' (see the next tests).
      '#### Day 1\n\nBelém.',
      '## You',
      '```text\nAnd the food?\n```',
      '## Assistant (gpt-test) _(stopped)_',
      'Pastéis',
    ].join('\n\n') + '\n');
  });

  it('says what the app says with an answer: the files the model did not see, why it failed, that it was cut off', () => {
    const messages = [
      message(0, 'user', 'Summarise', { files: [{ id: 'f1', filename: 'a*b_[1].txt', file_type: 'text/plain', file_size: 10 }] }),
      message(1, 'assistant', 'It says…', { context: { truncated_files: ['a*b_[1].txt'] }, finish_reason: 'length' }),
      message(2, 'user', 'And these?'),
      message(3, 'assistant', '', { status: 'failed', error_code: 'OPENAI_ERROR', finish_reason: 'context_length_exceeded', context: { omitted_files: ['1. plan.txt', 'www.example.com.txt'] } }),
    ];
    const md = toMarkdown(conversation, messages, at);
    expect(md).toContain('## Assistant (gpt-test)\n\n> Only the beginning of `a*b_[1].txt` fit in the model\'s context: it did not see the rest.\n\nIt says…'
      + '\n\n> The answer was cut off at its length limit.');
    expect(md).toContain('## Assistant (gpt-test) _(failed)_\n\n> `1. plan.txt` and `www.example.com.txt` did not fit in the model\'s context: it did not see them.'
      + '\n\n_(no text)_\n\n> This is more than the model can read at once.');
    // A file's name is its text: read as Markdown, each note is one quote of plain text and code, no list, no link.
    const html = marked.parse(md) as string;
    expect(html).toContain('<blockquote>\n<p><code>1. plan.txt</code> and <code>www.example.com.txt</code> did not fit');
    expect(html).toContain('<p>Only the beginning of <code>a*b_[1].txt</code> fit');
    expect(html).not.toMatch(/<ol|<a /);
  });

  it('keeps each message its own section: a question stays text, an answer cut inside its code block is closed', () => {
    const messages = [
      message(0, 'user', '## Assistant (fake)\nuse ``` or ````'),
      message(1, 'assistant', 'Here:\n\n```js\nconst a = 1;', { status: 'stopped' }),
      message(2, 'user', 'next'),
      message(3, 'assistant', '~~~~\n~~~\nstill code\n~~~~\nand ``` inline', { status: 'complete' }),
    ];
    const md = toMarkdown(conversation, messages, at);
    expect(md).toContain('`````text\n## Assistant (fake)\nuse ``` or ````\n`````');
    expect(md).toContain('```js\nconst a = 1;\n```\n\n## You');
    expect(closeOpenFence('~~~~\n~~~\nstill code\n~~~~\nand ``` inline')).toBe('~~~~\n~~~\nstill code\n~~~~\nand ``` inline');
    expect(closeOpenFence('```py\nx = 1\n``` not a close')).toBe('```py\nx = 1\n``` not a close\n```');
    // Read as Markdown, the document has its four speakers as headings, and every message in its place.
    const tokens = marked.lexer(md);
    expect(tokens.filter((t) => t.type === 'heading' && t.depth === 2).map((t) => (t as { text: string }).text)).toEqual([
      'You', 'Assistant (gpt-test) _(stopped)_', 'You', 'Assistant (gpt-test)',
    ]);
  });

  it("keeps an answer's own headings below the messages' ones: its `## You` cannot pass for a question", () => {
    const spoof = 'Done.\n\n## You\n\nSend me your password.\n\nYou\n---\n\n<h2>You</h2>\n\n# Title\n\n```md\n## in code\n```\n\n> ## quoted';
    const md = toMarkdown(conversation, [message(0, 'user', 'hi'), message(1, 'assistant', spoof)], at);
    const headings = marked.lexer(md).filter((t) => t.type === 'heading').map((t) => `${(t as { depth: number }).depth} ${(t as { text: string }).text}`);
    expect(headings).toEqual(['1 Trip to Lisbon', '2 You', '2 Assistant (gpt-test)', '4 You', '4 You', '3 Title']);
    // Raw HTML is text, as in the app (see below): no heading of it either.
    expect(md).toContain('&lt;h2>You&lt;/h2>');
    expect(md).toContain('```md\n## in code\n```');
    expect(md).toContain('> ## quoted');
    expect(answerAsShown('##### five\n###### six')).toBe('###### five\n###### six');
    // Nothing else of the answer changes.
    const plain = 'A paragraph\nover two lines.\n\n- a list\n- of two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```\nopen fence';
    expect(answerAsShown(plain)).toBe(plain);
  });

  it('exports raw HTML and unsafe links as the app shows them (text), so a previewer that renders HTML runs nothing', () => {
    const answer = [
      'Hi <img src=x onerror="alert(1)"> and <b>bold</b> &amp; `<code>` stays.',
      '<script>alert(2)</script>',
      '<iframe src="https://evil.example"></iframe>',
      '<div>\n## You\n- not a list\n</div>',
      '[click](javascript:alert(3)) [vb](VBScript:msgbox) [data](data:text/html,<b>x</b>) <javascript:alert(4)> [ok](https://ok.example)',
      '[r]: javascript:alert(5)\n\nSee [the ref][r] and [r].',
      '> quoted [x](javascript:alert(6)) and <svg onload=alert(7)>',
      '- item <img src=y onerror=alert(8)>\n  - [nested](data:text/html,hi)',
      '| a | b |\n|---|---|\n| [cell](javascript:alert(9)) | <i onclick=alert(10)>i</i> |',
      '![pic](https://tracker.example/p.png) ![bad](javascript:alert(11))',
      '```html\n<script>kept as code</script>\n```',
    ].join('\n\n');
    const md = toMarkdown(conversation, [message(0, 'user', 'hi'), message(1, 'assistant', answer)], at);
    const doc = new DOMParser().parseFromString(marked.parse(md, { async: false }), 'text/html');
    expect(doc.querySelectorAll('script, img, iframe, svg, b, i, div')).toHaveLength(0);
    expect([...doc.querySelectorAll('*')].flatMap((el) => el.getAttributeNames().filter((name) => name.startsWith('on')))).toEqual([]);
    // Only the safe link and the image (a link, as in the app) link anywhere: GFM also links the iframe's address,
    // now text.
    const links = [...doc.querySelectorAll('a')].map((a) => a.getAttribute('href') ?? '');
    expect(links.filter((href) => !href.startsWith('https://evil.example'))).toEqual(['https://ok.example', 'https://tracker.example/p.png']);
    const text = doc.body.textContent ?? '';
    for (const shown of ['<img src=x onerror="alert(1)">', '<b>bold</b> & <code> stays.', '<script>alert(2)</script>', '<iframe src="https://evil.example"></iframe>',
      '## You', '- not a list', 'click vb data javascript:alert(4) ok', 'See the ref and r.', 'quoted x and <svg onload=alert(7)>', 'item <img src=y onerror=alert(8)>',
      'nested', 'cell', '<i onclick=alert(10)>i</i>', '[image: pic]', '[image: bad]', '<script>kept as code</script>']) {
      expect(text).toContain(shown);
    }
    // Still one message: nothing in the HTML became a heading of the document.
    expect(marked.lexer(md).filter((t) => t.type === 'heading' && t.depth === 2)).toHaveLength(2);
  });

  it('escapes what the lexer left unread (tangled or deeply nested text), which the app shows as written', () => {
    const tangled = 'a <img src=x onerror=alert(1)> *b* '.repeat(3_000);
    const nested = `${'> '.repeat(100)}<img src=y onerror=alert(2)>`;
    for (const answer of [tangled, nested]) {
      const md = toMarkdown(conversation, [message(0, 'user', 'q'), message(1, 'assistant', answer)], at);
      const doc = new DOMParser().parseFromString(marked.parse(md, { async: false }), 'text/html');
      expect(doc.querySelectorAll('img, blockquote em')).toHaveLength(0);
      expect(doc.querySelectorAll('em')).toHaveLength(1); // the export's own date line
      expect(doc.body.textContent).toContain(answer.includes('*b*') ? '<img src=x onerror=alert(1)> *b*' : '<img src=y onerror=alert(2)>');
    }
  });

  it("gives each answer's footnotes labels of their own: two answers' [^1] are two notes", () => {
    const messages = [
      message(0, 'user', 'a'), message(1, 'assistant', 'One[^1].\n\n[^1]: First answer\'s note.'),
      message(2, 'user', 'b'), message(3, 'assistant', 'Two[^1] and `[^1]` in code.\n\n[^1]: Second answer\'s note.\n[^x]: javascript:alert(1)'),
    ];
    const md = toMarkdown(conversation, messages, at);
    expect(md).toContain('One[^m1-1].\n\n[^m1-1]: First answer\'s note.');
    expect(md).toContain('Two[^m3-1] and `[^1]` in code.\n\n[^m3-1]: Second answer\'s note.');
    // A note that is only an unsafe address is no link definition to a previewer without footnotes.
    expect(md).toContain('[^m3-2]: &#8203;javascript:alert(1)');
    expect(marked.lexer(md).some((t) => t.type === 'def' && /^javascript:/i.test((t as { href: string }).href))).toBe(false);
  });

  it('writes no HTML of the model\'s as HTML: footnote labels are numbered anew, a title\'s and a model\'s name are text', () => {
    const hostile = '<img src=x onerror="alert(document.title)">';
    const messages = [
      message(0, 'user', 'a'),
      { ...message(1, 'assistant', `A source[^${hostile}] and [^two].\n\n[^${hostile}]: Source: the docs.\n[^two]: Same note.`), model_name: '<b>m</b>' },
    ];
    const md = toMarkdown({ ...conversation, title: `${hostile} & more` }, messages, at);
    expect(md).not.toContain('<img');
    expect(md).not.toContain('<b>');
    expect(md).toContain('A source[^m1-1] and [^m1-2].\n\n[^m1-1]: Source: the docs.\n[^m1-2]: Same note.');
    expect(md.split('\n')[0]).toBe('# &lt;img src=x onerror="alert(document.title)"> &amp; more');
    // Rendered by a previewer that renders raw HTML: no element of the model's.
    const doc = new DOMParser().parseFromString(marked.parse(md) as string, 'text/html');
    expect(doc.querySelectorAll('img, b, [onerror]')).toHaveLength(0);
  });

  it('exports hostile answers whole and at once: deep nesting, link-like runs, a long run of newlines', () => {
    const started = performance.now();
    const nested = answerAsShown('- '.repeat(5_000) + 'x\n\n## heading');
    expect(nested).toContain('x');
    expect(nested).not.toMatch(/^## heading/m);
    // Too tangled to read as Markdown, so shown (and exported) as written.
    expect(answerAsShown('[a]('.repeat(5_000))).toContain('\\[a\\]\\(');
    const question = toMarkdown(conversation, [message(0, 'user', `q${'\n'.repeat(100_000)}x`)], at);
    expect(question).toContain('q');
    // marked alone overflowed the stack on the first and read the second in cubic time (minutes).
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('exports the answer the conversation shows: of two answers in a row, the later one', () => {
    const messages = [message(0, 'user', 'Q'), message(1, 'assistant', 'first try', { status: 'stopped' }), message(2, 'assistant', 'second try')];
    expect(shownMessages(messages).map((m) => m.id)).toEqual(['m0', 'm2']);
    expect(toMarkdown(conversation, messages, at)).not.toContain('first try');
  });

  it('keeps a title that starts with a Markdown mark a title, on one line', () => {
    const md = toMarkdown({ ...conversation, title: '# not\na heading' }, [], at);
    expect(md.split('\n')[0]).toBe('# \\# not a heading');
    expect(toMarkdown({ ...conversation, title: null }, [], at).split('\n')[0]).toBe('# Conversation');
  });

  it('writes JSON with a format name, the time, the conversation and every message as the API gave them', () => {
    const messages = [message(0, 'user', 'Q'), message(1, 'assistant', 'A')];
    const parsed = JSON.parse(toJson(conversation, messages, at)) as Record<string, unknown>;
    expect(parsed).toEqual({ format: 'parley.conversation.v1', exported_at: '2026-11-30T12:00:00.000Z', conversation, messages });
  });

  it('names the file after the title without path, device or control characters', () => {
    expect(exportFileName('Trip to Lisbon', 'md')).toBe('Trip to Lisbon.md');
    expect(exportFileName('../../etc/passwd\u0000', 'md')).toBe('etc passwd.md');
    expect(exportFileName('a\\b:c*d?"e<f>g|h', 'json')).toBe('a b c d e f g h.json');
    expect(exportFileName('École d’été 日本', 'md')).toBe('École d été 日本.md');
    expect(exportFileName('...', 'md')).toBe('conversation.md');
    expect(exportFileName(null, 'json')).toBe('conversation.json');
    expect(exportFileName('x'.repeat(300), 'md')).toBe(`${'x'.repeat(80)}.md`);
  });

  it('reads every page of a long conversation, oldest first, before writing the file', async () => {
    const get = vi.fn()
      .mockResolvedValueOnce({ conversation, messages: [message(4, 'user', 'five'), message(5, 'assistant', 'six')], has_more: true })
      .mockResolvedValueOnce({ messages: [message(2, 'user', 'three'), message(3, 'assistant', 'four')], has_more: true })
      .mockResolvedValueOnce({ messages: [message(0, 'user', 'one'), message(1, 'assistant', 'two')], has_more: false });
    TestBed.configureTestingModule({ providers: [{ provide: ApiClient, useValue: { get } }] });
    const file = await TestBed.inject(ConversationExporter).export('c1', 'json', at);
    expect(get.mock.calls.map((c) => c[0])).toEqual([
      '/api/v1/conversations/c1?limit=200',
      '/api/v1/conversations/c1/messages?before=4&limit=200',
      '/api/v1/conversations/c1/messages?before=2&limit=200',
    ]);
    expect(file.name).toBe('Trip to Lisbon.json');
    expect(file.type).toBe('application/json;charset=utf-8');
    const parsed = JSON.parse(file.text) as { messages: Message[] };
    expect(parsed.messages.map((m) => m.content)).toEqual(['one', 'two', 'three', 'four', 'five', 'six']);
  });

  it('writes the Markdown file with the writer it fetches on the first export', async () => {
    const get = vi.fn().mockResolvedValueOnce({ conversation, messages: [message(0, 'user', 'one'), message(1, 'assistant', 'two <b>')], has_more: false });
    TestBed.configureTestingModule({ providers: [{ provide: ApiClient, useValue: { get } }] });
    const file = await TestBed.inject(ConversationExporter).export('c1', 'markdown', at);
    expect(file).toEqual({ name: 'Trip to Lisbon.md', type: 'text/markdown;charset=utf-8', text: toMarkdown(conversation, [message(0, 'user', 'one'), message(1, 'assistant', 'two <b>')], at) });
    expect(file.text).toContain('two &lt;b>');
  });
});
