import { createHash } from 'node:crypto';
import { SessionTokenService } from '../sessions/session-token.service.js';
import { createTestApp, forgeToken, type TestApp } from '../testing/test-app.js';

const ACCESS = 'our-shared-secret-0123456789';

describe('access gate', () => {
  describe('off (default)', () => {
    let t: TestApp;
    beforeAll(async () => { t = await createTestApp('sqlite'); });
    afterAll(async () => { await t.close(); });

    it('says no token is required and lets anyone create a session', async () => {
      expect((await t.http().get('/api/v1/access').expect(200)).body).toEqual({ required: false, has_session: false });
      await t.http().post('/api/v1/sessions').send({}).expect(201);
    });

    it('says whether the caller carries a live session, by cookie or Bearer token, so that a browser that lost its page\'s storage goes on with it', async () => {
      const created = await t.http().post('/api/v1/sessions').send({}).expect(201);
      const cookie = String(created.headers['set-cookie'][0]).split(';')[0];
      expect((await t.http().get('/api/v1/access').set('Cookie', cookie).expect(200)).body).toEqual({ required: false, has_session: true });
      expect((await t.http().get('/api/v1/access').set('Authorization', `Bearer ${created.body.token}`).expect(200)).body.has_session).toBe(true);
      // A stale or forged one is no session, and no 401: the SPA creates one as on a first visit.
      expect((await t.http().get('/api/v1/access').set('Cookie', `${cookie.split('=')[0]}=forged.token.value`).expect(200)).body.has_session).toBe(false);
      await t.http().delete(`/api/v1/sessions/${created.body.session.id}`).set('Authorization', `Bearer ${created.body.token}`).expect(204);
      expect((await t.http().get('/api/v1/access').set('Cookie', cookie).expect(200)).body.has_session).toBe(false);
    });
  });

  describe('ACCESS_TOKEN', () => {
    let t: TestApp;
    beforeAll(async () => { t = await createTestApp('sqlite', { ACCESS_TOKEN: ACCESS, RATE_LIMIT_SESSIONS_PER_MINUTE: '1000' }); });
    afterAll(async () => { await t.close(); });

    it('tells the SPA a token is required', async () => {
      expect((await t.http().get('/api/v1/access').expect(200)).body).toEqual({ required: true, has_session: false });
    });

    it('refuses a session without or with a wrong token', async () => {
      const none = await t.http().post('/api/v1/sessions').send({}).expect(401);
      expect(none.body.error).toMatchObject({ code: 'UNAUTHORIZED', details: { reason: 'access_token_required' } });
      await t.http().post('/api/v1/sessions').set('X-Access-Token', 'nope').send({}).expect(401);
      await t.http().post('/api/v1/sessions').send({ access_token: `${ACCESS}x` }).expect(401);
    });

    it('creates a session with the token as header or body field; the session then works without it', async () => {
      const viaHeader = await t.http().post('/api/v1/sessions').set('X-Access-Token', ACCESS).send({ user_agent: 'x' }).expect(201);
      await t.http().post('/api/v1/sessions').send({ access_token: ACCESS }).expect(201);
      await t.http().get(`/api/v1/sessions/${viaHeader.body.session.id}`).set('Authorization', `Bearer ${viaHeader.body.token}`).expect(200);
    });

    it('leaves health and readiness open', async () => {
      await t.http().get('/api/v1/health').expect(200);
      await t.http().get('/api/v1/health/ready').expect(200);
    });
  });

  describe('TRUSTED_IDENTITY_HEADER', () => {
    let t: TestApp;
    beforeAll(async () => { t = await createTestApp('sqlite', { TRUSTED_IDENTITY_HEADER: 'X-Forwarded-Email' }); });
    afterAll(async () => { await t.close(); });

    it('refuses API requests without the gateway\'s identity header, allows them with it', async () => {
      const res = await t.http().post('/api/v1/sessions').send({}).expect(401);
      expect(res.body.error.details).toEqual({ reason: 'identity_required' });
      const ok = await t.http().post('/api/v1/sessions').set('X-Forwarded-Email', 'ada@example.com').send({}).expect(201);
      await t.http().get(`/api/v1/sessions/${ok.body.session.id}`).set('Authorization', `Bearer ${ok.body.token}`).expect(401);
      await t.http().get(`/api/v1/sessions/${ok.body.session.id}`).set('Authorization', `Bearer ${ok.body.token}`).set('X-Forwarded-Email', 'ada@example.com').expect(200);
    });

    it('binds a session to the person it was made for: whoever signs in next at the gateway does not inherit it', async () => {
      const ada = await t.http().post('/api/v1/sessions').set('X-Forwarded-Email', 'ada@example.com').send({}).expect(201);
      const session = `/api/v1/sessions/${ada.body.session.id}`;
      await t.http().get(session).set('Authorization', `Bearer ${ada.body.token}`).set('X-Forwarded-Email', 'ada@example.com').expect(200);
      // Mallory, signed in at the gateway on the same browser, with Ada's cookie or token: not signed in here.
      for (const send of [
        () => t.http().get(session).set('Authorization', `Bearer ${ada.body.token}`).set('X-Forwarded-Email', 'mallory@example.com'),
        () => t.http().get('/api/v1/conversations').set('Cookie', `session_token=${ada.body.token}`).set('X-Forwarded-Email', 'mallory@example.com'),
      ]) {
        const res = await send().expect(401);
        expect(res.body.error.code).toBe('UNAUTHORIZED');
      }
      // The same person with spaces around the header's value is still the same person; Ada keeps her session.
      await t.http().get(session).set('Authorization', `Bearer ${ada.body.token}`).set('X-Forwarded-Email', ' ada@example.com ').expect(200);
      // The token carries no readable digest of the address.
      const claims = JSON.parse(Buffer.from(String(ada.body.token).split('.')[1], 'base64url').toString('utf8')) as Record<string, unknown>;
      expect(typeof claims.idh).toBe('string');
      // The address, or its name before the @ (not "ada" alone: a random id or digest holds those three letters one time in a few hundred).
      expect(JSON.stringify(claims)).not.toMatch(/ada@|example\.com/);
      expect(claims.idh).not.toBe(createHash('sha256').update('ada@example.com').digest('base64url').slice(0, 22));
    });

    it('renews a cookie only for a request the gate let through: not for one without the gateway\'s sign-in', async () => {
      const ada = await t.http().post('/api/v1/sessions').set('X-Forwarded-Email', 'ada@example.com').send({}).expect(201);
      const now = Math.floor(Date.now() / 1000);
      const ttl = 30 * 24 * 3600;
      // Ada's token with a minute left: due for renewal on use.
      const old = forgeToken({ alg: 'HS256', typ: 'JWT' }, {
        sid: ada.body.session.id, jti: 'aged', idh: t.app.get(SessionTokenService).identityDigest('ada@example.com'), iat: now - ttl + 60, exp: now + 60,
      });
      const renewedBy = (res: { headers: Record<string, unknown> }): boolean => ((res.headers['set-cookie'] as string[] | undefined) ?? []).some((c) => c.startsWith('session_token='));
      const refused = await t.http().get('/api/v1/conversations').set('Cookie', `session_token=${old}`).expect(401);
      expect(refused.body.error.details).toEqual({ reason: 'identity_required' });
      expect(renewedBy(refused)).toBe(false);
      const ok = await t.http().get('/api/v1/conversations').set('Cookie', `session_token=${old}`).set('X-Forwarded-Email', 'ada@example.com').expect(200);
      expect(renewedBy(ok)).toBe(true);
    });

    it('leaves health, readiness, metrics and the gate status open', async () => {
      await t.http().get('/api/v1/health/live').expect(200);
      await t.http().get('/api/v1/health/ready').expect(200);
      await t.http().get('/api/v1/access').expect(200);
      await t.http().get('/metrics').expect(200);
    });
  });

  describe('TRUSTED_IDENTITY_HEADER with TRUST_PROXY naming the gateway', () => {
    it('believes the header only from the gateway TRUST_PROXY names: from anyone else who reaches the backend it is absent', async () => {
      const elsewhere = await createTestApp('sqlite', { TRUSTED_IDENTITY_HEADER: 'X-Forwarded-Email', TRUST_PROXY: '10.9.9.9' });
      try {
        const res = await elsewhere.http().post('/api/v1/sessions').set('X-Forwarded-Email', 'ceo@example.com').send({}).expect(401);
        expect(res.body.error.details).toEqual({ reason: 'identity_required' });
        await elsewhere.http().get('/api/v1/chat/config').set('X-Forwarded-Email', 'ceo@example.com').expect(401);
      } finally {
        await elsewhere.close();
      }
      // The same request from the gateway's address (loopback here) signs in as before.
      const gateway = await createTestApp('sqlite', { TRUSTED_IDENTITY_HEADER: 'X-Forwarded-Email', TRUST_PROXY: 'loopback' });
      try {
        const ok = await gateway.http().post('/api/v1/sessions').set('X-Forwarded-Email', 'ceo@example.com').send({}).expect(201);
        await gateway.http().get('/api/v1/chat/config').set('Authorization', `Bearer ${ok.body.token}`).set('X-Forwarded-Email', 'ceo@example.com').expect(200);
      } finally {
        await gateway.close();
      }
    });
  });
});
