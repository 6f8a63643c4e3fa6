import { randomBytes, randomUUID } from 'node:crypto';
import { Logger } from '@nestjs/common';
import { lastValueFrom, take, toArray } from 'rxjs';
import type { AppConfig } from '../config/app-config.js';
import { RedisConnection } from '../redis/redis-connection.js';
import type { ChatEvent, SequencedEvent } from './chat-events.js';
import { REDIS_EVENTS_PER_WRITE, RedisGenerationRegistry } from './redis-generation-registry.js';
import { waitFor } from '../testing/wait.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

const token = (t: string): ChatEvent => ({ type: 'token', token: t, finished: false, timestamp: new Date().toISOString() });
const start = (id: string): ChatEvent => ({ type: 'start', conversation_id: 'c', user_message_id: 'u', message_id: id, provider: 'offline', model: 'm', finished: false });
const done = (id: string): ChatEvent => ({ type: 'done', finished: true, message_id: id, status: 'complete', finish_reason: 'stop', usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 } });
const ids = (events: SequencedEvent[]): number[] => events.map((e) => e.id);

/** Polls until `fn` gives a value (every 10 ms, for at most 2 s). */
const until = <T>(fn: () => T | undefined): Promise<T> => waitFor('the other instance', fn, 2_000, 10);

/** Resolves once `follower` hears `owner`'s announcements (a new instance subscribes in the background). */
async function hears(owner: RedisGenerationRegistry, follower: RedisGenerationRegistry): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const probe = randomUUID();
    owner.open(probe, `conv-${probe}`);
    owner.publish(probe, done(probe));
    await owner.flush();
    await new Promise((resolve) => setTimeout(resolve, 20));
    if (follower.follow(probe, 0)) return;
  }
  throw new Error('the follower never heard the owner');
}

describe('RedisGenerationRegistry (two instances, real Redis)', () => {
  /** This run's REDIS_PREFIX (a deployment of its own); the registry's keys are under `${prefix}gen:`. */
  const prefix = `parley:test:${randomBytes(6).toString('hex')}:`;
  const connections: RedisConnection[] = [];
  const registries: RedisGenerationRegistry[] = [];

  async function instance(name: string, leaseMs = 2_000, retentionMs = 60_000, maxRetained?: number, redisPrefix = prefix): Promise<RedisGenerationRegistry> {
    const conn = new RedisConnection({ redisUrl: REDIS_URL, redisPrefix, instanceId: name } as AppConfig);
    await conn.onModuleInit();
    const registry = new RedisGenerationRegistry(conn, { instanceId: name, leaseMs, retentionMs, maxRetained });
    await registry.onModuleInit();
    connections.push(conn);
    registries.push(registry);
    return registry;
  }

  afterAll(async () => {
    for (const r of registries) await r.onApplicationShutdown();
    const keys = await connections[0].client!.keys(`${prefix}*`);
    if (keys.length > 0) await connections[0].client!.del(...keys);
    for (const c of connections) await c.onApplicationShutdown();
  });

  it('replays and continues a generation of instance A through instance B, without gap or duplicate', async () => {
    const a = await instance('a1');
    const b = await instance('b1');
    await hears(a, b);
    const id = randomUUID();
    a.open(id, 'conv-1');
    a.publish(id, start(id));
    a.publish(id, token('Hel'));
    a.publish(id, token('lo'));
    await a.flush();
    const fromB = await until(() => b.follow(id, 0));
    const received = lastValueFrom(fromB.pipe(toArray()));
    const first = lastValueFrom(fromB.pipe(take(2), toArray())); // a second follower on B
    // The generation's own way to publish a token: mirrored to Redis like the others.
    for (let i = 0; i < 20; i++) a.publishToken(id, ` t${i}`, Date.now());
    a.publish(id, done(id));
    const events = await received;
    expect(ids(events)).toEqual(Array.from({ length: 23 }, (_, i) => i + 1));
    expect(events.map((e) => (e.event.type === 'token' ? e.event.token : '')).join('')).toBe(`Hello${Array.from({ length: 20 }, (_, i) => ` t${i}`).join('')}`);
    expect(events.at(-1)?.event.type).toBe('done');
    expect(ids(await first)).toEqual([1, 2]);
    // After the end, B replays from Redis too (a reconnect with Last-Event-ID).
    expect(ids(await lastValueFrom(b.follow(id, 20)!.pipe(toArray())))).toEqual([21, 22, 23]);
  });

  it('ends a follower\'s stream on B at once, with nothing, for a Last-Event-ID at or past the end of a finished answer', async () => {
    // A lease long enough that the liveness check cannot end the stream within the test.
    const a = await instance('a10', 20_000);
    const b = await instance('b10', 20_000);
    await hears(a, b);
    const id = randomUUID();
    a.open(id, 'conv-10');
    a.publish(id, start(id));
    a.publish(id, token('all'));
    a.publish(id, done(id));
    await a.flush();
    await until(() => b.follow(id, -1));
    // As the owner answers: nothing after the id, and closed.
    for (const after of [2, 3, 999_999_999]) {
      expect(await lastValueFrom(a.follow(id, after)!.pipe(toArray())), `owner, after ${after}`).toEqual([]);
      const began = Date.now();
      expect(await lastValueFrom(b.follow(id, after)!.pipe(toArray())), `follower, after ${after}`).toEqual([]);
      expect(Date.now() - began).toBeLessThan(1_000);
    }
    expect(ids(await lastValueFrom(b.follow(id, 1)!.pipe(toArray())))).toEqual([2]);
  });

  it('sends a follower on B of a running answer only the events after a Last-Event-ID it has not reached yet, and ends with the answer', async () => {
    const a = await instance('a11', 20_000);
    const b = await instance('b11', 20_000);
    await hears(a, b);
    const id = randomUUID();
    a.open(id, 'conv-11');
    a.publish(id, start(id));
    a.publish(id, token('a'));
    await a.flush();
    await until(() => b.follow(id, -1));
    const follow = (r: RedisGenerationRegistry, after: number): Promise<SequencedEvent[]> => lastValueFrom(r.follow(id, after)!.pipe(toArray()));
    const [ownerAhead, ownerFar, ahead, far] = [follow(a, 3), follow(a, 999_999_999), follow(b, 3), follow(b, 999_999_999)];
    // B's followers are subscribed once their replay is read: then the rest comes live.
    await new Promise((r) => setTimeout(r, 100));
    for (const t of ['b', 'c', 'd']) a.publish(id, token(t));
    a.publish(id, done(id));
    const began = Date.now();
    expect(ids(await ownerAhead)).toEqual([4, 5]);
    expect(await ownerFar).toEqual([]);
    expect(ids(await ahead)).toEqual([4, 5]);
    expect(await far).toEqual([]);
    expect(Date.now() - began).toBeLessThan(1_000);
  });

  it('writes a long answer in a few transactions, and all of it again (past 125,000 events) to a Redis that lost it', async () => {
    const a = await instance('a12');
    const redis = connections.at(-1)!.client!;
    const transactions = vi.spyOn(redis, 'multi');
    const id = randomUUID();
    a.open(id, 'conv-12');
    a.publish(id, start(id));
    const count = 150_000;
    for (let i = 0; i < count; i++) a.publishToken(id, 'w', Date.now());
    a.publish(id, done(id));
    await a.flush();
    const key = `${prefix}gen:{${id}}:events`;
    expect(await redis.llen(key)).toBe(count + 2);
    // One per event was 150,002: now the open, the first event, then the rest as it piled up, at most
    // REDIS_EVENTS_PER_WRITE a transaction (a bigger one held the liveness renewals back past a lease).
    expect(transactions.mock.calls.length).toBeLessThan(count / REDIS_EVENTS_PER_WRITE + 10);
    transactions.mockRestore();
    // Redis restarted empty: the owner writes the whole answer again (one RPUSH of every event threw RangeError).
    const warnings = vi.spyOn(Logger.prototype, 'warn');
    await redis.del(key);
    redis.emit('ready');
    await a.flush();
    expect(warnings.mock.calls.map((c) => c.at(-1))).not.toContain('Redis write failed; will resync');
    warnings.mockRestore();
    expect(await redis.llen(key)).toBe(count + 2);
    expect(JSON.parse((await redis.lindex(key, -1))!)).toMatchObject({ id: count + 1, event: { type: 'done' } });
    await redis.del(key);
  });

  it('writes running answers to Redis a sync tick at a time, not a transaction per token; a follower elsewhere still gets every event', async () => {
    const a = await instance('a19');
    const b = await instance('b19');
    await hears(a, b);
    const redis = connections.at(-2)!.client!;
    const transactions = vi.spyOn(redis, 'multi');
    const generations = Array.from({ length: 20 }, () => randomUUID());
    for (const id of generations) {
      a.open(id, `conv-${id}`);
      a.publish(id, start(id));
    }
    const followed = lastValueFrom((await until(() => b.follow(generations[0], -1))).pipe(toArray()));
    // 40 tokens each, 5 ms apart (200 ms): each a transaction of its own was some 800 (Redis answers within 5 ms).
    const began = Date.now();
    for (let i = 0; i < 40; i++) {
      for (const id of generations) a.publishToken(id, `w${i} `, Date.now());
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    for (const id of generations) a.publish(id, done(id));
    await a.flush();
    // Per generation: its open, one per 50 ms tick while it ran, its end, and the liveness renewals (every lease / 3).
    const elapsed = Date.now() - began;
    const perGeneration = 2 + Math.ceil(elapsed / 50) + 1 + Math.ceil(elapsed / (2_000 / 3)) + 1;
    expect(transactions.mock.calls.length).toBeLessThanOrEqual(generations.length * perGeneration);
    transactions.mockRestore();
    const events = await followed;
    expect(ids(events)).toEqual(Array.from({ length: 42 }, (_, i) => i));
    expect(events.filter((e) => e.event.type === 'token').map((e) => (e.event as { token: string }).token).join(''))
      .toBe(Array.from({ length: 40 }, (_, i) => `w${i} `).join(''));
    for (const id of generations) expect(await redis.llen(`${prefix}gen:{${id}}:events`)).toBe(42);
  });

  it('writes the events waiting for the sync tick when flushed (shutdown), without waiting for the tick', async () => {
    const a = await instance('a20');
    const redis = connections.at(-1)!.client!;
    const id = randomUUID();
    a.open(id, 'conv-20');
    a.publish(id, start(id));
    for (const t of ['one ', 'two ', 'three']) a.publishToken(id, t, Date.now());
    await a.flush();
    expect(await redis.llen(`${prefix}gen:{${id}}:events`)).toBe(4);
  });

  it('warns once per generation while its writes fail, not at every event; again after it recovered and failed anew', async () => {
    const a = await instance('a15', 20_000);
    const redis = connections.at(-1)!.client!;
    const id = randomUUID();
    a.open(id, 'conv-15');
    a.publish(id, start(id));
    await a.flush();
    const multi = redis.multi.bind(redis);
    const failing = vi.spyOn(redis, 'multi').mockImplementation(((...args: Parameters<typeof redis.multi>) => {
      const m = multi(...args);
      m.exec = () => Promise.reject(new Error('Redis is away'));
      return m;
    }));
    const warnings = vi.spyOn(Logger.prototype, 'warn');
    const told = () => warnings.mock.calls.filter((c) => c.at(-1) === 'Redis write failed; will resync').length;
    for (let i = 0; i < 20; i++) {
      a.publishToken(id, `t${i}`, Date.now());
      await a.flush();
    }
    expect(told()).toBe(1);
    failing.mockRestore();
    a.publishToken(id, 'back', Date.now());
    await a.flush();
    expect(await redis.llen(`${prefix}gen:{${id}}:events`)).toBe(22);
    vi.spyOn(redis, 'multi').mockImplementation((() => { throw new Error('Redis is away again'); }));
    a.publishToken(id, 'lost', Date.now());
    await a.flush();
    expect(told()).toBe(2);
    vi.restoreAllMocks();
    a.publish(id, done(id));
    await a.flush();
  });

  it('lets a reader on B that pauses take up a long answer where it is, reading each event from Redis about once', async () => {
    const a = await instance('a13', 20_000);
    const b = await instance('b13', 20_000);
    const redisB = connections.at(-1)!.client!;
    await hears(a, b);
    const id = randomUUID();
    a.open(id, 'conv-13');
    a.publish(id, start(id));
    const count = 20_000;
    for (let i = 0; i < count; i++) a.publishToken(id, ` ${i}`, Date.now());
    a.publish(id, done(id));
    await a.flush();
    const reads = vi.spyOn(redisB, 'lrange');
    // A reader that takes 500 events, pauses (unsubscribes), and goes on after the last it has: as the SSE writer does.
    const got: number[] = [];
    let source = await until(() => b.follow(id, -1));
    for (let round = 0; round < 100; round++) {
      const chunk = await lastValueFrom(source.pipe(take(500), toArray()), { defaultValue: [] });
      got.push(...ids(chunk));
      if (chunk.length < 500 || chunk.at(-1)!.event.finished) break;
      source = source.after!(chunk.at(-1)!.id);
    }
    expect(got).toEqual(Array.from({ length: count + 2 }, (_, i) => i));
    const rows = (await Promise.all(reads.mock.results.map((r) => r.value as Promise<string[]>))).reduce((n, page) => n + page.length, 0);
    reads.mockRestore();
    // Reading the rest of the list at each of the 41 resumptions read ~420,000 rows.
    expect(rows).toBeLessThan(2 * count);
  });

  it('keeps a finished answer alive for B while the owner is still writing its end to Redis (no invented interruption)', async () => {
    const a = await instance('a14', 300);
    const b = await instance('b14', 300);
    await hears(a, b);
    const id = randomUUID();
    a.open(id, 'conv-14');
    a.publish(id, start(id));
    await a.flush();
    const events = lastValueFrom((await until(() => b.follow(id, -1))).pipe(toArray()));
    // Finished here at once, while Redis takes well over a lease to be given all of it.
    const count = 60_000;
    for (let i = 0; i < count; i++) a.publishToken(id, 'x', Date.now());
    a.publish(id, done(id));
    const got = await events;
    expect(got.at(-1)?.event).toMatchObject({ type: 'done', status: 'complete' });
    expect(ids(got)).toEqual(Array.from({ length: count + 2 }, (_, i) => i));
  });

  it('knows the active generation of a conversation on every instance, until its final event', async () => {
    const a = await instance('a2');
    const b = await instance('b2');
    await hears(a, b);
    const id = randomUUID();
    a.open(id, 'conv-2');
    a.publish(id, start(id));
    await until(() => b.activeIn('conv-2'));
    a.publish(id, done(id));
    await until(() => (b.activeIn('conv-2') === undefined ? true : undefined));
    expect(b.follow(randomUUID(), -1)).toBeUndefined();
  });

  it('forwards a stop request from B to the owner A', async () => {
    const a = await instance('a3');
    const b = await instance('b3');
    await hears(a, b);
    const id = randomUUID();
    a.open(id, 'conv-3');
    let stopped = false;
    a.onStopRequest(id, () => { stopped = true; });
    a.publish(id, start(id));
    await until(() => b.activeIn('conv-3'));
    expect(b.requestStop(id)).toBe(true);
    await until(() => (stopped ? true : undefined));
  });

  it('lets an instance that starts later follow a running generation', async () => {
    const a = await instance('a4');
    const id = randomUUID();
    a.open(id, 'conv-4');
    a.publish(id, start(id));
    a.publish(id, token('x'));
    await a.flush();
    const warnings = vi.spyOn(Logger.prototype, 'warn');
    const late = await instance('late4');
    const events = lastValueFrom(late.follow(id, -1)!.pipe(toArray()));
    a.publish(id, done(id));
    expect(ids(await events)).toEqual([0, 1, 2]);
    // Its subscriber connection came up without a failure: with ioredis' ready check on it, the
    // SUBSCRIBEs sent while connecting made the check's INFO fail ("Connection in subscriber mode").
    expect(warnings.mock.calls.map((c) => c.at(-1))).not.toContain('could not subscribe');
    expect(warnings.mock.calls.map((c) => c.at(-1))).not.toContain('Redis subscriber error');
    warnings.mockRestore();
  });

  it('ends a follower\'s stream as interrupted when the owner dies without a final event', async () => {
    const a = await instance('a5', 300);
    const b = await instance('b5', 300);
    const id = randomUUID();
    a.open(id, 'conv-5');
    a.publish(id, start(id));
    a.publish(id, token('partial'));
    await a.flush();
    const events = lastValueFrom((await until(() => b.follow(id, -1))).pipe(toArray()));
    await a.onApplicationShutdown(); // stops renewing its liveness key, as a killed process would
    const got = await events;
    expect(ids(got)).toEqual([0, 1, 2]);
    expect(got.at(-1)?.event).toMatchObject({ type: 'error', status: 'interrupted', code: 'SERVICE_UNAVAILABLE' });
  });

  it('ends a follower\'s stream (no final event, a cut) when Redis refuses to give its events, rather than leaving it open for ever', async () => {
    const a = await instance('a5r', 300);
    const b = await instance('b5r', 300);
    const redis = connections.at(-1)!.client!;
    const errors = vi.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    const id = randomUUID();
    a.open(id, 'conv-5r');
    a.publish(id, start(id));
    a.publish(id, token('partial'));
    await a.flush();
    const followed = (await until(() => b.follow(id, -1)));
    const seen: SequencedEvent[] = [];
    const ended = new Promise<unknown>((resolve, reject) => {
      followed.subscribe({ next: (e) => seen.push(e), error: resolve, complete: () => reject(new Error('completed, as if the answer had ended')) });
    });
    await until(() => (seen.length === 2 ? true : undefined));
    // Its events' list becomes a string (as another program writing that key would leave it): every LRANGE is WRONGTYPE.
    await redis.set(`${prefix}gen:{${id}}:events`, 'not a list');
    const err = await ended;
    expect(String(err)).toMatch(/WRONGTYPE/);
    expect(ids(seen)).toEqual([0, 1]);
    expect(errors).toHaveBeenCalledWith(expect.objectContaining({ messageId: id }), expect.stringMatching(/refuses/));
    errors.mockRestore();
    await redis.del(`${prefix}gen:{${id}}:events`);
    a.publish(id, done(id));
    await a.flush();
  });

  it('forgets finished generations after their retention: keys expire and the index does not grow', async () => {
    const a = await instance('a6', 2_000, 150);
    const redis = connections.at(-1)!.client!;
    const old = randomUUID();
    a.open(old, 'conv-6');
    a.publish(old, start(old));
    a.publish(old, done(old));
    await a.flush();
    expect(await redis.zscore(`${prefix}gen:index`, old)).not.toBeNull();
    await new Promise((r) => setTimeout(r, 300));
    const next = randomUUID();
    a.open(next, 'conv-6b');
    await a.flush();
    expect(await redis.zscore(`${prefix}gen:index`, old)).toBeNull();
    expect(await redis.exists(`${prefix}gen:{${old}}:events`, `${prefix}gen:{${old}}:meta`)).toBe(0);
  });

  it('forgets a deleted conversation\'s answers on every instance and in Redis at once; a running one as its owner finishes it', async () => {
    const a = await instance('a-forget');
    const b = await instance('b-forget');
    await hears(a, b);
    const redis = connections.at(-1)!.client!;
    const keysOf = (id: string): string[] => [`${prefix}gen:{${id}}:events`, `${prefix}gen:{${id}}:meta`, `${prefix}gen:{${id}}:alive`];
    const conv = `conv-forget-${randomUUID()}`;
    const gone = randomUUID();
    const kept = randomUUID();
    const running = randomUUID();
    for (const [id, c] of [[gone, conv], [kept, `${conv}-other`]]) {
      a.open(id, c);
      [start(id), token('secret words'), done(id)].forEach((e) => a.publish(id, e));
    }
    a.open(running, conv);
    a.publish(running, start(running));
    a.publish(running, token('still going'));
    await a.flush();
    await until(() => b.follow(gone, -1));
    expect(await redis.exists(...keysOf(gone))).toBe(2);

    const live = lastValueFrom(b.follow(running, 0)!.pipe(take(2), toArray()));
    await b.forgetConversation(conv);
    expect(await redis.exists(...keysOf(gone))).toBe(0);
    expect(await redis.zscore(`${prefix}gen:index`, gone)).toBeNull();
    expect(b.follow(gone, -1)).toBeUndefined();
    await until(() => (a.follow(gone, -1) === undefined ? true : undefined));
    expect(await redis.exists(...keysOf(kept))).toBe(2);
    expect(a.follow(kept, -1)).toBeDefined();

    // The running answer is neither cut nor erased under its readers: it ends, then its keys go.
    expect(await redis.exists(...keysOf(running))).toBe(3);
    a.publish(running, done(running));
    expect((await live).map((e) => e.event.type)).toEqual(['token', 'done']);
    await a.flush();
    await until(async () => ((await redis.exists(...keysOf(running))) === 0 ? true : undefined));
    expect(a.follow(running, -1)).toBeUndefined();
    expect(await redis.smembers(`${prefix}gen:conv:${conv}`)).toEqual([]);
  });

  it('keeps its own copy of at most maxRetained finished answers: a Redis that lost them gets the newest back', async () => {
    const a = await instance('a7', 2_000, 60_000, 2);
    const redis = connections.at(-1)!.client!;
    const answers = [randomUUID(), randomUUID(), randomUUID()];
    for (const id of answers) {
      a.open(id, `conv-${id}`);
      a.publish(id, start(id));
      a.publish(id, token('words'));
      a.publish(id, done(id));
      await a.flush();
    }
    const events = (id: string): string => `${prefix}gen:{${id}}:events`;
    expect(await redis.exists(...answers.map(events))).toBe(3);
    // Redis restarted empty: the owner writes again what it still holds.
    await redis.del(...answers.flatMap((id) => [events(id), `${prefix}gen:{${id}}:meta`]));
    redis.emit('ready');
    await a.flush();
    expect(await Promise.all(answers.map((id) => redis.llen(events(id))))).toEqual([0, 3, 3]);
    // The newest are still replayed exactly.
    expect(ids(await lastValueFrom(a.follow(answers[2], 0)!.pipe(toArray())))).toEqual([1, 2]);
  });

  it('a follower forgets others\' finished generations beyond maxRetained and after the retention, running ones never', async () => {
    const owner = await instance('a8', 2_000, 60_000, 100);
    // Running before the follower starts: it learns of it from the index, at its start.
    const running = randomUUID();
    owner.open(running, 'conv-8-running');
    await owner.flush();
    const follower = await instance('b8', 600, 1_000, 2);
    expect(follower.activeIn('conv-8-running')).toBe(running);
    // Its subscription comes up in the background: probes are finished until it hears one.
    await hears(owner, follower);
    const finished = [randomUUID(), randomUUID(), randomUUID()];
    for (const id of finished) {
      owner.open(id, `conv-${id}`);
      owner.publish(id, start(id));
      owner.publish(id, done(id));
    }
    await owner.flush();
    // It keeps the newest two finished ones.
    await until(() => (follower.follow(finished[2], 0) ? true : undefined));
    await until(() => (follower.follow(finished[0], 0) === undefined ? true : undefined));
    expect(follower.follow(finished[1], 0)).toBeDefined();
    expect(follower.activeIn('conv-8-running')).toBe(running);
    // Past the retention (the heartbeat forgets them), none is left; the running one stays.
    await until(() => (follower.follow(finished[2], 0) === undefined ? true : undefined));
    expect(follower.follow(finished[1], 0)).toBeUndefined();
    expect(follower.activeIn('conv-8-running')).toBe(running);
  });

  it('keeps deployments with another REDIS_PREFIX apart: they neither know, follow nor stop its generations', async () => {
    // Two deployments on one Redis, whose instances have the same names (each has a backend-1).
    const other = `${prefix}other:`;
    const owner = await instance('backend-1');
    const peer = await instance('backend-2');
    const stranger = await instance('backend-1', 2_000, 60_000, undefined, other);
    const strangerPeer = await instance('backend-2', 2_000, 60_000, undefined, other);
    await hears(owner, peer);
    const id = randomUUID();
    owner.open(id, 'conv-9');
    let stops = 0;
    owner.onStopRequest(id, () => { stops++; });
    owner.publish(id, start(id));
    owner.publish(id, token('ours'));
    await owner.flush();
    const fromPeer = lastValueFrom((await until(() => peer.follow(id, -1))).pipe(toArray()));
    // Announced after the generation: once the other deployment hears its own probe, it would
    // have heard this generation's announcement too, had they shared a channel.
    await hears(stranger, strangerPeer);
    // One that starts now would find it in the index, had they shared one.
    const late = await instance('backend-3', 2_000, 60_000, undefined, other);
    for (const r of [stranger, strangerPeer, late]) {
      expect(r.follow(id, -1)).toBeUndefined();
      expect(r.activeIn('conv-9')).toBeUndefined();
      expect(r.requestStop(id)).toBe(false);
    }
    expect(stops).toBe(0);
    // Its own deployment still reaches the owner.
    expect(peer.requestStop(id)).toBe(true);
    await until(() => (stops > 0 ? true : undefined));
    owner.publish(id, done(id));
    expect(ids(await fromPeer)).toEqual([0, 1, 2]);
    expect((await connections[0].client!.keys(`${other}*`)).filter((k) => k.includes(id))).toEqual([]);
  });
});
