import { dialects } from '../testing/dialects.js';
import { createTestApp, type TestApp } from '../testing/test-app.js';
import { JSON_MAX_DEPTH, JSON_MAX_VALUES, jsonShapeProblem } from './json-shape.js';

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
});
