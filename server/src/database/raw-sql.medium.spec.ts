import { DataSource } from 'typeorm';
import { Conversation } from '../conversations/conversation.entity.js';
import { ConversationsService, type MessageDraft } from '../conversations/conversations.service.js';
import type { MessageRole } from '../conversations/message.entity.js';
import { Message } from '../conversations/message.entity.js';
import { Session } from '../sessions/session.entity.js';
import { SessionsService } from '../sessions/sessions.service.js';
import { dialects } from '../testing/dialects.js';
import { createTestApp, type TestApp } from '../testing/test-app.js';
import { RawSql } from './raw-sql.js';
import { inTransaction } from './transaction.js';

const turn = (): MessageDraft[] => [
  { role: 'user', content: 'Hello there', status: 'complete', tokenCount: 2 },
  { role: 'assistant', content: '', status: 'streaming', ownerInstance: 'i-1', leaseExpiresAt: new Date(Date.now() + 30_000) },
];

describe.each(dialects())('A conversation created with its first turn, on %s', (dialect) => {
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

describe('RawSql.transactionNow on SQLite', () => {
  let t: TestApp;
  let ds: DataSource;
  let raw: RawSql;
  let sessionId: string;
  beforeAll(async () => {
    t = await createTestApp('sqlite');
    ds = t.app.get(DataSource);
    raw = new RawSql(ds);
    sessionId = (await t.app.get(SessionsService).create(undefined, undefined)).session.id;
  });
  afterAll(async () => { await t.close(); });

  const conversation = (title: string): Conversation => ds.getRepository(Conversation).create({
    id: crypto.randomUUID(), sessionId, title, createdAt: new Date(), updatedAt: new Date(), isActive: true, messageCount: 0, nextPosition: 0,
  });

  it('commits every statement before it returns', () => {
    const a = conversation('now-a');
    const b = conversation('now-b');
    expect(raw.transactionNow(() => { raw.insertNow(Conversation, [a]); raw.insertNow(Conversation, [b]); })).toBe(true);
    // Read through another statement, synchronously: nothing is left to run later.
    const db = (ds.driver as unknown as { databaseConnection: { prepare(s: string): { all(...p: unknown[]): unknown[] } } }).databaseConnection;
    expect(db.prepare('SELECT title FROM conversations WHERE id IN (?, ?) ORDER BY title').all(a.id, b.id)).toEqual([{ title: 'now-a' }, { title: 'now-b' }]);
  });

  it('rolls every statement back and throws when one fails', async () => {
    const a = conversation('rolled-back');
    expect(() => raw.transactionNow(() => {
      raw.insertNow(Conversation, [a]);
      raw.insertNow(Conversation, [a]); // the same primary key again
    })).toThrow(/UNIQUE/);
    expect(await ds.getRepository(Conversation).countBy({ id: a.id })).toBe(0);
  });

  it('runs nothing and answers false while another transaction is open on the connection', async () => {
    const a = conversation('not-now');
    let answer: boolean | undefined;
    await inTransaction(ds, async () => {
      answer = raw.transactionNow(() => raw.insertNow(Conversation, [a]));
      await Promise.resolve();
    });
    expect(answer).toBe(false);
    expect(await ds.getRepository(Conversation).countBy({ id: a.id })).toBe(0);
  });
});
