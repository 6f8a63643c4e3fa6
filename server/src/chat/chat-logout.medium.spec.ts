import { randomBytes } from 'node:crypto';
import { type ChatHarness, createChatHarness } from '../testing/chat-harness.js';
import { dialects } from '../testing/dialects.js';
import { type SseConnection, tokensOf } from '../testing/sse-client.js';
import { waitFor } from '../testing/wait.js';
import { GenerationRegistry } from './generation-registry.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const WORDS = Array.from({ length: 120 }, (_, i) => `w${i} `);

/** The answer `conn` streams ended as stopped, its row saved as stopped with what was sent, before the end. */
async function expectStopped(h: ChatHarness, conn: SseConnection): Promise<void> {
  const events = await conn.all();
  const id = events[0].data.message_id as string;
  expect(events.at(-1)!.data).toMatchObject({ type: 'done', status: 'stopped' });
  const row = await h.waitForRow(id, (m) => m.status !== 'streaming');
  expect(row.status).toBe('stopped');
  expect(row.content).toBe(tokensOf(events));
  expect(row.content.length).toBeGreaterThan(0);
  expect(row.content.length).toBeLessThan(WORDS.join('').length);
}

/**
 * Logging out ends the session's answers still generating: nobody can read them any more (the token
 * is refused from then on), and the model would go on, and be paid for, to the end of each. They
 * are saved as stopped, with what was written; another session's answer runs on.
 */
describe.each(dialects())('logging out while answers stream, on %s', (dialect) => {
  let h: ChatHarness;
  beforeAll(async () => { h = await createChatHarness(dialect); });
  afterAll(async () => { await h.close(); });

  it("stops the session's running answers (saved as stopped, its streams ended) and leaves another session's", async () => {
    const [alice, bob] = [await h.t.newSession(), await h.t.newSession()];
    h.fake.on('a long answer', { tokens: WORDS, tokenDelayMs: 15 });
    const mine = [h.send(alice.token, { message: 'a long answer' }), h.send(alice.token, { message: 'a long answer' })];
    const theirs = h.send(bob.token, { message: 'a long answer' });
    for (const conn of [...mine, theirs]) await conn.until((events) => events.length >= 4);

    await h.t.http().delete('/api/v1/sessions/current').set('Authorization', `Bearer ${alice.token}`).expect(204);

    for (const conn of mine) await expectStopped(h, conn);
    // Bob's answer was not touched: it runs on to its end.
    expect((await theirs.all()).at(-1)!.data).toMatchObject({ type: 'done', status: 'complete' });
  });
});

// Two instances of one deployment (one PostgreSQL database, one Redis): the logout reaches the instance running the answer.
describe.runIf(dialects().includes('postgres'))('logging out through another instance than the one running the answer', () => {
  let a: ChatHarness;
  let b: ChatHarness;
  beforeAll(async () => {
    const env = { REDIS_URL, REDIS_PREFIX: `test-${randomBytes(4).toString('hex')}:` };
    a = await createChatHarness('postgres', { ...env, INSTANCE_ID: 'logout-a' });
    const url = a.t.config.database.type === 'postgres' ? a.t.config.database.url : '';
    b = await createChatHarness('postgres', { ...env, INSTANCE_ID: 'logout-b', DATABASE_URL: url });
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  it('stops the answer on the instance running it, and the stream read through the other instance ends too', async () => {
    const alice = await a.t.newSession();
    a.fake.on('a long answer', { tokens: WORDS, tokenDelayMs: 15 });
    const owner = a.send(alice.token, { message: 'a long answer' });
    const [start] = await owner.until((events) => events.length >= 3);
    const id = start.data.message_id as string;
    await waitFor('instance B to hear of the answer', () => b.t.app.get(GenerationRegistry).follow(id, -1), 2_000, 10);
    const follower = b.get(alice.token, `/api/v1/chat/streams/${id}`);
    await follower.until((events) => events.length >= 3);

    await b.t.http().delete('/api/v1/sessions/current').set('Authorization', `Bearer ${alice.token}`).expect(204);

    await expectStopped(a, owner);
    expect((await follower.all()).at(-1)!.data).toMatchObject({ type: 'done', status: 'stopped' });
  });
});
