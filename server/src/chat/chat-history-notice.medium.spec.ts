import { randomBytes } from 'node:crypto';
import { ConversationsService, type MessageDraft } from '../conversations/conversations.service.js';
import { type ChatHarness, createChatHarness } from '../testing/chat-harness.js';
import type { FakeOpenAiServer } from '../testing/fake-openai-server.js';
import { createTestApp, type TestApp } from '../testing/test-app.js';
import { startEventOf as startOf } from '../testing/sse-client.js';
import { dialects } from '../testing/dialects.js';

interface UpstreamMessage { role: string; content: string }
interface StoredMessage { id: string; role: string; content: string; status: string; context: Record<string, unknown> | null }

// A conversation longer than the model's context: the model sees its newest messages, and the user is told how
// many of the first ones it did not see, counted from the conversation as stored.
describe.each(dialects())('the conversation\'s start left out of the prompt, on %s', (dialect) => {
  let h: ChatHarness;
  let t: TestApp;
  let fake: FakeOpenAiServer;
  beforeAll(async () => {
    h = await createChatHarness(dialect, { MODEL_CONTEXT_TOKENS: '700', MAX_OUTPUT_TOKENS: '100' });
    ({ t, fake } = h);
  });
  afterAll(async () => { await h.close(); });

  /** A question of ~60 tokens (the fake's answer repeats it: ~60 more). */
  const question = (ref: string): string => `${ref}: ${Array.from({ length: 40 }, (_, i) => `w${i}`).join(' ')}`;

  async function send(token: string, message: string, conversationId?: string, fileIds?: string[]): Promise<Record<string, unknown>> {
    const res = await t.http().post('/api/v1/chat').set('Authorization', `Bearer ${token}`)
      .send({ message, ...(conversationId ? { conversation_id: conversationId } : {}), ...(fileIds ? { file_ids: fileIds } : {}) }).expect(200);
    return startOf(res.text);
  }

  async function stored(token: string, conversationId: string): Promise<StoredMessage[]> {
    const res = await t.http().get(`/api/v1/conversations/${conversationId}`).set('Authorization', `Bearer ${token}`).expect(200);
    return (res.body as { messages: StoredMessage[] }).messages;
  }

  /** How many stored messages come before the first one the model was sent with the question `ref` (its last request for it). */
  function unseenBefore(messages: StoredMessage[], ref: string): number {
    const request = fake.requestsFor(ref).at(-1)!;
    const sent = (request.body.messages as UpstreamMessage[]).filter((m) => m.role !== 'system');
    const first = sent[0].content;
    const at = messages.findIndex((m) => first.startsWith(m.content) && m.content !== '');
    return at;
  }

  it('says how many first messages the model did not see, on the start event and the stored answer; nothing while it sees them all', async () => {
    const s = await t.newSession();
    const tag = randomBytes(3).toString('hex');
    const first = await send(s.token, question(`${tag} q0`));
    const id = String(first.conversation_id);
    expect(first).not.toHaveProperty('context');
    const second = await send(s.token, question(`${tag} q1`), id);
    expect(second).not.toHaveProperty('context');
    let last: Record<string, unknown> = second;
    for (let i = 2; i < 6; i++) last = await send(s.token, question(`${tag} q${i}`), id);
    const messages = await stored(s.token, id);
    const unseen = unseenBefore(messages, `${tag} q5`);
    // The model saw from a later question on: the earlier ones, and their answers, were left out.
    expect(unseen).toBeGreaterThanOrEqual(2);
    expect(last.context).toEqual({ earlier_messages_omitted: unseen });
    expect(messages.at(-1)!.context).toEqual({ earlier_messages_omitted: unseen });
    // Answers that saw the whole conversation say nothing.
    expect(messages[1].context).toBeNull();
    expect(messages[3].context).toBeNull();
  });

  it('counts a regeneration\'s prompt the same way, and a question with files, whose text takes its room first', async () => {
    const s = await t.newSession();
    const tag = randomBytes(3).toString('hex');
    const id = String((await send(s.token, question(`${tag} q0`))).conversation_id);
    for (let i = 1; i < 5; i++) await send(s.token, question(`${tag} q${i}`), id);
    const res = await t.http().post('/api/v1/chat/regenerate').set('Authorization', `Bearer ${s.token}`).send({ conversation_id: id }).expect(200);
    const again = startOf(res.text);
    const messages = await stored(s.token, id);
    const unseen = unseenBefore(messages, `${tag} q4`);
    expect(unseen).toBeGreaterThanOrEqual(2);
    expect(again.context).toEqual({ earlier_messages_omitted: unseen });

    // A file of ~250 tokens: fewer earlier messages fit beside it.
    const boundary = `----parley${randomBytes(8).toString('hex')}`;
    const text = Array.from({ length: 120 }, (_, i) => `f${i}`).join(' ');
    const body = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="notes.txt"\r\nContent-Type: text/plain\r\n\r\n${text}\r\n--${boundary}--\r\n`);
    const upload = await t.http().post('/api/v1/files/upload').set('Authorization', `Bearer ${s.token}`)
      .set('Content-Type', `multipart/form-data; boundary=${boundary}`).send(body).expect(201);
    const withFile = await send(s.token, question(`${tag} q5`), id, [(upload.body as { file_id: string }).file_id]);
    const after = await stored(s.token, id);
    const unseenWithFile = unseenBefore(after, `${tag} q5`);
    expect(unseenWithFile).toBeGreaterThan(unseen);
    expect(withFile.context).toEqual({ earlier_messages_omitted: unseenWithFile });
    expect(after.at(-1)!.context).toEqual({ earlier_messages_omitted: unseenWithFile });
  });
});

// Of a conversation longer than the 200 messages a prompt reads, the older ones count as not seen, even when the 200 fit.
describe.each(dialects())('the messages older than the 200 read, on %s', (dialect) => {
  let t: TestApp;
  beforeAll(async () => { t = await createTestApp(dialect); });
  afterAll(async () => { await t.close(); });

  it('are counted as not seen; a conversation of 200 fitting messages has no notice', async () => {
    const s = await t.newSession();
    const service = t.app.get(ConversationsService);
    const long = await service.create(s.id, 'Long');
    const exact = await service.create(s.id, 'Exact');
    const turns = (n: number): MessageDraft[] => Array.from({ length: n }, (_, i) => ({
      role: i % 2 === 0 ? 'user' : 'assistant', content: `m${i}`, status: 'complete',
    }));
    await service.appendMessages(long.id, turns(206));
    await service.appendMessages(exact.id, turns(198));
    const send = async (id: string): Promise<Record<string, unknown>> => startOf((await t.http().post('/api/v1/chat')
      .set('Authorization', `Bearer ${s.token}`).send({ message: 'and now?', conversation_id: id }).expect(200)).text);
    expect((await send(long.id)).context).toEqual({ earlier_messages_omitted: 6 });
    // 198 messages: all read, all fit.
    expect(await send(exact.id)).not.toHaveProperty('context');
  });
});
