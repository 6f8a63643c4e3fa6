import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { AppException } from './app.exception.js';
import { RedisThrottlerStorage } from './redis-throttler-storage.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('RedisThrottlerStorage (real Redis)', () => {
  let redis: Redis;
  let prefix: string;
  beforeAll(() => { redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 }); });
  afterAll(async () => { await redis.quit(); });
  beforeEach(() => { prefix = `parley:test:${randomBytes(6).toString('hex')}:`; });
  afterEach(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
  });

  it('counts hits within the window and blocks the one over the limit', async () => {
    const storage = new RedisThrottlerStorage(redis, prefix);
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await storage.increment('k', 60_000, 3, 60_000, 'default'));
    expect(results.map((r) => [r.totalHits, r.isBlocked])).toEqual([[1, false], [2, false], [3, false], [4, true]]);
    expect(results[0]?.timeToExpire).toBe(60);
    expect(results[3]?.timeToBlockExpire).toBe(60);
    // Still blocked; blocked hits are not counted.
    expect(await storage.increment('k', 60_000, 3, 60_000, 'default')).toMatchObject({ isBlocked: true, totalHits: 4 });
  });

  it('takes a hit back from the current window (its expiry kept), never below zero, never from a block', async () => {
    const storage = new RedisThrottlerStorage(redis, prefix);
    await storage.increment('k', 60_000, 2, 60_000, 'chat');
    await storage.increment('k', 60_000, 2, 60_000, 'chat');
    await storage.giveBack('k', 'chat');
    expect(await storage.increment('k', 60_000, 2, 60_000, 'chat')).toMatchObject({ totalHits: 2, isBlocked: false });
    expect(await redis.pttl(`${prefix}throttle:{chat:k}:hits`)).toBeGreaterThan(0);
    await storage.giveBack('k', 'chat');
    await storage.giveBack('k', 'chat');
    await storage.giveBack('k', 'chat');
    expect((await storage.increment('k', 60_000, 2, 60_000, 'chat')).totalHits).toBe(1);
    await storage.increment('k', 60_000, 2, 60_000, 'chat');
    expect((await storage.increment('k', 60_000, 2, 60_000, 'chat')).isBlocked).toBe(true);
    await storage.giveBack('k', 'chat');
    expect((await storage.increment('k', 60_000, 2, 60_000, 'chat')).isBlocked).toBe(true);
    await storage.giveBack('never-hit', 'chat');
    expect(await redis.exists(`${prefix}throttle:{chat:never-hit}:hits`)).toBe(0);
  });

  it('shares counters between two storages (two instances) and keeps throttlers and keys apart', async () => {
    const a = new RedisThrottlerStorage(redis, prefix);
    const other = new Redis(REDIS_URL);
    try {
      const b = new RedisThrottlerStorage(other, prefix);
      await a.increment('k', 60_000, 2, 60_000, 'chat');
      await b.increment('k', 60_000, 2, 60_000, 'chat');
      expect((await a.increment('k', 60_000, 2, 60_000, 'chat')).isBlocked).toBe(true);
      expect((await b.increment('k', 60_000, 2, 60_000, 'default')).totalHits).toBe(1);
      expect((await b.increment('other', 60_000, 2, 60_000, 'chat')).totalHits).toBe(1);
    } finally {
      await other.quit();
    }
  });

  it('starts a fresh window when the block expires', async () => {
    const storage = new RedisThrottlerStorage(redis, prefix);
    await storage.increment('k', 150, 1, 150, 'default');
    expect((await storage.increment('k', 150, 1, 150, 'default')).isBlocked).toBe(true);
    await new Promise((r) => setTimeout(r, 200));
    expect(await storage.increment('k', 150, 1, 150, 'default')).toMatchObject({ totalHits: 1, isBlocked: false });
  });

  it('stays atomic under concurrent hits', async () => {
    const storage = new RedisThrottlerStorage(redis, prefix);
    const results = await Promise.all(Array.from({ length: 50 }, () => storage.increment('k', 60_000, 20, 60_000, 'default')));
    expect(results.filter((r) => !r.isBlocked)).toHaveLength(20);
  });

  it('answers SERVICE_UNAVAILABLE when Redis is unreachable', async () => {
    const dead = new Redis('redis://127.0.0.1:1', { enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true });
    dead.on('error', () => undefined);
    try {
      const err = await new RedisThrottlerStorage(dead, prefix).increment('k', 1000, 1, 1000, 'default').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AppException);
      expect((err as AppException).code).toBe('SERVICE_UNAVAILABLE');
    } finally {
      dead.disconnect();
    }
  });
});
