import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { createTestApp, type TestApp } from '../testing/test-app.js';
import { dialects } from '../testing/dialects.js';
import { storageKeyFor } from './file-storage.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Instances that share the uploads volume (docker-compose) serialise the work on one stored
// object through Redis: an instance holding the lock of a storage key makes an upload of the
// same bytes on another instance wait, instead of racing "delete if unreferenced".
describe.each(dialects())('files across instances on %s', (dialect) => {
  let t: TestApp;
  let redis: Redis;
  beforeAll(async () => {
    t = await createTestApp(dialect, { REDIS_URL });
    redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
  });
  afterAll(async () => {
    redis.disconnect();
    await t.close();
  });

  it('waits for another instance\'s lock on the same stored object, then stores it', async () => {
    const session = await t.newSession();
    const content = `shared notes ${randomBytes(8).toString('hex')}\n`;
    const key = storageKeyFor(session.id, createHash('sha256').update(content).digest('hex'), '.txt');
    const lockKey = `${t.config.redisPrefix}lock:${key}`;
    // "Another instance" holds the object's lock.
    expect(await redis.set(lockKey, 'other-instance', 'PX', 5000, 'NX')).toBe('OK');

    let finished = false;
    const upload = t.http().post('/api/v1/files/upload').set('Authorization', `Bearer ${session.token}`)
      .attach('file', Buffer.from(content), 'notes.txt')
      .then((res) => { finished = true; return res; });
    await sleep(400);
    expect(finished).toBe(false);
    expect(existsSync(join(t.config.dataDir, 'uploads', key))).toBe(false);

    await redis.del(lockKey);
    const res = await upload;
    expect(res.status).toBe(201);
    expect(existsSync(join(t.config.dataDir, 'uploads', key))).toBe(true);
    // Released afterwards: nobody holds the object's lock.
    expect(await redis.exists(lockKey)).toBe(0);
  });
});
