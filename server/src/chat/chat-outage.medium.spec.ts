import { type ChatHarness, createChatHarness } from '../testing/chat-harness.js';
import { type CuttableProxy, postgresBehindProxy } from '../testing/cuttable-proxy.js';
import { dialects } from '../testing/dialects.js';
import { tokensOf } from '../testing/sse-client.js';
import { ChatMetrics } from './chat-metrics.js';

const hasPostgres = dialects().includes('postgres');
const TOKENS = Array.from({ length: 12 }, (_, i) => `word${i} `);

describe.runIf(hasPostgres)('a reply whose end comes while PostgreSQL is out of reach', () => {
  let h: ChatHarness;
  let proxy: CuttableProxy;
  let closeDb: () => Promise<void>;

  beforeAll(async () => {
    const db = await postgresBehindProxy();
    ({ proxy, close: closeDb } = db);
    // A short lease, swept often: the reply's lease runs out during the outage (its renewals fail).
    h = await createChatHarness('postgres', { DATABASE_URL: db.url, STREAM_LEASE_MS: '300', STREAM_LEASE_CHECK_INTERVAL_MS: '100' });
  });
  afterAll(async () => {
    await h?.close();
    await closeDb?.();
  });

  it('holds the final event until the reply is stored whole, then says complete', async () => {
    // It was announced `complete` at once, its write failed, and when the database came back this
    // instance's own lease sweep ended it `interrupted` with the text of the last flush before the outage.
    const { token } = await h.t.newSession();
    h.fake.on('outage at the end', { tokens: TOKENS, tokenDelayMs: 40 });
    const conn = h.send(token, { message: 'outage at the end' });
    await conn.until((events) => events.filter((e) => e.data.type === 'token').length >= 2);
    await proxy.down();
    await conn.until((events) => events.filter((e) => e.data.type === 'token').length === TOKENS.length);
    // The model has finished; the database is still out of reach: no final event yet.
    await new Promise((r) => setTimeout(r, 800));
    expect(conn.events.filter((e) => e.data.finished === true)).toEqual([]);
    const endedBefore = h.t.app.get(ChatMetrics).snapshot().generationsEnded;

    await proxy.up();
    const events = await conn.all();
    expect(events.at(-1)!.data).toMatchObject({ type: 'done', status: 'complete' });
    expect(tokensOf(events)).toBe(TOKENS.join(''));
    const id = events[0].data.message_id as string;
    // Longer than several sweeps: nothing ends it otherwise afterwards.
    await new Promise((r) => setTimeout(r, 400));
    expect(await h.message(id)).toMatchObject({ status: 'complete', content: TOKENS.join(''), leaseExpiresAt: null });
    const ended = h.t.app.get(ChatMetrics).snapshot().generationsEnded;
    expect([ended.complete - endedBefore.complete, ended.interrupted - endedBefore.interrupted]).toEqual([1, 0]);
  });
});
