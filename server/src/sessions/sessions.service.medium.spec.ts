import { DataSource, In } from 'typeorm';
import { ConversationsService } from '../conversations/conversations.service.js';
import { RawSql } from '../database/raw-sql.js';
import { dialects } from '../testing/dialects.js';
import { createTestApp, type TestApp } from '../testing/test-app.js';
import { Session } from './session.entity.js';
import { SessionsService } from './sessions.service.js';
import { SessionPurgeJob } from './session-purge.job.js';

describe.each(dialects())('SessionsService on %s', (dialect) => {
  let t: TestApp;
  let sessions: SessionsService;
  let ds: DataSource;
  beforeAll(async () => {
    t = await createTestApp(dialect, { SESSION_INACTIVE_DAYS: '90' });
    sessions = t.app.get(SessionsService);
    ds = t.app.get(DataSource);
  });
  afterAll(async () => { await t.close(); });

  const lastAccessed = async (id: string) => (await ds.getRepository(Session).findOneByOrFail({ id })).lastAccessed.getTime();

  it('updates last_accessed at most once per interval, not on every request', async () => {
    const { session, token } = await sessions.create('ua', '127.0.0.1');
    const old = new Date(Date.now() - 120_000);
    await ds.getRepository(Session).update({ id: session.id }, { lastAccessed: old });
    await sessions.authenticate(token);
    await new Promise((r) => setTimeout(r, 50));
    const touched = await lastAccessed(session.id);
    expect(touched).toBeGreaterThan(old.getTime());
    await sessions.authenticate(token);
    await new Promise((r) => setTimeout(r, 50));
    expect(await lastAccessed(session.id)).toBe(touched);
  });

  it('reads a session row by its fixed SQL exactly as TypeORM reads it, and a missing one as null', async () => {
    const repo = ds.getRepository(Session);
    const raw = new RawSql(ds);
    const { session } = await sessions.create(undefined, '10.0.0.1');
    await repo.update({ id: session.id }, { revokedAt: new Date(Date.now() - 1234), userAgent: 'Mozilla/5.0 ünïcode' });
    const viaTypeOrm = await repo.findOneByOrFail({ id: session.id });
    const viaRaw = await raw.findById(Session, session.id);
    expect(viaRaw).toBeInstanceOf(Session);
    expect(viaRaw).toEqual(viaTypeOrm);
    expect(viaRaw!.lastAccessed).toBeInstanceOf(Date);
    expect(viaRaw!.revokedAt!.getTime()).toBe(viaTypeOrm.revokedAt!.getTime());
    expect(await raw.findById(Session, '00000000-0000-4000-8000-000000000000')).toBeNull();
  });

  it('refuses the token of a session whose row says revoked (by another instance), and a live one still works', async () => {
    const live = await sessions.create(undefined, undefined);
    const revoked = await sessions.create(undefined, undefined);
    // Revoked behind the service's back (as by another instance): the row says so.
    await ds.getRepository(Session).update({ id: revoked.session.id }, { revokedAt: new Date() });
    expect(await sessions.authenticate(revoked.token)).toBeNull();
    expect((await sessions.authenticate(live.token))?.id).toBe(live.session.id);
  });

  it('purges sessions inactive past the period with their conversations and messages, and keeps active ones', async () => {
    const conversations = t.app.get(ConversationsService);
    const stale = (await sessions.create(undefined, undefined)).session;
    const fresh = (await sessions.create(undefined, undefined)).session;
    const staleConv = await conversations.create(stale.id, 'old');
    await conversations.appendMessages(staleConv.id, [{ role: 'user', content: 'hi', status: 'complete' }]);
    const freshConv = await conversations.create(fresh.id, 'new');
    await ds.getRepository(Session).update({ id: stale.id }, { lastAccessed: new Date(Date.now() - 91 * 86_400_000) });

    expect(await t.app.get(SessionPurgeJob).run()).toBeGreaterThanOrEqual(1);
    expect(await ds.getRepository(Session).findOneBy({ id: stale.id })).toBeNull();
    expect((await conversations.page(staleConv.id, 10)).messages).toEqual([]);
    await expect(conversations.findOwned(stale.id, staleConv.id)).rejects.toMatchObject({ code: 'CONVERSATION_NOT_FOUND' });
    expect((await conversations.findOwned(fresh.id, freshConv.id)).title).toBe('new');
  });

  it('purges every idle session, batch after batch, and keeps one used again since it was listed', async () => {
    const conversations = t.app.get(ConversationsService);
    const idle = new Date(Date.now() - 91 * 86_400_000);
    const stale: string[] = [];
    for (let i = 0; i < 60; i++) {
      const { session } = await sessions.create(undefined, undefined);
      const c = await conversations.create(session.id, `old ${i}`);
      await conversations.appendMessages(c.id, [{ role: 'user', content: 'hi', status: 'complete' }]);
      stale.push(session.id);
    }
    await ds.getRepository(Session).update({ id: In(stale) }, { lastAccessed: idle });
    // One of them comes back between the listing and its turn.
    const back = stale[55];
    const listed = sessions.inactiveIds.bind(sessions);
    const spy = vi.spyOn(sessions, 'inactiveIds').mockImplementation(async (take, now) => {
      const ids = await listed(take, now);
      if (ids.includes(back)) await ds.getRepository(Session).update({ id: back }, { lastAccessed: new Date() });
      return ids;
    });
    try {
      expect(await t.app.get(SessionPurgeJob).run()).toBe(59);
      expect(spy.mock.calls.length).toBeGreaterThanOrEqual(2);
    } finally {
      spy.mockRestore();
    }
    expect(await ds.getRepository(Session).countBy({ id: In(stale) })).toBe(1);
    expect(await ds.getRepository(Session).existsBy({ id: back })).toBe(true);
    expect(await sessions.isInactive(back)).toBe(false);
  });

  it('gives concurrent appends distinct, gapless positions', async () => {
    const conversations = t.app.get(ConversationsService);
    const { session } = await sessions.create(undefined, undefined);
    const c = await conversations.create(session.id);
    await Promise.all(Array.from({ length: 10 }, (_, i) =>
      conversations.appendMessages(c.id, [{ role: 'user', content: `u${i}`, status: 'complete' }, { role: 'assistant', content: `a${i}`, status: 'streaming' }])));
    const page = await conversations.page(c.id, 100);
    expect(page.messages.map((m) => m.position)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect((await conversations.findOwned(session.id, c.id)).messageCount).toBe(20);
  });

  it('takes overlapping first messages and turns at once without a transaction error (SQLite queues them)', async () => {
    const conversations = t.app.get(ConversationsService);
    const { session } = await sessions.create(undefined, undefined);
    const turn = () => [{ role: 'user' as const, content: 'q', status: 'complete' as const }, { role: 'assistant' as const, content: '', status: 'complete' as const }];
    const created = await Promise.all(Array.from({ length: 10 }, () => conversations.createWithTurn(session.id, 'parallel', turn())));
    await Promise.all(created.map((c) => conversations.appendTurn(c.conversation.id, turn())));
    const again = await Promise.all(created.map((c) => conversations.page(c.conversation.id, 10)));
    expect(again.map((p) => p.messages.map((m) => m.position))).toEqual(created.map(() => [0, 1, 2, 3]));
  });

  it('returns the ids under which each appended message is stored', async () => {
    const conversations = t.app.get(ConversationsService);
    const { session } = await sessions.create(undefined, undefined);
    const c = await conversations.create(session.id);
    for (let i = 0; i < 10; i++) {
      const [user, reply] = await conversations.appendMessages(c.id, [
        { role: 'user', content: `question ${i}`, status: 'complete' },
        { role: 'assistant', content: `answer ${i}`, status: 'streaming' },
      ]);
      expect((await conversations.findMessage(user.id))?.content).toBe(`question ${i}`);
      expect((await conversations.findMessage(reply.id))?.content).toBe(`answer ${i}`);
    }
  });
});
