import type { Test } from 'supertest';
import { ConversationsService } from '../conversations/conversations.service.js';
import { SessionsService } from '../sessions/sessions.service.js';
import { createTestApp, type TestApp } from '../testing/test-app.js';
import { BODILESS_ROUTES, TAKES_NO_BODY } from './bodiless-routes.js';

type Method = 'post' | 'delete';
type Caller = { token: string; id: string };

/** The operations that take no body: a body is refused (400, nothing changed); none, an empty one or `{}` is taken. */
describe('operations that take no body', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp('sqlite', { JSON_BODY_LIMIT_BYTES: '2048', RATE_LIMIT_REQUESTS_PER_MINUTE: '10000', RATE_LIMIT_SESSIONS_PER_MINUTE: '1000' });
  });
  afterAll(async () => { await t.close(); });

  const call = (method: Method, url: string, who: Caller): Test => t.http()[method](url).set('Authorization', `Bearer ${who.token}`);
  const conversationOf = async (who: Caller): Promise<string> => (await t.app.get(ConversationsService).create(who.id, 'kept')).id;
  const isConversationKept = async (who: Caller, id: string): Promise<boolean> =>
    t.app.get(ConversationsService).findOwned(who.id, id).then(() => true, () => false);
  const isSessionKept = async (who: Caller): Promise<boolean> =>
    (await t.http().get('/api/v1/sessions/current').set('Authorization', `Bearer ${who.token}`)).status === 200;

  /** Each operation, driven on fresh data, with a check that it did (or did not) do its work. */
  const operations: Record<string, { method: Method; run: (who: Caller, send: (req: Test) => Test) => Promise<{ status: number; body: { error?: { code: string; message: string } }; hasActed: boolean }> }> = {
    'POST /api/v1/chat/streams/{message_id}/stop': {
      method: 'post',
      run: async (who, send) => {
        const chat = await call('post', '/api/v1/chat', who).send({ message: 'Hello' }).expect(200);
        const start = JSON.parse(/data: (.*)/.exec(chat.text)![1]) as { message_id: string };
        const res = await send(call('post', `/api/v1/chat/streams/${start.message_id}/stop`, who));
        // Stopping an answer already ended changes nothing either: its answer says it was reached.
        return { status: res.status, body: res.body, hasActed: res.body.message_id === start.message_id };
      },
    },
    'POST /api/v1/sessions/current/token': {
      method: 'post',
      run: async (who, send) => {
        const res = await send(call('post', '/api/v1/sessions/current/token', who));
        return { status: res.status, body: res.body, hasActed: res.headers['set-cookie'] !== undefined && typeof res.body.token === 'string' };
      },
    },
    'DELETE /api/v1/sessions/current': {
      method: 'delete',
      run: async (who, send) => {
        const res = await send(call('delete', '/api/v1/sessions/current', who));
        return { status: res.status, body: res.body, hasActed: !await isSessionKept(who) };
      },
    },
    'DELETE /api/v1/sessions/{id}': {
      method: 'delete',
      run: async (who, send) => {
        const res = await send(call('delete', `/api/v1/sessions/${who.id}`, who));
        return { status: res.status, body: res.body, hasActed: (await t.app.get(SessionsService).findOwn(who.id, who.id).then(() => false, () => true)) };
      },
    },
    'DELETE /api/v1/conversations/{id}': {
      method: 'delete',
      run: async (who, send) => {
        const id = await conversationOf(who);
        const res = await send(call('delete', `/api/v1/conversations/${id}`, who));
        return { status: res.status, body: res.body, hasActed: !await isConversationKept(who, id) };
      },
    },
    'DELETE /api/v1/files/{id}': {
      method: 'delete',
      run: async (who, send) => {
        const upload = await call('post', '/api/v1/files/upload', who).attach('file', Buffer.from('notes'), 'notes.txt').expect(201);
        const res = await send(call('delete', `/api/v1/files/${upload.body.file_id as string}`, who));
        const kept = (await t.http().get(`/api/v1/files/${upload.body.file_id as string}`).set('Authorization', `Bearer ${who.token}`)).status === 200;
        return { status: res.status, body: res.body, hasActed: !kept };
      },
    },
  };

  it('lists every operation the document has without a request body, and no other', async () => {
    const doc = (await t.http().get('/api/docs-json').expect(200)).body as { paths: Record<string, Record<string, { requestBody?: unknown; responses: Record<string, unknown> }>> };
    const bodiless = Object.entries(doc.paths).flatMap(([path, item]) => Object.entries(item)
      .filter(([method, op]) => ['post', 'put', 'patch', 'delete'].includes(method) && op.requestBody === undefined)
      .map(([method]) => `${method.toUpperCase()} ${path}`));
    const asDocumented = BODILESS_ROUTES.map((route) => route.replace(/:(\w+)/g, '{$1}'));
    expect(bodiless.sort()).toEqual([...asDocumented].sort());
    expect(Object.keys(operations).sort()).toEqual([...asDocumented].sort());
    // The refusal is documented; the body limits and types of the JSON routes are not theirs.
    for (const operation of bodiless) {
      const [method, path] = operation.split(' ');
      const responses = doc.paths[path][method.toLowerCase()].responses;
      expect(Object.keys(responses), operation).toContain('400');
      expect(Object.keys(responses), operation).not.toContain('413');
      expect(Object.keys(responses), operation).not.toContain('415');
    }
  });

  const refused: [string, (req: Test) => Test][] = [
    ['a JSON object with a field', (req) => req.send({ reason: 'user' })],
    ['a JSON array', (req) => req.send([])],
    ['a JSON string', (req) => req.set('Content-Type', 'application/json').send('"x"')],
    ['null', (req) => req.set('Content-Type', 'application/json').send('null')],
    ['malformed JSON', (req) => req.set('Content-Type', 'application/json').send('{')],
    ['text', (req) => req.set('Content-Type', 'text/plain').send('stop')],
    ['no Content-Type', (req) => req.set('Content-Type', '').send(Buffer.from('x'))],
    ['a JSON body over the JSON limit', (req) => req.send({ reason: 'x'.repeat(4096) })],
    ['{} in UTF-16', (req) => req.set('Content-Type', 'application/json; charset=utf-16').send(Buffer.from('\ufeff{}', 'utf16le'))],
    ['{} compressed', (req) => req.set('Content-Type', 'application/json').set('Content-Encoding', 'gzip').send('{}')],
  ];
  const accepted: [string, (req: Test) => Test][] = [
    ['no body', (req) => req],
    ['an empty body', (req) => req.set('Content-Type', 'application/json').set('Content-Length', '0')],
    ['{}', (req) => req.send({})],
    ['{} with spaces', (req) => req.set('Content-Type', 'application/json').send(' { }\n')],
    ['an empty body of another type', (req) => req.set('Content-Type', 'text/plain').send('')],
  ];

  describe.each(Object.keys(operations))('%s', (operation) => {
    it.each(refused)('refuses %s: 400 VALIDATION_ERROR, nothing done', async (_what, send) => {
      const who = await t.newSession();
      const res = await operations[operation].run(who, send);
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({ code: 'VALIDATION_ERROR', message: TAKES_NO_BODY });
      expect(res.hasActed).toBe(false);
    });

    it.each(accepted)('takes %s', async (_what, send) => {
      const who = await t.newSession();
      const res = await operations[operation].run(who, send);
      expect(res.status).toBeLessThan(300);
      expect(res.hasActed).toBe(true);
    });
  });

  it('leaves a path in another case or with a trailing slash to routing, which answers none of them (404), changing nothing', async () => {
    const who = await t.newSession();
    const id = await conversationOf(who);
    for (const path of [`/API/v1/Conversations/${id}`, `/api/v1/conversations/${id}/`]) {
      expect((await call('delete', path, who).send({ title: 'x' }).expect(404)).body.error.code).toBe('NOT_FOUND');
      expect((await call('delete', path, who).expect(404)).body.error.code).toBe('NOT_FOUND');
    }
    expect(await isConversationKept(who, id)).toBe(true);
  });

  it('leaves the routes that take a body as they were', async () => {
    const who = await t.newSession();
    const id = await conversationOf(who);
    await call('post', `/api/v1/conversations/${id}`, who).send({}).expect(405);
    await t.http().patch(`/api/v1/conversations/${id}`).set('Authorization', `Bearer ${who.token}`).set('Content-Type', 'text/plain').send('x').expect(415);
    await t.http().patch(`/api/v1/conversations/${id}`).set('Authorization', `Bearer ${who.token}`).send({ title: 'Renamed' }).expect(200);
  });
});
