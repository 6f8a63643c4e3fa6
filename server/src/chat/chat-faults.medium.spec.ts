import { dialects } from '../testing/dialects.js';
import { FALLBACK_TEXTS } from './fallback-texts.js';
import type { UpstreamRefusal } from './providers/chat-provider.js';
import { type ChatHarness, createChatHarness } from '../testing/chat-harness.js';
import { type ReceivedEvent, tokensOf } from '../testing/sse-client.js';

const TOKENS = ['Alpha ', 'beta ', 'gamma ', 'delta ', 'epsilon'];

describe.each(dialects())('upstream faults on %s', (dialect) => {
  let h: ChatHarness;
  let token: string;
  beforeAll(async () => {
    // First byte 500 ms, idle 500 ms, 2 retries (see the harness).
    h = await createChatHarness(dialect);
    token = (await h.t.newSession()).token;
  });
  afterAll(async () => { await h.close(); });

  async function chat(message: string): Promise<{ events: ReceivedEvent[]; final: Record<string, unknown>; row: Awaited<ReturnType<ChatHarness['message']>> }> {
    const conn = h.send(token, { message });
    const events = await conn.all();
    expect(conn.status).toBe(200);
    const final = events.at(-1)!.data;
    expect(final.finished).toBe(true);
    const row = await h.message(events[0].data.message_id as string);
    return { events, final, row };
  }

  /** The server still answers the next chat normally. */
  async function stillServing(): Promise<void> {
    h.fake.on('are you ok', { tokens: ['fine'] });
    const { final, row } = await chat(`are you ok ${Math.random()}`);
    expect(final).toMatchObject({ type: 'done', status: 'complete' });
    expect(row.content).toBe('fine');
  }

  function expectError(final: Record<string, unknown>, status: 'failed' | 'interrupted', refusal?: UpstreamRefusal): void {
    const refused = { context_length_exceeded: FALLBACK_TEXTS.contextLengthExceeded, content_filter: FALLBACK_TEXTS.contentFilter, upstream_refused: FALLBACK_TEXTS.upstreamRefused };
    expect(final).toEqual({
      type: 'error', finished: true, message_id: expect.any(String), status, code: 'OPENAI_ERROR',
      // An interrupted answer says so, live as after a reload; a failed one that the model is unavailable, or that it
      // refused the request (trying again cannot help), with why.
      error: status === 'interrupted' ? FALLBACK_TEXTS.interrupted : refusal ? refused[refusal] : FALLBACK_TEXTS.openaiUnavailable,
      ...(refusal ? { finish_reason: refusal } : {}),
    });
  }

  it('retries a 429 honouring Retry-After, then streams', async () => {
    h.fake.on('rate limited', { status: 429, headers: { 'retry-after': '0' } }, { tokens: TOKENS });
    const { final, row } = await chat('rate limited');
    expect(final).toMatchObject({ type: 'done', status: 'complete' });
    expect(row.content).toBe(TOKENS.join(''));
    expect(h.fake.requestsFor('rate limited')).toHaveLength(2);
  });

  it('retries 5xx with backoff up to UPSTREAM_MAX_RETRIES, then fails with an error event', async () => {
    h.fake.on('always 500', { status: 500 });
    const { events, final, row } = await chat('always 500');
    expectError(final, 'failed');
    expect(h.fake.requestsFor('always 500')).toHaveLength(3);
    expect(tokensOf(events)).toBe('');
    // The fallback text is never stored as if the model had said it.
    expect(row).toMatchObject({ status: 'failed', content: '', errorCode: 'OPENAI_ERROR', leaseExpiresAt: null });
    await stillServing();
  });

  it('does not retry a 400, and says that trying again will not help', async () => {
    h.fake.on('bad request', { status: 400 });
    const { final, row } = await chat('bad request');
    expectError(final, 'failed', 'upstream_refused');
    expect(row).toMatchObject({ status: 'failed', errorCode: 'OPENAI_ERROR', finishReason: 'upstream_refused' });
    expect(h.fake.requestsFor('bad request')).toHaveLength(1);
  });

  it('does not retry a 429 that is out of credit (OpenAI\'s insufficient_quota), and says that trying again will not help; a rate limit is retried', async () => {
    h.fake.on('no credit', { status: 429, errorBody: JSON.stringify({ error: {
      message: 'You exceeded your current quota, please check your plan and billing details.', type: 'insufficient_quota', param: null, code: 'insufficient_quota',
    } }) });
    const { final, row } = await chat('no credit');
    expectError(final, 'failed', 'upstream_refused');
    expect(row).toMatchObject({ status: 'failed', errorCode: 'OPENAI_ERROR', finishReason: 'upstream_refused' });
    expect(h.fake.requestsFor('no credit')).toHaveLength(1);
    const limited = { status: 429, errorBody: JSON.stringify({ error: { message: 'Rate limit reached for requests', type: 'requests', code: 'rate_limit_exceeded' } }) };
    h.fake.on('limited for a while', limited, limited, { tokens: ['After ', 'the limit.'] });
    const { final: passed, row: answered } = await chat('limited for a while');
    expect(passed).toMatchObject({ type: 'done', status: 'complete' });
    expect(answered.content).toBe('After the limit.');
    expect(h.fake.requestsFor('limited for a while')).toHaveLength(3);
  });

  it('tells a prompt over the model\'s context (as OpenAI, llama.cpp, vLLM or a 413 say it) from another refusal, stored and replayed alike', async () => {
    const bodies: Array<[number, string]> = [
      [400, JSON.stringify({ error: { message: 'This model\'s maximum context length is 8192 tokens. However, your messages resulted in 9013 tokens.', type: 'invalid_request_error', param: 'messages', code: 'context_length_exceeded' } })],
      [400, JSON.stringify({ error: { code: 400, message: 'the request exceeds the available context size, try increasing it', type: 'exceed_context_size_error', n_prompt_tokens: 9013, n_ctx: 8192 } })],
      [400, JSON.stringify({ error: { message: 'Input prompt (9013 tokens) is too long and exceeds limit of 8192', type: 'BadRequestError', code: 400 } })],
      [413, JSON.stringify({ error: { message: 'Request too large', type: 'invalid_request_error' } })],
    ];
    for (const [i, [status, errorBody]] of bodies.entries()) {
      h.fake.on(`too long ${i}`, { status, errorBody });
      const { final, row } = await chat(`too long ${i}`);
      expectError(final, 'failed', 'context_length_exceeded');
      expect(row).toMatchObject({ status: 'failed', errorCode: 'OPENAI_ERROR', finishReason: 'context_length_exceeded' });
      expect(h.fake.requestsFor(`too long ${i}`)).toHaveLength(1);
      // Read again from the stored row (as after a restart): the same words and reason.
      const again = await h.t.http().get(`/api/v1/conversations/${row.conversationId}`).set('Authorization', `Bearer ${token}`).expect(200);
      expect((again.body as { messages: Array<{ finish_reason: string | null }> }).messages.at(-1)?.finish_reason).toBe('context_length_exceeded');
    }
    // Another 4xx refusal is not a context problem; a 500 is an outage (no reason: worth trying again).
    h.fake.on('forbidden model', { status: 404, errorBody: JSON.stringify({ error: { message: 'The model `gpt-9` does not exist', type: 'invalid_request_error', code: 'model_not_found' } }) });
    expectError((await chat('forbidden model')).final, 'failed', 'upstream_refused');
    h.fake.on('server down', { status: 500 }, { status: 500 }, { status: 500 });
    const down = await chat('server down');
    expectError(down.final, 'failed');
    expect(down.row.finishReason).toBeNull();
  });

  it('tells a content filter\'s refusal (Azure OpenAI) and a context error sent mid-stream after a 200 (SGLang, older llama.cpp)', async () => {
    h.fake.on('filtered words', { status: 400, errorBody: JSON.stringify({ error: {
      message: 'The response was filtered due to the prompt triggering Azure OpenAI\'s content management policy.', type: null, param: 'prompt', code: 'content_filter', status: 400,
    } }) });
    const filtered = await chat('filtered words');
    expectError(filtered.final, 'failed', 'content_filter');
    expect(filtered.row).toMatchObject({ status: 'failed', finishReason: 'content_filter' });
    h.fake.on('long after a 200', { contentType: 'text/event-stream', body: `data: ${JSON.stringify({ error: {
      message: 'The input (9000 tokens) is longer than the model\'s context length (8192 tokens).', type: 'BadRequestError', code: 400,
    } })}\n\n` });
    const midStream = await chat('long after a 200');
    expectError(midStream.final, 'failed', 'context_length_exceeded');
    expect(midStream.row).toMatchObject({ status: 'failed', finishReason: 'context_length_exceeded' });
  });

  it('goes on after a question refused for its length: the next question is sent without it, and answered', async () => {
    // The refused question stayed in the history: joined to every later question, each was refused the same, the conversation stuck.
    h.fake.on('a question far too long', { status: 400, errorBody: JSON.stringify({ error: { message: 'This model\'s maximum context length is 8192 tokens.', code: 'context_length_exceeded' } }) });
    const refused = await chat('a question far too long');
    expectError(refused.final, 'failed', 'context_length_exceeded');
    h.fake.on('a short one', { tokens: ['answered'] });
    const next = await h.send(token, { message: 'a short one', conversation_id: refused.row.conversationId }).all();
    expect(next.at(-1)!.data).toMatchObject({ type: 'done', status: 'complete' });
    const sent = JSON.stringify(h.fake.requestsFor('a short one')[0].body.messages);
    expect(sent).not.toContain('a question far too long');
    // An outage's question stays: the user's next words may build on it.
    h.fake.on('asked during an outage', { status: 500 }, { status: 500 }, { status: 500 });
    const outage = await chat('asked during an outage');
    h.fake.on('and then this', { tokens: ['ok'] });
    await h.send(token, { message: 'and then this', conversation_id: outage.row.conversationId }).all();
    expect(JSON.stringify(h.fake.requestsFor('and then this')[0].body.messages)).toContain('asked during an outage');
  });

  it('recovers from a 503 then a 502 before the first token', async () => {
    h.fake.on('flaky twice', { status: 503, headers: { 'retry-after-ms': '10' } }, { status: 502, headers: { 'retry-after': '0' } }, { tokens: TOKENS });
    const { final, row } = await chat('flaky twice');
    expect(final).toMatchObject({ type: 'done', status: 'complete' });
    expect(row.content).toBe(TOKENS.join(''));
  });

  it('aborts an upstream that never answers (first-byte timeout): failed', async () => {
    h.fake.on('hang before headers', { hangBeforeHeaders: true });
    const began = Date.now();
    const { final, row } = await chat('hang before headers');
    expect(Date.now() - began).toBeLessThan(3_000);
    expectError(final, 'failed');
    expect(row.status).toBe('failed');
    await stillServing();
  });

  it('aborts an upstream that sends headers but no body in time: failed', async () => {
    h.fake.on('hang after headers', { hangAfterHeaders: true });
    const { final, row } = await chat('hang after headers');
    expectError(final, 'failed');
    expect(row.status).toBe('failed');
  });

  it('aborts a stream that stalls mid-answer (idle timeout): failed, partial text kept', async () => {
    h.fake.on('stall please', { tokens: TOKENS, stallAfter: 2 });
    const { events, final, row } = await chat('stall please');
    expectError(final, 'failed');
    expect(tokensOf(events)).toBe('Alpha beta ');
    expect(row).toMatchObject({ status: 'failed', content: 'Alpha beta ' });
    await stillServing();
  });

  it('parses events whose separators are split across TCP packets (LF and CR LF)', async () => {
    h.fake.on('split lf', { tokens: TOKENS, splitSeparators: true });
    h.fake.on('split crlf', { tokens: TOKENS, splitSeparators: true, lineEnding: '\r\n' });
    for (const message of ['split lf', 'split crlf']) {
      const { events, final, row } = await chat(message);
      expect(final).toMatchObject({ type: 'done', status: 'complete', finish_reason: 'stop' });
      expect(tokensOf(events)).toBe(TOKENS.join(''));
      expect(row.content).toBe(TOKENS.join(''));
    }
  });

  it('ends malformed upstream JSON in an error event: failed', async () => {
    h.fake.on('bad json', { tokens: TOKENS, badJsonAfter: 2 });
    const { final, row } = await chat('bad json');
    expectError(final, 'failed');
    expect(row).toMatchObject({ status: 'failed', content: 'Alpha beta ' });
    await stillServing();
  });

  // One line without end, in 1 KB pieces: each piece rescanned all the line held (quadratic CPU,
  // in the upstream worker), and the line was held whole for as long as the upstream sent it.
  it('ends a line longer than MAX_SSE_LINE_CHARS in an error event at once: failed, as malformed upstream data', async () => {
    h.fake.on('endless line', { tokens: TOKENS.slice(0, 2), endlessLine: true });
    const began = Date.now();
    const { final, row } = await chat('endless line');
    expectError(final, 'failed');
    expect(row).toMatchObject({ status: 'failed', content: 'Alpha beta ', errorCode: 'OPENAI_ERROR' });
    expect(Date.now() - began).toBeLessThan(5_000);
    await stillServing();
  });

  it('tells health the model is down (degraded, 200) after three replies in a row failed by it, until one is answered', async () => {
    const health = async (): Promise<{ status: number; body: { status: string; checks: Record<string, string> } }> => {
      const res = await h.t.http().get('/api/v1/health');
      return { status: res.status, body: res.body as { status: string; checks: Record<string, string> } };
    };
    await stillServing();
    expect((await health()).body).toMatchObject({ status: 'ok', checks: { database: 'ok', model: 'ok' } });
    h.fake.on(/^wrong key/, { status: 401 });
    for (let i = 0; i < 2; i++) expectError((await chat(`wrong key ${i}`)).final, 'failed', 'upstream_refused');
    expect((await health()).body.status).toBe('ok');
    expectError((await chat('wrong key 2')).final, 'failed', 'upstream_refused');
    expect(await health()).toEqual({ status: 200, body: expect.objectContaining({ status: 'degraded', checks: { database: 'ok', model: 'down' } }) });
    // Readiness is not the model's: the instance still serves history.
    await h.t.http().get('/api/v1/health/ready').expect(200);
    await stillServing();
    expect((await health()).body).toMatchObject({ status: 'ok', checks: { model: 'ok' } });
    // A prompt over the context or blocked by the content filter is the prompt's doing, not the model's: any visitor
    // could send three. The model's server answered, so it also clears a run of failures.
    h.fake.on(/^over the context/, { status: 400, errorBody: JSON.stringify({ error: { message: 'This model\'s maximum context length is 8192 tokens.', type: 'invalid_request_error', code: 'context_length_exceeded' } }) });
    h.fake.on(/^filtered/, { status: 400, errorBody: JSON.stringify({ error: { message: 'The response was filtered due to the prompt triggering Azure OpenAI\'s content management policy.', type: null, code: 'content_filter' } }) });
    for (let i = 0; i < 2; i++) expectError((await chat(`wrong key again ${i}`)).final, 'failed', 'upstream_refused');
    expectError((await chat('over the context 0')).final, 'failed', 'context_length_exceeded');
    expectError((await chat('wrong key again 2')).final, 'failed', 'upstream_refused');
    expect((await health()).body.status).toBe('ok');
    for (let i = 0; i < 3; i++) expectError((await chat(`over the context ${i + 1}`)).final, 'failed', 'context_length_exceeded');
    for (let i = 0; i < 3; i++) expectError((await chat(`filtered ${i}`)).final, 'failed', 'content_filter');
    expect((await health()).body).toMatchObject({ status: 'ok', checks: { model: 'ok' } });
  });

  it('ends a stream that stops without a finish reason or [DONE] in an error event: interrupted', async () => {
    h.fake.on('no done', { tokens: TOKENS, omitDone: true, omitFinish: true });
    const { final, row } = await chat('no done');
    expectError(final, 'interrupted');
    expect(row).toMatchObject({ status: 'interrupted', content: TOKENS.join('') });
  });

  it('ends a stream whose finish reason came but no [DONE] (llama.cpp) as complete, with its usage', async () => {
    h.fake.on('finished, never said done', { tokens: TOKENS, omitDone: true });
    const { final, row } = await chat('finished, never said done');
    expect(final).toMatchObject({ type: 'done', status: 'complete', finish_reason: 'stop' });
    expect(row).toMatchObject({ status: 'complete', content: TOKENS.join(''), finishReason: 'stop', errorCode: null });
    expect(row.completionTokens).toBe(TOKENS.length);
  });

  it('ends an error object mid-stream in an error event: failed', async () => {
    h.fake.on('error midway', { tokens: TOKENS, errorAfter: 3 });
    const { final, row } = await chat('error midway');
    expectError(final, 'failed');
    expect(row).toMatchObject({ status: 'failed', content: 'Alpha beta gamma ' });
  });

  it('ends a connection cut after tokens in an error event: interrupted, not retried', async () => {
    h.fake.on('cut me', { tokens: TOKENS, dropAfter: 2 });
    const { final, row } = await chat('cut me');
    expectError(final, 'interrupted');
    expect(row).toMatchObject({ status: 'interrupted', content: 'Alpha beta ' });
    expect(h.fake.requestsFor('cut me')).toHaveLength(1);
    await stillServing();
  });

  it('retries a connection cut before the first token', async () => {
    h.fake.on('cut early', { tokens: TOKENS, dropAfter: 0 }, { tokens: TOKENS });
    const { final, row } = await chat('cut early');
    expect(final).toMatchObject({ type: 'done', status: 'complete' });
    expect(row.content).toBe(TOKENS.join(''));
  });

  it('takes an upstream stream that ends before its first token, every time, for a failed answer (tried again), never an empty interrupted one', async () => {
    h.fake.on('empty stream', { body: '', contentType: 'text/event-stream' });
    const { events, final, row } = await chat('empty stream');
    expectError(final, 'failed');
    expect(h.fake.requestsFor('empty stream')).toHaveLength(3);
    expect(tokensOf(events)).toBe('');
    expect(row).toMatchObject({ status: 'failed', content: '', errorCode: 'OPENAI_ERROR', leaseExpiresAt: null });
    await stillServing();
  });

  it('delivers slow tokens one by one as they come', async () => {
    h.fake.on('slow tokens', { tokens: TOKENS, tokenDelayMs: 120 });
    const conn = h.send(token, { message: 'slow tokens' });
    const arrivals: number[] = [];
    let seen = 0;
    while (seen < TOKENS.length) {
      await conn.until((e) => e.filter((x) => x.data.type === 'token').length > seen);
      seen = conn.events.filter((x) => x.data.type === 'token').length;
      arrivals.push(Date.now());
    }
    await conn.all();
    expect(tokensOf(conn.events)).toBe(TOKENS.join(''));
    // Each token arrived on its own, about one delay after the previous one (not all at the end).
    const gaps = arrivals.slice(1).map((t, i) => t - arrivals[i]);
    expect(Math.min(...gaps)).toBeGreaterThan(60);
  });
  it('streams and stores the same text on either database: NULs dropped, an unpaired surrogate as U+FFFD, a split pair kept', async () => {
    // PostgreSQL refused the NUL (the reply was announced complete and never stored); the drivers turned a lone
    // surrogate into one or three U+FFFD while the stream carried it as sent.
    h.fake.on('odd text', { tokens: ['Hello ', 'a\u0000b', ' c\ud800d', ' \ud83d', '\ude00', ' e\udc00'] });
    const { events, final, row } = await chat('odd text');
    expect(final).toMatchObject({ type: 'done', status: 'complete' });
    const expected = 'Hello ab c\ufffdd \ud83d\ude00 e\ufffd';
    expect(tokensOf(events)).toBe(expected);
    expect(row).toMatchObject({ status: 'complete', content: expected });
    await stillServing();
  });

  it('leaves out a finish reason or a usage that is not in the wire format\'s form, and stores the reply', async () => {
    // Each was written as sent: PostgreSQL refused a 33-character reason and counts of 1.5, "abc" or 3e9 (the
    // reply was announced complete and never stored); SQLite stored an object as the reason.
    const cases: { finishReason?: unknown; usage?: { prompt_tokens: unknown; completion_tokens: unknown } }[] = [
      { finishReason: { a: 1 } },
      { finishReason: 'x'.repeat(33) },
      { usage: { prompt_tokens: 3_000_000_000, completion_tokens: 2 } },
      { usage: { prompt_tokens: 1.5, completion_tokens: 2 } },
      { usage: { prompt_tokens: 'abc', completion_tokens: 2 } },
      { usage: { prompt_tokens: 10, completion_tokens: -1 } },
    ];
    for (const [i, reply] of cases.entries()) {
      h.fake.on(`odd metadata ${i}`, { tokens: TOKENS, ...reply });
      const { final, row } = await chat(`odd metadata ${i}`);
      expect(final).toMatchObject({ type: 'done', status: 'complete' });
      const usage = final.usage as { prompt_tokens: unknown; completion_tokens: unknown; total_tokens: unknown };
      for (const n of [usage.prompt_tokens, usage.completion_tokens, usage.total_tokens]) expect(Number.isSafeInteger(n) && (n as number) >= 0).toBe(true);
      expect(row).toMatchObject({ status: 'complete', content: TOKENS.join(''), finishReason: reply.finishReason === undefined ? 'stop' : null });
      expect(final.finish_reason).toBe(row.finishReason);
      expect(row.completionTokens).toBe(usage.completion_tokens);
    }
  });
});
