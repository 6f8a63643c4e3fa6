import type { Redis } from 'ioredis';
import { AppException } from './app.exception.js';
import { ErrorCode } from './error-code.js';
import { type RefundableThrottlerStorage, throttlerRecord, type ThrottlerStorageRecord } from './rate-limit.js';


/**
 * One atomic step per request. A fixed window per key and throttler: the first hit starts
 * the window (PEXPIRE); a hit over the limit blocks the key for blockDuration and starts a
 * fresh window after it, as @nestjs/throttler's in-memory storage does. Blocked hits are not
 * counted. Returns {totalHits, msToExpire, isBlocked, msToBlockExpire}.
 */
const INCREMENT_LUA = `
local blockTtl = redis.call('PTTL', KEYS[2])
if blockTtl > 0 then
  return {tonumber(redis.call('GET', KEYS[2]) or '0'), blockTtl, 1, blockTtl}
end
local ttl = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local blockMs = tonumber(ARGV[3])
local hits = redis.call('INCR', KEYS[1])
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
  left = ttl
end
if hits > limit then
  if blockMs > 0 then
    redis.call('SET', KEYS[2], hits, 'PX', blockMs)
    redis.call('DEL', KEYS[1])
    return {hits, blockMs, 1, blockMs}
  end
  return {hits, left, 1, left}
end
return {hits, left, 0, 0}
`;

/** One hit back from the current window (DECR keeps its expiry); nothing when it has ended or is blocked. */
const GIVE_BACK_LUA = `
if redis.call('PTTL', KEYS[2]) > 0 then return 0 end
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then redis.call('DECR', KEYS[1]) end
return 1
`;

/**
 * Rate limits shared by every instance (REDIS_URL). A Redis outage answers 503, never lets traffic through unlimited.
 * `redisPrefix` is the deployment's (REDIS_PREFIX): instances with the same one share counters, others never.
 */
export class RedisThrottlerStorage implements RefundableThrottlerStorage {
  private readonly prefix: string;

  constructor(private readonly redis: Redis, redisPrefix: string) {
    this.prefix = `${redisPrefix}throttle:`;
  }

  async increment(key: string, ttl: number, limit: number, blockDuration: number, throttlerName: string): Promise<ThrottlerStorageRecord> {
    // The hash tag keeps both keys in one slot on Redis Cluster.
    const base = `${this.prefix}{${throttlerName}:${key}}`;
    let reply: unknown;
    try {
      reply = await this.redis.eval(INCREMENT_LUA, 2, `${base}:hits`, `${base}:block`, ttl, limit, blockDuration);
    } catch {
      // Fails closed: without the shared counters no instance can tell whether a caller is over its limit.
      throw new AppException(ErrorCode.ServiceUnavailable, 'Rate limiting is temporarily unavailable; please retry shortly.', { dependency: 'redis' }, { 'Retry-After': '5' });
    }
    const [totalHits, msToExpire, blocked, msToBlockExpire] = (reply as number[]).map(Number) as [number, number, number, number];
    return throttlerRecord(totalHits, msToExpire, blocked === 1, msToBlockExpire);
  }

  async giveBack(key: string, throttlerName: string): Promise<void> {
    const base = `${this.prefix}{${throttlerName}:${key}}`;
    await this.redis.eval(GIVE_BACK_LUA, 2, `${base}:hits`, `${base}:block`);
  }
}
