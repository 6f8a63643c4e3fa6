import { lastValueFrom, toArray } from 'rxjs';
import { ConversationsService } from '../conversations/conversations.service.js';
import { SessionsService } from '../sessions/sessions.service.js';
import { dialects } from '../testing/dialects.js';
import { createTestApp, type TestApp } from '../testing/test-app.js';
import { ChatMetrics } from './chat-metrics.js';
import { InMemoryGenerationRegistry } from './generation-registry.js';
import { GenerationService } from './generation.service.js';

describe.each(dialects())('ConversationsService.saveProgress on %s', (dialect) => {
  let t: TestApp;
  let conversations: ConversationsService;
  beforeAll(async () => {
    t = await createTestApp(dialect);
    conversations = t.app.get(ConversationsService);
  });
  afterAll(async () => { await t.close(); });

  async function streamingReply(): Promise<string> {
    const { session } = await t.app.get(SessionsService).create(undefined, undefined);
    const conv = await conversations.create(session.id, 'progress');
    const [reply] = await conversations.appendTurn(conv.id, [{ role: 'assistant', content: '', status: 'streaming', leaseExpiresAt: new Date() }]);
    return reply.id;
  }

  it('saves the replies of one turn in one batch: content and lease, which the lease sweep then reads right', async () => {
    const [a, b, c] = [await streamingReply(), await streamingReply(), await streamingReply()];
    const lease = new Date(Date.now() + 60_000);
    await Promise.all([
      conversations.saveProgress(a, 'Hello', lease),
      conversations.saveProgress(b, undefined, lease),
      conversations.saveProgress(c, 'first', lease),
      conversations.saveProgress(c, 'first, then more', lease),
    ]);
    expect(await conversations.findMessage(a)).toMatchObject({ content: 'Hello', status: 'streaming', leaseExpiresAt: lease });
    expect(await conversations.findMessage(b)).toMatchObject({ content: '', leaseExpiresAt: lease });
    expect(await conversations.findMessage(c)).toMatchObject({ content: 'first, then more' });
    const ids = (rows: { id: string }[]) => rows.map((r) => r.id);
    // A content flush without a lease leaves the lease as it was.
    await conversations.saveProgress(a, 'Hello again', undefined);
    expect(await conversations.findMessage(a)).toMatchObject({ content: 'Hello again', leaseExpiresAt: lease });
    expect(ids(await conversations.findExpiredStreaming(new Date(lease.getTime() - 1000)))).not.toContain(a);
    expect(ids(await conversations.findExpiredStreaming(new Date(lease.getTime() + 1000)))).toEqual(expect.arrayContaining([a, b, c]));
  });

  it('sweeps a reply whose lease runs out further ahead than any owner renews it (another clock or time zone wrote it), and leaves a live one', async () => {
    const reply = async (leaseExpiresAt: Date): Promise<string> => {
      const { session } = await t.app.get(SessionsService).create(undefined, undefined);
      const conv = await conversations.create(session.id, 'lease');
      return (await conversations.appendTurn(conv.id, [{ role: 'assistant', content: 'Half', status: 'streaming', leaseExpiresAt }]))[0].id;
    };
    // As an older release on PostgreSQL left it from a process nine hours ahead of UTC.
    const skewed = await reply(new Date(Date.now() + 9 * 3_600_000));
    const live = await reply(new Date(Date.now() + 60_000));
    expect(await t.app.get(GenerationService).sweepExpiredLeases()).toBeGreaterThanOrEqual(1);
    expect(await conversations.findMessage(skewed)).toMatchObject({ status: 'interrupted', content: 'Half', leaseExpiresAt: null });
    expect(await conversations.findMessage(live)).toMatchObject({ status: 'streaming' });
  });

  it("writes a reply's progress and end only while it still streams under its owner: a row another instance's sweep ended stays as swept", async () => {
    const { session } = await t.app.get(SessionsService).create(undefined, undefined);
    const conv = await conversations.create(session.id, 'swept');
    const reply = async (): Promise<string> => (await conversations.appendMessages(conv.id, [{
      role: 'assistant', content: '', status: 'streaming', ownerInstance: 'owner-a', leaseExpiresAt: new Date(Date.now() + 60_000),
    }]))[0].id;
    const [swept, live] = [await reply(), await reply()];
    const lease = new Date(Date.now() + 60_000);
    expect(await conversations.saveProgress(swept, 'Half an', lease, 'owner-a')).toBe(true);
    // Another instance's row (it would have taken the reply over) is not this owner's to write.
    expect(await conversations.saveProgress(swept, 'not mine', lease, 'owner-b')).toBe(false);
    expect(await conversations.findMessage(swept)).toMatchObject({ content: 'Half an', status: 'streaming' });

    // Owner A stalls past its lease; B's sweep ends the reply (the cutoff stands for the lease run out).
    expect(await conversations.markInterruptedIfExpired(swept, new Date(Date.now() + 120_000), 'SERVICE_UNAVAILABLE', { content: 'Half an' })).toBe(true);
    const ended = await conversations.findMessage(swept);
    expect(ended).toMatchObject({ status: 'interrupted', content: 'Half an', leaseExpiresAt: null });

    // A resumes: its progress saves (one batch, next to a live reply's) and its final save change nothing of it.
    expect(await Promise.all([
      conversations.saveProgress(swept, 'Half an answer', lease, 'owner-a'),
      conversations.saveProgress(live, 'Still going', lease, 'owner-a'),
    ])).toEqual([false, true]);
    expect(await conversations.saveProgress(swept, 'Half an answer, more', undefined)).toBe(false);
    const end = { content: 'Half an answer, more and the end', status: 'complete', finishReason: 'stop', leaseExpiresAt: null } as const;
    expect(await conversations.updateMessage(swept, end, { owner: 'owner-a' })).toBe(false);
    if (conversations.savesSynchronously) expect(conversations.updateMessageNow(swept, end, { owner: 'owner-a' })).toBe(false);
    expect(await conversations.findMessage(swept)).toEqual(ended);

    // The live reply ends as its owner says (stopped here), once; after that its end stays too.
    expect(await conversations.updateMessage(live, { content: 'Still going', status: 'stopped', leaseExpiresAt: null }, { owner: 'owner-a' })).toBe(true);
    expect(await conversations.updateMessage(live, { content: 'Still going on', status: 'complete' }, { owner: 'owner-a' })).toBe(false);
    expect(await conversations.findMessage(live)).toMatchObject({ status: 'stopped', content: 'Still going', leaseExpiresAt: null });
    // Writes that are not a running reply's (feedback on an ended answer) are not held to it.
    expect(await conversations.updateMessage(swept, { feedback: 'positive' })).toBe(true);
  });
});

describe('GenerationService progress (one shared timer)', () => {
  it('renews the lease while the model is silent, flushes content as it grows, and stops writing once ended', async () => {
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const provider = {
      name: 'offline', model: 'm', isDemo: true,
      async stream(_request: unknown, _signal: AbortSignal, onChunk: (chunk: { type: 'token'; text: string }) => void) {
        await sleep(150); // silent: only lease renewals
        for (const text of ['a', 'b', 'c', 'd']) {
          await sleep(40);
          onChunk({ type: 'token', text });
        }
      },
    };
    const saves: { content: string | undefined; lease: Date | undefined; at: number }[] = [];
    const finals: number[] = [];
    const conversations = {
      saveProgress: (_id: string, content: string | undefined, lease: Date | undefined) => { saves.push({ content, lease, at: Date.now() }); return Promise.resolve(true); },
      updateMessage: () => { finals.push(Date.now()); return Promise.resolve(true); },
    };
    const config = { stream: { flushIntervalMs: 30, leaseMs: 150 }, llm: { modelTitles: false } };
    const service = new GenerationService(config as never, provider as never, new InMemoryGenerationRegistry(), conversations as never, new ChatMetrics(), {} as never);
    const events = service.start({
      conversationId: 'c', userMessageId: 'u', reply: { id: 'r' } as never, request: { messages: [], maxOutputTokens: 10, fileNames: [] },
      promptTokens: 1, replacesId: null,
    });
    const all = await lastValueFrom(events.pipe(toArray()));
    expect(all.at(-1)!.event).toMatchObject({ type: 'done', status: 'complete' });
    const silent = saves.filter((s) => s.content === undefined);
    expect(silent.length).toBeGreaterThanOrEqual(2); // every leaseMs / 3 = 50 ms during the 150 ms of silence
    expect(silent.every((s) => s.lease !== undefined)).toBe(true);
    // Content flushes (every 30 ms here) carry the lease only when its renewal is due (every 50 ms).
    const leased = saves.filter((s) => s.lease !== undefined);
    expect(saves.some((s) => s.content !== undefined && s.lease === undefined)).toBe(true);
    for (let i = 1; i < leased.length; i++) expect(leased[i].at - leased[i - 1].at).toBeGreaterThanOrEqual(45);
    const contents = saves.map((s) => s.content).filter((c) => c !== undefined);
    expect(contents.length).toBeGreaterThanOrEqual(2);
    expect([...contents].sort((x, y) => x.length - y.length)).toEqual(contents);
    expect(finals).toHaveLength(1);
    const count = saves.length;
    await sleep(120);
    expect(saves).toHaveLength(count);
    expect(saves.every((s) => s.at <= finals[0])).toBe(true);
  });
});
