import { Client } from 'pg';
import { dialects } from '../testing/dialects.js';
import { type CuttableProxy, postgresBehindProxy } from '../testing/cuttable-proxy.js';
import { createScratchDatabase, PG_ADMIN_URL } from '../testing/postgres.js';
import { SessionsService } from '../sessions/sessions.service.js';
import { createTestApp, type TestApp } from '../testing/test-app.js';
import { waitFor } from './topology.js';

const hasPostgres = dialects().includes('postgres');

describe.runIf(hasPostgres)('a PostgreSQL outage', () => {
  let t: TestApp;
  let proxy: CuttableProxy;
  let closeDb: () => Promise<void>;

  beforeAll(async () => {
    const db = await postgresBehindProxy();
    ({ proxy, close: closeDb } = db);
    t = await createTestApp('postgres', { DATABASE_URL: db.url });
  });
  afterAll(async () => {
    await t?.close();
    await closeDb?.();
  });

  it('answers 503 SERVICE_UNAVAILABLE meanwhile, turns unready, stays live, and recovers by itself', async () => {
    const s = await t.newSession();
    const auth = { Authorization: `Bearer ${s.token}` };
    await t.http().get('/api/v1/conversations').set(auth).expect(200);

    await proxy.down();
    const res = await t.http().get('/api/v1/conversations').set(auth).expect(503);
    expect(res.body.error.code).toBe('SERVICE_UNAVAILABLE');
    expect(res.headers['retry-after']).toBeDefined();
    expect((await t.http().post('/api/v1/sessions').send({}).expect(503)).body.error.code).toBe('SERVICE_UNAVAILABLE');
    expect((await t.http().get('/api/v1/health/ready').expect(503)).body.checks.database).toBe('down');
    await t.http().get('/api/v1/health/live').expect(200);
    // The same for a request carrying a session, as a browser's probe of its cookie or a scraper's token: the probes
    // never look a session up (liveness answered 503 to any of them, and /health an error envelope, not its report).
    // A session this instance has not verified yet (as one signed in through another instance): a lookup would fail.
    t.app.get(SessionsService)['verified'].clear();
    for (const withSession of [auth, { Cookie: `session_token=${s.token}` }]) {
      await t.http().get('/api/v1/health/live').set(withSession).expect(200);
      expect((await t.http().get('/api/v1/health/ready').set(withSession).expect(503)).body.checks.database).toBe('down');
      expect((await t.http().get('/api/v1/health').set(withSession).expect(503)).body).toMatchObject({ status: 'down' });
    }

    await proxy.up();
    await waitFor('the database to be back', async () => (await t.http().get('/api/v1/conversations').set(auth)).status === 200, 15_000, 200);
    await t.http().get('/api/v1/health/ready').expect(200);
    await t.http().post('/api/v1/sessions').send({}).expect(201);
  });
});

describe.runIf(hasPostgres)('a PostgreSQL database that refuses connections', () => {
  let t: TestApp;
  let name: string;
  let drop: () => Promise<void>;
  const admin = async (sql: string): Promise<void> => {
    const client = new Client({ connectionString: PG_ADMIN_URL });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };

  beforeAll(async () => {
    const db = await createScratchDatabase();
    name = new URL(db.url).pathname.slice(1);
    drop = async () => { await admin(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`); await db.drop(); };
    t = await createTestApp('postgres', { DATABASE_URL: db.url });
  });
  afterAll(async () => {
    await t?.close();
    await drop?.();
  });

  it('answers 503 SERVICE_UNAVAILABLE, not 500, while an operator has closed it to connections (SQLSTATE 55000)', async () => {
    const s = await t.newSession();
    const auth = { Authorization: `Bearer ${s.token}` };
    await t.http().get('/api/v1/conversations').set(auth).expect(200);
    await admin(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
    await admin(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${name}' AND pid <> pg_backend_pid()`);
    try {
      await waitFor('the pool to reconnect and be refused', async () => (await t.http().get('/api/v1/conversations').set(auth)).status !== 200, 15_000, 100);
      const res = await t.http().get('/api/v1/conversations').set(auth);
      expect([res.status, res.body.error.code]).toEqual([503, 'SERVICE_UNAVAILABLE']);
      expect(res.headers['retry-after']).toBeDefined();
    } finally {
      await admin(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
    }
    await waitFor('the database to be back', async () => (await t.http().get('/api/v1/conversations').set(auth)).status === 200, 15_000, 200);
  });
});
