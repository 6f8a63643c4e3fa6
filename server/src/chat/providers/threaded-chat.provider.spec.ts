import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { Worker } from 'node:worker_threads';
import type { AppConfig } from '../../config/app-config.js';
import { FakeOpenAiServer } from '../../testing/fake-openai-server.js';
import { type CompletionRequest, ProviderError, type ProviderChunk } from './chat-provider.js';
import { ThreadedChatProvider } from './threaded-chat.provider.js';

// The provider with its upstream half on a worker thread, against a real loopback server
// speaking the OpenAI wire format (the SDK runs in the worker): the same contract as in process.
describe('ThreadedChatProvider', () => {
  const fake = new FakeOpenAiServer();
  let baseUrl: string;
  let p: ThreadedChatProvider;
  /** The configuration `p` was made with, for providers a test makes with other settings. */
  let llm: AppConfig['llm'];
  beforeAll(async () => { baseUrl = await fake.start(); });
  afterAll(async () => { await fake.stop(); });
  beforeEach(() => {
    fake.reset();
    fake.defaultReply = {};
    llm = {
      provider: 'openai', model: 'fake-model', apiKey: 'sk-test', baseUrl, contextTokens: 8000, maxOutputTokens: 256,
      upstreamTimeoutMs: 2000, upstreamIdleTimeoutMs: 2000, upstreamMaxRetries: 0, upstreamWorker: true, offlineTokenDelayMs: 0, modelTitles: false,
    } as unknown as AppConfig['llm'];
    p = new ThreadedChatProvider(llm);
    p.onApplicationBootstrap();
  });
  afterEach(async () => { await p.onApplicationShutdown(); });

  const request = (text: string): CompletionRequest => ({ messages: [{ role: 'user', content: text }], maxOutputTokens: 64, fileNames: [] });
  const tokensOf = (chunks: ProviderChunk[]): string => chunks.map((c) => (c.type === 'token' ? c.text : '')).join('');
  const workerOf = (provider: ThreadedChatProvider): Worker => (provider as unknown as { worker: Worker }).worker;

  it('hands on every chunk in order, then resolves', async () => {
    fake.defaultReply = { tokens: ['Hel', 'lo', ' wörld ✓'], finishReason: 'length' };
    const chunks: ProviderChunk[] = [];
    await p.stream(request('hi'), new AbortController().signal, (c) => chunks.push(c));
    expect(tokensOf(chunks)).toBe('Hello wörld ✓');
    expect(chunks.slice(3)).toEqual([{ type: 'finish', reason: 'length' }, { type: 'usage', promptTokens: expect.any(Number), completionTokens: 3 }]);
    expect(fake.requests[0].headers.authorization).toBe('Bearer sk-test');
  });

  it('marks each completion handed to the worker and its first token back on the diagnostics channels', async () => {
    fake.on('first', { tokens: ['a1', 'a2'], tokenDelayMs: 5 }).on('second', { tokens: ['b1', 'b2', 'b3'], tokenDelayMs: 5 });
    const marks: string[] = [];
    const tokens: string[] = [];
    const onPosted = (m: unknown): void => { marks.push(`posted ${(m as { id: number }).id}`); };
    const onFirst = (m: unknown): void => { marks.push(`first ${(m as { id: number }).id} after ${tokens.length} tokens`); };
    subscribe('parley:upstream.posted', onPosted);
    subscribe('parley:upstream.first-token', onFirst);
    try {
      await p.stream(request('first'), new AbortController().signal, (c) => { if (c.type === 'token') tokens.push(c.text); });
      await p.stream(request('second'), new AbortController().signal, (c) => { if (c.type === 'token') tokens.push(c.text); });
    } finally {
      unsubscribe('parley:upstream.posted', onPosted);
      unsubscribe('parley:upstream.first-token', onFirst);
    }
    // Once each: posted, then its first token (marked just before it is handed on).
    const id = Number(marks[0].split(' ')[1]);
    expect(marks).toEqual([`posted ${id}`, `first ${id} after 0 tokens`, `posted ${id + 1}`, `first ${id + 1} after 2 tokens`]);
  });

  it('sends a stream\'s first token and its end at once, and lets the tokens between wait for company', async () => {
    // A coalescing window far longer than the test: only the first token and the end may leave on their own.
    const slow = new ThreadedChatProvider(llm, 60_000);
    try {
      fake.defaultReply = { tokens: ['t1', 't2', 't3', 't4'], tokenDelayMs: 40, finishReason: 'stop' };
      // Chunks handed on in one synchronous run came in one message from the worker.
      let message = 0;
      let isCounting = false;
      const seen: string[] = [];
      const messageOf = new Map<string, number>();
      await slow.stream(request('hi'), new AbortController().signal, (c) => {
        if (!isCounting) {
          isCounting = true;
          queueMicrotask(() => { isCounting = false; message++; });
        }
        const name = c.type === 'token' ? c.text : c.type;
        seen.push(name);
        messageOf.set(name, message);
      });
      expect(seen).toEqual(['t1', 't2', 't3', 't4', 'finish', 'usage']);
      // The first token left before the end; the later ones (t2 too, unless a stalled worker read it
      // in t1's turn) waited for the end, which left at once.
      expect(messageOf.get('t1')).toBe(0);
      expect(messageOf.get('finish')).toBeGreaterThan(0);
      for (const name of ['t3', 't4', 'usage']) expect(messageOf.get(name)).toBe(messageOf.get('finish'));
    } finally {
      await slow.onApplicationShutdown();
    }
  });

  it('sends a stream\'s first token without the tokens of other streams still waiting for company', async () => {
    const slow = new ThreadedChatProvider(llm, 60_000);
    try {
      fake.on('long', { tokens: Array.from({ length: 12 }, (_, i) => `a${i} `), tokenDelayMs: 30 }).on('late', { tokens: ['b1', 'b2'], tokenDelayMs: 5 });
      const a: string[] = [];
      let aWhenB = -1;
      let sawA!: () => void;
      const aStarted = new Promise<void>((resolve) => { sawA = resolve; });
      const long = slow.stream(request('long'), new AbortController().signal, (c) => { if (c.type === 'token') { a.push(c.text); sawA(); } });
      await aStarted;
      // a1, a2, … are read meanwhile and wait in the worker (the window is a minute).
      await new Promise((resolve) => setTimeout(resolve, 100));
      await slow.stream(request('late'), new AbortController().signal, (c) => { if (c.type === 'token' && aWhenB === -1) aWhenB = a.length; });
      await long;
      expect(aWhenB).toBe(1);
      expect(a).toHaveLength(12);
    } finally {
      await slow.onApplicationShutdown();
    }
  });

  it('keeps concurrent completions apart', async () => {
    fake.on('first', { tokens: ['a1', 'a2', 'a3'], tokenDelayMs: 5 }).on('second', { tokens: ['b1', 'b2'], tokenDelayMs: 7 });
    const a: ProviderChunk[] = [];
    const b: ProviderChunk[] = [];
    await Promise.all([
      p.stream(request('first'), new AbortController().signal, (c) => a.push(c)),
      p.stream(request('second'), new AbortController().signal, (c) => b.push(c)),
    ]);
    expect(tokensOf(a)).toBe('a1a2a3');
    expect(tokensOf(b)).toBe('b1b2');
  });

  it('rejects with the upstream HTTP error as a ProviderError', async () => {
    fake.defaultReply = { status: 401 };
    const err = await p.stream(request('hi'), new AbortController().signal, () => undefined).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ kind: 'http', httpStatus: 401, messageStatus: 'failed' });
  });

  it('rejects a reply cut mid-answer as interrupted', async () => {
    fake.defaultReply = { tokens: ['a', 'b', 'c', 'd'], dropAfter: 2 };
    const chunks: ProviderChunk[] = [];
    const err = await p.stream(request('hi'), new AbortController().signal, (c) => chunks.push(c)).catch((e: unknown) => e);
    expect(tokensOf(chunks)).toBe('ab');
    expect(err).toMatchObject({ kind: 'cut', messageStatus: 'interrupted' });
  });

  it('stops at once when aborted: nothing more is handed on and the upstream connection is dropped', async () => {
    fake.defaultReply = { tokens: ['a', 'b', 'c'], stallAfter: 1 };
    const abort = new AbortController();
    const chunks: ProviderChunk[] = [];
    const done = p.stream(request('hi'), abort.signal, (c) => {
      chunks.push(c);
      if (c.type === 'token') abort.abort();
    });
    await expect(done).rejects.toBeInstanceOf(ProviderError);
    expect(tokensOf(chunks)).toBe('a');
    // The stalled connection was destroyed, not pooled: the next completion opens a new one.
    const before = fake.connections;
    fake.defaultReply = { tokens: ['x'] };
    await p.stream(request('again'), new AbortController().signal, () => undefined);
    expect(fake.connections).toBe(before + 1);
  });

  it('rejects with the error a chunk handler throws, and hands on nothing after it', async () => {
    fake.defaultReply = { tokens: ['a', 'b', 'c'] };
    const boom = new Error('handler failed');
    const chunks: ProviderChunk[] = [];
    const done = p.stream(request('hi'), new AbortController().signal, (c) => {
      chunks.push(c);
      throw boom;
    });
    await expect(done).rejects.toBe(boom);
    expect(chunks).toHaveLength(1);
  });

  it('ends running completions as cut when the worker dies, and starts a new worker for the next', async () => {
    fake.on('started', { tokens: ['a', 'b'], stallAfter: 1 }).on('waiting', { hangBeforeHeaders: true });
    let sawToken!: () => void;
    const tokenSeen = new Promise<void>((resolve) => { sawToken = resolve; });
    const started = p.stream(request('started'), new AbortController().signal, (c) => { if (c.type === 'token') sawToken(); });
    await tokenSeen;
    const waiting = p.stream(request('waiting'), new AbortController().signal, () => undefined);
    const first = workerOf(p);
    await first.terminate();
    await expect(started).rejects.toMatchObject({ kind: 'cut', messageStatus: 'interrupted' });
    await expect(waiting).rejects.toMatchObject({ kind: 'connection', messageStatus: 'failed' });

    fake.defaultReply = { tokens: ['ok'] };
    const chunks: ProviderChunk[] = [];
    await p.stream(request('next'), new AbortController().signal, (c) => chunks.push(c));
    expect(tokensOf(chunks)).toBe('ok');
    expect(workerOf(p)).not.toBe(first);
  });

  it('builds a prepared completion in the worker but sends it only when it is streamed', async () => {
    fake.defaultReply = { tokens: ['early', ' bird'] };
    const early = request('prepared first');
    const prepared = p.prepare(early);
    // Another completion, prepared after it, goes all the way: the worker has handled the first one's
    // preparation (its messages arrive in order), and still nothing of it reached the model.
    await p.stream(request('meanwhile'), new AbortController().signal, () => undefined);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(fake.requests.map((r) => r.body.messages?.[0].content)).toEqual(['meanwhile']);

    const chunks: ProviderChunk[] = [];
    await p.stream(early, new AbortController().signal, (c) => chunks.push(c), prepared);
    expect(tokensOf(chunks)).toBe('early bird');
    expect(fake.requests.map((r) => r.body.messages?.[0].content)).toEqual(['meanwhile', 'prepared first']);
  });

  it('never sends a prepared completion that is cancelled, or whose stream is aborted before it starts', async () => {
    fake.defaultReply = { tokens: ['ok'] };
    const cancelled = p.prepare(request('cancelled'));
    cancelled.cancel();
    const aborted = new AbortController();
    aborted.abort();
    const refused = p.stream(request('aborted'), aborted.signal, () => undefined, p.prepare(request('aborted')));
    await expect(refused).rejects.toMatchObject({ kind: 'connection' });
    await p.stream(request('after'), new AbortController().signal, () => undefined);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(fake.requests.map((r) => r.body.messages?.[0].content)).toEqual(['after']);
    // Handed to stream after all, a cancelled one is built and sent afresh.
    const chunks: ProviderChunk[] = [];
    await p.stream(request('cancelled'), new AbortController().signal, (c) => chunks.push(c), cancelled);
    expect(tokensOf(chunks)).toBe('ok');
    expect(fake.requests.map((r) => r.body.messages?.[0].content)).toEqual(['after', 'cancelled']);
  });

  it('starts a prepared completion\'s first-byte timeout when it is sent, not while it is held', async () => {
    const quick = new ThreadedChatProvider({ ...llm, upstreamTimeoutMs: 200 });
    try {
      fake.defaultReply = { tokens: ['in', ' time'], headersDelayMs: 100 };
      const held = request('held');
      const prepared = quick.prepare(held);
      // Held longer than the timeout (a slow store), then answered within it once sent.
      await new Promise((resolve) => setTimeout(resolve, 400));
      const chunks: ProviderChunk[] = [];
      await quick.stream(held, new AbortController().signal, (c) => chunks.push(c), prepared);
      expect(tokensOf(chunks)).toBe('in time');
      // Once sent, the timeout still holds.
      fake.defaultReply = { hangBeforeHeaders: true };
      await expect(quick.stream(request('never'), new AbortController().signal, () => undefined, quick.prepare(request('never'))))
        .rejects.toMatchObject({ kind: 'timeout' });
    } finally {
      await quick.onApplicationShutdown();
    }
  });

  it('sends a prepared completion afresh when the worker that prepared it has stopped', async () => {
    fake.defaultReply = { tokens: ['still', ' here'] };
    const early = request('prepared');
    const prepared = p.prepare(early);
    await workerOf(p).terminate();
    const chunks: ProviderChunk[] = [];
    await p.stream(early, new AbortController().signal, (c) => chunks.push(c), prepared);
    expect(tokensOf(chunks)).toBe('still here');
    expect(fake.requests).toHaveLength(1);
  });

  it('closes its worker at shutdown', async () => {
    const worker = workerOf(p);
    const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
    await p.onApplicationShutdown();
    expect(await exited).toBe(0);
    // Nothing starts a new worker once shut down.
    await expect(p.stream(request('late'), new AbortController().signal, () => undefined)).rejects.toMatchObject({ kind: 'connection' });
    expect(workerOf(p)).toBeUndefined();
  });
});
