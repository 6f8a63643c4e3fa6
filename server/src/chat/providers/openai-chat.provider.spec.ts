import type { AppConfig } from '../../config/app-config.js';
import { type FakeReply, FakeOpenAiServer } from '../../testing/fake-openai-server.js';
import { sleep, waitFor } from '../../testing/wait.js';
import { ProviderError, type ProviderChunk } from './chat-provider.js';
import { NodeHttpFetch } from './node-http-fetch.js';
import { OpenAiChatProvider, withoutSecrets } from './openai-chat.provider.js';

// The provider's transport (Node's HTTP client behind the SDK's `fetch` option) against a real
// loopback server speaking the OpenAI wire format: connections are pooled, idle ones close, and
// a quiet stream is never cut by the pool.
describe('OpenAiChatProvider transport', () => {
  const fake = new FakeOpenAiServer();
  let baseUrl: string;
  beforeAll(async () => { baseUrl = await fake.start(); });
  afterAll(async () => { await fake.stop(); });
  beforeEach(() => { fake.reset(); });

  function provider(idleSocketMs: number): OpenAiChatProvider {
    const llm = {
      provider: 'openai', model: 'fake-model', apiKey: 'sk-test', baseUrl, contextTokens: 8000, maxOutputTokens: 256,
      upstreamTimeoutMs: 2000, upstreamIdleTimeoutMs: 2000, upstreamMaxRetries: 0, offlineTokenDelayMs: 0, modelTitles: false,
    } as unknown as AppConfig['llm'];
    return new OpenAiChatProvider(llm, new NodeHttpFetch(idleSocketMs));
  }

  async function complete(p: OpenAiChatProvider, text: string): Promise<string> {
    let out = '';
    const chunks: ProviderChunk[] = [];
    await p.stream({ messages: [{ role: 'user', content: text }], maxOutputTokens: 64, fileNames: [] }, new AbortController().signal, (chunk) => {
      chunks.push(chunk);
      if (chunk.type === 'token') out += chunk.text;
    });
    expect(chunks.some((c) => c.type === 'finish')).toBe(true);
    return out;
  }

  it('reuses one pooled connection for completions in a row', async () => {
    const p = provider(4000);
    fake.defaultReply = { tokens: ['a', 'b', 'c'] };
    const before = fake.connections;
    for (let i = 0; i < 3; i++) {
      expect(await complete(p, `hello ${i}`)).toBe('abc');
      // The connection goes back to the pool once the body's end is read, just after [DONE].
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(fake.connections - before).toBe(1);
    p.onApplicationShutdown();
  });

  it('closes a pooled connection once it has been idle for the idle timeout', async () => {
    const p = provider(150);
    fake.defaultReply = { tokens: ['x'] };
    const before = fake.connections;
    await complete(p, 'one');
    await new Promise((r) => setTimeout(r, 400));
    await complete(p, 'two');
    expect(fake.connections - before).toBe(2);
    p.onApplicationShutdown();
  });

  it('calls onDone inside the read that brought [DONE], before the response\'s end is handled', async () => {
    // Everything after the headers comes in one write, so [DONE], the finish reason and the body's
    // end are in one read: the work that read queued (the response's end, the socket back to the
    // pool) runs after the read's callback; onDone may not wait for it, the promise does.
    const p = provider(4000);
    fake.defaultReply = { tokens: ['all ', 'at ', 'once'], oneWrite: true };
    let isAfterRead = false;
    const seen: string[] = [];
    const completion = p.streamWith({ messages: [{ role: 'user', content: 'at once' }], maxOutputTokens: 64, fileNames: [] }, new AbortController().signal, (chunk) => {
      seen.push(chunk.type);
      if (chunk.type === 'finish') process.nextTick(() => { isAfterRead = true; });
    }, {
      onDone: () => { seen.push(isAfterRead ? 'done after the read' : 'done in the read'); },
    });
    await completion;
    expect(seen).toEqual(['token', 'token', 'token', 'finish', 'usage', 'done in the read']);
    p.onApplicationShutdown();
  });

  it('does not call onDone for a stream that ends without [DONE] or a finish reason', async () => {
    const p = provider(4000);
    fake.defaultReply = { tokens: ['cut ', 'short'], omitDone: true, omitFinish: true, oneWrite: true };
    let isDone = false;
    const completion = p.streamWith({ messages: [{ role: 'user', content: 'no end' }], maxOutputTokens: 64, fileNames: [] }, new AbortController().signal, () => undefined, {
      onDone: () => { isDone = true; },
    });
    await expect(completion).rejects.toMatchObject({ kind: 'cut' });
    expect(isDone).toBe(false);
    p.onApplicationShutdown();
  });

  it('opens a held completion\'s connection at once and writes its request only when it is released', async () => {
    const p = provider(4000);
    fake.defaultReply = { tokens: ['held ', 'back'] };
    const before = fake.connections;
    let release!: () => void;
    const sendWhen = new Promise<void>((resolve) => { release = resolve; });
    const chunks: ProviderChunk[] = [];
    const completion = p.streamWith({ messages: [{ role: 'user', content: 'held request' }], maxOutputTokens: 64, fileNames: [] }, new AbortController().signal, (chunk) => {
      chunks.push(chunk);
    }, { sendWhen });
    // Built meanwhile: its connection is open (this provider's pool is new), nothing is written on it.
    await waitFor('the held request\'s connection', () => fake.connections > before, 2000, 5);
    await sleep(50);
    expect(fake.requestsFor('held request')).toHaveLength(0);
    release();
    await completion;
    expect(fake.requestsFor('held request')).toHaveLength(1);
    expect(chunks.filter((c) => c.type === 'token').map((c) => (c.type === 'token' ? c.text : ''))).toEqual(['held ', 'back']);
    p.onApplicationShutdown();
  });

  it('never writes a held completion that is cancelled', async () => {
    const p = provider(4000);
    const before = fake.connections;
    let cancel!: () => void;
    const sendWhen = new Promise<void>((_, reject) => { cancel = () => reject(new Error('cancelled')); });
    sendWhen.catch(() => undefined);
    const abort = new AbortController();
    const completion = p.streamWith({ messages: [{ role: 'user', content: 'cancelled request' }], maxOutputTokens: 64, fileNames: [] }, abort.signal, () => undefined, { sendWhen });
    await waitFor('the held request\'s connection', () => fake.connections > before, 2000, 5);
    // As the upstream worker cancels one: its signal aborted and its gate closed.
    abort.abort();
    cancel();
    await expect(completion).rejects.toMatchObject({ kind: 'connection' });
    await sleep(50);
    expect(fake.requestsFor('cancelled request')).toHaveLength(0);
    p.onApplicationShutdown();
  });

  it('does not cut a streaming reply that is quiet for longer than the idle timeout', async () => {
    const p = provider(100);
    fake.defaultReply = { tokens: ['slow ', 'but ', 'whole'], tokenDelayMs: 300 };
    expect(await complete(p, 'take your time')).toBe('slow but whole');
    p.onApplicationShutdown();
  });
});

// Servers that speak the format loosely (llama.cpp, vLLM, LiteLLM, gateways that ignore `stream`), through the SDK
// over a real loopback server: a whole answer is never taken for a cut one, nor an error for an answer.
describe('OpenAiChatProvider with loosely compatible servers', () => {
  const fake = new FakeOpenAiServer();
  let baseUrl: string;
  beforeAll(async () => { baseUrl = await fake.start(); });
  afterAll(async () => { await fake.stop(); });
  beforeEach(() => { fake.reset(); });

  async function run(
    reply: FakeReply, idleTimeoutMs = 10_000, retries = 0,
  ): Promise<{ text: string; chunks: ProviderChunk[]; isDone: boolean; error?: ProviderError; ms: number }> {
    fake.defaultReply = reply;
    const llm = {
      provider: 'openai', model: 'fake-model', apiKey: 'sk-test', baseUrl, contextTokens: 8000, maxOutputTokens: 256,
      upstreamTimeoutMs: 5000, upstreamIdleTimeoutMs: idleTimeoutMs, upstreamMaxRetries: retries, offlineTokenDelayMs: 0, modelTitles: false,
    } as unknown as AppConfig['llm'];
    const p = new OpenAiChatProvider(llm);
    const chunks: ProviderChunk[] = [];
    let isDone = false;
    const began = performance.now();
    try {
      await p.streamWith({ messages: [{ role: 'user', content: 'hello' }], maxOutputTokens: 64, fileNames: [] }, new AbortController().signal, (c) => chunks.push(c), {
        onDone: () => { isDone = true; },
      });
      return { text: textOf(chunks), chunks, isDone, ms: performance.now() - began };
    } catch (err) {
      if (!(err instanceof ProviderError)) throw err;
      return { text: textOf(chunks), chunks, isDone, error: err, ms: performance.now() - began };
    } finally {
      p.onApplicationShutdown();
    }
  }
  const textOf = (chunks: ProviderChunk[]): string => chunks.map((c) => (c.type === 'token' ? c.text : '')).join('');
  const frames = (...data: string[]): string => data.map((d) => `data: ${d}\n\n`).join('');
  const delta = (content: unknown, finish: string | null = null): string => JSON.stringify({ choices: [{ index: 0, delta: { content }, finish_reason: finish }] });

  it('takes an answer that ends after its finish reason without [DONE] as whole (llama.cpp), and closes at once', async () => {
    const r = await run({ tokens: ['Complete ', 'answer.'], omitDone: true });
    expect(r.error).toBeUndefined();
    expect(r.text).toBe('Complete answer.');
    expect(r.chunks).toContainEqual({ type: 'finish', reason: 'stop' });
    expect(r.chunks.some((c) => c.type === 'usage')).toBe(true);
    expect(r.isDone).toBe(true);
  });

  it('takes an answer whose server keeps the connection open after the finish reason as whole, within 1.5 s, not at the idle timeout', async () => {
    const r = await run({ tokens: ['Held ', 'open.'], holdAfterFinish: true }, 60_000);
    expect(r.error).toBeUndefined();
    expect(r.text).toBe('Held open.');
    expect(r.chunks.some((c) => c.type === 'usage')).toBe(true);
    expect(r.ms).toBeLessThan(10_000);
  });

  it('still takes a stream that stops without a finish reason or [DONE] for a cut one', async () => {
    const r = await run({ tokens: ['cut ', 'short'], omitDone: true, omitFinish: true });
    expect(r.error?.kind).toBe('cut');
    expect(r.text).toBe('cut short');
  });

  it('takes a stream that ends or is cut before its first token for a failed answer, not an interrupted one, and tries it again', async () => {
    const roleOnly = frames(JSON.stringify({ choices: [{ index: 0, delta: { role: 'assistant' }, finish_reason: null }] }));
    for (const reply of [{ body: '', contentType: 'text/event-stream' }, { body: roleOnly, contentType: 'text/event-stream' }, { tokens: ['never'], dropAfter: 0 }]) {
      fake.reset();
      const r = await run(reply, 10_000, 1);
      expect(r.error).toMatchObject({ kind: 'connection', messageStatus: 'failed' });
      expect(r.text).toBe('');
      expect(fake.requests).toHaveLength(2);
    }
    // Tried again, the next attempt's answer is the answer.
    fake.reset();
    fake.on('hello', { body: '', contentType: 'text/event-stream' }, { tokens: ['Second ', 'try.'] });
    const r = await run({ tokens: ['unused'] }, 10_000, 1);
    expect(r.error).toBeUndefined();
    expect(r.text).toBe('Second try.');
  });

  it('skips an event of an empty data line (a keep-alive) rather than failing the answer on it', async () => {
    const r = await run({ body: frames(delta('A'), '', ' ', delta('B', 'stop'), '[DONE]'), contentType: 'text/event-stream' });
    expect(r.error).toBeUndefined();
    expect(r.text).toBe('AB');
  });

  it('fails at once, naming it, on a compressed stream it did not ask for', async () => {
    const r = await run({ tokens: ['ok'], headers: { 'content-encoding': 'gzip' } });
    expect(r.error).toMatchObject({ kind: 'protocol', message: expect.stringContaining('Content-Encoding gzip, though asked for identity') });
    expect(r.text).toBe('');
  });

  it('takes a whole completion answered as JSON to a streamed request (a gateway that ignores `stream`)', async () => {
    const r = await run({ body: JSON.stringify({
      id: 'x', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: 'All at once.' }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 },
    }) });
    expect(r.error).toBeUndefined();
    expect(r.chunks).toEqual([{ type: 'token', text: 'All at once.' }, { type: 'finish', reason: 'stop' }, { type: 'usage', promptTokens: 5, completionTokens: 3 }]);
    expect(r.isDone).toBe(true);
  });

  it('fails, with the server\'s words for the log, on an error answered as 200 JSON, and on JSON that is no completion', async () => {
    const r = await run({ body: JSON.stringify({ error: { message: 'model not loaded' } }) });
    expect(r.error).toMatchObject({ kind: 'upstream-error', message: expect.stringContaining('model not loaded') });
    const odd = await run({ body: JSON.stringify({ hello: 'world' }) });
    expect(odd.error).toMatchObject({ kind: 'protocol', message: expect.stringContaining('not a chat completion') });
  });

  it('fails at once, as not an event stream, when the base URL answers a web page', async () => {
    const r = await run({ body: '<!doctype html><title>Open WebUI</title>', contentType: 'text/html; charset=utf-8' });
    expect(r.error).toMatchObject({ kind: 'protocol', message: expect.stringMatching(/text\/html, not an event stream: is OPENAI_BASE_URL/) });
    expect(r.text).toBe('');
  });

  it('fails on error events in every shape servers send, keeping what they say for the log', async () => {
    const shapes: Array<[string, string]> = [
      [`event: error\ndata: {"message":"overloaded"}\n\n`, 'overloaded'],
      [frames(JSON.stringify({ object: 'error', message: 'CUDA error: out of memory', type: 'InternalServerError', code: 500 })), 'CUDA error: out of memory'],
      [frames(JSON.stringify({ error: 'CUDA out of memory' })), 'CUDA out of memory'],
    ];
    for (const [event, said] of shapes) {
      const r = await run({ body: frames(delta('partial ')) + event + frames('[DONE]'), contentType: 'text/event-stream' });
      expect(r.error).toMatchObject({ kind: 'upstream-error', message: expect.stringContaining(said) });
      expect(r.text).toBe('partial ');
    }
  });

  it('puts reasoning sent beside the answer (reasoning_content, reasoning) at its start as a <think> block, as it streams', async () => {
    for (const reasoningField of ['reasoning_content', 'reasoning'] as const) {
      const r = await run({ reasoning: ['The user ', 'greets me.'], reasoningField, tokens: ['Hello', '!'] });
      expect(r.error).toBeUndefined();
      expect(r.text).toBe('<think>\nThe user greets me.\n</think>\n\nHello!');
      // The reader sees the thinking arrive: its first piece is a token of its own, before any answer.
      expect(r.chunks[0]).toEqual({ type: 'token', text: '<think>\nThe user ' });
    }
  });

  it('closes a reasoning block the answer ended in (length), leaves reasoning after the answer out, and reads it in a JSON completion', async () => {
    const cut = await run({ reasoning: ['Still ', 'thinking'], tokens: [], finishReason: 'length' });
    expect(cut.text).toBe('<think>\nStill thinking\n</think>\n\n');
    expect(cut.chunks.findIndex((c) => c.type === 'finish')).toBeGreaterThan(cut.chunks.findLastIndex((c) => c.type === 'token'));
    const late = await run({
      body: frames(delta('Answer.'), JSON.stringify({ choices: [{ index: 0, delta: { reasoning_content: 'an afterthought' }, finish_reason: null }] }), delta(null, 'stop'), '[DONE]'),
      contentType: 'text/event-stream',
    });
    expect(late.text).toBe('Answer.');
    const plain = await run({ tokens: ['No ', 'reasoning.'] });
    expect(plain.text).toBe('No reasoning.');
    const whole = await run({ body: JSON.stringify({
      id: 'x', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: 'Four.', reasoning_content: '2 + 2' }, finish_reason: 'stop' }],
    }) });
    expect(whole.text).toBe('<think>\n2 + 2\n</think>\n\nFour.');
  });

  it('reads the first of several choices in a chunk (n > 1), whichever order they come in; a chunk\'s one choice whatever its index', async () => {
    const choice = (index: number | undefined, content: string, finish: string | null = null): object => ({ ...(index === undefined ? {} : { index }), delta: { content }, finish_reason: finish });
    const r = await run({ body: frames(
      JSON.stringify({ choices: [choice(1, 'Other '), choice(0, 'First ')] }),
      JSON.stringify({ choices: [choice(1, 'other.', 'stop'), choice(0, 'answer.')] }), JSON.stringify({ choices: [choice(0, '', 'stop')] }), '[DONE]',
    ), contentType: 'text/event-stream' });
    expect(r.error).toBeUndefined();
    expect(r.text).toBe('First answer.');
    expect(r.chunks.filter((c) => c.type === 'finish')).toEqual([{ type: 'finish', reason: 'stop' }]);
    // TGI ≤ 1.4.3 and Foundry Local number their one choice per chunk: 0, 1, 2…
    const counting = await run({ body: frames(
      JSON.stringify({ choices: [choice(0, 'The ')] }), JSON.stringify({ choices: [choice(1, 'whole ')] }),
      JSON.stringify({ choices: [choice(2, 'answer.')] }), JSON.stringify({ choices: [choice(3, '', 'stop')] }), '[DONE]',
    ), contentType: 'text/event-stream' });
    expect(counting.text).toBe('The whole answer.');
    expect(counting.chunks).toContainEqual({ type: 'finish', reason: 'stop' });
    // A server that does not number its one choice.
    const plain = await run({ body: frames(JSON.stringify({ choices: [choice(undefined, 'Unnumbered.', 'stop')] }), '[DONE]'), contentType: 'text/event-stream' });
    expect(plain.text).toBe('Unnumbered.');
  });

  it('reads content sent as an array of text parts', async () => {
    const r = await run({ body: frames(delta([{ type: 'text', text: 'Array ' }, { type: 'image_url' }, { type: 'text', text: 'answer.' }]), delta(null, 'stop'), '[DONE]'), contentType: 'text/event-stream' });
    expect(r.error).toBeUndefined();
    expect(r.text).toBe('Array answer.');
  });

  it('asks for no content coding, and tells where a redirect points instead of following it', async () => {
    await run({ tokens: ['ok'] });
    expect(fake.requests[0].headers['accept-encoding']).toBe('identity');
    const r = await run({ status: 307, headers: { location: 'https://llm.example/v1/chat/completions' } });
    expect(r.error).toMatchObject({ kind: 'http', httpStatus: 307, message: expect.stringContaining('redirected to https://llm.example/v1/chat/completions; set OPENAI_BASE_URL') });
  });

  it('keeps the API key and anything shaped like a credential out of what an upstream error says (a proxy echoing it)', async () => {
    const echo = 'Invalid credentials: Authorization "Bearer sk-test" (key sk-proj-ABCDEFGH12345678 rejected)';
    const refused = await run({ status: 401, errorBody: JSON.stringify({ error: { message: echo, type: 'invalid_request_error' } }) });
    const midStream = await run({ body: frames(delta('Hi'), JSON.stringify({ error: { message: echo } })), contentType: 'text/event-stream' });
    for (const r of [refused, midStream]) {
      expect(r.error?.message).toContain('Invalid credentials');
      expect(r.error?.message).not.toMatch(/sk-test|sk-proj|ABCDEFGH/);
      expect(r.error?.message).toContain('Bearer [redacted]');
    }
    expect(refused.error).toMatchObject({ kind: 'http', httpStatus: 401 });
    expect(midStream.error?.kind).toBe('upstream-error');
    // The configured key whatever its shape (Groq's gsk_…, a gateway's own), and nothing else.
    expect(withoutSecrets('key gsk_abcdefgh1234 refused', 'gsk_abcdefgh1234')).toBe('key [redacted] refused');
    expect(withoutSecrets('maximum context length is 4096 tokens', 'gsk_abcdefgh1234')).toBe('maximum context length is 4096 tokens');
  });

  it('takes the key out of a long error event before cutting it for the log (a key cut in two at the cut was kept)', async () => {
    const key = 'gsk_AbCdEfGhIjKlMnOpQrStUvWx0123';
    fake.defaultReply = { body: frames(delta('Hi'), JSON.stringify({ error: { message: `${'x'.repeat(270)} api-key: ${key}` } })), contentType: 'text/event-stream' };
    const llm = {
      provider: 'openai', model: 'fake-model', apiKey: key, baseUrl, contextTokens: 8000, maxOutputTokens: 256,
      upstreamTimeoutMs: 5000, upstreamIdleTimeoutMs: 10_000, upstreamMaxRetries: 0, offlineTokenDelayMs: 0, modelTitles: false,
    } as unknown as AppConfig['llm'];
    const p = new OpenAiChatProvider(llm);
    try {
      const err = await p.stream({ messages: [{ role: 'user', content: 'hello' }], maxOutputTokens: 64, fileNames: [] }, new AbortController().signal, () => undefined)
        .then(() => undefined, (e: unknown) => e as ProviderError);
      expect(err?.kind).toBe('upstream-error');
      expect(err?.message).toContain('api-key: [redacted]');
      expect(err?.message).not.toContain('gsk_AbCd');
    } finally {
      p.onApplicationShutdown();
    }
  });

  it('keeps the message of an error body in vLLM\'s shape ({"object":"error","message"}) for the log', async () => {
    const r = await run({ status: 400, errorBody: JSON.stringify({ object: 'error', message: 'This model\'s maximum context length is 4096 tokens.', type: 'BadRequestError', code: 400 }) });
    expect(r.error).toMatchObject({ kind: 'http', httpStatus: 400, message: expect.stringContaining('maximum context length is 4096 tokens') });
  });
});
