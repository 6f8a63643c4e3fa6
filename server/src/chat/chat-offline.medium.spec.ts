import type { Test } from 'supertest';
import { ConversationsService } from '../conversations/conversations.service.js';
import { dialects } from '../testing/dialects.js';
import { createTestApp, type TestApp } from '../testing/test-app.js';
import { FALLBACK_TEXTS } from './fallback-texts.js';
import { GenerationService } from './generation.service.js';
import { OFFLINE_MODEL } from './providers/offline-chat.provider.js';
import { type ChatHarness, createChatHarness } from '../testing/chat-harness.js';
import { SseConnection, tokensOf } from '../testing/sse-client.js';
import { waitFor } from '../testing/wait.js';
import { StreamLimit } from './stream-limit.js';

function urlOf(t: TestApp): string {
  const address = t.app.getHttpServer().address() as { port: number };
  return `http://127.0.0.1:${address.port}`;
}

describe.each(dialects())('offline provider and chat rate limit on %s', (dialect) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(dialect, { LLM_PROVIDER: 'offline', OFFLINE_TOKEN_DELAY_MS: '1', RATE_LIMIT_CHAT_PER_MINUTE: '3' });
  });
  afterAll(async () => { await t.close(); });

  it('streams a labelled, deterministic demo reply that explains the setup and echoes the message', async () => {
    const s = await t.newSession();
    const conn = SseConnection.open(`${urlOf(t)}/api/v1/chat`, { method: 'POST', body: { message: 'Ping from the test' }, headers: { authorization: `Bearer ${s.token}` } });
    const events = await conn.all();
    expect(conn.status).toBe(200);
    expect(events[0].data).toMatchObject({ type: 'start', provider: 'offline', model: OFFLINE_MODEL });
    const text = tokensOf(events);
    expect(text).toContain('Offline demo mode');
    expect(text).toContain('OPENAI_API_KEY');
    expect(text).toContain('OPENAI_BASE_URL');
    expect(text).toContain('> Ping from the test');
    expect(events.filter((e) => e.data.type === 'token').length).toBeGreaterThan(20);
    expect(events.at(-1)!.data).toMatchObject({ type: 'done', status: 'complete', finish_reason: 'stop' });
    const config = await t.http().get('/api/v1/chat/config').set('Authorization', `Bearer ${s.token}`).expect(200);
    expect(config.body).toMatchObject({ provider: 'offline', model: OFFLINE_MODEL, is_demo: true });
    const health = await t.http().get('/api/v1/health').expect(200);
    expect(health.body).toMatchObject({ provider: 'offline', model: OFFLINE_MODEL });
    // The same message gives the same reply.
    const again = await SseConnection.open(`${urlOf(t)}/api/v1/chat`, { method: 'POST', body: { message: 'Ping from the test' }, headers: { authorization: `Bearer ${s.token}` } }).all();
    expect(tokensOf(again)).toBe(text);
  });

  it('says a message of files alone had no question, and names the files', async () => {
    const s = await t.newSession();
    const upload = await t.http().post('/api/v1/files/upload').set('Authorization', `Bearer ${s.token}`)
      .attach('file', Buffer.from('some notes'), 'notes.txt').expect(201);
    const events = await SseConnection.open(`${urlOf(t)}/api/v1/chat`, {
      method: 'POST', body: { message: '', file_ids: [(upload.body as { file_id: string }).file_id] }, headers: { authorization: `Bearer ${s.token}` },
    }).all();
    const text = tokensOf(events);
    expect(text).toContain('Your last message had files but no question.');
    expect(text).toContain('Attached files: `notes.txt`.');
    expect(text).not.toContain('some notes');
  });

  it('limits chat sends per session with 429, RATE_LIMIT_EXCEEDED and a plain Retry-After', async () => {
    const alice = await t.newSession();
    const bob = await t.newSession();
    const send = (token: string): Test => t.http().post('/api/v1/chat').set('Authorization', `Bearer ${token}`).send({ message: 'hi' });
    // Refused requests are not sends: they use none of the budget (they used it all up).
    const auth = `Bearer ${alice.token}`;
    for (let i = 0; i < 3; i++) {
      await t.http().post('/api/v1/chat').set('Authorization', auth).send({ message: '  ' }).expect(400);
      await t.http().post('/api/v1/chat').set('Authorization', auth).send({ message: 'hi', conversation_id: '00000000-0000-4000-8000-000000000000' }).expect(404);
      await t.http().post('/api/v1/chat/regenerate').set('Authorization', auth).send({ conversation_id: '00000000-0000-4000-8000-000000000000' }).expect(404);
    }
    for (let i = 0; i < 3; i++) await send(alice.token).expect(200);
    const limited = await send(alice.token).expect(429);
    expect(limited.body.error.code).toBe('RATE_LIMIT_EXCEEDED');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect(Object.keys(limited.headers).filter((name) => name.startsWith('retry-after-'))).toEqual([]);
    // Keyed per session: another session is not affected, and reading stays allowed.
    await send(bob.token).expect(200);
    await t.http().get('/api/v1/chat/config').set('Authorization', `Bearer ${alice.token}`).expect(200);
  });
});

describe.each(dialects())('shutdown drain on %s', (dialect) => {
  let h: ChatHarness;
  beforeAll(async () => { h = await createChatHarness(dialect); });
  afterAll(async () => { await h.close(); });

  it('lets generations finish within the grace period, then saves the rest as interrupted', async () => {
    const { token } = await h.t.newSession();
    h.fake.on('quick one', { tokens: ['a', 'b'], tokenDelayMs: 20 });
    h.fake.on('endless one', { tokens: Array.from({ length: 500 }, (_, i) => `t${i} `), tokenDelayMs: 20 });
    const quick = h.send(token, { message: 'quick one' });
    const endless = h.send(token, { message: 'endless one' });
    await quick.until((e) => e.length >= 1);
    await endless.until((e) => e.length >= 3);
    await h.t.app.get(GenerationService).drain(300);
    const [q, e] = await Promise.all([quick.all(), endless.all()]);
    expect(q.at(-1)!.data).toMatchObject({ type: 'done', status: 'complete' });
    expect(e.at(-1)!.data).toMatchObject({ type: 'error', status: 'interrupted', code: 'SERVICE_UNAVAILABLE', error: FALLBACK_TEXTS.interrupted });
    const row = await h.message(e[0].data.message_id as string);
    expect(row).toMatchObject({ status: 'interrupted', content: tokensOf(e), leaseExpiresAt: null });
    expect(row.content.length).toBeGreaterThan(0);
  });
});

describe.each(dialects())('open streams per session (STREAM_MAX_PER_SESSION) on %s', (dialect) => {
  let t: TestApp;
  // One token a minute: every answer stays open for the whole test.
  beforeAll(async () => { t = await createTestApp(dialect, { LLM_PROVIDER: 'offline', OFFLINE_TOKEN_DELAY_MS: '60000', SHUTDOWN_GRACE_MS: '0' }); });
  afterAll(async () => { await t.close(); });

  it('holds at most 20 open per session: one more is 429 before anything is stored, other sessions are unaffected, a closed one frees its slot', async () => {
    const alice = await t.newSession();
    const bob = await t.newSession();
    const auth = `Bearer ${alice.token}`;
    const open: SseConnection[] = [];
    const openStream = async (path: string, token: string, body?: unknown): Promise<SseConnection> => {
      const conn = SseConnection.open(`${urlOf(t)}${path}`, { method: body === undefined ? 'GET' : 'POST', body, headers: { authorization: `Bearer ${token}` } });
      open.push(conn);
      await conn.until((e) => e.length >= 1);
      expect(conn.status).toBe(200);
      return conn;
    };
    try {
      // Requests refused before their stream opened give their slot back.
      for (let i = 0; i < 25; i++) {
        await t.http().post('/api/v1/chat').set('Authorization', auth).send({ message: 'hi', conversation_id: '00000000-0000-4000-8000-000000000000' }).expect(404);
      }
      const first = await openStream('/api/v1/chat', alice.token, { message: 'Keep talking' });
      const { message_id: messageId, conversation_id: conversationId, user_message_id: questionId } = first.events[0].data as Record<string, string>;
      const followers: SseConnection[] = [];
      for (let i = 0; i < 19; i++) followers.push(await openStream(`/api/v1/chat/streams/${messageId}`, alice.token));
      expect(t.app.get(StreamLimit).openFor(alice.id)).toBe(20);

      const conversations = t.app.get(ConversationsService);
      const before = (await conversations.list(alice.id, 100, 0)).items;
      const messagesBefore = (await conversations.page(conversationId, 100)).messages.length;
      const refusals = [
        await t.http().get(`/api/v1/chat/streams/${messageId}`).set('Authorization', auth).expect(429),
        await t.http().post('/api/v1/chat').set('Authorization', auth).send({ message: 'one more' }).expect(429),
        // Refused before the 409 a running answer would give: nothing about the conversation is even read.
        await t.http().post('/api/v1/chat').set('Authorization', auth).send({ message: 'and more', conversation_id: conversationId }).expect(429),
        await t.http().post('/api/v1/chat/regenerate').set('Authorization', auth).send({ conversation_id: conversationId, message: 'edited', message_id: questionId }).expect(429),
      ];
      for (const res of refusals) {
        expect(res.body.error).toMatchObject({ code: 'RATE_LIMIT_EXCEEDED', details: { limit: 20 } });
        expect(res.body.error.message).toMatch(/20 answers streaming/);
        expect(res.headers['retry-after']).toMatch(/^[1-9]\d*$/);
      }
      // Nothing stored, nothing started: no conversation, no message, the question unedited.
      expect((await conversations.list(alice.id, 100, 0)).items).toEqual(before);
      const after = (await conversations.page(conversationId, 100)).messages;
      expect(after.length).toBe(messagesBefore);
      expect(after.find((m) => m.role === 'user')?.content).toBe('Keep talking');
      expect(t.app.get(StreamLimit).openFor(alice.id)).toBe(20);
      // A HEAD is GET's status and headers at once, with no slot: it waited for the whole answer (a minute a token
      // here), holding one, and was 429 at the limit. Its checks are GET's: another session's answer is 404.
      const head = await t.http().head(`/api/v1/chat/streams/${messageId}`).set('Authorization', auth).expect(200);
      expect(head.headers['content-type']).toBe('text/event-stream; charset=utf-8');
      expect(head.headers['cache-control']).toBe('no-store');
      await t.http().head(`/api/v1/chat/streams/${messageId}`).set('Authorization', `Bearer ${bob.token}`).expect(404);
      await t.http().head(`/api/v1/chat/streams/${messageId}`).set('Authorization', auth).set('Last-Event-ID', 'x').expect(400);
      expect(t.app.get(StreamLimit).openFor(alice.id)).toBe(20);

      // Another session has its own count.
      await openStream('/api/v1/chat', bob.token, { message: 'Bob is here' });

      // A closed tab frees its slot: the next stream is accepted.
      followers[0].destroy();
      await waitFor('the closed stream to give its slot back', () => t.app.get(StreamLimit).openFor(alice.id) === 19);
      await openStream(`/api/v1/chat/streams/${messageId}`, alice.token);
      await t.http().get(`/api/v1/chat/streams/${messageId}`).set('Authorization', auth).expect(429);
    } finally {
      for (const conn of open) conn.destroy();
    }
    await waitFor('every stream to close', () => t.app.get(StreamLimit).openFor(alice.id) === 0 && t.app.get(StreamLimit).openFor(bob.id) === 0);
  });
});
