import type { Test } from 'supertest';
import { dialects } from '../testing/dialects.js';
import { createTestApp, type TestApp } from '../testing/test-app.js';
import { ConversationsService } from '../conversations/conversations.service.js';
import { JSON_MAX_DEPTH, JSON_MAX_VALUES, jsonShapeProblem, jsonShapeRefusal } from './json-shape.js';

/** Sends these bytes as the body: under a JSON type, superagent would serialise a Buffer as JSON (`{"type":"Buffer",…}`). */
function bytesAsJson(req: Test, bytes: Buffer): Test {
  return req.serialize(() => bytes as unknown as string).send(bytes);
}

const nested = (levels: number): string => `${'['.repeat(levels)}${']'.repeat(levels)}`;

describe('jsonShapeProblem', () => {
  it('accepts the shapes the API takes', () => {
    expect(jsonShapeProblem({ message: 'hi', conversation_id: 'c', file_ids: ['a', 'b'] })).toBeUndefined();
    expect(jsonShapeProblem({})).toBeUndefined();
    expect(jsonShapeProblem(JSON.parse(`{"a":${nested(JSON_MAX_DEPTH - 1)}}`))).toBeUndefined();
  });

  it('refuses a body nested too deep, one with too many values, and NUL in a string or a key', () => {
    expect(jsonShapeProblem(JSON.parse(`{"a":${nested(JSON_MAX_DEPTH)}}`))).toMatch(/deeper than/);
    expect(jsonShapeProblem(JSON.parse(`{"a":${nested(100_000)}}`))).toMatch(/deeper than/);
    expect(jsonShapeProblem({ ids: new Array(JSON_MAX_VALUES).fill(0) })).toMatch(/more than/);
    expect(jsonShapeProblem(Object.fromEntries(Array.from({ length: 50_000 }, (_, i) => [`k${i}`, 1])))).toMatch(/more than/);
    expect(jsonShapeProblem({ message: 'a\u0000b' })).toMatch(/NUL/);
    expect(jsonShapeProblem({ 'a\u0000': 'b' })).toMatch(/NUL/);
  });

  it('refuses a lone UTF-16 surrogate in a string or a key, and accepts a pair (an emoji)', () => {
    expect(jsonShapeProblem({ title: 'a\ud800' })).toMatch(/surrogate/);
    expect(jsonShapeProblem({ title: '\udc00b' })).toMatch(/surrogate/);
    expect(jsonShapeProblem({ 'k\ud83d': 'v' })).toMatch(/surrogate/);
    expect(jsonShapeProblem({ title: 'a 😀 b', file_ids: ['\u00e9'] })).toBeUndefined();
  });
});

describe('jsonShapeRefusal', () => {
  it('names the query parameter at fault in a query string (which is no request body)', () => {
    expect(jsonShapeRefusal({ limit: '20', q: 'a\u0000' }, 'query')).toEqual({ message: 'Query parameter q contains a NUL character (U+0000)', field: 'q' });
    expect(jsonShapeRefusal({ q: ['ok', '\ud800'] }, 'query')).toEqual({ message: 'Query parameter q contains a lone UTF-16 surrogate (not a character)', field: 'q.1' });
    expect(jsonShapeRefusal({ 'q\u0000': 'x' }, 'query')).toEqual({ message: 'A query parameter\'s name contains a NUL character (U+0000)' });
    expect(jsonShapeRefusal({ a: { b: { c: { d: { e: { f: { g: { h: {} } } } } } } } }, 'query')?.message).toBe(`Query string is nested deeper than ${JSON_MAX_DEPTH} levels`);
    // A body is named as before.
    expect(jsonShapeRefusal({ message: 'a\u0000b' })).toEqual({ message: 'Request body contains a NUL character (U+0000)' });
  });


  it.each(['__proto__', 'constructor', 'hasOwnProperty', 'toString', 'valueOf', 'isPrototypeOf', '__defineGetter__', 'prototype'])(
    'refuses the key %s at any depth, naming the field as validation does', (key) => {
      expect(jsonShapeRefusal(JSON.parse(`{"title":"t","${key}":{"x":1}}`))).toEqual({ message: `property ${key} should not exist`, field: key });
      expect(jsonShapeRefusal(JSON.parse(`{"a":{"b":[{"${key}":1}]}}`))).toEqual({ message: `property a.b.0.${key} should not exist`, field: `a.b.0.${key}` });
      // As multer builds a multipart body: an object without a prototype.
      expect(jsonShapeRefusal(Object.assign(Object.create(null) as object, { [key]: { title: 't' } }))).toMatchObject({ field: key });
    });

  it('takes those names as values, and look-alike keys', () => {
    expect(jsonShapeRefusal({ title: '__proto__', message: 'constructor', file_ids: ['toString'] })).toBeUndefined();
    expect(jsonShapeRefusal({ Constructor: 1, proto: 2, __proto: 3, tostring: 4 })).toBeUndefined();
  });
});

describe.each(dialects())('JSON bodies the API refuses before validating them, on %s', (dialect) => {
  let t: TestApp;
  beforeAll(async () => { t = await createTestApp(dialect); });
  afterAll(async () => { await t.close(); });

  const send = (path: string, body: string, token?: string) => {
    const req = t.http().post(path).set('Content-Type', 'application/json');
    return (token ? req.set('Authorization', `Bearer ${token}`) : req).send(body);
  };

  it('answers a deeply nested body with 400 VALIDATION_ERROR, not a stack overflow (500), even without a session', async () => {
    const res = await send('/api/v1/sessions', `{"user_agent":"x","a":${nested(2000)}}`).expect(400);
    expect(res.body.error).toMatchObject({ code: 'VALIDATION_ERROR', message: expect.stringMatching(/deeper than/) });
  });

  it('answers 22,000 unknown keys with 400 at once, with a short body', async () => {
    const s = await t.newSession();
    const body = JSON.stringify({ message: 'hi', ...Object.fromEntries(Array.from({ length: 22_000 }, (_, i) => [`k${i}`, 1])) });
    const res = await send('/api/v1/chat', body, s.token).expect(400);
    expect(res.body.error.message).toMatch(/more than/);
    expect(JSON.stringify(res.body).length).toBeLessThan(1000);
  });

  it('refuses a lone surrogate in a message with 400 and stores nothing (it was taken, and stored as U+FFFD)', async () => {
    const s = await t.newSession();
    const res = await send('/api/v1/chat', '{"message":"a\\ud800b"}', s.token).expect(400);
    expect(res.body.error).toMatchObject({ code: 'VALIDATION_ERROR', message: expect.stringMatching(/surrogate/) });
    const list = await t.http().get('/api/v1/conversations').set('Authorization', `Bearer ${s.token}`).expect(200);
    expect(list.body.conversations).toEqual([]);
  });

  it('refuses NUL in a message with 400 and stores nothing (PostgreSQL cannot store it; SQLite would have)', async () => {
    const s = await t.newSession();
    const res = await send('/api/v1/chat', JSON.stringify({ message: 'a\u0000b' }), s.token).expect(400);
    expect(res.body.error.code).toBe('VALIDATION_ERROR');
    const list = await t.http().get('/api/v1/conversations').set('Authorization', `Bearer ${s.token}`).expect(200);
    expect(list.body.conversations).toEqual([]);
  });

  it.each([
    ['bytes that are no UTF-8 at all', Buffer.from([0xff, 0xfe])],
    ['CESU-8 (an encoded lone surrogate)', Buffer.from([0xed, 0xa0, 0x80])],
    ['an overlong encoding of "/"', Buffer.from([0xc0, 0xaf])],
    ['a sequence cut short', Buffer.from([0xe2, 0x82])],
  ])('refuses a JSON body holding %s with 400 "not valid UTF-8" before any route, and stores nothing (it was taken as U+FFFD)', async (_case, bad) => {
    const s = await t.newSession();
    const conversation = await t.app.get(ConversationsService).create(s.id, 'Before');
    const raw = (...parts: (string | Buffer)[]) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)));
    const chat = await bytesAsJson(t.http().post('/api/v1/chat').set('Authorization', `Bearer ${s.token}`).set('Content-Type', 'application/json'),
      raw('{"message":"a', bad, 'b"}')).expect(400);
    expect(chat.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(chat.body.error).toMatchObject({ code: 'VALIDATION_ERROR', message: 'Request body is not valid UTF-8', request_id: expect.any(String) });
    const patch = await bytesAsJson(t.http().patch(`/api/v1/conversations/${conversation.id}`).set('Authorization', `Bearer ${s.token}`)
      .set('Content-Type', 'application/json; charset=utf-8'), raw('{"title":"a', bad, '"}')).expect(400);
    expect(patch.body.error.message).toBe('Request body is not valid UTF-8');
    // Before authentication too: the body is refused as such.
    const session = await bytesAsJson(t.http().post('/api/v1/sessions').set('Content-Type', 'application/json'), raw('{"user_agent":"', bad, '"}')).expect(400);
    expect(session.body.error.message).toBe('Request body is not valid UTF-8');
    const after = await t.http().get(`/api/v1/conversations/${conversation.id}`).set('Authorization', `Bearer ${s.token}`).expect(200);
    expect(after.body.conversation.title).toBe('Before');
    expect(after.body.messages).toEqual([]);
    const list = await t.http().get('/api/v1/conversations').set('Authorization', `Bearer ${s.token}`).expect(200);
    expect(list.body.total).toBe(1);
  });

  it('takes UTF-8 in all its lengths (1 to 4 bytes) as it is', async () => {
    const s = await t.newSession();
    const conversation = await t.app.get(ConversationsService).create(s.id, 'Before');
    const title = 'é€😀 ok';
    await bytesAsJson(t.http().patch(`/api/v1/conversations/${conversation.id}`).set('Authorization', `Bearer ${s.token}`)
      .set('Content-Type', 'application/json'), Buffer.from(JSON.stringify({ title }))).expect(200);
    const after = await t.http().get(`/api/v1/conversations/${conversation.id}`).set('Authorization', `Bearer ${s.token}`).expect(200);
    expect(after.body.conversation.title).toBe(title);
  });

  it('names the query parameter holding NUL, not a body the request does not have', async () => {
    const s = await t.newSession();
    const res = await t.http().get('/api/v1/conversations?q=%00').set('Authorization', `Bearer ${s.token}`).expect(400);
    expect(res.body.error).toMatchObject({
      code: 'VALIDATION_ERROR', message: 'Query parameter q contains a NUL character (U+0000)',
      details: { fields: [{ field: 'q', errors: ['Query parameter q contains a NUL character (U+0000)'] }] },
    });
    const files = await t.http().get('/api/v1/files?conversation_id=a%00b').set('Authorization', `Bearer ${s.token}`).expect(400);
    expect(files.body.error.message).toBe('Query parameter conversation_id contains a NUL character (U+0000)');
  });

  it.each(['__proto__', 'constructor', 'hasOwnProperty', 'toString', 'valueOf'])(
    'answers an unknown field named %s with 400 VALIDATION_ERROR naming it, and changes nothing', async (key) => {
      const s = await t.newSession();
      const conversation = await t.app.get(ConversationsService).create(s.id, 'Before');
      const patch = (body: string) => t.http().patch(`/api/v1/conversations/${conversation.id}`)
        .set('Authorization', `Bearer ${s.token}`).set('Content-Type', 'application/json').send(body);
      for (const body of [`{"title":"t","${key}":{"x":1}}`, `{"title":"t","${key}":"x"}`, `{"${key}":{"title":"t"},"title":"t"}`]) {
        const res = await patch(body).expect(400);
        expect(res.body.error).toMatchObject({
          code: 'VALIDATION_ERROR', message: `property ${key} should not exist`,
          details: { fields: [{ field: key, errors: [`property ${key} should not exist`] }] },
        });
      }
      // Nested too, where a DTO has no nested object at all.
      const nestedKey = await send('/api/v1/chat', `{"message":"hi","file_ids":[{"${key}":1}]}`, s.token).expect(400);
      expect(nestedKey.body.error.details).toEqual({ fields: [{ field: `file_ids.0.${key}`, errors: [`property file_ids.0.${key} should not exist`] }] });
      const after = await t.http().get(`/api/v1/conversations/${conversation.id}`).set('Authorization', `Bearer ${s.token}`).expect(200);
      expect(after.body.conversation.title).toBe('Before');
      expect(after.body.messages).toEqual([]);
      // The same body without it is fine.
      await patch('{"title":"t"}').expect(200);
    });
});
