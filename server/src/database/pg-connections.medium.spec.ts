import { Client } from 'pg';
import { DataSource, type MigrationInterface, type QueryRunner } from 'typeorm';
import type { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver.js';
import { ConversationsService } from '../conversations/conversations.service.js';
import { isDependencyOutage } from '../common/dependency-outage.js';
import { dialects } from '../testing/dialects.js';
import { createTestApp, type TestApp } from '../testing/test-app.js';
import { waitFor } from '../testing/wait.js';
import { dataSourceOptions, LOCK_TIMEOUT_MS, STATEMENT_TIMEOUT_MS } from './data-source-options.js';
import { runMigrationsOnce } from './run-migrations.js';

interface PoolClient { processID?: number; listeners(event: 'error'): unknown[]; on(event: 'end', fn: () => void): unknown; release(): void }
interface Pool { connect(): Promise<PoolClient>; readonly waitingCount: number; readonly totalCount: number }

// PostgreSQL's connections as the product opens them: what another party does to them (an operator's
// pg_terminate_backend or open transaction, a failover) fails a request with 503 and never the process.
describe.runIf(dialects().includes('postgres'))('PostgreSQL connections', () => {
  let t: TestApp;
  let ds: DataSource;
  let admin: Client;
  beforeAll(async () => {
    t = await createTestApp('postgres');
    ds = t.app.get(DataSource);
    admin = new Client({ connectionString: t.config.database.type === 'postgres' ? t.config.database.url : '' });
    await admin.connect();
  });
  afterAll(async () => {
    await admin.end();
    await t.close();
  });

  it('listen for their errors for their whole life: one killed while checked out ends, and the process goes on', async () => {
    const pool = (ds.driver as PostgresDriver).master as Pool;
    // A connection the pool hands out: its idle listener removed, nobody else's added yet (TypeORM adds its own later).
    const client = await pool.connect();
    expect(client.listeners('error').length).toBeGreaterThan(0);
    let hasEnded = false;
    client.on('end', () => { hasEnded = true; });
    await admin.query('SELECT pg_terminate_backend($1)', [client.processID]);
    await waitFor('the killed connection to end', () => hasEnded, 5_000);
    client.release();
    // Still serving: the pool opens a new connection.
    await t.http().get('/api/v1/health/ready').expect(200);
  });

  it('stay ready while every connection is busy and queries are answered: the probe does not queue behind them', async () => {
    const pool = (ds.driver as PostgresDriver).master as Pool;
    // Ten connections, each answering a query every 0.25 s, with ~3 s of queries waiting: a probe that
    // queued its SELECT 1 behind them waited past its 2 s and turned the busy instance unready.
    const busy = Array.from({ length: 120 }, () => ds.query('SELECT pg_sleep(0.25)'));
    try {
      await waitFor('the pool to be full with queries waiting', () => pool.totalCount >= 10 && pool.waitingCount > 0, 5_000);
      const began = performance.now();
      const res = await t.http().get('/api/v1/health/ready');
      expect(res.body.checks.database).toBe('ok');
      expect(res.status).toBe(200);
      expect(performance.now() - began).toBeLessThan(1_500);
      expect(pool.waitingCount).toBeGreaterThan(0);
    } finally {
      await Promise.allSettled(busy);
    }
    await t.http().get('/api/v1/health/ready').expect(200);
  }, 20_000);

  it('turn unready while every connection is out and none answers for 2 s (a stuck pool), and ready again once they are back', async () => {
    const pool = (ds.driver as PostgresDriver).master as Pool;
    const held: PoolClient[] = [];
    try {
      while (pool.totalCount < 10 || held.length < 10) held.push(await pool.connect());
      // The last answer (the earlier tests' queries) more than 2 s ago.
      await new Promise((resolve) => setTimeout(resolve, 2_100));
      const res = await t.http().get('/api/v1/health/ready').expect(503);
      expect(res.body.checks.database).toBe('down');
    } finally {
      for (const c of held) c.release();
    }
    await t.http().get('/api/v1/health/ready').expect(200);
  }, 20_000);

  it('wait for a row locked elsewhere no longer than the lock timeout, then answer 503 with Retry-After and change nothing', async () => {
    const s = await t.newSession();
    const c = await t.app.get(ConversationsService).create(s.id, 'Before');
    await admin.query('BEGIN');
    try {
      await admin.query('SELECT id FROM conversations WHERE id = $1 FOR UPDATE', [c.id]);
      const began = performance.now();
      const res = await t.http().patch(`/api/v1/conversations/${c.id}`).set('Authorization', `Bearer ${s.token}`).send({ title: 'After' });
      expect(performance.now() - began).toBeGreaterThanOrEqual(LOCK_TIMEOUT_MS - 100);
      expect(performance.now() - began).toBeLessThan(LOCK_TIMEOUT_MS + 4_000);
      expect(res.status).toBe(503);
      expect(res.body.error.code).toBe('SERVICE_UNAVAILABLE');
      expect(res.headers['retry-after']).toBe('5');
    } finally {
      await admin.query('ROLLBACK');
    }
    const after = await t.http().get(`/api/v1/conversations/${c.id}`).set('Authorization', `Bearer ${s.token}`).expect(200);
    expect(after.body.conversation.title).toBe('Before');
  }, 20_000);

  it('save the other replies\' progress when one reply\'s row is locked elsewhere: only that one waits and fails', async () => {
    const service = t.app.get(ConversationsService);
    const s = await t.newSession();
    const c = await service.create(s.id, 'Two answers');
    const [locked, free] = await service.appendMessages(c.id, [
      { role: 'assistant', content: '', status: 'streaming' }, { role: 'assistant', content: '', status: 'streaming' },
    ]);
    await admin.query('BEGIN');
    try {
      await admin.query('SELECT id FROM messages WHERE id = $1 FOR UPDATE', [locked.id]);
      // One flush of every running reply: one batch.
      const lockedSave = service.saveProgress(locked.id, 'locked text', undefined);
      const freeSave = service.saveProgress(free.id, 'free text', undefined);
      lockedSave.catch(() => undefined);
      expect(await freeSave).toBe(true);
      await expect(lockedSave).rejects.toMatchObject({ driverError: { code: '55P03' } });
    } finally {
      await admin.query('ROLLBACK');
    }
    const rows = await admin.query<{ id: string; content: string }>('SELECT id, content FROM messages WHERE id = ANY($1)', [[locked.id, free.id]]);
    expect(Object.fromEntries(rows.rows.map((r) => [r.id, r.content]))).toEqual({ [locked.id]: '', [free.id]: 'free text' });
  }, 30_000);

  it('end a statement of the app that runs past the statement timeout (57014, a 503), and not a migration that does', async () => {
    expect((await ds.query('SHOW statement_timeout'))[0].statement_timeout).toBe(`${STATEMENT_TIMEOUT_MS / 1000}s`);
    /** A migration slower than the timeout below: an index built on a big table. */
    class SlowIndex9999999999999 implements MigrationInterface {
      name = 'SlowIndex9999999999999';
      async up(runner: QueryRunner): Promise<void> {
        await runner.query('SELECT pg_sleep(0.8)');
      }
      async down(): Promise<void> {}
    }
    const options = dataSourceOptions(t.config.database, { poolSize: 2, statementTimeoutMs: 300 });
    const short = new DataSource({ ...options, migrations: [...(options.migrations as []), SlowIndex9999999999999] });
    await short.initialize();
    try {
      const began = performance.now();
      const err = await short.query('SELECT pg_sleep(3)').then(() => undefined, (e: unknown) => e);
      expect(err).toMatchObject({ driverError: { code: '57014' } });
      // What the error filter answers 503 SERVICE_UNAVAILABLE (Retry-After) for.
      expect(isDependencyOutage(err)).toBe(true);
      expect(performance.now() - began).toBeLessThan(2_500);
      expect(await runMigrationsOnce(short)).toEqual(['SlowIndex9999999999999']);
      // The connection that migrated is back at the pool's timeout.
      expect((await short.query('SHOW statement_timeout'))[0].statement_timeout).toBe('300ms');
    } finally {
      await short.query('DELETE FROM migrations WHERE name = $1', ['SlowIndex9999999999999']).catch(() => undefined);
      await short.destroy();
    }
  }, 20_000);

  it('fail a start whose migration needs a table an open transaction holds, after the lock timeout (55P03), applying nothing', async () => {
    /** A migration that needs the messages table to itself, as adding a column does. */
    class LockingMigration9999999999998 implements MigrationInterface {
      name = 'LockingMigration9999999999998';
      async up(runner: QueryRunner): Promise<void> {
        await runner.query('LOCK TABLE messages IN ACCESS EXCLUSIVE MODE');
      }
      async down(): Promise<void> {}
    }
    const options = dataSourceOptions(t.config.database, { poolSize: 2 });
    const starting = new DataSource({ ...options, migrations: [...(options.migrations as []), LockingMigration9999999999998] });
    await starting.initialize();
    // An old instance's or an operator's open transaction on the table (the README's Upgrading case).
    const holder = new Client({ connectionString: t.config.database.type === 'postgres' ? t.config.database.url : '' });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE messages IN ROW EXCLUSIVE MODE');
      const began = performance.now();
      const err = await runMigrationsOnce(starting).then(() => undefined, (e: unknown) => e);
      // It waited as long as any statement of Parley's does, not for as long as the transaction stays open.
      expect(err).toMatchObject({ driverError: { code: '55P03' } });
      expect(performance.now() - began).toBeGreaterThanOrEqual(LOCK_TIMEOUT_MS - 500);
      expect(performance.now() - began).toBeLessThan(LOCK_TIMEOUT_MS + 5_000);
      expect((await admin.query('SELECT 1 FROM migrations WHERE name = $1', ['LockingMigration9999999999998'])).rowCount).toBe(0);
      await holder.query('COMMIT');
      // Started again once the holder is gone, it applies.
      expect(await runMigrationsOnce(starting)).toEqual(['LockingMigration9999999999998']);
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      await holder.end();
      await admin.query('DELETE FROM migrations WHERE name = $1', ['LockingMigration9999999999998']).catch(() => undefined);
      await starting.destroy();
    }
  }, 30_000);

  it('still let an instance wait as long as another migrates: the migration lock is not bound by the lock timeout', async () => {
    const other = new DataSource(dataSourceOptions(t.config.database, { poolSize: 2 }));
    await other.initialize();
    await admin.query('SELECT pg_advisory_lock(7301942)');
    try {
      const waiting = runMigrationsOnce(other);
      await new Promise((resolve) => setTimeout(resolve, LOCK_TIMEOUT_MS + 1_000));
      await admin.query('SELECT pg_advisory_unlock(7301942)');
      expect(await waiting).toEqual([]);
      // The connection that waited is back at the pool's lock timeout.
      expect((await other.query('SHOW lock_timeout'))[0].lock_timeout).toBe('5s');
    } finally {
      await admin.query('SELECT pg_advisory_unlock_all()');
      await other.destroy();
    }
  }, 20_000);
});
