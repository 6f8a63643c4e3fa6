import { createHmac } from 'node:crypto';
import { createTestApp, forgeToken as forge, TEST_SECRET, type TestApp } from '../testing/test-app.js';
import { dialects } from '../testing/dialects.js';

const b64 = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');

describe.each(dialects())('sessions API on %s', (dialect) => {
  let t: TestApp;
  beforeAll(async () => { t = await createTestApp(dialect, { RATE_LIMIT_SESSIONS_PER_MINUTE: '1000' }); });
  afterAll(async () => { await t.close(); });

  it('creates a session with an HttpOnly SameSite=Lax cookie and a bearer token', async () => {
    const res = await t.http().post('/api/v1/sessions').send({ user_agent: 'vitest' }).expect(201);
    expect(res.body.session).toMatchObject({ id: expect.any(String), created_at: expect.any(String) });
    expect(res.body.token).toEqual(expect.any(String));
    const cookie = (res.headers['set-cookie'] as unknown as string[])[0];
    expect(cookie).toMatch(/^session_token=/);
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Lax/);
    expect(cookie).not.toMatch(/Secure/); // plain http: only over https (an https PUBLIC_URL or a trusted gateway's)
  });

  it('uses neither of two session cookies (one planted by a page of the same site), clears the planted one\'s paths, and changes nothing', async () => {
    const victim = await t.newSession();
    const planter = await t.newSession();
    const conversations = async (token: string): Promise<number> => (await t.http().get('/api/v1/conversations')
      .set('Authorization', `Bearer ${token}`).expect(200)).body.total as number;
    // The browser sends the longer path's cookie first: the planted one.
    const both = `session_token=${planter.token}; session_token=${victim.token}`;
    const refused = await t.http().post('/api/v1/chat').set('Cookie', both).send({ message: 'my PIN is 4242' }).expect(401);
    expect(refused.body.error).toMatchObject({ code: 'UNAUTHORIZED', details: { reason: 'conflicting_session_cookies' } });
    const cleared = refused.headers['set-cookie'] as unknown as string[];
    for (const path of ['/api', '/api/', '/api/v1', '/api/v1/', '/api/v1/chat', '/api/v1/chat/']) {
      expect(cleared).toContain(`session_token=; Path=${path}; Max-Age=0; HttpOnly; SameSite=Lax`);
    }
    expect(cleared.some((c) => c.includes('Path=/;'))).toBe(false); // this browser's own stays
    expect([await conversations(planter.token), await conversations(victim.token)]).toEqual([0, 0]);
    // A route open to anyone works, as without a cookie, and clears them too.
    const created = await t.http().post('/api/v1/sessions').set('Cookie', both).send({}).expect(201);
    expect((created.headers['set-cookie'] as unknown as string[]).filter((c) => c.includes('Max-Age=0'))).toHaveLength(6);
    // One cookie, and another cookie's name ending alike, are not a conflict.
    await t.http().get('/api/v1/conversations').set('Cookie', `x_session_token=1; session_token=${victim.token}`).expect(200);
  });

  it('validates one\'s own session by cookie and by bearer token', async () => {
    const s = await t.newSession();
    await t.http().get(`/api/v1/sessions/${s.id}`).set('Cookie', s.cookie).expect(200);
    const res = await t.http().get(`/api/v1/sessions/${s.id}`).set('Authorization', `Bearer ${s.token}`).expect(200);
    expect(res.body.session.id).toBe(s.id);
  });

  it('answers another session exactly like a missing one', async () => {
    const alice = await t.newSession();
    const bob = await t.newSession();
    const other = await t.http().get(`/api/v1/sessions/${bob.id}`).set('Authorization', `Bearer ${alice.token}`).expect(404);
    const missing = await t.http().get('/api/v1/sessions/00000000-0000-4000-8000-000000000000').set('Authorization', `Bearer ${alice.token}`).expect(404);
    expect(other.body.error.code).toBe('SESSION_NOT_FOUND');
    expect({ ...other.body.error, timestamp: 0, request_id: 0 }).toEqual({ ...missing.body.error, timestamp: 0, request_id: 0 });
  });

  describe('rejects bad tokens with 401', () => {
    let sid: string;
    beforeAll(async () => { sid = (await t.newSession()).id; });
    const now = () => Math.floor(Date.now() / 1000);
    const cases: [string, () => string][] = [
      ['expired', () => forge({ alg: 'HS256', typ: 'JWT' }, { sid, jti: 'x', iat: now() - 100, exp: now() - 10 })],
      ['alg:none', () => `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sid, jti: 'x', exp: now() + 60 })}.`],
      ['signed with another secret', () => forge({ alg: 'HS256' }, { sid, exp: now() + 60 }, 'another-secret-that-is-long-enough-000000')],
      ['HS512 with the right secret', () => {
        const head = `${b64({ alg: 'HS512' })}.${b64({ sid, exp: now() + 60 })}`;
        return `${head}.${createHmac('sha512', TEST_SECRET).update(head).digest('base64url')}`;
      }],
      ['garbage', () => 'not-a-token'],
      // Valid for ever had it been taken: every token the server signs expires.
      ['signed with the right secret but without an expiry', () => forge({ alg: 'HS256', typ: 'JWT' }, { sid, jti: 'x' })],
    ];
    it.each(cases)('%s', async (_name, make) => {
      const res = await t.http().get('/api/v1/conversations').set('Authorization', `Bearer ${make()}`).expect(401);
      expect(res.body.error.code).toBe('UNAUTHORIZED');
    });

    it('tampered payload', async () => {
      const s = await t.newSession();
      const [h, , sig] = s.token.split('.');
      const other = await t.newSession();
      const tampered = `${h}.${other.token.split('.')[1]}.${sig}`;
      await t.http().get('/api/v1/conversations').set('Authorization', `Bearer ${tampered}`).expect(401);
    });

    it('missing token', async () => {
      const res = await t.http().get('/api/v1/conversations').expect(401);
      expect(res.body.error).toMatchObject({ code: 'UNAUTHORIZED', request_id: expect.any(String), timestamp: expect.any(String) });
    });

    it('a forged token for a session that does not exist', async () => {
      const token = forge({ alg: 'HS256', typ: 'JWT' }, { sid: '00000000-0000-4000-8000-000000000000', jti: 'x', exp: now() + 60 });
      await t.http().get('/api/v1/conversations').set('Authorization', `Bearer ${token}`).expect(401);
    });
  });

  it('logout clears the cookie and revokes the token', async () => {
    const s = await t.newSession();
    const res = await t.http().delete('/api/v1/sessions/current').set('Authorization', `Bearer ${s.token}`).expect(204);
    expect((res.headers['set-cookie'] as unknown as string[])[0]).toMatch(/session_token=;/);
    await t.http().get('/api/v1/conversations').set('Authorization', `Bearer ${s.token}`).expect(401);
    await t.http().get('/api/v1/conversations').set('Cookie', s.cookie).expect(401);
  });

  describe('a session in use stays signed in', () => {
    const TTL = 30 * 24 * 3600; // the default SESSION_TOKEN_TTL_SECONDS
    const now = () => Math.floor(Date.now() / 1000);
    const cookieOf = (res: { headers: Record<string, unknown> }): string | undefined =>
      ((res.headers['set-cookie'] as string[] | undefined) ?? []).find((c) => c.startsWith('session_token='));
    const tokenIn = (cookie: string): string => /^session_token=([^;]+)/.exec(cookie)![1];
    const expOf = (token: string): number => (JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as { exp: number }).exp;
    /** A token of the session signed `age` seconds ago, as the server signs them. */
    const agedToken = (sid: string, age: number): string => forge({ alg: 'HS256', typ: 'JWT' }, { sid, jti: `aged-${age}`, iat: now() - age, exp: now() - age + TTL });

    it('renews a cookie past half its life on use, for the same session, and leaves a younger one alone', async () => {
      const s = await t.newSession();
      const young = await t.http().get('/api/v1/conversations').set('Cookie', `session_token=${agedToken(s.id, TTL / 2 - 3600)}`).expect(200);
      expect(cookieOf(young)).toBeUndefined();
      const old = agedToken(s.id, TTL - 60); // a minute left
      const res = await t.http().get('/api/v1/conversations').set('Cookie', `session_token=${old}`).expect(200);
      const renewed = cookieOf(res)!;
      expect(renewed).toMatch(/HttpOnly/);
      expect(renewed).toMatch(/SameSite=Lax/);
      expect(Number(/Max-Age=(\d+)/.exec(renewed)![1])).toBeGreaterThan(TTL - 60);
      const token = tokenIn(renewed);
      expect(token).not.toBe(old);
      expect(expOf(token)).toBeGreaterThanOrEqual(now() + TTL - 5);
      const current = await t.http().get('/api/v1/sessions/current').set('Cookie', `session_token=${token}`).expect(200);
      expect(current.body.session.id).toBe(s.id);
      // A streamed answer's response renews it too: the cookie is set before the stream opens.
      const chat = await t.http().post('/api/v1/chat').set('Cookie', `session_token=${old}`).send({ message: 'hello' });
      expect(chat.status).toBe(200);
      expect(cookieOf(chat)).toBeDefined();
    });

    it('never sets a cookie for a Bearer client; it renews its own token, which names the same session', async () => {
      const s = await t.newSession();
      const old = agedToken(s.id, TTL - 60);
      const bearerUse = await t.http().get('/api/v1/conversations').set('Authorization', `Bearer ${old}`).expect(200);
      expect(cookieOf(bearerUse)).toBeUndefined();
      const res = await t.http().post('/api/v1/sessions/current/token').set('Authorization', `Bearer ${old}`).expect(200);
      expect(res.body).toEqual({ session: expect.objectContaining({ id: s.id }), token: expect.any(String), expires_at: expect.any(String) });
      expect(new Date(res.body.expires_at as string).getTime()).toBe(expOf(res.body.token as string) * 1000);
      expect(expOf(res.body.token as string)).toBeGreaterThanOrEqual(now() + TTL - 5);
      await t.http().get('/api/v1/sessions/current').set('Authorization', `Bearer ${res.body.token as string}`).expect(200);
      // The old token works until it expires; logging out ends both.
      await t.http().get('/api/v1/conversations').set('Authorization', `Bearer ${old}`).expect(200);
      await t.http().delete('/api/v1/sessions/current').set('Authorization', `Bearer ${res.body.token as string}`).expect(204);
      await t.http().get('/api/v1/conversations').set('Authorization', `Bearer ${res.body.token as string}`).expect(401);
      await t.http().get('/api/v1/conversations').set('Authorization', `Bearer ${old}`).expect(401);
      await t.http().post('/api/v1/sessions/current/token').set('Authorization', `Bearer ${old}`).expect(401);
    });

    it('refuses to renew without a valid token, and an expired one stays expired', async () => {
      const s = await t.newSession();
      expect((await t.http().post('/api/v1/sessions/current/token').expect(401)).body.error.code).toBe('UNAUTHORIZED');
      const expired = forge({ alg: 'HS256', typ: 'JWT' }, { sid: s.id, jti: 'x', iat: now() - TTL - 10, exp: now() - 10 });
      await t.http().post('/api/v1/sessions/current/token').set('Authorization', `Bearer ${expired}`).expect(401);
      const res = await t.http().get('/api/v1/conversations').set('Cookie', `session_token=${expired}`).expect(401);
      expect(cookieOf(res)).toBeUndefined();
    });
  });

  it('rejects unknown body fields', async () => {
    const res = await t.http().post('/api/v1/sessions').send({ admin: true }).expect(400);
    expect(res.body.error.code).toBe('VALIDATION_ERROR');
    expect(res.body.error.details.fields[0].field).toBe('admin');
  });
});

describe('session creation rate limit', () => {
  let t: TestApp;
  beforeAll(async () => { t = await createTestApp('sqlite', { RATE_LIMIT_SESSIONS_PER_MINUTE: '3' }); });
  afterAll(async () => { await t.close(); });

  it('limits per client address with 429, RATE_LIMIT_EXCEEDED and a plain Retry-After', async () => {
    for (let i = 0; i < 3; i++) await t.http().post('/api/v1/sessions').send({}).expect(201);
    const res = await t.http().post('/api/v1/sessions').send({}).expect(429);
    expect(res.body.error.code).toBe('RATE_LIMIT_EXCEEDED');
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    expect(Object.keys(res.headers).filter((h) => h.startsWith('retry-after-'))).toEqual([]);
  });
});
