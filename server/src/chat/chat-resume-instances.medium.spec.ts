import { randomBytes } from 'node:crypto';
import { dialects } from '../testing/dialects.js';
import { type ChatHarness, createChatHarness } from '../testing/chat-harness.js';
import type { ReceivedEvent } from '../testing/sse-client.js';
import { waitFor } from '../testing/wait.js';
import { GenerationRegistry } from './generation-registry.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const words = (n: number): string[] => Array.from({ length: n }, (_, i) => `w${i} `);
const ids = (events: ReceivedEvent[]): (number | null)[] => events.map((e) => e.id);

// Two instances of one deployment (one PostgreSQL database, one Redis, one prefix). A client that
// resumed through the instance not running the answer with a Last-Event-ID at or past its end was
// held for half a lease, then told the answer was interrupted (SERVICE_UNAVAILABLE), although it
// had completed; the owner closes such a stream at once with nothing.
describe.runIf(dialects().includes('postgres'))('resuming an answer through another instance', () => {
  let a: ChatHarness;
  let b: ChatHarness;
  let alice: { token: string };
  beforeAll(async () => {
    const env = { REDIS_URL, REDIS_PREFIX: `test-${randomBytes(4).toString('hex')}:` };
    a = await createChatHarness('postgres', { ...env, INSTANCE_ID: 'resume-a' });
    const url = a.t.config.database.type === 'postgres' ? a.t.config.database.url : '';
    b = await createChatHarness('postgres', { ...env, INSTANCE_ID: 'resume-b', DATABASE_URL: url });
    alice = await a.t.newSession();
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  /** Waits until B knows the answer A runs (announced over Redis): B then follows it rather than rebuilding it from its row. */
  const knownOnB = (id: string): Promise<unknown> => waitFor('instance B to hear of the answer', () => b.t.app.get(GenerationRegistry).follow(id, -1), 2_000, 10);
  const resume = (h: ChatHarness, id: string, lastEventId: number | string): Promise<ReceivedEvent[]> =>
    h.get(alice.token, `/api/v1/chat/streams/${id}`, { 'last-event-id': String(lastEventId) }).all();

  it('closes at once with nothing for a Last-Event-ID at or past the end of a finished answer, as the owner does', async () => {
    a.fake.on('finished elsewhere', { tokens: ['All ', 'done'] });
    const events = await a.send(alice.token, { message: 'finished elsewhere' }).all();
    const id = events[0].data.message_id as string;
    const end = events.at(-1)!;
    expect(end.data).toMatchObject({ type: 'done', status: 'complete' });
    await knownOnB(id);
    for (const after of [end.id!, end.id! + 1, '99999999999']) {
      expect(await resume(a, id, after), `owner, after ${after}`).toEqual([]);
      const began = Date.now();
      expect(await resume(b, id, after), `other instance, after ${after}`).toEqual([]);
      expect(Date.now() - began).toBeLessThan(1_000);
    }
    // Before the end, B continues after the id, as the owner does.
    expect(await resume(b, id, end.id! - 1)).toEqual([end]);
  });

  it('refuses a Last-Event-ID beyond any id an event can have on either instance (it kept a resume on B open for ever)', async () => {
    a.fake.on('huge id', { tokens: ['Short'] });
    const id = (await a.send(alice.token, { message: 'huge id' }).all())[0].data.message_id as string;
    await knownOnB(id);
    for (const h of [a, b]) {
      for (const huge of ['99999999999999999999999', String(Number.MAX_SAFE_INTEGER + 1)]) {
        const res = await h.t.http().get(`/api/v1/chat/streams/${id}`).set('Authorization', `Bearer ${alice.token}`).set('Last-Event-ID', huge).expect(400);
        expect(res.body.error).toMatchObject({ code: 'VALIDATION_ERROR', details: expect.anything() });
      }
      expect(await resume(h, id, Number.MAX_SAFE_INTEGER)).toEqual([]);
    }
  });

  it('sends only the events after a Last-Event-ID past the current end of a running answer, and closes with it', async () => {
    a.fake.on('running elsewhere', { tokens: words(30), tokenDelayMs: 20 });
    const conn = a.send(alice.token, { message: 'running elsewhere' });
    await conn.until((e) => e.length >= 2);
    const id = conn.events[0].data.message_id as string;
    await knownOnB(id);
    const ahead = 20;
    const [ownerAhead, ownerFar, otherAhead, otherFar] = [resume(a, id, ahead), resume(a, id, '99999999999'), resume(b, id, ahead), resume(b, id, '99999999999')];
    const all = await conn.all();
    expect(all.at(-1)!.data).toMatchObject({ type: 'done', status: 'complete' });
    expect(all.at(-1)!.id).toBeGreaterThan(ahead);
    const after = all.filter((e) => e.id! > ahead);
    expect(await ownerAhead).toEqual(after);
    expect(await otherAhead).toEqual(after);
    expect(await ownerFar).toEqual([]);
    const ended = Date.now();
    expect(await otherFar).toEqual([]);
    expect(Date.now() - ended).toBeLessThan(1_000);
    expect(ids(after)[0]).toBe(ahead + 1);
  });
});
