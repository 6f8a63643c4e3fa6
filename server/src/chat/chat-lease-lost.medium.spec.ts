import { ConversationsService, type MessagePatch, type WhileStreaming } from '../conversations/conversations.service.js';
import { type ChatHarness, createChatHarness } from '../testing/chat-harness.js';
import { dialects } from '../testing/dialects.js';
import { tokensOf } from '../testing/sse-client.js';
import { sleep, waitFor } from '../testing/wait.js';
import { FALLBACK_TEXTS } from './fallback-texts.js';
import { GenerationService } from './generation.service.js';

/**
 * A reply whose owner stalled longer than its lease (paused, a VM frozen, a long GC, cut off from the
 * database or Redis): another instance's lease sweep ends its row as `interrupted` and that
 * instance's readers are told so. The owner, back, must leave that ending as it is, stop the model,
 * and end its own readers' stream the same way. The sweep is simulated here by its own write
 * (ConversationsService.markInterruptedIfExpired, as GenerationService.sweepExpiredLeases calls it),
 * with a cutoff that stands for the owner's lease having run out while it stalled.
 */
describe.each(dialects())('a reply ended by another instance while its owner still runs, on %s', (dialect) => {
  let h: ChatHarness;
  let token: string;
  let conversations: ConversationsService;
  beforeAll(async () => {
    h = await createChatHarness(dialect);
    token = (await h.t.newSession()).token;
    conversations = h.t.app.get(ConversationsService);
  });
  afterAll(async () => { await h.close(); });

  const sweep = (id: string, content?: string): Promise<boolean> => conversations.markInterruptedIfExpired(
    id, new Date(Date.now() + 3_600_000), 'SERVICE_UNAVAILABLE', { content });
  const interrupted = (id: string) => ({
    type: 'error', finished: true, message_id: id, status: 'interrupted', code: 'SERVICE_UNAVAILABLE', error: FALLBACK_TEXTS.interrupted,
  });

  it('keeps the swept row as it is through the owner\'s next saves; the owner stops the model and ends its stream interrupted', async () => {
    const words = Array.from({ length: 60 }, (_, i) => `w${i} `);
    h.fake.on('swept mid-answer', { tokens: words, tokenDelayMs: 15 });
    const conn = h.send(token, { message: 'swept mid-answer' });
    const [start] = await conn.until((events) => events.length >= 5);
    const id = start.data.message_id as string;
    const saved = await h.waitForRow(id, (m) => m.content.length > 0);
    expect(await sweep(id, saved.content)).toBe(true);
    const swept = await h.message(id);
    expect(swept).toMatchObject({ status: 'interrupted', errorCode: 'SERVICE_UNAVAILABLE', leaseExpiresAt: null });

    const events = await conn.all();
    expect(events.at(-1)!.data).toEqual(interrupted(id));
    // The model was stopped well before the end of its answer, its connection closed.
    expect(tokensOf(events).length).toBeLessThan(words.join('').length);
    await waitFor('the upstream connection to close', () => h.fake.openResponses === 0, 5_000, 20);
    expect(h.t.app.get(GenerationService).isRunning(id)).toBe(false);
    // Neither a later progress save nor a final one changed the row: its text is the sweep's.
    await sleep(100);
    expect(await h.message(id)).toEqual(swept);
    // What a reader rebuilds from the row ends the same way.
    const resumed = await h.get(token, `/api/v1/chat/streams/${id}`).all();
    expect(resumed.at(-1)!.data).toEqual(interrupted(id));

    // The conversation is free: the next question is answered.
    h.fake.on('and after', { tokens: ['fine'] });
    const next = await h.send(token, { message: 'and after', conversation_id: start.data.conversation_id }).all();
    expect(next.at(-1)!.data).toMatchObject({ type: 'done', status: 'complete' });
  });

  it('keeps the swept row as it is when the sweep lands just before the owner\'s final save', async () => {
    h.fake.on('swept at the end', { tokens: ['All ', 'of ', 'it'] });
    // The sweep runs right before the owner's final write, whichever way that write goes.
    let path: 'later' | 'now' | undefined;
    let sweptContent: string | undefined;
    const isFinal = (patch: MessagePatch): boolean => patch.status !== undefined && patch.status !== 'streaming';
    const updateMessage = conversations.updateMessage.bind(conversations);
    const updateMessageNow = conversations.updateMessageNow.bind(conversations);
    const spies = [
      vi.spyOn(conversations, 'updateMessage').mockImplementation(async (id: string, patch: MessagePatch, whileStreaming?: WhileStreaming) => {
        if (isFinal(patch) && path === undefined) {
          path = 'later';
          sweptContent = (await h.message(id)).content;
          await sweep(id);
        }
        return updateMessage(id, patch, whileStreaming);
      }),
      vi.spyOn(conversations, 'updateMessageNow').mockImplementation((id: string, patch: MessagePatch, whileStreaming?: WhileStreaming) => {
        if (isFinal(patch) && path === undefined) {
          // SQLite: the sweep's write, done on the spot as this one is.
          path = 'now';
          updateMessageNow(id, { status: 'interrupted', errorCode: 'SERVICE_UNAVAILABLE', leaseExpiresAt: null });
        }
        return updateMessageNow(id, patch, whileStreaming);
      }),
    ];
    try {
      const events = await h.send(token, { message: 'swept at the end' }).all();
      const id = events[0].data.message_id as string;
      const row = await h.message(id);
      expect(row).toMatchObject({ status: 'interrupted', errorCode: 'SERVICE_UNAVAILABLE', finishReason: null, completionTokens: null, leaseExpiresAt: null });
      if (path === 'later') {
        // The row is written before the event (PostgreSQL always): the event is the row's ending.
        expect(row.content).toBe(sweptContent);
        expect(events.at(-1)!.data).toEqual(interrupted(id));
      }
      // On SQLite the event may go first, the row written in the same synchronous run
      // (docs/performance.md): there only this instance serves, and its own sweep skips the replies
      // it runs, so no sweep can land there but this simulated one.
      if (dialect === 'postgres') expect(path).toBe('later');
      expect(path).toBeDefined();
      await waitFor('the upstream connection to close', () => h.fake.openResponses === 0, 5_000, 20);
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
  });
});
