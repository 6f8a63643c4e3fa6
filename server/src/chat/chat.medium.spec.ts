import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { IncomingMessage } from 'node:http';
import { ConversationsService, type MessagePatch } from '../conversations/conversations.service.js';
import { dialects } from '../testing/dialects.js';
import { FALLBACK_TEXTS } from './fallback-texts.js';
import type { Message } from '../conversations/message.entity.js';
import { ChatMetrics } from './chat-metrics.js';
import { GenerationRegistry } from './generation-registry.js';
import { GenerationService } from './generation.service.js';
import { type ChatHarness, createChatHarness, LIVE_LEASE_AHEAD_MS, UPSTREAM_KEY } from '../testing/chat-harness.js';
import { SseConnection, tokensOf } from '../testing/sse-client.js';

const words = (n: number, prefix = 'w'): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i} `);

describe.each(dialects())('chat streaming on %s', (dialect) => {
  let h: ChatHarness;
  let alice: { token: string; id: string; cookie: string };
  beforeAll(async () => {
    h = await createChatHarness(dialect);
    alice = await h.t.newSession();
  });
  afterAll(async () => { await h.close(); });

  it('streams a POST over real HTTP: start, tokens that concatenate to the upstream text, done; rows stored', async () => {
    h.fake.on('hello there', { tokens: ['Hel', 'lo', ', ', 'world', '!'] });
    const conn = h.send(alice.token, { message: 'hello there' });
    const events = await conn.all();
    expect(conn.status).toBe(200);
    expect(conn.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(conn.headers['cache-control']).toBe('no-store');
    expect(conn.headers['x-accel-buffering']).toBe('no');
    expect(events.map((e) => e.id)).toEqual(events.map((_, i) => i));
    const start = events[0].data;
    expect(start).toEqual({
      type: 'start', conversation_id: expect.any(String), user_message_id: expect.any(String), message_id: expect.any(String),
      provider: 'openai', model: 'fake-model', finished: false,
    });
    expect(tokensOf(events)).toBe('Hello, world!');
    expect(events[1].data).toEqual({ type: 'token', token: 'Hel', finished: false, timestamp: expect.any(String) });
    const done = events.at(-1)!.data;
    expect(done).toEqual({
      type: 'done', finished: true, message_id: start.message_id, status: 'complete', finish_reason: 'stop',
      usage: { prompt_tokens: expect.any(Number), completion_tokens: 5, total_tokens: expect.any(Number) },
    });

    const reply = await h.message(start.message_id as string);
    expect(reply).toMatchObject({
      role: 'assistant', status: 'complete', content: 'Hello, world!', finishReason: 'stop', modelName: 'fake-model',
      tokenCount: 5, completionTokens: 5, leaseExpiresAt: null, errorCode: null,
    });
    const user = await h.message(start.user_message_id as string);
    expect(user).toMatchObject({ role: 'user', content: 'hello there', status: 'complete', modelName: 'fake-model', tokenCount: 2 });
    expect(user.position).toBe(reply.position - 1);
    const conv = await h.t.app.get(ConversationsService).findOwned(alice.id, start.conversation_id as string);
    expect(conv.title).toBe('hello there');
  });

  it('has the answer stored before anything else runs after its final event: complete, interrupted, and a regeneration\'s', async () => {
    // On SQLite the event leaves first and the row is written in the same synchronous run; on
    // PostgreSQL the row is written first. Either way, the first thing this process can run after
    // the event (a request asking for the conversation, say) finds the final row.
    const registry = h.t.app.get(GenerationRegistry);
    const publish = registry.publish.bind(registry);
    const readAfterFinal = new Map<string, Promise<Message>>();
    const spy = vi.spyOn(registry, 'publish').mockImplementation((id, event) => {
      const sequenced = publish(id, event);
      if (event.finished) readAfterFinal.set(id, new Promise((resolve) => { setImmediate(() => resolve(h.message(id))); }));
      return sequenced;
    });
    try {
      h.fake.on('stored at the end', { tokens: ['Every ', 'word ', 'kept'] });
      const done = await h.send(alice.token, { message: 'stored at the end' }).all();
      const id = done[0].data.message_id as string;
      expect(await readAfterFinal.get(id)).toMatchObject({ status: 'complete', content: 'Every word kept', leaseExpiresAt: null, finishReason: 'stop' });

      h.fake.on('cut at the end', { tokens: ['Severed ', 'mid ', 'reply'], dropAfter: 2 });
      const failed = await h.send(alice.token, { message: 'cut at the end' }).all();
      expect(failed.at(-1)!.data).toMatchObject({ type: 'error', status: 'interrupted' });
      expect(await readAfterFinal.get(failed[0].data.message_id as string)).toMatchObject({ status: 'interrupted', content: 'Severed mid ', leaseExpiresAt: null });

      const regenerated = await SseConnection.open(`${h.url}/api/v1/chat/regenerate`, {
        method: 'POST', body: { conversation_id: done[0].data.conversation_id }, headers: { authorization: `Bearer ${alice.token}` },
      }).all();
      const newId = regenerated[0].data.message_id as string;
      const stored = await readAfterFinal.get(newId);
      expect(stored).toMatchObject({ status: 'complete', leaseExpiresAt: null });
      // The answer it replaced is gone by then too.
      await expect(h.message(id)).rejects.toThrow();
    } finally {
      spy.mockRestore();
    }
  });

  it('lets the final event go before the row\'s write on SQLite (written in the same run), after it elsewhere and for a regeneration', async () => {
    const registry = h.t.app.get(GenerationRegistry);
    const conversations = h.t.app.get(ConversationsService);
    const order: string[] = [];
    const publish = registry.publish.bind(registry);
    const updateMessage = conversations.updateMessage.bind(conversations);
    const updateMessageNow = conversations.updateMessageNow.bind(conversations);
    const isFinalRow = (patch: MessagePatch): boolean => patch.status !== undefined && patch.status !== 'streaming';
    const spies = [
      vi.spyOn(registry, 'publish').mockImplementation((id, event) => {
        if (event.finished) order.push('event');
        return publish(id, event);
      }),
      vi.spyOn(conversations, 'updateMessage').mockImplementation((id, patch) => {
        if (isFinalRow(patch)) order.push('row');
        return updateMessage(id, patch);
      }),
      vi.spyOn(conversations, 'updateMessageNow').mockImplementation((id, patch) => {
        order.push('row');
        return updateMessageNow(id, patch);
      }),
    ];
    try {
      h.fake.on('which first', { tokens: ['The ', 'event'] });
      const events = await h.send(alice.token, { message: 'which first' }).all();
      expect(order).toEqual(dialect === 'sqlite' ? ['event', 'row'] : ['row', 'event']);
      order.length = 0;
      await SseConnection.open(`${h.url}/api/v1/chat/regenerate`, {
        method: 'POST', body: { conversation_id: events[0].data.conversation_id }, headers: { authorization: `Bearer ${alice.token}` },
      }).all();
      expect(order).toEqual(['row', 'event']);
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
  });

  it('sends the model its request only once the turn is stored, and never one whose turn could not be stored', async () => {
    // The upstream worker builds the request while the turn is stored (ChatProvider.prepare): here
    // storing takes 150 ms, far longer than building and sending, and nothing may go out before it.
    const conversations = h.t.app.get(ConversationsService);
    const createWithTurn = conversations.createWithTurn.bind(conversations);
    const sentFor = (text: string): number => h.fake.requests.filter((r) => r.lastUserText === text).length;
    h.fake.on('stored first', { tokens: ['Stored', ', then sent'] });
    let sentWhileStoring = -1;
    const slow = vi.spyOn(conversations, 'createWithTurn').mockImplementation(async (...args) => {
      await new Promise((resolve) => setTimeout(resolve, 150));
      sentWhileStoring = sentFor('stored first');
      return createWithTurn(...args);
    });
    let events: Awaited<ReturnType<SseConnection['all']>>;
    try {
      events = await h.send(alice.token, { message: 'stored first' }).all();
    } finally {
      slow.mockRestore();
    }
    expect(sentWhileStoring).toBe(0);
    expect(tokensOf(events)).toBe('Stored, then sent');
    expect(sentFor('stored first')).toBe(1);

    // A regeneration the same way: nothing goes out while its reply's row is being stored.
    const appendAnswer = conversations.appendAnswer.bind(conversations);
    const slowAppend = vi.spyOn(conversations, 'appendAnswer').mockImplementation(async (...args) => {
      await new Promise((resolve) => setTimeout(resolve, 150));
      sentWhileStoring = sentFor('stored first');
      return appendAnswer(...args);
    });
    try {
      await SseConnection.open(`${h.url}/api/v1/chat/regenerate`, {
        method: 'POST', body: { conversation_id: events[0].data.conversation_id }, headers: { authorization: `Bearer ${alice.token}` },
      }).all();
    } finally {
      slowAppend.mockRestore();
    }
    expect(sentWhileStoring).toBe(1);
    expect(sentFor('stored first')).toBe(2);

    const failing = vi.spyOn(conversations, 'createWithTurn').mockRejectedValue(new Error('disk I/O error'));
    try {
      const refused = h.send(alice.token, { message: 'never stored' });
      await refused.all();
      expect(refused.status).toBe(500);
    } finally {
      failing.mockRestore();
    }
    // A later send goes through the same worker after it: the refused one was dropped, not held back.
    await h.send(alice.token, { message: 'after the failure' }).all();
    expect(sentFor('never stored')).toBe(0);
    expect(sentFor('after the failure')).toBe(1);
  });

  it('marks a chat\'s way to its first token on the diagnostics channels; a rejected request is not marked past its rejection', async () => {
    const names = ['http.server.request.start', 'parley:chat.accepted', 'parley:chat.started', 'parley:chat.first-token-written'];
    const seen = new Map<IncomingMessage, string[]>();
    const handlers = names.map((name) => (message: unknown): void => {
      const { request } = message as { request: IncomingMessage };
      if (name === names[0] && request.url === '/api/v1/chat') seen.set(request, []);
      seen.get(request)?.push(name.replace(/^.*[.:]/, ''));
    });
    names.forEach((name, i) => subscribe(name, handlers[i]));
    try {
      h.fake.on('marked', { tokens: ['a', 'b'] });
      await h.send(alice.token, { message: 'marked' }).all();
      const auth = `Bearer ${alice.token}`;
      await h.t.http().post('/api/v1/chat').set('Authorization', auth).send({}).expect(400); // the validation pipe
      await h.t.http().post('/api/v1/chat').set('Authorization', auth).send({ message: '   ' }).expect(400); // the service
    } finally {
      names.forEach((name, i) => unsubscribe(name, handlers[i]));
    }
    expect([...seen.values()]).toEqual([
      ['start', 'accepted', 'started', 'first-token-written'],
      ['start'],
      ['start', 'accepted'],
    ]);
  });

  it('sends the operator key upstream and never the caller\'s cookie or token', async () => {
    h.fake.on('secret check', { tokens: ['ok'] });
    await h.send(alice.token, { message: 'secret check' }, { cookie: alice.cookie }).all();
    const [upstream] = h.fake.requestsFor('secret check');
    expect(upstream.headers.authorization).toBe(`Bearer ${UPSTREAM_KEY}`);
    expect(upstream.headers.cookie).toBeUndefined();
    const everything = JSON.stringify({ headers: upstream.headers, body: upstream.body });
    expect(everything).not.toContain(alice.token);
    expect(everything).not.toContain(alice.cookie.split('=')[1]);
    expect(upstream.body).toMatchObject({ model: 'fake-model', stream: true });
    expect(upstream.body.messages![0]).toEqual({ role: 'system', content: h.t.config.llm.systemPrompt });
  });

  it('sends the conversation history with the next message', async () => {
    h.fake.on('first question', { tokens: ['first answer'] });
    const first = await h.send(alice.token, { message: 'first question' }).all();
    const conversationId = first[0].data.conversation_id as string;
    await h.send(alice.token, { message: 'second question', conversation_id: conversationId }).all();
    const [req] = h.fake.requestsFor('second question');
    expect(req.body.messages).toEqual([
      { role: 'system', content: expect.any(String) },
      { role: 'user', content: 'first question' },
      { role: 'assistant', content: 'first answer' },
      { role: 'user', content: 'second question' },
    ]);
  });

  it('sends an earlier answer back without a reasoning model\'s leading <think> block, and stores it whole', async () => {
    h.fake.on('think first', { tokens: ['<think>Let me ', 'see.</think>', '\n\nThe answer.'] });
    const first = await h.send(alice.token, { message: 'think first' }).all();
    const conversationId = first[0].data.conversation_id as string;
    await h.send(alice.token, { message: 'and then', conversation_id: conversationId }).all();
    const [req] = h.fake.requestsFor('and then');
    expect(req.body.messages?.[2]).toEqual({ role: 'assistant', content: 'The answer.' });
    const row = await h.message(first[0].data.message_id as string);
    expect(row.content).toBe('<think>Let me see.</think>\n\nThe answer.');
  });

  it('stores reasoning a server sends beside the answer (reasoning_content) as its leading <think> block, and never sends it back', async () => {
    h.fake.on('reason aside', { reasoning: ['Weighing ', 'it.'], tokens: ['Decided', '.'] });
    const first = await h.send(alice.token, { message: 'reason aside' }).all();
    const conversationId = first[0].data.conversation_id as string;
    expect(tokensOf(first)).toBe('<think>\nWeighing it.\n</think>\n\nDecided.');
    expect((await h.message(first[0].data.message_id as string)).content).toBe('<think>\nWeighing it.\n</think>\n\nDecided.');
    await h.send(alice.token, { message: 'go on', conversation_id: conversationId }).all();
    const [req] = h.fake.requestsFor('go on');
    expect(req.body.messages?.[2]).toEqual({ role: 'assistant', content: 'Decided.' });
  });

  it('stops within a second and keeps the partial answer as stopped', async () => {
    h.fake.on('long story', { tokens: words(200), tokenDelayMs: 30 });
    const conn = h.send(alice.token, { message: 'long story' });
    await conn.until((e) => e.filter((x) => x.data.type === 'token').length >= 3);
    const id = conn.events[0].data.message_id as string;
    const began = Date.now();
    const res = await h.t.http().post(`/api/v1/chat/streams/${id}/stop`).set('Authorization', `Bearer ${alice.token}`).expect(200);
    expect(Date.now() - began).toBeLessThan(1000);
    expect(res.body).toEqual({ message_id: id, status: 'stopped' });
    const events = await conn.all();
    expect(events.at(-1)!.data).toMatchObject({ type: 'done', status: 'stopped', message_id: id, finish_reason: 'stop_requested' });
    const row = await h.message(id);
    expect(row.status).toBe('stopped');
    expect(row.content).toBe(tokensOf(events));
    expect(row.content.length).toBeGreaterThan(0);
    expect(row.content.length).toBeLessThan(words(200).join('').length);
  });

  it('stops the answer of a conversation being deleted before deleting it', async () => {
    h.fake.on('delete me mid-answer', { tokens: words(200), tokenDelayMs: 30 });
    const conn = h.send(alice.token, { message: 'delete me mid-answer' });
    await conn.until((e) => e.filter((x) => x.data.type === 'token').length >= 3);
    const { conversation_id: conversationId, message_id: id } = conn.events[0].data as { conversation_id: string; message_id: string };
    const began = Date.now();
    await h.t.http().delete(`/api/v1/conversations/${conversationId}`).set('Authorization', `Bearer ${alice.token}`).expect(204);
    expect(Date.now() - began).toBeLessThan(2000);
    const events = await conn.all();
    expect(events.at(-1)!.data).toMatchObject({ type: 'done', status: 'stopped', message_id: id });
    expect(h.t.app.get(GenerationService).isRunning(id)).toBe(false);
    await h.t.http().get(`/api/v1/conversations/${conversationId}`).set('Authorization', `Bearer ${alice.token}`).expect(404);
    // The answer's events kept for replay went with it, not at the end of their retention.
    expect(h.t.app.get(GenerationRegistry).follow(id, -1)).toBeUndefined();
  });

  it('forgets the replay copy of a finished answer when its conversation is deleted; other conversations keep theirs', async () => {
    h.fake.on('kept for replay', { tokens: ['Replay ', 'me'] });
    const kept = await h.send(alice.token, { message: 'kept for replay' }).all();
    h.fake.on('erased with its chat', { tokens: ['Secret ', 'words'] });
    const gone = await h.send(alice.token, { message: 'erased with its chat' }).all();
    const registry = h.t.app.get(GenerationRegistry);
    const goneId = gone[0].data.message_id as string;
    expect(registry.follow(goneId, -1)).toBeDefined();
    await h.t.http().delete(`/api/v1/conversations/${gone[0].data.conversation_id as string}`).set('Authorization', `Bearer ${alice.token}`).expect(204);
    expect(registry.follow(goneId, -1)).toBeUndefined();
    expect(registry.follow(kept[0].data.message_id as string, -1)).toBeDefined();
  });

  it('keeps generating when the client disconnects: the row ends complete with the whole text', async () => {
    const tokens = words(30, 'd');
    h.fake.on('disconnect me', { tokens, tokenDelayMs: 10 });
    const conn = h.send(alice.token, { message: 'disconnect me' });
    await conn.until((e) => e.some((x) => x.data.type === 'token'));
    const id = conn.events[0].data.message_id as string;
    conn.destroy();
    const row = await h.waitForRow(id, (m) => m.status !== 'streaming');
    expect(row).toMatchObject({ status: 'complete', content: tokens.join('') });
  });

  it('resumes with Last-Event-ID: the events after it, exactly once, then live', async () => {
    const tokens = words(40, 'r');
    h.fake.on('resume me', { tokens, tokenDelayMs: 15 });
    const a = h.send(alice.token, { message: 'resume me' });
    await a.until((e) => e.length >= 4);
    a.destroy();
    const seen = a.events.slice(0, 4);
    const id = seen[0].data.message_id as string;
    const b = h.get(alice.token, `/api/v1/chat/streams/${id}`, { 'last-event-id': String(seen.at(-1)!.id) });
    const rest = await b.all();
    expect(b.status).toBe(200);
    expect(rest[0].id).toBe(4);
    const all = [...seen, ...rest];
    expect(all.map((e) => e.id)).toEqual(all.map((_, i) => i));
    expect(tokensOf(all)).toBe(tokens.join(''));
    expect(all.at(-1)!.data).toMatchObject({ type: 'done', status: 'complete' });
  });

  it('lets a second client attach to a live generation, and replays a finished one and closes', async () => {
    const tokens = words(15, 's');
    h.fake.on('two listeners', { tokens, tokenDelayMs: 10 });
    const a = h.send(alice.token, { message: 'two listeners' });
    await a.until((e) => e.length >= 2);
    const id = a.events[0].data.message_id as string;
    const b = h.get(alice.token, `/api/v1/chat/streams/${id}`);
    const [ea, eb] = await Promise.all([a.all(), b.all()]);
    expect(eb).toEqual(ea);
    const resumed = h.get(alice.token, `/api/v1/chat/streams/${id}`);
    const again = await resumed.all();
    expect(again).toEqual(ea);
    // Never kept in a cache (the browser's disk cache held a resumed answer read to its end).
    expect(resumed.headers['cache-control']).toBe('no-store');
    // A Last-Event-ID that no event of the stream could have had is refused, not read as "from the start".
    for (const bad of ['abc', '3,4', '0x3', '1.5', '-1', '00000000000000001', '9007199254740992']) {
      const res = h.get(alice.token, `/api/v1/chat/streams/${id}`, { 'last-event-id': bad });
      await res.all();
      expect(res.status, bad).toBe(400);
      expect(res.json).toMatchObject({ error: { code: 'VALIDATION_ERROR', details: { fields: [{ field: 'Last-Event-ID' }] } } });
    }
    // Past the end: nothing after it.
    expect(await h.get(alice.token, `/api/v1/chat/streams/${id}`, { 'last-event-id': '99999999999' }).all()).toEqual([]);
  });

  it('rebuilds the events of a finished message from its row when nothing is live', async () => {
    const conversations = h.t.app.get(ConversationsService);
    const conv = await conversations.create(alice.id, 'stored');
    const [user, reply] = await conversations.appendTurn(conv.id, [
      { role: 'user', content: 'old question', status: 'complete' },
      { role: 'assistant', content: 'stored answer', status: 'complete', modelName: 'old-model' },
    ]);
    await conversations.updateMessage(reply.id, { finishReason: 'stop', promptTokens: 7, completionTokens: 2 });
    const events = await h.get(alice.token, `/api/v1/chat/streams/${reply.id}`).all();
    expect(events.map((e) => e.data)).toEqual([
      { type: 'start', conversation_id: conv.id, user_message_id: user.id, message_id: reply.id, provider: 'openai', model: 'old-model', finished: false },
      { type: 'token', token: 'stored answer', finished: false, timestamp: expect.any(String) },
      { type: 'done', finished: true, message_id: reply.id, status: 'complete', finish_reason: 'stop', usage: { prompt_tokens: 7, completion_tokens: 2, total_tokens: 9 } },
    ]);
    // Resuming after an id of the live stream, long gone: the whole answer again, marked as such
    // (continuing "after" an id of another numbering would skip text or send nothing at all).
    for (const lastEventId of ['1', '57']) {
      const resumed = await h.get(alice.token, `/api/v1/chat/streams/${reply.id}`, { 'last-event-id': lastEventId }).all();
      expect(resumed.map((e) => e.id)).toEqual([0, 1, 2]);
      expect(resumed.map((e) => e.data)).toEqual([{ ...events[0].data, from_start: true }, events[1].data, events[2].data]);
    }
    // An answer that was told its question's files did not all fit says so again, rebuilt from its row; a failed one
    // refused by the model, why.
    await conversations.updateMessage(reply.id, { contextNotice: JSON.stringify({ omitted_files: ['big.pdf'] }) });
    const [start] = await h.get(alice.token, `/api/v1/chat/streams/${reply.id}`).all();
    expect(start.data).toEqual({ ...events[0].data, context: { omitted_files: ['big.pdf'] } });
    await conversations.updateMessage(reply.id, { status: 'failed', errorCode: 'OPENAI_ERROR', finishReason: 'context_length_exceeded', content: '' });
    const failed = await h.get(alice.token, `/api/v1/chat/streams/${reply.id}`).all();
    expect(failed.at(-1)?.data).toEqual({
      type: 'error', finished: true, message_id: reply.id, status: 'failed', code: 'OPENAI_ERROR', finish_reason: 'context_length_exceeded',
      error: 'This is more than the model can read at once. Send a shorter message or smaller files; in a long conversation, starting a new one also helps.',
    });
  });

  it('answers 409 GENERATION_IN_PROGRESS to a second send (and a regenerate) while one streams', async () => {
    h.fake.on('busy one', { tokens: words(50, 'b'), tokenDelayMs: 10 });
    const a = h.send(alice.token, { message: 'busy one' });
    await a.until((e) => e.length >= 2);
    const conversationId = a.events[0].data.conversation_id as string;
    const second = await h.t.http().post('/api/v1/chat').set('Authorization', `Bearer ${alice.token}`)
      .send({ message: 'me too', conversation_id: conversationId }).expect(409);
    expect(second.body.error.code).toBe('GENERATION_IN_PROGRESS');
    // Which reply is running, so the client can follow it (GET /api/v1/chat/streams/{message_id}).
    expect(second.body.error.details).toEqual({ message_id: a.events[0].data.message_id });
    expect(second.headers['content-type']).toMatch(/application\/json/);
    const regen = await h.t.http().post('/api/v1/chat/regenerate').set('Authorization', `Bearer ${alice.token}`)
      .send({ conversation_id: conversationId }).expect(409);
    expect(regen.body.error.code).toBe('GENERATION_IN_PROGRESS');
    expect(regen.body.error.details).toEqual({ message_id: a.events[0].data.message_id });
    await a.all();
    // Once it has ended, the conversation takes the next message.
    const next = await h.send(alice.token, { message: 'now me', conversation_id: conversationId }).all();
    expect(next.at(-1)!.data).toMatchObject({ type: 'done', status: 'complete' });
  });

  it('returns the same message ids for a retried send with the same Idempotency-Key', async () => {
    h.fake.on('idempotent hello', { tokens: ['once'] });
    const first = await h.send(alice.token, { message: 'idempotent hello' }, { 'idempotency-key': 'key-123' }).all();
    expect(tokensOf(first)).toBe('once');
    const retry = await h.send(alice.token, { message: 'idempotent hello' }, { 'idempotency-key': 'key-123' }).all();
    expect(retry[0].data).toEqual(first[0].data);
    expect(tokensOf(retry)).toBe('once');
    expect(h.fake.requestsFor('idempotent hello')).toHaveLength(1);
    const detail = await h.t.http().get(`/api/v1/conversations/${first[0].data.conversation_id as string}`)
      .set('Authorization', `Bearer ${alice.token}`).expect(200);
    expect(detail.body.messages).toHaveLength(2);
    // The same retry naming its conversation is the same request; the key reused for another message is a conflict.
    const named = await h.send(alice.token, { message: 'idempotent hello', conversation_id: first[0].data.conversation_id }, { 'idempotency-key': 'key-123' }).all();
    expect(named[0].data).toEqual(first[0].data);
    const reused = await h.t.http().post('/api/v1/chat').set('Authorization', `Bearer ${alice.token}`).set('Idempotency-Key', 'key-123')
      .send({ message: 'something else' }).expect(409);
    expect(reused.body.error).toMatchObject({ code: 'CONFLICT', message: expect.stringMatching(/Idempotency-Key/) });
    expect(h.fake.requestsFor('idempotent hello')).toHaveLength(1);
    // A follow-up's key retried without its conversation asks for a new conversation: another request, 409.
    h.fake.on('idempotent follow-up', { tokens: ['again'] });
    const conversationId = first[0].data.conversation_id as string;
    const followUp = await h.send(alice.token, { message: 'idempotent follow-up', conversation_id: conversationId }, { 'idempotency-key': 'key-456' }).all();
    expect(tokensOf(followUp)).toBe('again');
    const unnamed = await h.t.http().post('/api/v1/chat').set('Authorization', `Bearer ${alice.token}`).set('Idempotency-Key', 'key-456')
      .send({ message: 'idempotent follow-up' }).expect(409);
    expect(unnamed.body.error).toMatchObject({ code: 'CONFLICT', message: expect.stringMatching(/Idempotency-Key/) });
    const sameFollowUp = await h.send(alice.token, { message: 'idempotent follow-up', conversation_id: conversationId }, { 'idempotency-key': 'key-456' }).all();
    expect(sameFollowUp[0].data).toEqual(followUp[0].data);
    expect(h.fake.requestsFor('idempotent follow-up')).toHaveLength(1);
    const followed = await h.t.http().get(`/api/v1/conversations/${conversationId}`).set('Authorization', `Bearer ${alice.token}`).expect(200);
    expect(followed.body.messages).toHaveLength(4);
    expect(h.fake.requestsFor('idempotent hello')).toHaveLength(1);
    // The same text with other files is another request (the files were dropped without a word).
    const upload = async (content: string, name: string): Promise<string> => (await h.t.http().post('/api/v1/files/upload')
      .set('Authorization', `Bearer ${alice.token}`).attach('file', Buffer.from(content), name).expect(201)).body.file_id as string;
    const [notes, more] = [await upload('first notes', 'a.txt'), await upload('second notes', 'b.txt')];
    h.fake.on('idempotent with files', { tokens: ['filed'] });
    const withFiles = await h.send(alice.token, { message: 'idempotent with files', file_ids: [notes, more] }, { 'idempotency-key': 'key-789' }).all();
    for (const files of [[], [notes], [more, notes]]) {
      const changed = await h.t.http().post('/api/v1/chat').set('Authorization', `Bearer ${alice.token}`).set('Idempotency-Key', 'key-789')
        .send({ message: 'idempotent with files', file_ids: files }).expect(409);
      expect(changed.body.error).toMatchObject({ code: 'CONFLICT', message: expect.stringMatching(/Idempotency-Key/) });
    }
    const sameFiles = await h.send(alice.token, { message: 'idempotent with files', file_ids: [notes, more] }, { 'idempotency-key': 'key-789' }).all();
    expect(sameFiles[0].data).toEqual(withFiles[0].data);
    expect(h.fake.requestsFor('idempotent with files')).toHaveLength(1);
    const noFiles = await h.t.http().post('/api/v1/chat').set('Authorization', `Bearer ${alice.token}`).set('Idempotency-Key', 'key-123')
      .send({ message: 'idempotent hello', file_ids: [notes] }).expect(409);
    expect(noFiles.body.error.code).toBe('CONFLICT');
    // Another session's key is its own.
    const bob = await h.t.newSession();
    const other = await h.send(bob.token, { message: 'idempotent hello' }, { 'idempotency-key': 'key-123' }).all();
    expect(other[0].data.message_id).not.toBe(first[0].data.message_id);
    await h.t.http().post('/api/v1/chat').set('Authorization', `Bearer ${alice.token}`).set('Idempotency-Key', 'bad key!')
      .send({ message: 'x' }).expect(400);
  });

  it('a retry under its Idempotency-Key: a blank question beside files is the same request, an edited one\'s key is 409 whatever its text', async () => {
    const post = (body: Record<string, unknown>, key?: string) => {
      const req = h.t.http().post('/api/v1/chat').set('Authorization', `Bearer ${alice.token}`);
      return (key ? req.set('Idempotency-Key', key) : req).send(body);
    };
    // Files only, the message blank: stored empty, and the same body again follows the same answer (it was 409: " " ≠ "").
    const fileId = (await h.t.http().post('/api/v1/files/upload').set('Authorization', `Bearer ${alice.token}`)
      .attach('file', Buffer.from('idempotent blank beside a file'), 'blank.txt').expect(201)).body.file_id as string;
    h.fake.on('idempotent blank beside a file', { tokens: ['filed'] });
    const first = await h.send(alice.token, { message: ' ', file_ids: [fileId] }, { 'idempotency-key': 'key-blank' }).all();
    const retry = await h.send(alice.token, { message: ' ', file_ids: [fileId] }, { 'idempotency-key': 'key-blank' }).all();
    expect(retry[0].data).toEqual(first[0].data);
    expect(h.fake.requestsFor('idempotent blank beside a file')).toHaveLength(1);
    // Edited since: its new text under the first send's key is not the request the key was used for (it replayed).
    h.fake.on('idempotent to be edited', { tokens: ['v1'] });
    h.fake.on('idempotent edited text', { tokens: ['v2'] });
    const asked = await h.send(alice.token, { message: 'idempotent to be edited' }, { 'idempotency-key': 'key-edited' }).all();
    const conversationId = asked[0].data.conversation_id as string;
    await SseConnection.open(`${h.url}/api/v1/chat/regenerate`, {
      method: 'POST', headers: { authorization: `Bearer ${alice.token}` },
      body: { conversation_id: conversationId, message: 'idempotent edited text', message_id: asked[0].data.user_message_id },
    }).all();
    for (const message of ['idempotent edited text', 'idempotent to be edited']) {
      const refused = await post({ message, conversation_id: conversationId }, 'key-edited').expect(409);
      expect(refused.body.error).toMatchObject({ code: 'CONFLICT', message: expect.stringMatching(/edited/) });
    }
    // null is not "absent": 400 naming the field, nothing stored (a retry of the same body was 409, session_id null 404).
    const before = (await h.t.http().get('/api/v1/conversations').set('Authorization', `Bearer ${alice.token}`).expect(200)).body.total as number;
    for (const field of ['conversation_id', 'file_ids', 'session_id']) {
      const refused = await post({ message: 'idempotent null field', [field]: null }, `key-null-${field}`).expect(400);
      expect(refused.body.error).toMatchObject({ code: 'VALIDATION_ERROR', details: { fields: [expect.objectContaining({ field })] } });
    }
    // Nothing but invisible characters is blank, as a title of them is: 400, nothing stored.
    for (const message of ['\u200b\u2060', '\u200b', '\u00ad\ufeff \u200d', '\u{E0041}\u{E0042}', '\u{1BCA0}\u{1BCA1}', '\ufff9']) {
      const blank = await post({ message }).expect(400);
      expect(blank.body.error).toMatchObject({ code: 'VALIDATION_ERROR', message: expect.stringMatching(/blank/) });
    }
    const after = (await h.t.http().get('/api/v1/conversations').set('Authorization', `Bearer ${alice.token}`).expect(200)).body.total as number;
    expect(after).toBe(before);
    expect(h.fake.requestsFor('idempotent null field')).toHaveLength(0);
  });

  it('names the reply to follow in every 409 of ten sends at once, also those refused while it was still starting', async () => {
    // Refused while the winner's turn was being stored (its reply not running yet), a 409 had no
    // message_id: on PostgreSQL 8 of 9 (the client could not follow the answer).
    h.fake.on('ten together first', { tokens: ['ok'] });
    const first = await h.send(alice.token, { message: 'ten together first' }).all();
    const conversationId = first[0].data.conversation_id as string;
    h.fake.on('ten together', { tokens: words(20, 't'), tokenDelayMs: 10 });
    const sends = Array.from({ length: 10 }, () => h.send(alice.token, { message: 'ten together', conversation_id: conversationId }));
    await Promise.all(sends.map((c) => c.ended));
    const won = sends.filter((c) => c.status === 200);
    expect(won).toHaveLength(1);
    const replyId = won[0].events[0].data.message_id;
    const refused = sends.filter((c) => c.status === 409).map((c) => c.json as { error: { code: string; details?: unknown } });
    expect(refused).toHaveLength(9);
    for (const body of refused) expect(body.error).toMatchObject({ code: 'GENERATION_IN_PROGRESS', details: { message_id: replyId } });
  });

  it('two sends at once with one Idempotency-Key share one answer: one conversation, one upstream call, no 409', async () => {
    h.fake.on('at once', { tokens: ['only', ' once'], tokenDelayMs: 20 });
    const twice = (body: Record<string, unknown>, key: string) => Promise.all([0, 1].map(() => h.send(alice.token, body, { 'idempotency-key': key }).all()));
    const [a, b] = await twice({ message: 'at once' }, 'key-at-once');
    expect(b[0].data).toEqual(a[0].data);
    expect([tokensOf(a), tokensOf(b)]).toEqual(['only once', 'only once']);
    expect(h.fake.requestsFor('at once')).toHaveLength(1);
    // In an existing conversation: the second follows the first instead of a 409 GENERATION_IN_PROGRESS.
    const conversationId = a[0].data.conversation_id as string;
    h.fake.on('again at once', { tokens: ['still', ' once'], tokenDelayMs: 20 });
    const [c, d] = await twice({ message: 'again at once', conversation_id: conversationId }, 'key-again');
    expect(d[0].data).toEqual(c[0].data);
    expect(d.at(-1)!.data).toMatchObject({ type: 'done', status: 'complete' });
    expect(h.fake.requestsFor('again at once')).toHaveLength(1);
    const detail = await h.t.http().get(`/api/v1/conversations/${conversationId}`).set('Authorization', `Bearer ${alice.token}`).expect(200);
    expect(detail.body.messages).toHaveLength(4);
  });

  it('answers another session\'s streams, stop, feedback, regenerate and conversation with 404', async () => {
    h.fake.on('private', { tokens: ['mine'] });
    const events = await h.send(alice.token, { message: 'private' }).all();
    const { message_id: id, conversation_id: conv } = events[0].data as { message_id: string; conversation_id: string };
    const bob = await h.t.newSession();
    const auth = `Bearer ${bob.token}`;
    const stream = h.get(bob.token, `/api/v1/chat/streams/${id}`);
    await stream.all();
    expect(stream.status).toBe(404);
    expect(stream.json).toMatchObject({ error: { code: 'MESSAGE_NOT_FOUND' } });
    expect((await h.t.http().post(`/api/v1/chat/streams/${id}/stop`).set('Authorization', auth).expect(404)).body.error.code).toBe('MESSAGE_NOT_FOUND');
    expect((await h.t.http().post('/api/v1/chat/feedback').set('Authorization', auth).send({ message_id: id, feedback: 'negative' }).expect(404)).body.error.code).toBe('MESSAGE_NOT_FOUND');
    expect((await h.t.http().post('/api/v1/chat/regenerate').set('Authorization', auth).send({ conversation_id: conv }).expect(404)).body.error.code).toBe('CONVERSATION_NOT_FOUND');
    expect((await h.t.http().post('/api/v1/chat').set('Authorization', auth).send({ message: 'hi', conversation_id: conv }).expect(404)).body.error.code).toBe('CONVERSATION_NOT_FOUND');
    expect((await h.t.http().post('/api/v1/chat').set('Authorization', auth).send({ message: 'hi', session_id: alice.id }).expect(404)).body.error.code).toBe('SESSION_NOT_FOUND');
    expect((await h.message(id)).feedback).toBeNull();
  });

  it('upserts feedback on one\'s own assistant message only', async () => {
    h.fake.on('rate me', { tokens: ['good'] });
    const events = await h.send(alice.token, { message: 'rate me' }).all();
    const id = events[0].data.message_id as string;
    const auth = `Bearer ${alice.token}`;
    await h.t.http().post('/api/v1/chat/feedback').set('Authorization', auth).send({ message_id: id, feedback: 'positive' }).expect(200);
    const res = await h.t.http().post('/api/v1/chat/feedback').set('Authorization', auth)
      .send({ message_id: id, feedback: 'negative', comment: 'too short' }).expect(200);
    expect(res.body).toEqual({ message_id: id, feedback: 'negative', comment: 'too short' });
    expect(await h.message(id)).toMatchObject({ feedback: 'negative', feedbackComment: 'too short', feedbackAt: expect.any(Date) });
    await h.t.http().post('/api/v1/chat/feedback').set('Authorization', auth)
      .send({ message_id: events[0].data.user_message_id, feedback: 'positive' }).expect(400);
    await h.t.http().post('/api/v1/chat/feedback').set('Authorization', auth).send({ message_id: id, feedback: 'meh' }).expect(400);
  });

  it('regenerates the last answer, keeping the old one until the new one completes', async () => {
    h.fake.on('regen please', { tokens: ['old answer'] }, { tokens: words(10, 'n'), tokenDelayMs: 15 });
    const first = await h.send(alice.token, { message: 'regen please' }).all();
    const { message_id: oldId, conversation_id: conv } = first[0].data as { message_id: string; conversation_id: string };
    const conn = SseConnection.open(`${h.url}/api/v1/chat/regenerate`, {
      method: 'POST', body: { conversation_id: conv }, headers: { authorization: `Bearer ${alice.token}` },
    });
    await conn.until((e) => e.length >= 2);
    expect(conn.events[0].data).toMatchObject({ type: 'start', replaces_message_id: oldId, user_message_id: first[0].data.user_message_id });
    expect((await h.message(oldId)).content).toBe('old answer');
    const events = await conn.all();
    expect(events.at(-1)!.data).toMatchObject({ type: 'done', status: 'complete' });
    const detail = await h.t.http().get(`/api/v1/conversations/${conv}`).set('Authorization', `Bearer ${alice.token}`).expect(200);
    expect(detail.body.messages.map((m: { role: string; content: string }) => [m.role, m.content]))
      .toEqual([['user', 'regen please'], ['assistant', words(10, 'n').join('')]]);
    // The old answer was not in the regenerated prompt.
    const [, second] = h.fake.requestsFor('regen please');
    expect(JSON.stringify(second.body.messages)).not.toContain('old answer');
  });

  it('a regeneration stopped midway keeps both answers, and the next prompt carries only the last (the one shown)', async () => {
    h.fake.on('regen then stop', { tokens: ['first full answer'] }, { tokens: words(200, 'r'), tokenDelayMs: 30 });
    h.fake.on('after the stop', { tokens: ['ok'] });
    const first = await h.send(alice.token, { message: 'regen then stop' }).all();
    const { message_id: oldId, conversation_id: conv } = first[0].data as { message_id: string; conversation_id: string };
    const auth = `Bearer ${alice.token}`;
    const conn = SseConnection.open(`${h.url}/api/v1/chat/regenerate`, { method: 'POST', body: { conversation_id: conv }, headers: { authorization: auth } });
    await conn.until((e) => e.filter((x) => x.data.type === 'token').length >= 2);
    const newId = conn.events[0].data.message_id as string;
    await h.t.http().post(`/api/v1/chat/streams/${newId}/stop`).set('Authorization', auth).expect(200);
    await conn.all();
    expect((await h.message(oldId)).content).toBe('first full answer');
    const partial = (await h.message(newId)).content;
    await h.send(alice.token, { message: 'after the stop', conversation_id: conv }).all();
    const [next] = h.fake.requestsFor('after the stop');
    const turns = (next.body.messages as { role: string; content: string }[]).filter((m) => m.role !== 'system');
    expect(turns.map((m) => m.role)).toEqual(['user', 'assistant', 'user']);
    expect(turns[1].content).toBe(partial);
  });

  it('a completed regeneration replaces every earlier answer to the question, those of stopped regenerations too', async () => {
    h.fake.on('regen stop regen', { tokens: ['A1'] }, { tokens: words(200, 's'), tokenDelayMs: 30 }, { tokens: ['R2'] });
    const first = await h.send(alice.token, { message: 'regen stop regen' }).all();
    const conv = first[0].data.conversation_id as string;
    const auth = `Bearer ${alice.token}`;
    const stopped = SseConnection.open(`${h.url}/api/v1/chat/regenerate`, { method: 'POST', body: { conversation_id: conv }, headers: { authorization: auth } });
    await stopped.until((e) => e.some((x) => x.data.type === 'token'));
    await h.t.http().post(`/api/v1/chat/streams/${stopped.events[0].data.message_id as string}/stop`).set('Authorization', auth).expect(200);
    await stopped.all();
    const again = await SseConnection.open(`${h.url}/api/v1/chat/regenerate`, { method: 'POST', body: { conversation_id: conv }, headers: { authorization: auth } }).all();
    expect(again.at(-1)!.data).toMatchObject({ type: 'done', status: 'complete' });
    const detail = await h.t.http().get(`/api/v1/conversations/${conv}`).set('Authorization', auth).expect(200);
    expect(detail.body.messages.map((m: { role: string; content: string }) => [m.role, m.content])).toEqual([['user', 'regen stop regen'], ['assistant', 'R2']]);
    expect(detail.body.conversation.message_count).toBe(2);
  });

  it('edits the last question on regenerate: the model answers the new text, the old answer goes once the new one completes', async () => {
    h.fake.on('edit me', { tokens: ['answer to the first text'] });
    h.fake.on('edited question', { tokens: ['answer to the edit'] });
    const first = await h.send(alice.token, { message: 'edit me' }).all();
    const { conversation_id: conv, user_message_id: userId } = first[0].data as { conversation_id: string; user_message_id: string };
    const auth = `Bearer ${alice.token}`;
    const events = await SseConnection.open(`${h.url}/api/v1/chat/regenerate`, {
      method: 'POST', body: { conversation_id: conv, message: 'edited question', message_id: userId }, headers: { authorization: auth },
    }).all();
    expect(events[0].data).toMatchObject({ type: 'start', user_message_id: userId, replaces_message_id: first[0].data.message_id });
    expect(tokensOf(events)).toBe('answer to the edit');
    const [request] = h.fake.requestsFor('edited question');
    const sent = (request.body.messages as { role: string; content: string }[]).filter((m) => m.role !== 'system');
    expect(sent).toEqual([{ role: 'user', content: 'edited question' }]);
    const detail = await h.t.http().get(`/api/v1/conversations/${conv}`).set('Authorization', auth).expect(200);
    expect(detail.body.messages.map((m: { id: string; role: string; content: string }) => [m.id === userId, m.role, m.content]))
      .toEqual([[true, 'user', 'edited question'], [false, 'assistant', 'answer to the edit']]);
    expect(await h.message(userId)).toMatchObject({ tokenCount: 2 });
    // The conversation was named after its first question: the automatic title follows the edit.
    expect(detail.body.conversation.title).toBe('edited question');
  });

  it('an edit names its question: one from a view that missed a later question is 409 and changes nothing', async () => {
    h.fake.on('stale one', { tokens: ['a1'] });
    h.fake.on('asked since', { tokens: ['a2'] });
    const first = await h.send(alice.token, { message: 'stale one' }).all();
    const { conversation_id: conv, user_message_id: staleId } = first[0].data as { conversation_id: string; user_message_id: string };
    await h.send(alice.token, { message: 'asked since', conversation_id: conv }).all();
    const auth = `Bearer ${alice.token}`;
    const res = await h.t.http().post('/api/v1/chat/regenerate').set('Authorization', auth)
      .send({ conversation_id: conv, message: 'fixed stale one', message_id: staleId });
    expect([res.status, res.body.error.code]).toEqual([409, 'CONFLICT']);
    // An id that names no question of this conversation is 404, like any message that is not one's own:
    // missing, an answer, or a question of another conversation (here Bob's).
    const bob = await h.t.newSession();
    const bobs = await h.send(bob.token, { message: 'stale one' }).all();
    for (const other of ['00000000-0000-4000-8000-000000000000', first[0].data.message_id as string, bobs[0].data.user_message_id as string]) {
      const notFound = await h.t.http().post('/api/v1/chat/regenerate').set('Authorization', auth)
        .send({ conversation_id: conv, message: 'fixed stale one', message_id: other });
      expect([notFound.status, notFound.body.error.code]).toEqual([404, 'MESSAGE_NOT_FOUND']);
    }
    // An edit without the id of its question is refused as invalid.
    expect((await h.t.http().post('/api/v1/chat/regenerate').set('Authorization', auth).send({ conversation_id: conv, message: 'x' })).status).toBe(400);
    const detail = await h.t.http().get(`/api/v1/conversations/${conv}`).set('Authorization', auth).expect(200);
    expect(detail.body.messages.map((m: { content: string }) => m.content)).toEqual(['stale one', 'a1', 'asked since', 'a2']);
    expect(detail.body.conversation.title).toBe('stale one');
  });

  it('a send retried with its Idempotency-Key after a regeneration replaced its answer follows the new answer (it made a second conversation)', async () => {
    h.fake.on('keyed then regenerated', { tokens: ['first'] }, { tokens: ['second'] });
    const auth = `Bearer ${alice.token}`;
    const before = (await h.t.http().get('/api/v1/conversations').set('Authorization', auth).expect(200)).body.total as number;
    const first = await h.send(alice.token, { message: 'keyed then regenerated' }, { 'idempotency-key': 'key-regen-1' }).all();
    const conv = first[0].data.conversation_id as string;
    const regen = await SseConnection.open(`${h.url}/api/v1/chat/regenerate`, { method: 'POST', body: { conversation_id: conv }, headers: { authorization: auth } }).all();
    const retry = await h.send(alice.token, { message: 'keyed then regenerated' }, { 'idempotency-key': 'key-regen-1' }).all();
    expect(retry[0].data).toMatchObject({ conversation_id: conv, message_id: regen[0].data.message_id });
    expect(tokensOf(retry)).toBe('second');
    expect((await h.t.http().get('/api/v1/conversations').set('Authorization', auth).expect(200)).body.total).toBe(before + 1);
    expect(h.fake.requestsFor('keyed then regenerated')).toHaveLength(2);
  });

  it('an edit refused (blank, too long, another session\'s conversation, a reply running) changes nothing', async () => {
    h.fake.on('keep my text', { tokens: ['kept'] }, { tokens: words(100, 'k'), tokenDelayMs: 20 });
    const first = await h.send(alice.token, { message: 'keep my text' }).all();
    const { conversation_id: conv, user_message_id: userId } = first[0].data as { conversation_id: string; user_message_id: string };
    const auth = `Bearer ${alice.token}`;
    const regenerate = (body: object, token = alice.token): Promise<{ status: number; body: { error: { code: string } } }> =>
      h.t.http().post('/api/v1/chat/regenerate').set('Authorization', `Bearer ${token}`).send(body);
    expect((await regenerate({ conversation_id: conv, message: '  \n ', message_id: userId })).body.error.code).toBe('VALIDATION_ERROR');
    expect((await regenerate({ conversation_id: conv, message: 'x'.repeat(h.t.config.limits.maxMessageChars + 1), message_id: userId })).status).toBe(400);
    expect((await regenerate({ conversation_id: conv, message: 42, message_id: userId })).status).toBe(400);
    // null is not "no edit": 400, not a 500 from reading it as text.
    const nulled = await regenerate({ conversation_id: conv, message: null, message_id: userId });
    expect([nulled.status, nulled.body.error.code]).toEqual([400, 'VALIDATION_ERROR']);
    const bob = await h.t.newSession();
    const foreign = await regenerate({ conversation_id: conv, message: 'hijacked', message_id: userId }, bob.token);
    expect([foreign.status, foreign.body.error.code]).toEqual([404, 'CONVERSATION_NOT_FOUND']);
    // While a reply streams, an edit is 409 and leaves the question as it is.
    const running = SseConnection.open(`${h.url}/api/v1/chat/regenerate`, { method: 'POST', body: { conversation_id: conv }, headers: { authorization: auth } });
    await running.until((e) => e.some((x) => x.data.type === 'token'));
    const busy = await regenerate({ conversation_id: conv, message: 'too late', message_id: userId });
    expect([busy.status, busy.body.error.code]).toEqual([409, 'GENERATION_IN_PROGRESS']);
    await h.t.http().post(`/api/v1/chat/streams/${running.events[0].data.message_id as string}/stop`).set('Authorization', auth).expect(200);
    await running.all();
    expect((await h.message(userId)).content).toBe('keep my text');
    expect(h.fake.requestsFor('keep my text')).toHaveLength(2);
    expect(h.fake.requestsFor('hijacked')).toHaveLength(0);
  });

  it('a rebuilt stream names its question however many answers follow it', async () => {
    const conversations = h.t.app.get(ConversationsService);
    const conv = await conversations.create(alice.id, 'many answers');
    const stacked = Array.from({ length: 12 }, (_, i) => ({ role: 'assistant' as const, content: `answer ${i}`, status: 'stopped' as const }));
    const [user, ...answers] = await conversations.appendTurn(conv.id, [{ role: 'user', content: 'the question', status: 'complete' }, ...stacked]);
    const events = await h.get(alice.token, `/api/v1/chat/streams/${answers.at(-1)!.id}`).all();
    expect(events[0].data).toMatchObject({ type: 'start', user_message_id: user.id });
  });

  it('validates before streaming: blank or too long message, unknown files, unknown fields', async () => {
    const auth = `Bearer ${alice.token}`;
    expect((await h.t.http().post('/api/v1/chat').set('Authorization', auth).send({ message: '   ' }).expect(400)).body.error.code).toBe('VALIDATION_ERROR');
    // A missing message says so, and names no limit but the real one.
    const missing = await h.t.http().post('/api/v1/chat').set('Authorization', auth).send({}).expect(400);
    expect(missing.body.error.message).toBe('message must be a string');
    expect(JSON.stringify(missing.body)).not.toMatch(/1000000/);
    const long = 'x'.repeat(h.t.config.limits.maxMessageChars + 1);
    expect((await h.t.http().post('/api/v1/chat').set('Authorization', auth).send({ message: long }).expect(400)).body.error.code).toBe('VALIDATION_ERROR');
    const files = await h.t.http().post('/api/v1/chat').set('Authorization', auth)
      .send({ message: 'with a file', file_ids: ['00000000-0000-4000-8000-000000000000'] }).expect(404);
    expect(files.body.error.code).toBe('FILE_NOT_FOUND');
    await h.t.http().post('/api/v1/chat').set('Authorization', auth).send({ message: 'x', model: 'gpt-4' }).expect(400);
    await h.t.http().post('/api/v1/chat').send({ message: 'x' }).expect(401);
    expect(h.fake.requestsFor('with a file')).toHaveLength(0);
  });

  it('describes the active model at GET /chat/config', async () => {
    const res = await h.t.http().get('/api/v1/chat/config').set('Authorization', `Bearer ${alice.token}`).expect(200);
    expect(res.body).toEqual({
      provider: 'openai', model: 'fake-model', is_demo: false, max_message_chars: 32000,
      max_upload_bytes: expect.any(Number), allowed_extensions: expect.arrayContaining(['.pdf']),
    });
    const health = await h.t.http().get('/api/v1/health').expect(200);
    expect(health.body).toMatchObject({ provider: 'openai', model: 'fake-model' });
  });

  it('at boot ends every reply its previous run left streaming on SQLite (one instance), only expired ones on PostgreSQL', async () => {
    const conversations = h.t.app.get(ConversationsService);
    const conv = await conversations.create(alice.id, 'restart');
    const [left] = await conversations.appendTurn(conv.id, [{
      role: 'assistant', content: 'cut by a restart', status: 'streaming', ownerInstance: 'previous-run', leaseExpiresAt: new Date(Date.now() + LIVE_LEASE_AHEAD_MS),
    }]);
    const before = Date.now();
    await h.t.app.get(GenerationService).sweepAtBoot();
    const swept = await h.message(left.id);
    expect(swept.status).toBe(dialect === 'sqlite' ? 'interrupted' : 'streaming');
    if (dialect === 'sqlite') expect(swept.tokenCount).toBe(4);
    // Stamped with the time it was ended, not the far-future cutoff that ends every lease at boot (it read 5760-09-13).
    if (dialect === 'sqlite') expect(swept.updatedAt.getTime()).toBeGreaterThanOrEqual(before - 1000);
    if (dialect === 'sqlite') expect(swept.updatedAt.getTime()).toBeLessThanOrEqual(Date.now() + 1000);
    if (dialect !== 'sqlite') await conversations.updateMessage(left.id, { status: 'interrupted', leaseExpiresAt: null });
  });

  it('ends rows of a dead instance as interrupted once its lease expired, never another instance\'s live reply', async () => {
    const conversations = h.t.app.get(ConversationsService);
    const conv = await conversations.create(alice.id, 'leases');
    const past = new Date(Date.now() - 60_000);
    const future = new Date(Date.now() + LIVE_LEASE_AHEAD_MS);
    const [dead] = await conversations.appendTurn(conv.id, [{ role: 'assistant', content: 'half', status: 'streaming', ownerInstance: 'dead-1', leaseExpiresAt: past }]);
    const conv2 = await conversations.create(alice.id, 'leases 2');
    const [alive] = await conversations.appendTurn(conv2.id, [{ role: 'assistant', content: 'live', status: 'streaming', ownerInstance: 'other-2', leaseExpiresAt: future }]);
    const sweptBefore = h.t.app.get(ChatMetrics).snapshot().generationsEnded.interrupted;
    await h.t.app.get(GenerationService).sweepExpiredLeases();
    // With its token count: the owner died before writing the end that counts them (it stayed null).
    expect(await h.message(dead.id)).toMatchObject({ status: 'interrupted', content: 'half', leaseExpiresAt: null, tokenCount: 1, completionTokens: 1 });
    // Counted in parley_generations_total{status="interrupted"}, as a reply this instance interrupted is.
    expect(h.t.app.get(ChatMetrics).snapshot().generationsEnded.interrupted).toBe(sweptBefore + 1);
    expect(await h.message(alive.id)).toMatchObject({ status: 'streaming', content: 'live' });
    // The interrupted answer's text is searchable from then on (a streaming one is not yet).
    const found = async (q: string): Promise<string[]> => ((await h.t.http().get(`/api/v1/conversations?q=${q}`)
      .set('Authorization', `Bearer ${alice.token}`).expect(200)).body.conversations as Array<{ id: string }>).map((c) => c.id);
    expect(await found('half')).toEqual([conv.id]);
    expect(await found('live')).toEqual([]);
    // A rebuilt stream of the interrupted row ends with an error event carrying the friendly text.
    const events = await h.get(alice.token, `/api/v1/chat/streams/${dead.id}`).all();
    expect(events.at(-1)!.data).toMatchObject({ type: 'error', status: 'interrupted', error: FALLBACK_TEXTS.interrupted });
  });
});
