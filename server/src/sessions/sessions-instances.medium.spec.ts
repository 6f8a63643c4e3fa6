import { randomBytes } from 'node:crypto';
import { dialects } from '../testing/dialects.js';
import { createTestApp, type TestApp } from '../testing/test-app.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

// Two instances of one deployment (one PostgreSQL database, one Redis, one prefix). Each trusts a
// verified session for SESSION_CACHE_MS without reading its row: a logout or an erasure through one
// instance was honoured by the other only when that time ran out (a production-topology test: 200 with
// the data, and a new answer, for ~4 s after logout; 500 on chat and upload after erasure).
describe.runIf(dialects().includes('postgres'))('sessions ended on one instance, used on another', () => {
  let a: TestApp;
  let b: TestApp;
  beforeAll(async () => {
    const env = { REDIS_URL, REDIS_PREFIX: `test-${randomBytes(4).toString('hex')}:`, RATE_LIMIT_SESSIONS_PER_MINUTE: '1000' };
    a = await createTestApp('postgres', env);
    b = await createTestApp('postgres', { ...env, DATABASE_URL: a.config.database.type === 'postgres' ? a.config.database.url : '' });
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  /** Polls briefly: the other instance hears of it over Redis, a round trip away, not at once. */
  async function statusOn(t: TestApp, token: string, expected: number): Promise<number> {
    let status = 0;
    for (let i = 0; i < 50; i++) {
      status = (await t.http().get('/api/v1/conversations').set('Authorization', `Bearer ${token}`)).status;
      if (status === expected) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    return status;
  }

  it('refuses a token on every instance as soon as it is logged out on one', async () => {
    const s = await a.newSession();
    await b.http().get('/api/v1/conversations').set('Authorization', `Bearer ${s.token}`).expect(200); // b trusts it now
    const loggedOutAt = Date.now();
    await a.http().delete('/api/v1/sessions/current').set('Authorization', `Bearer ${s.token}`).expect(204);
    expect(await statusOn(b, s.token, 401)).toBe(401);
    expect(Date.now() - loggedOutAt).toBeLessThan(1_000); // SESSION_CACHE_MS is 5 s
  });

  it('refuses a token on every instance as soon as its session is erased on one', async () => {
    const s = await a.newSession();
    await b.http().get('/api/v1/conversations').set('Authorization', `Bearer ${s.token}`).expect(200);
    const erasedAt = Date.now();
    await a.http().delete(`/api/v1/sessions/${s.id}`).set('Authorization', `Bearer ${s.token}`).expect(204);
    expect(await statusOn(b, s.token, 401)).toBe(401);
    expect(Date.now() - erasedAt).toBeLessThan(1_000);
    const chat = await b.http().post('/api/v1/chat').set('Authorization', `Bearer ${s.token}`).send({ message: 'still here?' });
    expect([chat.status, chat.body.error?.code]).toEqual([401, 'UNAUTHORIZED']);
  });
});
