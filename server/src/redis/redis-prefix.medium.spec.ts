import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { createTestApp, type TestApp } from '../testing/test-app.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

// Two deployments (staging and production, say) pointed at one Redis, told apart by REDIS_PREFIX,
// through the whole app: config, connection, throttler storage. SQLite only: the database plays
// no part here. Session creation is limited per client address, and every test client is
// 127.0.0.1, so without the prefix both deployments would count the same key.
describe('deployments sharing one Redis (REDIS_PREFIX)', () => {
  const base = `parley:test:${randomBytes(6).toString('hex')}:`;
  const apps: TestApp[] = [];
  let redis: Redis;
  async function deployment(redisPrefix: string): Promise<TestApp> {
    const t = await createTestApp('sqlite', { REDIS_URL, REDIS_PREFIX: redisPrefix, RATE_LIMIT_SESSIONS_PER_MINUTE: '2' });
    apps.push(t);
    return t;
  }
  beforeAll(() => { redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 }); });
  afterAll(async () => {
    for (const t of apps) await t.close();
    const keys = await redis.keys(`${base}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  it('counts rate limits per deployment: its instances share the counts, another deployment starts from zero', async () => {
    const staging = await deployment(`${base}staging:`);
    const stagingTwo = await deployment(`${base}staging:`);
    const production = await deployment(`${base}production:`);
    await staging.http().post('/api/v1/sessions').send({}).expect(201);
    await stagingTwo.http().post('/api/v1/sessions').send({}).expect(201);
    const res = await staging.http().post('/api/v1/sessions').send({}).expect(429);
    expect(res.body).toMatchObject({ error: { code: 'RATE_LIMIT_EXCEEDED' } });
    await production.http().post('/api/v1/sessions').send({}).expect(201);
    expect(await redis.keys(`${base}staging:throttle:*`)).not.toEqual([]);
    expect(await redis.keys(`${base}production:throttle:*`)).not.toEqual([]);
  });
});
