import { DataSource } from 'typeorm';
import { RawSql } from '../database/raw-sql.js';
import { SessionsService } from '../sessions/sessions.service.js';
import { dialects } from '../testing/dialects.js';
import { createTestApp, type TestApp } from '../testing/test-app.js';
import { ConversationsService, EXPIRED_STREAMING, type MessageDraft, STREAMING_IN } from './conversations.service.js';
import { Message } from './message.entity.js';

/**
 * The lease and idempotency indexes of `messages` are partial (migration PartialMessageIndexes):
 * TypeORM's schema diff does not compare an index's WHERE, so their definitions are checked here,
 * and the statements that need the lease index are checked to be planned on it (a bound status
 * could not be matched against the index's condition: SQLite then read a conversation's messages one by one).
 */
describe.each(dialects())('the partial indexes of messages on %s', (dialect) => {
  let t: TestApp;
  let ds: DataSource;
  let raw: RawSql;
  let conversations: ConversationsService;
  beforeAll(async () => {
    t = await createTestApp(dialect);
    ds = t.app.get(DataSource);
    raw = new RawSql(ds);
    conversations = t.app.get(ConversationsService);
  });
  afterAll(async () => { await t.close(); });

  async function definition(name: string): Promise<string> {
    const rows: Array<{ sql: string }> = dialect === 'sqlite'
      ? await ds.query('SELECT sql FROM sqlite_master WHERE type = \'index\' AND name = ?', [name])
      : await ds.query('SELECT indexdef AS sql FROM pg_indexes WHERE indexname = $1', [name]);
    expect(rows).toHaveLength(1);
    return rows[0].sql.replace(/"/g, '');
  }

  /** The plan the database makes for `sql` with `params`, as one text (its index names included). */
  async function plan(sql: string, params: unknown[]): Promise<string> {
    if (dialect === 'sqlite') {
      const rows: Array<{ detail: string }> = await ds.query(`EXPLAIN QUERY PLAN ${sql}`, params);
      return rows.map((r) => r.detail).join('\n');
    }
    // Without sequential scans: on a table this small PostgreSQL would read it whole anyway; the
    // question is which index it can use.
    return ds.transaction(async (em) => {
      await em.query('SET LOCAL enable_seqscan = off');
      const rows: Array<{ 'QUERY PLAN': string }> = await em.query(`EXPLAIN ${sql}`, params);
      return rows.map((r) => r['QUERY PLAN']).join('\n');
    });
  }

  it('hold only the rows their queries look for: streaming replies, messages sent with an Idempotency-Key', async () => {
    expect(await definition('idx_messages_streaming_lease')).toMatch(/\(status, lease_expires_at\) WHERE \(?\(?status\)?(::text)? = 'streaming'/);
    expect(await definition('idx_messages_idempotency')).toMatch(/\(conversation_id, idempotency_key\) WHERE \(?idempotency_key IS NOT NULL\)?/);
  });

  it("plan the busy check and the lease sweep on the lease index, a long conversation's other messages unread", async () => {
    const { session } = await t.app.get(SessionsService).create(undefined, undefined);
    const conv = await conversations.create(session.id, 'long');
    const done: MessageDraft[] = Array.from({ length: 400 }, (_, i) => ({ role: i % 2 === 0 ? 'user' : 'assistant', content: `m${i}`, status: 'complete' }));
    await conversations.appendTurn(conv.id, done);
    await conversations.appendTurn(conv.id, [{ role: 'assistant', content: '', status: 'streaming', leaseExpiresAt: new Date(Date.now() + 30_000) }]);
    await ds.query(dialect === 'sqlite' ? 'ANALYZE' : 'ANALYZE messages');
    const now = raw.param(Message, 'leaseExpiresAt', new Date());

    const busy = await plan(raw.textOf(Message, 'streaming-in', STREAMING_IN), [conv.id, now]);
    expect(busy).toContain('idx_messages_streaming_lease');
    const sweep = await plan(raw.textOf(Message, 'expired-streaming', EXPIRED_STREAMING), [now, raw.param(Message, 'leaseExpiresAt', new Date(Date.now() + 90_000)), 100]);
    expect(sweep).toContain('idx_messages_streaming_lease');

    // And they still find what they look for.
    await expect(conversations.appendTurn(conv.id, [{ role: 'user', content: 'again', status: 'complete' }])).rejects.toMatchObject({ code: 'GENERATION_IN_PROGRESS' });
    const expired = await conversations.findExpiredStreaming(new Date(Date.now() + 60_000));
    expect(expired.map((m) => m.conversationId)).toContain(conv.id);
  });
});
