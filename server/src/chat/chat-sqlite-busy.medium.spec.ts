import Database from 'better-sqlite3';
import { DataSource } from 'typeorm';
import { type ChatHarness, createChatHarness } from '../testing/chat-harness.js';
import { tokensOf } from '../testing/sse-client.js';
import { ChatMetrics } from './chat-metrics.js';

const TOKENS = Array.from({ length: 12 }, (_, i) => `word${i} `);

/**
 * SQLite's file held by another writer when a reply ends (a backup, a `sqlite3` shell left in a
 * transaction). The app waits SQLITE_BUSY out for 5 s in production; here its connection gives up at
 * once, so the retry path is reached without freezing the test's event loop.
 */
describe('a reply whose end comes while another writer holds the SQLite file', () => {
  let h: ChatHarness;
  let other: Database.Database | undefined;
  let file = '';

  beforeAll(async () => {
    h = await createChatHarness('sqlite');
    const conn = (h.t.app.get(DataSource).driver as unknown as { databaseConnection: Database.Database }).databaseConnection;
    conn.pragma('busy_timeout = 0');
    file = conn.name;
  });
  afterAll(async () => {
    if (other?.inTransaction) other.exec('ROLLBACK');
    other?.close();
    await h?.close();
  });

  it('stores the whole reply as complete once the file is free again', async () => {
    // Without the retry the row stayed `streaming` with the last flush's text, and the lease sweep
    // later ended it `interrupted`, though the client had been told `complete`.
    const { token } = await h.t.newSession();
    h.fake.on('busy at the end', { tokens: TOKENS, tokenDelayMs: 30 });
    const conn = h.send(token, { message: 'busy at the end' });
    await conn.until((events) => events.some((e) => e.data.type === 'token'));
    other = new Database(file);
    other.exec('BEGIN IMMEDIATE');

    const events = await conn.all();
    expect(events.at(-1)!.data).toMatchObject({ type: 'done', status: 'complete' });
    expect(tokensOf(events)).toBe(TOKENS.join(''));
    const id = events[0].data.message_id as string;
    // Two tries at least (250 ms apart) fail while the file is held.
    await new Promise((r) => setTimeout(r, 400));
    expect(await h.message(id)).toMatchObject({ status: 'streaming' });

    other.exec('ROLLBACK');
    const stored = await h.waitForRow(id, (m) => m.status !== 'streaming', 3_000);
    expect(stored).toMatchObject({ status: 'complete', content: TOKENS.join(''), leaseExpiresAt: null });
    expect(h.t.app.get(ChatMetrics).snapshot().generationsEnded.complete).toBe(1);
  });
});
