import { MemoryThrottlerStorage } from './memory-throttler-storage.js';

/** The single-instance rate-limit counters: the same fixed window as RedisThrottlerStorage's script. */
describe('MemoryThrottlerStorage', () => {
  let clock = 1_000_000;
  const at = (): number => clock;
  beforeEach(() => { clock = 1_000_000; });

  it('counts hits within the window and blocks the one over the limit', async () => {
    const storage = new MemoryThrottlerStorage(at);
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await storage.increment('k', 60_000, 3, 60_000, 'default'));
    expect(results.map((r) => [r.totalHits, r.isBlocked])).toEqual([[1, false], [2, false], [3, false], [4, true]]);
    expect(results[0]?.timeToExpire).toBe(60);
    expect(results[3]?.timeToBlockExpire).toBe(60);
    // Still blocked; blocked hits are not counted.
    clock += 30_000;
    expect(await storage.increment('k', 60_000, 3, 60_000, 'default')).toMatchObject({ isBlocked: true, totalHits: 4, timeToBlockExpire: 30 });
  });

  it('takes a hit back from the current window, never below zero, never from a block or an ended window', async () => {
    const storage = new MemoryThrottlerStorage(at);
    await storage.increment('k', 60_000, 2, 60_000, 'chat');
    await storage.increment('k', 60_000, 2, 60_000, 'chat');
    await storage.giveBack('k', 'chat');
    expect(await storage.increment('k', 60_000, 2, 60_000, 'chat')).toMatchObject({ totalHits: 2, isBlocked: false });
    await storage.giveBack('k', 'chat');
    await storage.giveBack('k', 'chat');
    await storage.giveBack('k', 'chat');
    expect((await storage.increment('k', 60_000, 2, 60_000, 'chat')).totalHits).toBe(1);
    await storage.increment('k', 60_000, 2, 60_000, 'chat');
    expect((await storage.increment('k', 60_000, 2, 60_000, 'chat')).isBlocked).toBe(true);
    await storage.giveBack('k', 'chat');
    expect((await storage.increment('k', 60_000, 2, 60_000, 'chat')).isBlocked).toBe(true);
    await storage.giveBack('never-hit', 'chat');
    expect((await storage.increment('never-hit', 60_000, 2, 60_000, 'chat')).totalHits).toBe(1);
  });

  it('keeps throttlers and keys apart', async () => {
    const storage = new MemoryThrottlerStorage(at);
    await storage.increment('k', 60_000, 2, 60_000, 'chat');
    await storage.increment('k', 60_000, 2, 60_000, 'chat');
    expect((await storage.increment('k', 60_000, 2, 60_000, 'chat')).isBlocked).toBe(true);
    expect((await storage.increment('k', 60_000, 2, 60_000, 'default')).totalHits).toBe(1);
    expect((await storage.increment('other', 60_000, 2, 60_000, 'chat')).totalHits).toBe(1);
  });

  it('starts a fresh window when the window ends, and when a block ends', async () => {
    const storage = new MemoryThrottlerStorage(at);
    await storage.increment('k', 1000, 5, 1000, 'default');
    clock += 400;
    expect(await storage.increment('k', 1000, 5, 1000, 'default')).toMatchObject({ totalHits: 2, timeToExpire: 1 });
    clock += 600;
    expect(await storage.increment('k', 1000, 5, 1000, 'default')).toMatchObject({ totalHits: 1, isBlocked: false });

    await storage.increment('b', 1000, 1, 5000, 'default');
    expect((await storage.increment('b', 1000, 1, 5000, 'default')).isBlocked).toBe(true);
    clock += 4999;
    expect((await storage.increment('b', 1000, 1, 5000, 'default')).isBlocked).toBe(true);
    clock += 1;
    expect(await storage.increment('b', 1000, 1, 5000, 'default')).toMatchObject({ totalHits: 1, isBlocked: false });
  });

  it('without a block duration, refuses over the limit until the window ends', async () => {
    const storage = new MemoryThrottlerStorage(at);
    await storage.increment('k', 1000, 1, 0, 'default');
    expect(await storage.increment('k', 1000, 1, 0, 'default')).toMatchObject({ totalHits: 2, isBlocked: true, timeToBlockExpire: 1 });
    clock += 1000;
    expect(await storage.increment('k', 1000, 1, 0, 'default')).toMatchObject({ totalHits: 1, isBlocked: false });
  });

  it('keeps one counter per key however many hits (a high limit costs nothing per hit)', async () => {
    const storage = new MemoryThrottlerStorage(at);
    let last;
    // @nestjs/throttler's own storage keeps a timestamp per hit: this loop was quadratic there.
    for (let i = 0; i < 200_000; i++) last = await storage.increment('k', 60_000, 100_000_000, 60_000, 'default');
    expect(last).toMatchObject({ totalHits: 200_000, isBlocked: false });
    expect(storage.size).toBe(1);
  });

  it('sweeps counters whose window and block are over, and only those', async () => {
    const storage = new MemoryThrottlerStorage(at);
    await storage.increment('short', 1000, 5, 1000, 'default');
    await storage.increment('blocked', 1000, 0, 10_000, 'default');
    await storage.increment('long', 60_000, 5, 60_000, 'default');
    clock += 2000;
    storage.sweep();
    expect(storage.size).toBe(2);
    expect((await storage.increment('blocked', 1000, 0, 10_000, 'default')).isBlocked).toBe(true);
    clock += 60_000;
    storage.sweep();
    expect(storage.size).toBe(0);
  });
});
