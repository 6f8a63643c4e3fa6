import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { AppException } from '../common/app.exception.js';
import { ErrorCode } from '../common/error-code.js';
import type { RedisConnection } from './redis-connection.js';

// Deletes or extends the lock only if it is still ours (its token), never another holder's.
const RELEASE_LUA = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";
const EXTEND_LUA = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end";

export interface LockOptions {
  /** How long a lock lives if its holder dies; renewed while the task runs. */
  ttlMs?: number;
  /** How long to wait for a lock held by someone else. */
  waitMs?: number;
}

/**
 * Runs tasks one at a time per key across every instance (REDIS_URL), and in this process
 * without Redis: the drop-in for a per-process keyed lock once several instances share state
 * (e.g. files on a shared volume). In this process tasks queue first, so Redis only sees one
 * contender per instance. A holder that dies frees the key after ttlMs.
 * Provided by RedisModule (inject `DistributedLock`).
 */
export class DistributedLock {
  private readonly tails = new Map<string, Promise<unknown>>();
  private readonly redis: Redis | undefined;
  private readonly ttlMs: number;
  private readonly waitMs: number;
  private readonly prefix: string;

  constructor(connection: RedisConnection, options: LockOptions = {}) {
    this.redis = connection.client;
    this.ttlMs = options.ttlMs ?? 30_000;
    this.waitMs = options.waitMs ?? 10_000;
    this.prefix = `${connection.prefix}lock:`;
  }

  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const current = previous.then(() => this.runShared(key, task), () => this.runShared(key, task));
    const tail = current.catch(() => undefined);
    this.tails.set(key, tail);
    try {
      return await current;
    } finally {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }

  private async runShared<T>(key: string, task: () => Promise<T>): Promise<T> {
    const redis = this.redis;
    if (!redis) return task();
    const name = `${this.prefix}${key}`;
    const token = randomBytes(16).toString('hex');
    await this.acquire(redis, name, token);
    const renew = setInterval(() => { redis.eval(EXTEND_LUA, 1, name, token, this.ttlMs).catch(() => undefined); }, Math.floor(this.ttlMs / 3));
    renew.unref();
    try {
      return await task();
    } finally {
      clearInterval(renew);
      // If Redis is away the lock simply expires after ttlMs.
      await redis.eval(RELEASE_LUA, 1, name, token).catch(() => undefined);
    }
  }

  private async acquire(redis: Redis, name: string, token: string): Promise<void> {
    const deadline = Date.now() + this.waitMs;
    for (let delay = 5; ; delay = Math.min(delay * 2, 200)) {
      let acquired: string | null;
      try {
        acquired = await redis.set(name, token, 'PX', this.ttlMs, 'NX');
      } catch {
        throw new AppException(ErrorCode.ServiceUnavailable, 'The service is temporarily unavailable; please retry shortly.', { dependency: 'redis' }, { 'Retry-After': '5' });
      }
      if (acquired === 'OK') return;
      if (Date.now() > deadline) throw new AppException(ErrorCode.ServiceUnavailable, 'The service is busy; please retry shortly.', { reason: 'lock_timeout' }, { 'Retry-After': '1' });
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
