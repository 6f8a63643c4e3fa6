import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { Conversation } from '../conversations/conversation.entity.js';
import { Message } from '../conversations/message.entity.js';
import { FileUpload } from '../files/file-upload.entity.js';
import { dialects } from '../testing/dialects.js';
import { SseConnection } from '../testing/sse-client.js';
import { createTestApp, type TestApp } from '../testing/test-app.js';
import { Session } from './session.entity.js';

describe.each(dialects())('erasing one\'s own session (DELETE /api/v1/sessions/{id}) on %s', (dialect) => {
  let t: TestApp;
  let ds: DataSource;
  beforeAll(async () => {
    // Slow enough that a reply is still generating when its session is erased.
    t = await createTestApp(dialect, { OFFLINE_TOKEN_DELAY_MS: '15', RATE_LIMIT_SESSIONS_PER_MINUTE: '1000' });
    ds = t.app.get(DataSource);
  });
  afterAll(async () => { await t.close(); });

  const auth = (token: string) => ({ Authorization: `Bearer ${token}` });
  const upload = (token: string, name: string, text: string) => t.http().post('/api/v1/files/upload').set(auth(token))
    .attach('file', Buffer.from(text), name).expect(201).then((res) => (res.body as { file_id: string }).file_id);
  const counts = async (sessionId: string) => ({
    sessions: await ds.getRepository(Session).countBy({ id: sessionId }),
    conversations: await ds.getRepository(Conversation).countBy({ sessionId }),
    files: await ds.getRepository(FileUpload).countBy({ sessionId }),
    messages: await ds.getRepository(Message).createQueryBuilder('m').innerJoin(Conversation, 'c', 'c.id = m.conversation_id')
      .where('c.session_id = :sessionId', { sessionId }).getCount(),
  });
  const stored = () => readdirSync(join(t.config.dataDir, 'uploads'));

  /** A session with a finished conversation that has a file attached, and a second file of its own. */
  async function sessionWithData(shared: string) {
    const s = await t.newSession();
    const attached = await upload(s.token, 'notes.txt', `private notes of ${s.id}`);
    await upload(s.token, 'shared.txt', shared);
    const done = await SseConnection.open(`${baseUrl()}/api/v1/chat`, {
      method: 'POST', headers: auth(s.token), body: { message: 'Remember this', file_ids: [attached] },
    }).all();
    expect(done.at(-1)?.data).toMatchObject({ type: 'done', status: 'complete' });
    return s;
  }
  const baseUrl = () => {
    const address = t.app.getHttpServer().address() as { port: number };
    return `http://127.0.0.1:${address.port}`;
  };

  it('stops its answers and deletes its conversations, messages and files with their bytes; its token stops working', async () => {
    const sharedText = 'the same bytes in two sessions';
    const other = await sessionWithData(sharedText);
    const s = await sessionWithData(sharedText);
    const before = stored().length;
    expect(await counts(s.id)).toMatchObject({ sessions: 1, conversations: 1, files: 2, messages: 2 });

    // An answer still generating when the session is erased.
    const running = SseConnection.open(`${baseUrl()}/api/v1/chat`, { method: 'POST', headers: auth(s.token), body: { message: 'A long one, please' } });
    await running.until((events) => events.some((e) => e.data.type === 'token'));

    // The SPA keeps no id: it reads its own session's first.
    const own = await t.http().get('/api/v1/sessions/current').set(auth(s.token)).expect(200);
    expect(own.body.session.id).toBe(s.id);
    const res = await t.http().delete(`/api/v1/sessions/${s.id}`).set(auth(s.token)).expect(204);
    expect(String(res.headers['set-cookie'])).toMatch(/session_token=;.*Expires=Thu, 01 Jan 1970/);
    // The stream ends (stopped, then deleted): nothing keeps generating for a session that is gone.
    const events = await running.all();
    expect(events.at(-1)?.data).toMatchObject({ type: 'done', status: 'stopped' });

    expect(await counts(s.id)).toEqual({ sessions: 0, conversations: 0, files: 0, messages: 0 });
    // Both of its files' bytes are gone; the other session's (one of them the same text) stay, below.
    expect(stored().length).toBe(before - 2);
    await t.http().get('/api/v1/conversations').set(auth(s.token)).expect(401);
    expect(await counts(other.id)).toMatchObject({ sessions: 1, conversations: 1, files: 2, messages: 2 });
    const files = (await t.http().get('/api/v1/files').set(auth(other.token)).expect(200)).body as { files: Array<{ file_id: string }> };
    expect(files.files).toHaveLength(2);
    for (const f of files.files) await t.http().get(`/api/v1/files/${f.file_id}/content`).set(auth(other.token)).expect(200);
  });

  it('deleting a conversation deletes its files with their bytes (bytes another row still refers to stay); erasing the session after leaves none', async () => {
    const s = await sessionWithData('kept: not in the conversation');
    const before = stored().length;
    // A second answer attaching the same file again: a second row sharing the bytes, in a second conversation.
    const attached = (await t.http().get('/api/v1/files').set(auth(s.token)).expect(200)).body.files
      .find((f: { filename: string }) => f.filename === 'notes.txt') as { file_id: string; conversation_id: string };
    const again = await SseConnection.open(`${baseUrl()}/api/v1/chat`, {
      method: 'POST', headers: auth(s.token), body: { message: 'And again', file_ids: [attached.file_id] },
    }).all();
    const second = (again[0].data as { conversation_id: string }).conversation_id;
    expect(second).not.toBe(attached.conversation_id);
    // The first conversation goes: its file row goes, its bytes stay for the second conversation's row.
    await t.http().delete(`/api/v1/conversations/${attached.conversation_id}`).set(auth(s.token)).expect(204);
    expect(stored().length).toBe(before);
    // The second goes: no row refers to the bytes any more, and they go at once (not at the orphan sweep).
    await t.http().delete(`/api/v1/conversations/${second}`).set(auth(s.token)).expect(204);
    expect(stored().length).toBe(before - 1);
    await t.http().delete(`/api/v1/sessions/${s.id}`).set(auth(s.token)).expect(204);
    expect(stored().length).toBe(before - 2);
    expect(stored().filter((name) => name.startsWith(s.id))).toEqual([]);
  });

  it.runIf(dialect === 'sqlite')('leaves none of the erased text readable in the database file or its log (secure_delete)', async () => {
    const secret = `osprey-${Date.now()}-the-erased-text`;
    const s = await t.newSession();
    await upload(s.token, 'private.txt', `notes: ${secret}`);
    const done = await SseConnection.open(`${baseUrl()}/api/v1/chat`, { method: 'POST', headers: auth(s.token), body: { message: `Keep ${secret}` } }).all();
    expect(done.at(-1)?.data).toMatchObject({ type: 'done', status: 'complete' });
    const path = t.config.database.type === 'sqlite' ? t.config.database.path : '';
    const files = (): string => [path, `${path}-wal`].map((f) => (existsSync(f) ? readFileSync(f).toString('latin1') : '')).join('');
    // Into the database file itself: the log is written over from its start after a checkpoint.
    await ds.query('PRAGMA wal_checkpoint(TRUNCATE)');
    expect(files()).toContain(secret);
    await t.http().delete(`/api/v1/sessions/${s.id}`).set(auth(s.token)).expect(204);
    await ds.query('PRAGMA wal_checkpoint(TRUNCATE)');
    expect(files()).not.toContain(secret);
  });

  it.runIf(dialect === 'sqlite')('leaves no copy of erased text in the database\'s files as it answers: a conversation, a file, a session (the WAL emptied)', async () => {
    const path = t.config.database.type === 'sqlite' ? t.config.database.path : '';
    const files = (): string => [path, `${path}-wal`].map((f) => (existsSync(f) ? readFileSync(f).toString('latin1') : '')).join('');
    const s = await t.newSession();
    const chat = async (text: string): Promise<string> => {
      const events = await SseConnection.open(`${baseUrl()}/api/v1/chat`, { method: 'POST', headers: auth(s.token), body: { message: text } }).all();
      expect(events.at(-1)?.data).toMatchObject({ type: 'done', status: 'complete' });
      return (events[0].data as { conversation_id: string }).conversation_id;
    };
    const stamp = Date.now();
    const inChat = `heron-${stamp}-a-deleted-conversation`;
    const inFile = `egret-${stamp}-a-deleted-file`;
    const inSession = `crane-${stamp}-an-erased-session`;
    const conversation = await chat(`Keep ${inChat}`);
    const fileId = await upload(s.token, 'private.txt', `notes: ${inFile}`);
    await chat(`Keep ${inSession}`);
    // Written, and (in the log or the database file) readable by anyone with the files.
    for (const secret of [inChat, inFile, inSession]) expect(files()).toContain(secret);

    await t.http().delete(`/api/v1/conversations/${conversation}`).set(auth(s.token)).expect(204);
    expect(files()).not.toContain(inChat);
    expect(files()).toContain(inSession);
    await t.http().delete(`/api/v1/files/${fileId}`).set(auth(s.token)).expect(204);
    expect(files()).not.toContain(inFile);
    await t.http().delete(`/api/v1/sessions/${s.id}`).set(auth(s.token)).expect(204);
    expect(files()).not.toContain(inSession);
  });

  it("is 404 for another session's id, exactly like a missing one, and changes nothing", async () => {
    const owner = await sessionWithData('owner bytes');
    const caller = await t.newSession();
    const before = await counts(owner.id);
    for (const id of [owner.id, '00000000-0000-4000-8000-000000000000']) {
      const res = await t.http().delete(`/api/v1/sessions/${id}`).set(auth(caller.token)).expect(404);
      expect(res.body.error).toMatchObject({ code: 'SESSION_NOT_FOUND', message: 'Session not found' });
    }
    expect(await counts(owner.id)).toEqual(before);
    // Logging out still only revokes: the data stays until the session is erased or purged.
    await t.http().delete('/api/v1/sessions/current').set(auth(owner.token)).expect(204);
    expect(await counts(owner.id)).toEqual(before);
  });
});
