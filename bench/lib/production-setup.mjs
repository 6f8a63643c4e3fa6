// Parley as enterprises run it (docker-compose.yml): PostgreSQL for the data, Redis for the
// generation registry, rate limits and locks. One instance of it, on a scratch database and under
// a Redis key prefix of its own, both removed on stop; the gateway is measured apart
// (server/src/deploy/). Skipped, with the reason, when either service is unreachable.
import { Redis } from 'ioredis';
import { scratchPostgres } from './seed.mjs';
import { startServer } from './server.mjs';

/** Every key under `prefix` removed (SCAN, never KEYS: the Redis may be shared). */
async function dropKeys(redisUrl, prefix) {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1, lazyConnect: true });
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

/** @returns {Promise<{ server?: object, skipped?: string, stop: () => Promise<void> }>} */
export async function startProductionSetup(ctx, env) {
  const pgUrl = ctx.opt('pg-url', 'postgres://postgres@127.0.0.1:5432/test');
  const redisUrl = ctx.opt('redis-url', 'redis://127.0.0.1:6379');
  const nothing = async () => {};
  if (pgUrl === 'none' || redisUrl === 'none') return { skipped: '--pg-url=none or --redis-url=none', stop: nothing };
  const prefix = `parley:bench:${process.pid}:`;
  const ping = new Redis(redisUrl, { maxRetriesPerRequest: 1, lazyConnect: true, connectTimeout: 3000 });
  try {
    await ping.connect();
    await ping.ping();
  } catch (err) {
    return { skipped: `Redis unreachable (${err.message})`, stop: nothing };
  } finally {
    ping.disconnect();
  }
  let db;
  try {
    db = await scratchPostgres(pgUrl, `parley_bench_prod_${process.pid}`);
  } catch (err) {
    return { skipped: `PostgreSQL unreachable (${err.message})`, stop: nothing };
  }
  try {
    const server = await startServer({
      dist: ctx.dist, label: 'production',
      env: { ...env, DATABASE_URL: db.url, REDIS_URL: redisUrl, REDIS_PREFIX: prefix },
    });
    return {
      server,
      async stop() {
        await server.stop();
        await db.drop();
        await dropKeys(redisUrl, prefix);
      },
    };
  } catch (err) {
    await db.drop();
    await dropKeys(redisUrl, prefix);
    throw err;
  }
}
