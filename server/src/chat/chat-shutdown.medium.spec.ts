import { randomBytes } from 'node:crypto';
import { ShutdownService } from '../health/shutdown.service.js';
import { dialects } from '../testing/dialects.js';
import { type ChatHarness, createChatHarness } from '../testing/chat-harness.js';
import { type ReceivedEvent, tokensOf } from '../testing/sse-client.js';
import { waitFor } from '../testing/wait.js';
import { GenerationRegistry } from './generation-registry.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const GRACE_MS = 300;
const words = (n: number): string[] => Array.from({ length: n }, (_, i) => `w${i} `);
const ids = (events: ReceivedEvent[]): (number | null)[] => events.map((e) => e.id);

/** What main.ts does on SIGTERM: drain, then close; resolves with how long it took, or rejects past `limitMs`. */
async function stopLikeSigterm(h: ChatHarness, limitMs: number): Promise<number> {
  const began = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const stopped = (async () => {
    await h.t.app.get(ShutdownService).drain();
    await h.t.app.close();
  })();
  try {
    await Promise.race([stopped, new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`not stopped after ${limitMs} ms`)), limitMs); })]);
  } finally {
    clearTimeout(timer);
  }
  return Date.now() - began;
}

// An instance that is told to stop while a client follows, through it, an answer another
// instance generates: its drain waited for its own generations only, so the follower's stream
// stayed open, app.close() waited for it, and main.ts's watchdog ended the process with exit 1.
describe.runIf(dialects().includes('postgres'))('SIGTERM with a stream following another instance\'s answer', () => {
  let a: ChatHarness;
  let b: ChatHarness | undefined;
  let alice: { token: string };
  beforeAll(async () => {
    const env = { REDIS_URL, REDIS_PREFIX: `test-${randomBytes(4).toString('hex')}:`, SHUTDOWN_GRACE_MS: String(GRACE_MS) };
    a = await createChatHarness('postgres', { ...env, INSTANCE_ID: 'shutdown-a' });
    const url = a.t.config.database.type === 'postgres' ? a.t.config.database.url : '';
    b = await createChatHarness('postgres', { ...env, INSTANCE_ID: 'shutdown-b', DATABASE_URL: url });
    alice = await a.t.newSession();
  });
  afterAll(async () => {
    // B is closed by the test; after a failure, A closes first: its answer ends, and B's stream with it.
    await a?.close();
    await b?.close();
  });

  it('ends the follower\'s stream cleanly and stops within the grace period; the client resumes on the owner without gap', async () => {
    const tokens = words(250);
    a.fake.on('long elsewhere', { tokens, tokenDelayMs: 20 });
    const owner = a.send(alice.token, { message: 'long elsewhere' });
    await owner.until((e) => e.length >= 2);
    const id = owner.events[0].data.message_id as string;
    await waitFor('instance B to hear of the answer', () => b!.t.app.get(GenerationRegistry).follow(id, -1), 2_000, 10);
    const follower = b!.get(alice.token, `/api/v1/chat/streams/${id}`);
    await follower.until((e) => e.length >= 5);

    const took = await stopLikeSigterm(b!, GRACE_MS + 3_000);
    const stopped = b!;
    b = undefined;
    await stopped.fake.stop();
    await stopped.t.db.cleanup();
    const cut = await follower.all();
    expect(took).toBeLessThan(GRACE_MS + 1_500);
    // A clean end of the body with no final event: the client reconnects after its last id.
    expect(cut.some((e) => e.data.finished === true)).toBe(false);
    expect(follower.isComplete).toBe(true);
    const lastId = cut.at(-1)!.id!;
    const rest = await a.get(alice.token, `/api/v1/chat/streams/${id}`, { 'last-event-id': String(lastId) }).all();
    const all = [...cut, ...rest];
    expect(ids(all)).toEqual(all.map((_, i) => i));
    expect(tokensOf(all)).toBe(tokens.join(''));
    expect(all.at(-1)!.data).toMatchObject({ type: 'done', status: 'complete' });
    await owner.all();
  }, 30_000);
});

describe.each(dialects())('SIGTERM with streams of this instance\'s own answer on %s', (dialect) => {
  it('ends them with their final event, not cut before it: the open streams are ended after the generations drained', async () => {
    const h = await createChatHarness(dialect, { SHUTDOWN_GRACE_MS: String(GRACE_MS) });
    try {
      const { token } = await h.t.newSession();
      h.fake.on('long here', { tokens: words(400), tokenDelayMs: 20 });
      const sender = h.send(token, { message: 'long here' });
      await sender.until((e) => e.length >= 2);
      const follower = h.get(token, `/api/v1/chat/streams/${sender.events[0].data.message_id as string}`);
      await follower.until((e) => e.length >= 3);
      const took = await stopLikeSigterm(h, GRACE_MS + 3_000);
      expect(took).toBeGreaterThanOrEqual(GRACE_MS - 50);
      expect(took).toBeLessThan(GRACE_MS + 1_500);
      for (const conn of [sender, follower]) {
        expect((await conn.all()).at(-1)!.data).toMatchObject({ type: 'error', status: 'interrupted', code: 'SERVICE_UNAVAILABLE' });
        expect(conn.isComplete).toBe(true);
      }
    } finally {
      await h.fake.stop();
      await h.t.db.cleanup();
    }
  }, 30_000);
});
