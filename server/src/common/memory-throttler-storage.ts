import { type RefundableThrottlerStorage, throttlerRecord as record, type ThrottlerStorageRecord } from './rate-limit.js';

interface Counter {
  hits: number;
  windowEndsAt: number;
  blockedUntil: number;
  blockedHits: number;
}

const SWEEP_INTERVAL_MS = 60_000;

/**
 * Rate limits of a single instance (no REDIS_URL): the same fixed window per key and throttler
 * as RedisThrottlerStorage, so one instance and several behave alike. The first hit starts the
 * window; the hit over the limit blocks the key for blockDuration, and a fresh window starts
 * after the block. Blocked hits are not counted.
 *
 * Replaces @nestjs/throttler's in-memory storage, which keeps one timestamp per hit and filters
 * them all on every request (plus a Math.min over them): O(limit) per request, and quadratic for
 * a key with a high limit (50,000 hits of one key took 37 s of CPU). Here each hit is O(1);
 * counters whose window and block have ended are swept once a minute.
 */
export class MemoryThrottlerStorage implements RefundableThrottlerStorage {
  private readonly counters = new Map<string, Counter>();
  private sweepTimer?: NodeJS.Timeout;

  constructor(private readonly now: () => number = Date.now) {}

  increment(key: string, ttl: number, limit: number, blockDuration: number, throttlerName: string): Promise<ThrottlerStorageRecord> {
    const now = this.now();
    const id = `${throttlerName}\u0000${key}`;
    let counter = this.counters.get(id);
    if (counter && counter.blockedUntil > now) {
      const left = counter.blockedUntil - now;
      return Promise.resolve(record(counter.blockedHits, left, true, left));
    }
    if (!counter || counter.windowEndsAt <= now) {
      counter = { hits: 0, windowEndsAt: now + ttl, blockedUntil: 0, blockedHits: 0 };
      this.counters.set(id, counter);
      this.sweepTimer ??= setInterval(() => this.sweep(), SWEEP_INTERVAL_MS).unref();
    }
    const hits = ++counter.hits;
    const left = counter.windowEndsAt - now;
    if (hits <= limit) return Promise.resolve(record(hits, left, false, 0));
    if (blockDuration > 0) {
      // Blocked: the window's count ends here; a new window starts once the block is over.
      counter.blockedUntil = now + blockDuration;
      counter.blockedHits = hits;
      counter.hits = 0;
      counter.windowEndsAt = 0;
      return Promise.resolve(record(hits, blockDuration, true, blockDuration));
    }
    return Promise.resolve(record(hits, left, true, left));
  }

  giveBack(key: string, throttlerName: string): Promise<void> {
    const now = this.now();
    const counter = this.counters.get(`${throttlerName}\u0000${key}`);
    if (counter && counter.blockedUntil <= now && counter.windowEndsAt > now && counter.hits > 0) counter.hits--;
    return Promise.resolve();
  }

  /** Forgets counters whose window and block are both over. */
  sweep(): void {
    const now = this.now();
    for (const [id, c] of this.counters) {
      if (c.windowEndsAt <= now && c.blockedUntil <= now) this.counters.delete(id);
    }
    if (this.counters.size === 0 && this.sweepTimer) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = undefined;
    }
  }

  /** Counters held (for tests). */
  get size(): number {
    return this.counters.size;
  }
}
