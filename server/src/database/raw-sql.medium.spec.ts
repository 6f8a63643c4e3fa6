import { DataSource } from 'typeorm';
import { Conversation } from '../conversations/conversation.entity.js';
import { ConversationsService, type HistoryMessage, type MessageDraft } from '../conversations/conversations.service.js';
import { Message, type MessageRole } from '../conversations/message.entity.js';
import { Session } from '../sessions/session.entity.js';
import { SessionsService } from '../sessions/sessions.service.js';
import { type Dialect, dialects } from '../testing/dialects.js';
import { createTestApp, type TestApp } from '../testing/test-app.js';
import { RawSql } from './raw-sql.js';
import { inTransaction } from './transaction.js';

const turn = (): MessageDraft[] => [
  { role: 'user', content: 'Hello there', status: 'complete', tokenCount: 2 },
  { role: 'assistant', content: '', status: 'streaming', ownerInstance: 'i-1', leaseExpiresAt: new Date(Date.now() + 30_000) },
];

describe.each(dialects())('Turns stored by fixed SQL, on %s', (dialect) => {
  let t: TestApp;
  let ds: DataSource;
  let conversations: ConversationsService;
  let sessionId: string;
  beforeAll(async () => {
    t = await createTestApp(dialect);
    ds = t.app.get(DataSource);
    conversations = t.app.get(ConversationsService);
    sessionId = (await t.app.get(SessionsService).create(undefined, undefined)).session.id;
  });
  afterAll(async () => { await t.close(); });

  describe('a conversation created with its first turn', () => {
    it('is stored exactly as TypeORM reads it back', async () => {
      const { conversation, messages } = await conversations.createWithTurn(sessionId, 'Hello there', turn());
      const stored = await ds.getRepository(Conversation).findOneByOrFail({ id: conversation.id });
      expect(stored).toEqual(conversation);
      const rows = await ds.getRepository(Message).find({ where: { conversationId: conversation.id }, order: { position: 'ASC' } });
      // The folded search text is not read back (select: false).
      expect(rows).toEqual(messages.map(({ searchText: _, ...m }) => expect.objectContaining(m)));
      expect(rows.map((m) => [m.position, m.role, m.status])).toEqual([[0, 'user', 'complete'], [1, 'assistant', 'streaming']]);
    });

    it('leaves nothing behind when its messages cannot be stored', async () => {
      const before = await ds.getRepository(Conversation).countBy({ sessionId });
      const broken: MessageDraft[] = [turn()[0], { ...turn()[1], role: null as unknown as MessageRole }];
      await expect(conversations.createWithTurn(sessionId, 'Broken', broken)).rejects.toThrow(/NOT NULL|null value/i);
      expect(await ds.getRepository(Conversation).countBy({ sessionId })).toBe(before);
      expect(await ds.getRepository(Conversation).countBy({ sessionId, title: 'Broken' })).toBe(0);
    });

    it('is stored after a transaction that is open when it is asked for, not inside it', async () => {
      let release!: () => void;
      const held = new Promise<void>((resolve) => { release = resolve; });
      let entered!: () => void;
      const isOpen = new Promise<void>((resolve) => { entered = resolve; });
      // A transaction that stays open across a turn of the event loop (as PostgreSQL's always may).
      const open = inTransaction(ds, async (em) => {
        await em.getRepository(Session).update({ id: sessionId }, { userAgent: 'held' });
        entered();
        await held;
        throw new Error('rolled back on purpose');
      });
      await isOpen;
      const created = conversations.createWithTurn(sessionId, 'During', turn());
      release();
      await expect(open).rejects.toThrow('rolled back on purpose');
      const { conversation } = await created;
      // The turn survived the other transaction's rollback: it was not part of it.
      expect(await ds.getRepository(Message).countBy({ conversationId: conversation.id })).toBe(2);
      expect((await ds.getRepository(Session).findOneByOrFail({ id: sessionId })).userAgent).not.toBe('held');
    });
  });

  describe('a turn added to a conversation, and the reads behind it', () => {
    /** A conversation whose first reply has ended (so another turn may start). */
    const started = async (): Promise<Conversation> => {
      const { conversation, messages } = await conversations.createWithTurn(sessionId, 'Started', turn());
      await conversations.updateMessage(messages[1].id, { content: 'Done.', status: 'complete', leaseExpiresAt: null });
      return ds.getRepository(Conversation).findOneByOrFail({ id: conversation.id });
    };
    const counters = async (id: string) => {
      const c = await ds.getRepository(Conversation).findOneByOrFail({ id });
      return { nextPosition: c.nextPosition, messageCount: c.messageCount, updatedAt: c.updatedAt.getTime(), rows: await ds.getRepository(Message).countBy({ conversationId: id }) };
    };

    it('reads an owned conversation and a page of messages exactly as TypeORM reads them', async () => {
      const c = await started();
      await conversations.appendTurn(c.id, turn());
      expect(await conversations.findOwned(sessionId, c.id)).toEqual(await ds.getRepository(Conversation).findOneByOrFail({ id: c.id }));
      const all = await ds.getRepository(Message).find({ where: { conversationId: c.id }, order: { position: 'ASC' } });
      expect(all).toHaveLength(4);
      expect((await conversations.page(c.id, 10)).messages).toEqual(all);
      const latest = await conversations.page(c.id, 3);
      expect(latest).toEqual({ messages: all.slice(1), hasMore: true, hasNewer: false });
      expect(await conversations.page(c.id, 1, 2)).toEqual({ messages: [all[1]], hasMore: true, hasNewer: true });
      expect(await conversations.page(c.id, 5, 2)).toEqual({ messages: all.slice(0, 2), hasMore: false, hasNewer: true });
    });

    it("reads a prompt's history: the newest messages, oldest first, with what the prompt needs as TypeORM reads it", async () => {
      const c = await started();
      await conversations.appendTurn(c.id, turn());
      const all = await ds.getRepository(Message).find({ where: { conversationId: c.id }, order: { position: 'ASC' } });
      const needed = (m: HistoryMessage) => ({ id: m.id, role: m.role, content: m.content, status: m.status, tokenCount: m.tokenCount, finishReason: m.finishReason });
      expect((await conversations.historyOf(c.id, 3)).map(needed)).toEqual(all.slice(1).map(needed));
      expect((await conversations.historyOf(c.id, 10)).map(needed)).toEqual(all.map(needed));
      expect(all.map((m) => m.tokenCount)).toEqual([2, null, 2, null]);
    });

    it("is another session's conversation: not found, as a missing one", async () => {
      const c = await started();
      const other = (await t.app.get(SessionsService).create(undefined, undefined)).session.id;
      await expect(conversations.findOwned(other, c.id)).rejects.toMatchObject({ code: 'CONVERSATION_NOT_FOUND' });
      await expect(conversations.findOwned(sessionId, '00000000-0000-4000-8000-000000000000')).rejects.toMatchObject({ code: 'CONVERSATION_NOT_FOUND' });
    });

    it('takes the next positions and counts them', async () => {
      const c = await started();
      const before = await counters(c.id);
      const now = new Date(before.updatedAt + 5_000);
      const rows = await conversations.appendTurn(c.id, turn(), now);
      expect(rows.map((m) => m.position)).toEqual([2, 3]);
      expect(await counters(c.id)).toEqual({ nextPosition: 4, messageCount: 4, updatedAt: now.getTime(), rows: 4 });
      const stored = await ds.getRepository(Message).find({ where: { conversationId: c.id }, order: { position: 'ASC' } });
      expect(stored.slice(2)).toEqual(rows.map(({ searchText: _, ...m }) => expect.objectContaining(m)));
    });

    it('is refused while a reply streams under a live lease, and then changes nothing', async () => {
      const c = await started();
      await conversations.appendTurn(c.id, turn());
      const before = await counters(c.id);
      await expect(conversations.appendTurn(c.id, turn(), new Date(before.updatedAt + 1_000))).rejects.toMatchObject({ code: 'GENERATION_IN_PROGRESS' });
      expect(await counters(c.id)).toEqual(before);
    });

    it('goes ahead when the streaming reply\'s lease has expired (its instance died)', async () => {
      const c = await started();
      await conversations.appendTurn(c.id, turn());
      const later = new Date(Date.now() + 60_000);
      const rows = await conversations.appendTurn(c.id, turn(), later);
      expect(rows.map((m) => m.position)).toEqual([4, 5]);
    });

    it('waits for a turn being stored by another connection, then sees its reply streaming and is refused', async () => {
      const c = await started();
      let release!: () => void;
      const held = new Promise<void>((resolve) => { release = resolve; });
      let locked!: () => void;
      const isLocked = new Promise<void>((resolve) => { locked = resolve; });
      // Another instance's turn, the conversation's lock taken and its streaming reply written, not yet committed.
      const other = inTransaction(ds, async (em) => {
        await em.getRepository(Conversation).increment({ id: c.id }, 'nextPosition', 1);
        await em.getRepository(Message).insert({
          id: '00000000-0000-4000-8000-0000000000aa', conversationId: c.id, position: c.nextPosition, role: 'assistant', content: '',
          status: 'streaming', ownerInstance: 'i-2', leaseExpiresAt: new Date(Date.now() + 30_000), createdAt: new Date(), updatedAt: new Date(),
        });
        locked();
        await held;
      });
      await isLocked;
      const appended = conversations.appendTurn(c.id, turn());
      appended.catch(() => undefined);
      if (dialect === 'postgres') {
        // The append's first statement is waiting for the lock (bounded: a few seconds at most).
        for (let i = 0; i < 500 && Number((await ds.query('SELECT count(*) AS n FROM pg_locks WHERE NOT granted'))[0].n) === 0; i++) {
          await new Promise((r) => setTimeout(r, 10));
        }
      }
      release();
      await other;
      await expect(appended).rejects.toMatchObject({ code: 'GENERATION_IN_PROGRESS', details: { message_id: '00000000-0000-4000-8000-0000000000aa' } });
      expect((await counters(c.id)).rows).toBe(3);
    });

    it('of a conversation that is gone fails and stores nothing', async () => {
      const missing = '00000000-0000-4000-8000-000000000001';
      await expect(conversations.appendTurn(missing, turn())).rejects.toMatchObject({ code: 'CONVERSATION_NOT_FOUND' });
      expect(await ds.getRepository(Message).countBy({ conversationId: missing })).toBe(0);
    });
  });
});

/** An app of the dialect, its DataSource, a RawSql on it and a session, for the describe block that calls it. */
function rawSqlApp(dialect: Dialect): { ds: DataSource; raw: RawSql; sessionId: string } {
  let t: TestApp | undefined;
  const ctx = {} as { ds: DataSource; raw: RawSql; sessionId: string };
  beforeAll(async () => {
    t = await createTestApp(dialect);
    ctx.ds = t.app.get(DataSource);
    ctx.raw = new RawSql(ctx.ds);
    ctx.sessionId = (await t.app.get(SessionsService).create(undefined, undefined)).session.id;
  });
  afterAll(async () => { await t?.close(); });
  return ctx;
}

describe.runIf(dialects().includes('postgres'))('RawSql.insertTogether on PostgreSQL', () => {
  const app = rawSqlApp('postgres');

  const conversation = (id: string): Conversation => app.ds.getRepository(Conversation).create({
    id, sessionId: app.sessionId, title: 'Together', createdAt: new Date(), updatedAt: new Date(), isActive: true, messageCount: 2, nextPosition: 2,
  });
  const message = (id: string, conversationId: string, position: number): Message => app.ds.getRepository(Message).create({
    id, conversationId, position, role: 'user', content: `m${position}`, status: 'complete', createdAt: new Date(), updatedAt: new Date(),
  });

  it('stores the rows of every table in one statement, a later table referring to an earlier one', async () => {
    const c = conversation('00000000-0000-4000-8000-0000000000c1');
    await app.raw.insertTogether([{ target: Conversation, rows: [c] }, { target: Message, rows: [message('00000000-0000-4000-8000-0000000000d1', c.id, 0), message('00000000-0000-4000-8000-0000000000d2', c.id, 1)] }]);
    expect(await app.ds.getRepository(Conversation).findOneByOrFail({ id: c.id })).toEqual(c);
    expect((await app.ds.getRepository(Message).find({ where: { conversationId: c.id }, order: { position: 'ASC' } })).map((m) => m.content)).toEqual(['m0', 'm1']);
  });

  it('stores nothing when any row fails', async () => {
    const c = conversation('00000000-0000-4000-8000-0000000000c2');
    // Two messages at one position: the second breaks the (conversation, position) key.
    const clash = [message('00000000-0000-4000-8000-0000000000d3', c.id, 0), message('00000000-0000-4000-8000-0000000000d4', c.id, 0)];
    await expect(app.raw.insertTogether([{ target: Conversation, rows: [c] }, { target: Message, rows: clash }])).rejects.toThrow(/duplicate key/);
    expect(await app.ds.getRepository(Conversation).countBy({ id: c.id })).toBe(0);
    expect(await app.ds.getRepository(Message).countBy({ conversationId: c.id })).toBe(0);
  });
});

describe('RawSql.updateMany on PostgreSQL', () => {
  const app = rawSqlApp('postgres');

  it('updates each row by its own values and conditions in one statement, leaving undefined values alone; answers the ids changed', async () => {
    const repo = app.ds.getRepository(Message);
    const c = app.ds.getRepository(Conversation).create({
      id: crypto.randomUUID(), sessionId: app.sessionId, title: 'Many', createdAt: new Date(), updatedAt: new Date(), isActive: true, messageCount: 4, nextPosition: 4,
    });
    await app.ds.getRepository(Conversation).save(c);
    const reply = (position: number, owner: string | null, status: Message['status'] = 'streaming'): Message => repo.create({
      id: crypto.randomUUID(), conversationId: c.id, position, role: 'assistant', content: `before ${position}`, status,
      ownerInstance: owner, leaseExpiresAt: new Date(Date.UTC(2026, 0, 1)), createdAt: new Date(), updatedAt: new Date(Date.UTC(2026, 0, 1)),
    });
    const [mine, elsewhere, done, leaseOnly] = [reply(0, 'i-1'), reply(1, 'i-2'), reply(2, 'i-1', 'complete'), reply(3, 'i-1')];
    await repo.save([mine, elsewhere, done, leaseOnly]);
    const lease = new Date(Date.UTC(2026, 5, 1, 12, 30));
    const updatedAt = new Date(Date.UTC(2026, 5, 1, 12, 0, 0, 250));
    const streamingBy = (owner?: string): Partial<Message> => ({ status: 'streaming', ownerInstance: owner });
    const changed = await app.raw.updateMany(Message, ['content', 'leaseExpiresAt', 'updatedAt'], ['status', 'ownerInstance'], [
      { id: mine.id, patch: { content: 'after 0', leaseExpiresAt: lease, updatedAt }, onlyIf: streamingBy('i-1') },
      { id: elsewhere.id, patch: { content: 'after 1', updatedAt }, onlyIf: streamingBy('i-1') }, // another instance's now
      { id: done.id, patch: { content: 'after 2', updatedAt }, onlyIf: streamingBy('i-1') }, // no longer streaming
      { id: leaseOnly.id, patch: { leaseExpiresAt: lease, updatedAt }, onlyIf: streamingBy() }, // any owner
      { id: crypto.randomUUID(), patch: { content: 'nobody', updatedAt }, onlyIf: streamingBy() },
    ]);
    expect([...changed].sort()).toEqual([mine.id, leaseOnly.id].sort());
    const rows = new Map((await repo.findBy({ conversationId: c.id })).map((m) => [m.id, m]));
    expect(rows.get(mine.id)).toMatchObject({ content: 'after 0', leaseExpiresAt: lease, updatedAt });
    expect(rows.get(elsewhere.id)).toMatchObject({ content: 'before 1', updatedAt: new Date(Date.UTC(2026, 0, 1)) });
    expect(rows.get(done.id)).toMatchObject({ content: 'before 2', status: 'complete' });
    expect(rows.get(leaseOnly.id)).toMatchObject({ content: 'before 3', leaseExpiresAt: lease, updatedAt });
  });
});

describe('RawSql.transactionNow on SQLite', () => {
  const app = rawSqlApp('sqlite');

  const conversation = (title: string): Conversation => app.ds.getRepository(Conversation).create({
    id: crypto.randomUUID(), sessionId: app.sessionId, title, createdAt: new Date(), updatedAt: new Date(), isActive: true, messageCount: 0, nextPosition: 0,
  });

  it('commits every statement before it returns', () => {
    const a = conversation('now-a');
    const b = conversation('now-b');
    expect(app.raw.transactionNow(() => { app.raw.insertNow(Conversation, [a]); app.raw.insertNow(Conversation, [b]); })).toBe(true);
    // Read through another statement, synchronously: nothing is left to run later.
    const db = (app.ds.driver as unknown as { databaseConnection: { prepare(s: string): { all(...p: unknown[]): unknown[] } } }).databaseConnection;
    expect(db.prepare('SELECT title FROM conversations WHERE id IN (?, ?) ORDER BY title').all(a.id, b.id)).toEqual([{ title: 'now-a' }, { title: 'now-b' }]);
  });

  it('rolls every statement back and throws when one fails', async () => {
    const a = conversation('rolled-back');
    expect(() => app.raw.transactionNow(() => {
      app.raw.insertNow(Conversation, [a]);
      app.raw.insertNow(Conversation, [a]); // the same primary key again
    })).toThrow(/UNIQUE/);
    expect(await app.ds.getRepository(Conversation).countBy({ id: a.id })).toBe(0);
  });

  it('runs nothing and answers false while another transaction is open on the connection', async () => {
    const a = conversation('not-now');
    let answer: boolean | undefined;
    await inTransaction(app.ds, async () => {
      answer = app.raw.transactionNow(() => app.raw.insertNow(Conversation, [a]));
      await Promise.resolve();
    });
    expect(answer).toBe(false);
    expect(await app.ds.getRepository(Conversation).countBy({ id: a.id })).toBe(0);
  });
});
