import { Writable } from 'node:stream';
import { getDataSourceToken } from '@nestjs/typeorm';
import Database from 'better-sqlite3';
import { DatabaseError } from 'pg';
import { type DataSource, QueryFailedError } from 'typeorm';
import { SessionsService } from '../sessions/sessions.service.js';
import { createTestApp, type TestApp } from '../testing/test-app.js';
import { isStorageFull } from './dependency-outage.js';

/** What the drivers and Node throw when the disk is full, as they throw it (TypeORM wraps a driver's). */
const sqliteFull = (): Error => new Database.SqliteError('database or disk is full', 'SQLITE_FULL');
const enospc = (): Error => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
const pgError = (code: string, message: string): Error => Object.assign(new DatabaseError(message, 0, 'error'), { code, severity: 'ERROR' });
const wrapped = (driverError: Error): Error => new QueryFailedError('INSERT INTO "sessions" VALUES ($1)', ['x'], driverError);

describe('isStorageFull', () => {
  it('recognises a full disk from SQLite, Node and PostgreSQL, also wrapped by TypeORM or as a cause', () => {
    expect(isStorageFull(sqliteFull())).toBe(true);
    expect(isStorageFull(wrapped(sqliteFull()))).toBe(true);
    expect(isStorageFull(enospc())).toBe(true);
    expect(isStorageFull(new Error('upload failed', { cause: enospc() }))).toBe(true);
    expect(isStorageFull(wrapped(pgError('53100', 'could not extend file "base/16384/16385": No space left on device')))).toBe(true);
  });

  it('leaves PostgreSQL\'s out_of_memory (53200) and other errors alone', () => {
    expect(isStorageFull(wrapped(pgError('53200', 'out of memory')))).toBe(false);
    expect(isStorageFull(new Database.SqliteError('database is locked', 'SQLITE_BUSY'))).toBe(false);
    expect(isStorageFull(Object.assign(new Error('x'), { code: 'ENOENT' }))).toBe(false);
    expect(isStorageFull(undefined)).toBe(false);
  });
});

describe('a full disk, through the HTTP stack', () => {
  let t: TestApp;
  const lines: Array<{ level: number; msg: string; requestId?: string }> = [];
  beforeAll(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) { for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l)); done(); },
    });
    t = await createTestApp('sqlite', { LOG_LEVEL: 'warn', RATE_LIMIT_SESSIONS_PER_MINUTE: '10000' }, { logDestination: sink });
  });
  afterAll(async () => { await t.close(); });
  afterEach(() => { vi.restoreAllMocks(); });

  const settle = () => new Promise((r) => setTimeout(r, 300));

  it.each([
    ['SQLite\'s SQLITE_FULL', sqliteFull],
    ['SQLite\'s SQLITE_FULL wrapped by TypeORM', () => wrapped(sqliteFull())],
    ['Node\'s ENOSPC', enospc],
    ['PostgreSQL\'s 53100 disk_full wrapped by TypeORM', () => wrapped(pgError('53100', 'could not extend file: No space left on device'))],
  ])('answers %s with 503 SERVICE_UNAVAILABLE, Retry-After and an error-level log line', async (_name, error) => {
    vi.spyOn(t.app.get(SessionsService), 'create').mockRejectedValueOnce(error());
    lines.length = 0;
    const res = await t.http().post('/api/v1/sessions').send({}).expect(503);
    expect(res.body.error).toMatchObject({ code: 'SERVICE_UNAVAILABLE', message: expect.stringMatching(/storage is full/), details: { reason: 'storage_full' }, request_id: res.headers['x-request-id'] });
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    await settle();
    expect(lines).toContainEqual(expect.objectContaining({ level: 50, msg: expect.stringMatching(/storage full/), requestId: res.headers['x-request-id'] }));
  });

  it('still answers PostgreSQL\'s out_of_memory (53200) with 500 INTERNAL_ERROR', async () => {
    vi.spyOn(t.app.get(SessionsService), 'create').mockRejectedValueOnce(wrapped(pgError('53200', 'out of memory')));
    const res = await t.http().post('/api/v1/sessions').send({}).expect(500);
    expect(res.body.error.code).toBe('INTERNAL_ERROR');
  });

  it('answers a write to an SQLite database that really is full with 503, and works again once there is room', async () => {
    const ds = t.app.get<DataSource>(getDataSourceToken());
    const [{ page_count: pages }] = await ds.query<Array<{ page_count: number }>>('PRAGMA page_count');
    // The database may not grow past its current size: the next page it needs is refused with SQLITE_FULL.
    await ds.query(`PRAGMA max_page_count = ${pages}`);
    try {
      let res = await t.http().post('/api/v1/sessions').send({ user_agent: 'x'.repeat(200) });
      for (let i = 0; i < 500 && res.status === 201; i++) res = await t.http().post('/api/v1/sessions').send({ user_agent: 'x'.repeat(200) });
      expect([res.status, res.body.error?.code, res.headers['retry-after'] !== undefined]).toEqual([503, 'SERVICE_UNAVAILABLE', true]);
    } finally {
      await ds.query('PRAGMA max_page_count = 1073741823');
    }
    await t.http().post('/api/v1/sessions').send({}).expect(201);
  });
});
