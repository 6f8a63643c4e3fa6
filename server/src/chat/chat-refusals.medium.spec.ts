import { getRepositoryToken } from '@nestjs/typeorm';
import type { Repository } from 'typeorm';
import { Conversation } from '../conversations/conversation.entity.js';
import { ConversationsService } from '../conversations/conversations.service.js';
import { GenerationService } from './generation.service.js';
import { type ChatHarness, createChatHarness, LIVE_LEASE_AHEAD_MS } from '../testing/chat-harness.js';
import { dialects } from '../testing/dialects.js';

/**
 * Refusals found only in a turn's transaction: a reply running on another instance (its row's live
 * lease is all this instance knows of it), or a question no longer the last. Such a request must
 * change nothing and use none of the session's chat limit.
 */
describe.each(dialects())('a send or an edit refused in its transaction, on %s', (dialect) => {
  let h: ChatHarness;
  let conversations: ConversationsService;
  const future = (): Date => new Date(Date.now() + LIVE_LEASE_AHEAD_MS);

  beforeAll(async () => {
    h = await createChatHarness(dialect, { RATE_LIMIT_CHAT_PER_MINUTE: '3' });
    conversations = h.t.app.get(ConversationsService);
  });
  afterAll(async () => { await h?.close(); });

  it('changes neither the question nor the title, and gives the send back', async () => {
    // The edit was written before the transaction's check: refused with 409, the question and
    // the title had changed all the same. And each 409 used up one of the session's sends.
    const { token, id: sessionId } = await h.t.newSession();
    h.fake.on('first question', { tokens: ['an answer'] });
    const first = await h.send(token, { message: 'first question' }).all();
    const { conversation_id: conv, user_message_id: questionId } = first[0].data as { conversation_id: string; user_message_id: string };
    const [foreign] = await conversations.appendTurn(conv, [{
      role: 'assistant', content: 'elsewhere', status: 'streaming', ownerInstance: 'another-instance', leaseExpiresAt: future(),
    }]);

    const auth = `Bearer ${token}`;
    const edit = await h.t.http().post('/api/v1/chat/regenerate').set('Authorization', auth)
      .send({ conversation_id: conv, message_id: questionId, message: 'an edited question' });
    expect([edit.status, edit.body.error.code]).toEqual([409, 'GENERATION_IN_PROGRESS']);
    expect((await h.message(questionId)).content).toBe('first question');
    expect((await conversations.findOwned(sessionId, conv)).title).toBe('first question');

    for (let i = 0; i < 3; i++) {
      const followUp = await h.t.http().post('/api/v1/chat').set('Authorization', auth).send({ conversation_id: conv, message: `follow-up ${i}` });
      expect([followUp.status, followUp.body.error.code]).toEqual([409, 'GENERATION_IN_PROGRESS']);
    }
    await conversations.updateMessage(foreign.id, { status: 'interrupted', leaseExpiresAt: null });
    // One send used of three: two more are served.
    h.fake.on('after the refusals', { tokens: ['served'] });
    for (let i = 0; i < 2; i++) {
      const served = await h.send(token, { message: 'after the refusals' }).all();
      expect(served.at(-1)!.data).toMatchObject({ type: 'done', status: 'complete' });
    }
    const limited = await h.t.http().post('/api/v1/chat').set('Authorization', auth).send({ message: 'one too many' });
    expect([limited.status, limited.body.error.code]).toEqual([429, 'RATE_LIMIT_EXCEEDED']);
    expect(h.fake.requestsFor('an edited question')).toHaveLength(0);
  });

  it('answers a question only while it is the last one: a later question stored meanwhile is 409 CONFLICT', async () => {
    const { id: sessionId } = await h.t.newSession();
    const conv = await conversations.create(sessionId, 'the first question');
    const [question] = await conversations.appendTurn(conv.id, [
      { role: 'user', content: 'the first question', status: 'complete' }, { role: 'assistant', content: 'one', status: 'complete' },
    ]);
    await conversations.appendTurn(conv.id, [{ role: 'user', content: 'a later one', status: 'complete' }, { role: 'assistant', content: 'two', status: 'complete' }]);
    const refused = conversations.appendAnswer(conv.id, {
      id: question.id, edit: { patch: { content: 'rewritten' }, title: { from: 'the first question', to: 'rewritten' } },
    }, [{ role: 'assistant', content: '', status: 'streaming', ownerInstance: 'here', leaseExpiresAt: future() }]);
    await expect(refused).rejects.toMatchObject({ code: 'CONFLICT' });
    expect((await h.message(question.id)).content).toBe('the first question');
    const after = await conversations.findOwned(sessionId, conv.id);
    expect([after.title, after.messageCount, after.nextPosition]).toEqual(['the first question', 4, 4]);
  });
  it('ends an answer whose conversation is deleted underneath it (a racing request, another instance): failed, CONVERSATION_NOT_FOUND, the model stopped', async () => {
    // Deleted without the removal's hooks, which stop answers this instance knows of: a delete that
    // raced the send (the answer not started yet when the hooks ran), or another instance's, went on
    // streaming to `complete` into rows that were gone, paid for up to its limits, with nothing to stop it.
    const { token } = await h.t.newSession();
    h.fake.on('deleted underneath', { tokens: ['tick '], endless: true, tokenDelayMs: 10 });
    const conn = h.send(token, { message: 'deleted underneath' });
    const [start] = await conn.until((events) => events.length >= 3);
    const conversationId = start.data.conversation_id as string;
    await h.t.app.get<Repository<Conversation>>(getRepositoryToken(Conversation)).delete({ id: conversationId });
    const events = await conn.all();
    expect(events.at(-1)!.data).toEqual({
      type: 'error', finished: true, message_id: start.data.message_id, status: 'failed', code: 'CONVERSATION_NOT_FOUND',
      error: 'This conversation was deleted, so the answer was not kept.',
    });
    expect(h.t.app.get(GenerationService).isRunning(start.data.message_id as string)).toBe(false);
    const sent = events.length;
    await new Promise((r) => setTimeout(r, 200));
    expect(conn.events.length).toBe(sent);
  });
  it('refuses a turn for a conversation deleted after the request found it with 404 CONVERSATION_NOT_FOUND (was a 500)', async () => {
    const { id: sessionId } = await h.t.newSession();
    const conversation = await conversations.create(sessionId);
    await h.t.app.get<Repository<Conversation>>(getRepositoryToken(Conversation)).delete({ id: conversation.id });
    await expect(conversations.appendTurn(conversation.id, [{ role: 'user', content: 'too late', status: 'complete' }]))
      .rejects.toMatchObject({ code: 'CONVERSATION_NOT_FOUND' });
  });
});
