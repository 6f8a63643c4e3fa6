import { Writable } from 'node:stream';
import { createTestApp, type TestApp } from '../testing/test-app.js';

/** What the logs may and may not contain: request ids and routes yes; tokens, cookies, message text no. */
describe('structured logs', () => {
  let t: TestApp;
  const lines: string[] = [];
  beforeAll(async () => {
    const sink = new Writable({ write(chunk: Buffer, _enc, done) { lines.push(...chunk.toString().split('\n').filter(Boolean)); done(); } });
    t = await createTestApp('sqlite', { LOG_LEVEL: 'info' }, { logDestination: sink });
  });
  afterAll(async () => { await t.close(); });

  it('log every request as JSON with its id, but never tokens, cookies, query strings or message text', async () => {
    const s = await t.newSession();
    const secretText = 'my-very-private-message-text-4711';
    const res = await t.http().post('/api/v1/chat').set('Authorization', `Bearer ${s.token}`).set('Cookie', s.cookie)
      .send({ message: secretText });
    expect(res.status).toBe(200);
    await t.http().get('/api/v1/conversations?limit=5&secret=query-value-0815').set('Authorization', `Bearer ${s.token}`).expect(400);
    await new Promise((r) => setTimeout(r, 100));
    const all = lines.join('\n');
    const parsed = lines.map((l) => JSON.parse(l) as { req?: { id?: string; path?: string } });
    expect(parsed.some((l) => l.req?.id === res.headers['x-request-id'] && l.req.path === '/api/v1/chat')).toBe(true);
    expect(all).not.toContain(s.token);
    expect(all).not.toContain(s.token.split('.')[2]);
    expect(all).not.toContain(secretText);
    expect(all).not.toContain('query-value-0815');
  });
});
