import { createTestApp, type TestApp } from '../testing/test-app.js';

const ACCESS = 'our-shared-secret-0123456789';

describe('access gate', () => {
  describe('off (default)', () => {
    let t: TestApp;
    beforeAll(async () => { t = await createTestApp('sqlite'); });
    afterAll(async () => { await t.close(); });

    it('says no token is required and lets anyone create a session', async () => {
      expect((await t.http().get('/api/v1/access').expect(200)).body).toEqual({ required: false });
      await t.http().post('/api/v1/sessions').send({}).expect(201);
    });
  });

  describe('ACCESS_TOKEN', () => {
    let t: TestApp;
    beforeAll(async () => { t = await createTestApp('sqlite', { ACCESS_TOKEN: ACCESS, RATE_LIMIT_SESSIONS_PER_MINUTE: '1000' }); });
    afterAll(async () => { await t.close(); });

    it('tells the SPA a token is required', async () => {
      expect((await t.http().get('/api/v1/access').expect(200)).body).toEqual({ required: true });
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

    it('leaves health, readiness, metrics and the gate status open', async () => {
      await t.http().get('/api/v1/health/live').expect(200);
      await t.http().get('/api/v1/health/ready').expect(200);
      await t.http().get('/api/v1/access').expect(200);
      await t.http().get('/metrics').expect(200);
    });
  });
});
