import { DataSource } from 'typeorm';
import { RawSql } from '../database/raw-sql.js';
import { dialects } from '../testing/dialects.js';
import { createTestApp, type TestApp } from '../testing/test-app.js';
import { Session } from './session.entity.js';
import { SESSION_CACHE_MS, SESSION_REFRESH_MS, SessionsService } from './sessions.service.js';

describe.each(dialects())('SessionsService cache of verified sessions on %s', (dialect) => {
  let t: TestApp;
  let sessions: SessionsService;
  let ds: DataSource;
  beforeAll(async () => {
    t = await createTestApp(dialect, { RATE_LIMIT_SESSIONS_PER_MINUTE: '1000' });
    sessions = t.app.get(SessionsService);
    ds = t.app.get(DataSource);
  });
  afterAll(async () => { await t.close(); });
  afterEach(() => { vi.restoreAllMocks(); });

  it('serves a verified session from memory, and logout still revokes it at once', async () => {
    const s = await t.newSession();
    await t.http().get('/api/v1/conversations').set('Authorization', `Bearer ${s.token}`).expect(200);
    const reads = vi.spyOn(RawSql.prototype, 'findById');
    await t.http().get('/api/v1/conversations').set('Authorization', `Bearer ${s.token}`).expect(200);
    expect(reads).not.toHaveBeenCalled();
    await t.http().delete('/api/v1/sessions/current').set('Authorization', `Bearer ${s.token}`).expect(204);
    await t.http().get('/api/v1/conversations').set('Authorization', `Bearer ${s.token}`).expect(401);
    await t.http().get('/api/v1/conversations').set('Cookie', s.cookie).expect(401);
  });

  it('does not cache a read that raced a revocation', async () => {
    const { session, token } = await sessions.create(undefined, undefined);
    const pending = sessions.authenticate(token);
    await sessions.revoke(session.id);
    await pending;
    expect(await sessions.authenticate(token)).toBeNull();
  });

  it('re-reads a session in use in the background before its time runs out; the request does not wait for it', async () => {
    const { session, token } = await sessions.create(undefined, undefined);
    const now = Date.now();
    expect(await sessions.authenticate(token)).not.toBeNull();
    const row = await ds.manager.findOneByOrFail(Session, { id: session.id });
    let release: (value: Session) => void = () => undefined;
    const reads = vi.spyOn(RawSql.prototype, 'findById').mockImplementationOnce(<T>() => new Promise<T | null>((r) => { release = r as unknown as (value: Session) => void; }));
    const due = now + SESSION_CACHE_MS - SESSION_REFRESH_MS / 2;
    vi.spyOn(Date, 'now').mockReturnValue(due);
    // Served from memory although the read has not answered (awaiting it would hang here).
    expect(await sessions.authenticate(token)).toMatchObject({ id: session.id });
    expect(await sessions.authenticate(token)).toMatchObject({ id: session.id });
    expect(reads).toHaveBeenCalledTimes(1); // one read at a time per session
    release(row);
    await new Promise((r) => setTimeout(r, 10));
    // Past the first read's time but within the re-read's: still from memory, no other read.
    vi.spyOn(Date, 'now').mockReturnValue(now + SESSION_CACHE_MS + 1);
    expect(await sessions.authenticate(token)).toMatchObject({ id: session.id });
    expect(reads).toHaveBeenCalledTimes(1);
  });

  it('drops a session that the background re-read finds revoked elsewhere', async () => {
    const { session, token } = await sessions.create(undefined, undefined);
    const now = Date.now();
    expect(await sessions.authenticate(token)).not.toBeNull();
    await ds.getRepository(Session).update({ id: session.id }, { revokedAt: new Date() });
    vi.spyOn(Date, 'now').mockReturnValue(now + SESSION_CACHE_MS - SESSION_REFRESH_MS / 2);
    expect(await sessions.authenticate(token)).not.toBeNull(); // still within its cache time
    await new Promise((r) => setTimeout(r, 50));
    expect(await sessions.authenticate(token)).toBeNull(); // sooner than the cache time's end
  });

  it('refuses a session revoked elsewhere (another instance) once the cache time has passed', async () => {
    const { session, token } = await sessions.create(undefined, undefined);
    expect(await sessions.authenticate(token)).not.toBeNull();
    await ds.getRepository(Session).update({ id: session.id }, { revokedAt: new Date() });
    const now = Date.now();
    vi.spyOn(Date, 'now').mockReturnValue(now + SESSION_CACHE_MS + 1);
    expect(await sessions.authenticate(token)).toBeNull();
  });
  it('answers 401, not 500, to a request whose session was erased elsewhere after its check (the cache still trusted it)', async () => {
    // Another instance erased the session (no Redis message reached this one): the guard passes from the
    // cache, and the insert of a conversation or a file row refers to a session that is gone.
    const s = await t.newSession();
    const auth = { Authorization: `Bearer ${s.token}` };
    await t.http().get('/api/v1/conversations').set(auth).expect(200);
    await ds.getRepository(Session).delete({ id: s.id });
    const chat = await t.http().post('/api/v1/chat').set(auth).send({ message: 'are you there?' });
    expect([chat.status, chat.body.error?.code]).toEqual([401, 'UNAUTHORIZED']);
    const upload = await t.http().post('/api/v1/files/upload').set(auth).attach('file', Buffer.from('notes\n'), 'notes.txt');
    expect([upload.status, upload.body.error?.code]).toEqual([401, 'UNAUTHORIZED']);
  });
});
