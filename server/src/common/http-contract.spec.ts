import { once } from 'node:events';
import { type AddressInfo, connect } from 'node:net';
import express from 'express';
import { ErrorCode } from './error-code.js';
import { helmetSecurityHeaders, staticSecurityHeaders } from './http-pipeline.js';
import { ConversationsService } from '../conversations/conversations.service.js';
import { RawSql } from '../database/raw-sql.js';
import { createTestApp, type TestApp } from '../testing/test-app.js';

/** The HTTP contract every route shares: envelope, ids, headers, CSRF, limits, docs. */
describe('HTTP contract', () => {
  let t: TestApp;
  /** The test server's own origin, as a browser on it would send it. */
  const ownOrigin = (): string => {
    const { address, port } = t.app.getHttpServer().address() as AddressInfo;
    return `http://${address}:${port}`;
  };
  beforeAll(async () => {
    t = await createTestApp('sqlite', { JSON_BODY_LIMIT_BYTES: '2048', CORS_ORIGINS: 'https://partner.example', RATE_LIMIT_REQUESTS_PER_MINUTE: '1000' });
  });
  afterAll(async () => { await t.close(); });

  const envelope = { error: { code: expect.any(String), message: expect.any(String), timestamp: expect.any(String), request_id: expect.any(String) } };

  it('malformed JSON → 400 VALIDATION_ERROR envelope', async () => {
    const res = await t.http().post('/api/v1/sessions').set('Content-Type', 'application/json').send('{"user_agent":').expect(400);
    expect(res.body).toMatchObject(envelope);
    expect(res.body.error.code).toBe('VALIDATION_ERROR');
  });

  it('a body that is not JSON → 415 VALIDATION_ERROR saying so, as is a charset the parser does not read', async () => {
    const s = await t.newSession();
    const id = '00000000-0000-4000-8000-000000000000';
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/vnd.api+json']) {
      const res = await t.http().patch(`/api/v1/conversations/${id}`).set('Authorization', `Bearer ${s.token}`).set('Content-Type', type)
        .send('{"title":"ok"}').expect(415);
      expect(res.body.error).toMatchObject({ code: 'VALIDATION_ERROR', message: 'Content-Type must be application/json' });
    }
    for (const charset of ['latin1', 'utf8', 'utf-16', 'UTF-16LE', '"utf-32"']) {
      const res = await t.http().post('/api/v1/sessions').set('Content-Type', `application/json; charset=${charset}`).send('{}').expect(415);
      expect(res.body.error).toMatchObject({ code: 'VALIDATION_ERROR', message: 'Unsupported body encoding: send UTF-8 JSON' });
    }
    for (const charset of ['utf-8', 'UTF-8', '"utf-8"']) {
      await t.http().post('/api/v1/sessions').set('Content-Type', `application/json; charset=${charset}`).send('{}').expect(201);
    }
    // No body, no type needed (stop, logout).
    await t.http().patch(`/api/v1/conversations/${id}`).set('Authorization', `Bearer ${s.token}`).send({ title: 'ok' }).expect(404);
  });

  it('multipart is for uploads only: elsewhere 415 (it was left unparsed and failed validation as if empty), and an upload asks for it', async () => {
    const s = await t.newSession();
    const chat = await t.http().post('/api/v1/chat').set('Authorization', `Bearer ${s.token}`).field('message', 'hi').expect(415);
    expect(chat.body.error).toMatchObject({ code: 'VALIDATION_ERROR', message: 'Content-Type must be application/json' });
    const upload = await t.http().post('/api/v1/files/upload').set('Authorization', `Bearer ${s.token}`).set('Content-Type', 'application/json')
      .send('{"file":"x"}').expect(415);
    expect(upload.body.error.message).toBe('Content-Type must be multipart/form-data');
    const list = await t.http().get('/api/v1/conversations').set('Authorization', `Bearer ${s.token}`).expect(200);
    expect(list.body.conversations).toEqual([]);
    // Where no route takes the method, routing answers whatever the body: 404, or 405 with Allow (no 415 naming a type nothing takes).
    const nowhere = await t.http().post('/api/v1/nowhere').set('Authorization', `Bearer ${s.token}`).set('Content-Type', 'text/plain').send('x').expect(404);
    expect(nowhere.body.error.code).toBe('NOT_FOUND');
    const wrongMethod = await t.http().put('/api/v1/chat').set('Authorization', `Bearer ${s.token}`).set('Content-Type', 'text/plain').send('x').expect(405);
    expect(wrongMethod.headers.allow).toBe('POST');
  });

  it('errors found before routing (body type, malformed JSON, size) carry the CORS headers of an allowed origin', async () => {
    const s = await t.newSession();
    const origin = 'https://partner.example';
    const cases = [
      t.http().post('/api/v1/chat').set('Content-Type', 'text/plain').send('x').expect(415),
      t.http().post('/api/v1/chat').set('Content-Type', 'application/json').send('{bad').expect(400),
      t.http().post('/api/v1/chat').send({ message: 'x'.repeat(5000) }).expect(413),
    ];
    for (const pending of cases) {
      const res = await pending.set('Authorization', `Bearer ${s.token}`).set('Origin', origin);
      expect(res.headers['access-control-allow-origin']).toBe(origin);
      expect(res.headers['access-control-allow-credentials']).toBe('true');
    }
  });

  it('a JSON body over the limit → 413', async () => {
    const res = await t.http().post('/api/v1/sessions').send({ user_agent: 'x'.repeat(5000) }).expect(413);
    expect(res.body.error.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('unknown API routes → 404 envelope, even signed in', async () => {
    const s = await t.newSession();
    const res = await t.http().get('/api/v1/nope').set('Authorization', `Bearer ${s.token}`).expect(404);
    expect(res.body).toMatchObject(envelope);
    expect(res.body.error.code).toBe('NOT_FOUND');
  });

  it('a route under the wrong method → 405 METHOD_NOT_ALLOWED with Allow, changing nothing; a missing path stays 404', async () => {
    const s = await t.newSession();
    const auth = { Authorization: `Bearer ${s.token}` };
    const chat = await t.http().delete('/api/v1/chat').set(auth).expect(405);
    expect(chat.body).toMatchObject(envelope);
    expect(chat.body.error.code).toBe('METHOD_NOT_ALLOWED');
    expect(chat.headers.allow).toBe('POST');
    expect(chat.body.error.message).toBe('DELETE is not allowed here; allowed: POST');
    // A path with parameters, matched whatever the id.
    const id = '00000000-0000-4000-8000-000000000000';
    const conv = await t.http().post(`/api/v1/conversations/${id}`).set(auth).send({}).expect(405);
    expect(conv.headers.allow).toBe('GET, HEAD, PATCH, DELETE');
    await t.http().put('/api/v1/sessions').set(auth).send({}).expect(405);
    // Paths as the contract writes them (app.factory.ts): another case or a trailing slash is a path nothing answers,
    // under any method (Express matched them, and the host check's probe exemption, by exact path, did not).
    for (const path of [`/api/v1/conversations/${id}/`, '/API/V1/SESSIONS', '/api/v1/Conversations', '/api/v1/chat/config/', '/api/v1/health/live/']) {
      expect((await t.http().get(path).set(auth).expect(404)).body.error.code).toBe('NOT_FOUND');
      expect((await t.http().put(path).set(auth).send({}).expect(404)).headers.allow).toBeUndefined();
    }
    // Unauthenticated too: which methods a documented route takes is no secret, and nothing ran.
    const health = await t.http().post('/api/v1/health').send({}).expect(405);
    expect(health.headers.allow).toBe('GET, HEAD');
    expect((await t.http().get('/api/v1/conversations').set(auth).expect(200)).body.conversations).toEqual([]);
    // HEAD of a GET route is the route; paths nothing answers, and the SPA's catch-all, stay 404.
    await t.http().head('/api/v1/health').expect(200);
    expect((await t.http().post('/api/v1/nope').set(auth).send({}).expect(404)).body.error.code).toBe('NOT_FOUND');
    await t.http().post('/metrics').send({}).expect(404);
  });

  it('a literal route wins over a parameter: a wrong method on it is 405, not a malformed id', async () => {
    const s = await t.newSession();
    const auth = { Authorization: `Bearer ${s.token}` };
    // GET /files/:id would take "upload" for an id (400); a literal path under a method it lacks lists its own.
    const upload = await t.http().get('/api/v1/files/upload').set(auth).expect(405);
    expect(upload.headers.allow).toBe('POST');
    expect(upload.body.error.code).toBe('METHOD_NOT_ALLOWED');
    expect((await t.http().patch('/api/v1/sessions/current').set(auth).send({}).expect(405)).headers.allow).toBe('GET, HEAD, DELETE');
    expect((await t.http().post('/api/v1/chat/config').set(auth).send({}).expect(405)).headers.allow).toBe('GET, HEAD');
    // The literal routes under their own methods, and the parameter routes, are untouched.
    await t.http().get('/api/v1/chat/config').set(auth).expect(200);
    await t.http().get(`/api/v1/sessions/${s.id}`).set(auth).expect(200);
    expect((await t.http().get('/api/v1/files/not-an-id').set(auth).expect(400)).body.error.code).toBe('VALIDATION_ERROR');
    await t.http().delete('/api/v1/sessions/current').set(auth).expect(204);
  });

  it('reads a path of many slashes in linear time, before authentication', async () => {
    // A trailing-slash pattern run on every request's path was retried from every slash of a run
    // that a letter ends (186-311 ms of the event loop per request of 16,000 slashes).
    const path = `/api/v1/${'/'.repeat(16_000)}x`;
    const started = process.cpuUsage();
    for (let i = 0; i < 4; i++) {
      const res = await t.http().post(path).set('Content-Type', 'application/json').send('{}');
      expect(res.status).toBe(404);
      await t.http().get(path).expect(404);
    }
    const { user, system } = process.cpuUsage(started);
    // About 120 ms for the 8 requests, the client's work included; 4.2 s before.
    expect((user + system) / 1000).toBeLessThan(800);
  });

  it('refuses a query parameter named after a built-in property as it refuses any unknown one', async () => {
    const s = await t.newSession();
    const auth = { Authorization: `Bearer ${s.token}` };
    const unknown = await t.http().get('/api/v1/conversations?foo=1').set(auth).expect(400);
    expect(unknown.body.error).toMatchObject({ code: 'VALIDATION_ERROR', message: 'property foo should not exist' });
    for (const name of ['__proto__', 'constructor', 'toString', 'valueOf', 'hasOwnProperty']) {
      for (const path of [`/api/v1/conversations?${name}=1`, `/api/v1/files?${name}=x`, `/api/v1/conversations?limit=5&${name}=1`]) {
        const res = await t.http().get(path).set(auth);
        expect({ path, status: res.status, code: res.body.error?.code, message: res.body.error?.message })
          .toEqual({ path, status: 400, code: 'VALIDATION_ERROR', message: `property ${name} should not exist` });
        expect(res.body.error.details).toEqual({ fields: [{ field: name, errors: [`property ${name} should not exist`] }] });
      }
    }
    // Known parameters still pass.
    await t.http().get('/api/v1/conversations?limit=5&offset=0').set(auth).expect(200);
  });

  it('refuses a query whose escapes are not UTF-8, naming the parameter (it searched for U+FFFD)', async () => {
    const s = await t.newSession();
    const auth = { Authorization: `Bearer ${s.token}` };
    for (const [query, field] of [['q=%FF', 'q'], ['q=%ED%A0%80', 'q'], ['q=%C0%AF', 'q'], ['limit=5&q=ab%E2%82', 'q'], ['%FF=1', 'query'], ['q=100%', 'q']]) {
      const res = await t.http().get(`/api/v1/conversations?${query}`).set(auth);
      expect({ query, status: res.status, code: res.body.error?.code, fields: res.body.error?.details?.fields })
        .toEqual({ query, status: 400, code: 'VALIDATION_ERROR', fields: [{ field, errors: [`${field} must be valid percent-encoded UTF-8`] }] });
    }
    // UTF-8 escapes, + for a space, and plain text pass.
    for (const query of ['q=%C3%A9cole', 'q=caf%C3%A9+cr%C3%A8me', 'q=%F0%9F%98%80', 'q=plain', 'limit=5']) {
      await t.http().get(`/api/v1/conversations?${query}`).set(auth).expect(200);
    }
  });

  it('refuses a path parameter whose escapes are not UTF-8 as the query\'s are, naming the path (it echoed Express\'s "Failed to decode param")', async () => {
    const s = await t.newSession();
    const auth = { Authorization: `Bearer ${s.token}` };
    for (const path of ['/api/v1/conversations/%FF', '/api/v1/files/%C0%AF', '/api/v1/chat/streams/ab%E2%82']) {
      const res = await t.http().get(path).set(auth);
      expect({ path, status: res.status, body: res.body.error }).toEqual({ path, status: 400, body: {
        code: 'VALIDATION_ERROR', message: 'path must be valid percent-encoded UTF-8', timestamp: expect.any(String), request_id: expect.any(String),
        details: { fields: [{ field: 'path', errors: ['path must be valid percent-encoded UTF-8'] }] },
      } });
    }
  });

  it('refuses a NUL in the query of every route, those without query parameters of their own too, naming the parameter', async () => {
    const s = await t.newSession();
    const auth = { Authorization: `Bearer ${s.token}` };
    for (const path of ['/api/v1/chat/config?x=%00', '/api/v1/sessions/current?x=a%00b', '/api/v1/health/live?x=%00', '/api/v1/conversations?q=%00']) {
      const field = path.split('?')[1].split('=')[0];
      const res = await t.http().get(path).set(auth);
      expect({ path, status: res.status, code: res.body.error?.code, message: res.body.error?.message })
        .toEqual({ path, status: 400, code: 'VALIDATION_ERROR', message: `Query parameter ${field} contains a NUL character (U+0000)` });
    }
    await t.http().get('/api/v1/chat/config').set(auth).expect(200);
  });

  it('refuses a query parameter on an operation that takes none, naming it, and changes nothing', async () => {
    const s = await t.newSession();
    const auth = { Authorization: `Bearer ${s.token}` };
    const { id } = await t.app.get(ConversationsService).create(s.id, 'Kept');
    const cases: Array<[string, string, string[]]> = [
      ['get', '/api/v1/chat/config?x=1', ['x']],
      ['get', '/api/v1/sessions/current?verbose=true&x=2', ['verbose', 'x']],
      ['get', '/api/v1/health/live?probe=1', ['probe']],
      ['delete', `/api/v1/conversations/${id}?confirm=1`, ['confirm']],
      ['patch', `/api/v1/conversations/${id}?title=Renamed`, ['title']],
      ['get', `/api/v1/conversations/${id}/messages?limit=5&q=x`, ['q']],
    ];
    for (const [method, path, names] of cases) {
      const res = await t.http()[method as 'get'](path).set(auth).send(method === 'patch' ? { title: 'Renamed' } : undefined);
      expect({ path, status: res.status, code: res.body.error?.code, fields: res.body.error?.details?.fields?.map((f: { field: string }) => f.field) })
        .toEqual({ path, status: 400, code: 'VALIDATION_ERROR', fields: names });
    }
    const noQuery = await t.http().get('/api/v1/chat/config?x=1').set(auth);
    expect(noQuery.body.error.message).toBe('This operation takes no query parameters: send none (got x)');
    // Nothing was deleted or renamed.
    const kept = await t.http().get(`/api/v1/conversations/${id}`).set(auth).expect(200);
    expect((kept.body as { conversation: { title: string } }).conversation.title).toBe('Kept');
    // Many parameters are named a few at a time, each cut short.
    const many = await t.http().get(`/api/v1/chat/config?${Array.from({ length: 8 }, (_, i) => `p${i}${'x'.repeat(100)}=1`).join('&')}`).set(auth).expect(400);
    expect(many.body.error.details.fields).toHaveLength(5);
    expect(many.body.error.message).toMatch(/, …\)$/);
    expect(many.body.error.message.length).toBeLessThan(500);
    // Without a query, and an empty one, they pass; the routes that take one still whitelist it.
    await t.http().get('/api/v1/chat/config?').set(auth).expect(200);
    await t.http().get(`/api/v1/conversations/${id}?limit=5`).set(auth).expect(200);
    // Who is calling is answered first, as for any other validation.
    await t.http().get('/api/v1/sessions/current?x=1').expect(401);
  });

  it('sends no ETag on the API\'s JSON, and so never a 304 the document does not promise', async () => {
    const s = await t.newSession();
    const res = await t.http().get('/api/v1/conversations').set('Authorization', `Bearer ${s.token}`).expect(200);
    expect(res.headers.etag).toBeUndefined();
    await t.http().get('/api/v1/conversations').set('Authorization', `Bearer ${s.token}`).set('If-None-Match', 'W/"2a-abc"').expect(200);
  });

  it('never leaks a stack trace or SQL', async () => {
    const s = await t.newSession();
    const res = await t.http().get('/api/v1/conversations/%27%3B%20DROP%20TABLE').set('Authorization', `Bearer ${s.token}`);
    expect(JSON.stringify(res.body)).not.toMatch(/at .*\.ts:|SELECT|sqlite|stack/i);
  });

  it('answers what Node\'s HTTP parser refuses (a malformed request, headers over the limit) with the envelope too', async () => {
    const { port } = t.app.getHttpServer().address() as AddressInfo;
    const raw = async (request: string): Promise<string> => {
      const socket = connect(port, '127.0.0.1');
      socket.end(request);
      const chunks: Buffer[] = [];
      for await (const chunk of socket) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    };
    const big = (origin: string): string => `GET /api/v1/health HTTP/1.1\r\nHost: x\r\nOrigin: ${origin}\r\nCookie: ${'a'.repeat(20_000)}\r\n\r\n`;
    for (const [request, status] of [['GARBAGE\r\n\r\n', 400], [big('https://partner.example'), 431], [big('https://evil.example'), 431]] as const) {
      const response = await raw(request);
      expect(response.startsWith(`HTTP/1.1 ${status} `)).toBe(true);
      const head = response.slice(0, response.indexOf('\r\n\r\n')).toLowerCase();
      const body = JSON.parse(response.slice(response.indexOf('\r\n\r\n') + 4)) as unknown;
      expect(body).toMatchObject(envelope);
      // The security headers of every response, and CORS for a listed origin only (a page there can read its 431).
      for (const header of ['content-security-policy:', 'x-content-type-options: nosniff', 'x-frame-options: deny']) expect(head).toContain(header);
      expect(head.includes('access-control-allow-origin: https://partner.example')).toBe(request.includes('partner.example'));
      expect(head).not.toContain('evil.example');
    }
    // Without Host, HTTP/1.1 is refused (RFC 9112 §3.2) with the envelope and the headers of every response, nothing run;
    // HTTP/1.0 has no Host to require.
    for (const path of ['/api/v1/health', '/api/v1/sessions']) {
      const noHost = await raw(`GET ${path} HTTP/1.1\r\n\r\n`);
      expect(noHost.startsWith('HTTP/1.1 400 ')).toBe(true);
      const head = noHost.slice(0, noHost.indexOf('\r\n\r\n')).toLowerCase();
      expect(head).toContain('connection: close');
      expect(head).toContain('x-content-type-options: nosniff');
      expect(JSON.parse(noHost.slice(noHost.indexOf('\r\n\r\n') + 4))).toMatchObject({ error: { code: 'VALIDATION_ERROR', message: 'An HTTP/1.1 request needs a Host header' } });
    }
    expect(await raw('GET /api/v1/health HTTP/1.0\r\n\r\n')).toMatch(/^HTTP\/1\.1 200 /);
    // Two Host lines (RFC 9112 §3.2: 400): the allowlist read the first, so a second name went through unjudged.
    for (const version of ['1.1', '1.0']) {
      const twoHosts = await raw(`GET /api/v1/health HTTP/${version}\r\nHost: 127.0.0.1\r\nhost: evil.example\r\n\r\n`);
      expect(twoHosts.startsWith('HTTP/1.1 400 ')).toBe(true);
      expect(JSON.parse(twoHosts.slice(twoHosts.indexOf('\r\n\r\n') + 4))).toMatchObject({ error: { code: 'VALIDATION_ERROR', message: 'A request has one Host header (this one has 2)' } });
    }
    expect(await raw('GET /api/v1/health HTTP/1.1\r\nHOST: 127.0.0.1\r\nConnection: close\r\n\r\n')).toMatch(/^HTTP\/1\.1 200 /);
    // An Origin line never finished, in a request refused for a bad byte: the pattern that read it was retried from
    // every blank (1.8 s of the event loop for 65,400 spaces, before any authentication).
    const started = process.cpuUsage();
    const refused = await raw(`GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin:${' '.repeat(65_400)}\u0001`);
    const { user, system } = process.cpuUsage(started);
    expect(refused.startsWith('HTTP/1.1 4')).toBe(true);
    expect((user + system) / 1000).toBeLessThan(500);
  });

  it('echoes a sane X-Request-Id and replaces an insane one', async () => {
    const ok = await t.http().get('/api/v1/health').set('X-Request-Id', 'gateway-req-12345678');
    expect(ok.headers['x-request-id']).toBe('gateway-req-12345678');
    const bad = await t.http().get('/api/v1/conversations').set('X-Request-Id', '<script>');
    expect(bad.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(bad.body.error.request_id).toBe(bad.headers['x-request-id']);
  });

  it('sends security headers and no-store on the API', async () => {
    const res = await t.http().get('/api/v1/health').expect(200);
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['content-security-policy']).toMatch(/frame-ancestors 'none'/);
    expect(res.headers['content-security-policy']).toMatch(/script-src 'self'(;|$)/);
    expect(res.headers['content-security-policy']).not.toMatch(/upgrade-insecure-requests/);
    expect(res.headers['referrer-policy']).toBeDefined();
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['x-powered-by']).toBeUndefined();
  });

  it('sends exactly the headers helmet sets, worked out once at boot', async () => {
    // The same helmet setup run per request on a bare Express app, as the reference.
    const reference = express();
    reference.use(helmetSecurityHeaders());
    reference.get('/x', (_req, res) => { res.end(); });
    const server = reference.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const port = (server.address() as AddressInfo).port;
      const expected = await fetch(`http://127.0.0.1:${port}/x`);
      const names = [...staticSecurityHeaders()].map(([name]) => name.toLowerCase());
      expect(names.length).toBeGreaterThanOrEqual(10);
      const res = await t.http().get('/api/v1/health').expect(200);
      for (const name of names) expect(res.headers[name], name).toBe(expected.headers.get(name));
      expect(res.headers['x-powered-by']).toBeUndefined();
    } finally {
      server.close();
    }
  });

  it('health really checks the database', async () => {
    const res = await t.http().get('/api/v1/health').expect(200);
    expect(res.body).toMatchObject({ status: 'ok', version: expect.any(String), uptime: expect.any(Number), checks: { database: 'ok' } });
  });

  describe('CSRF on cookie-authenticated writes', () => {
    let cookie: string;
    let id: string;
    beforeAll(async () => {
      const s = await t.newSession();
      cookie = s.cookie;
      id = (await t.http().get('/api/v1/conversations').set('Cookie', cookie)).body.conversations[0]?.id ?? '00000000-0000-4000-8000-000000000000';
    });
    const patch = () => t.http().patch(`/api/v1/conversations/${id}`).set('Cookie', cookie).send({ title: 'x' });

    it('refuses a foreign Origin with 403 FORBIDDEN', async () => {
      const res = await patch().set('Origin', 'https://evil.example').expect(403);
      expect(res.body.error.code).toBe('FORBIDDEN');
    });
    it('refuses a foreign Referer without Origin', async () => {
      await patch().set('Referer', 'https://evil.example/page').expect(403);
    });
    it('refuses Sec-Fetch-Site: cross-site', async () => {
      await patch().set('Sec-Fetch-Site', 'cross-site').expect(403);
    });
    it('refuses an unparseable Origin', async () => {
      await patch().set('Origin', 'null').expect(403);
    });
    it('accepts its own origin and configured CORS origins (reaching the route: 404 for a missing id)', async () => {
      const host = `http://${new URL(ownOrigin()).host}`;
      await patch().set('Origin', host).expect(404);
      await patch().set('Origin', 'https://partner.example').expect(404);
    });
    it('lets requests without Origin or Referer pass (non-browser clients)', async () => {
      await patch().expect(404);
    });
    it('refuses a session created from another site (login CSRF), and lets the SPA and non-browser clients create one', async () => {
      const create = () => t.http().post('/api/v1/sessions').send({});
      for (const res of [await create().set('Origin', 'https://evil.example'), await create().set('Sec-Fetch-Site', 'cross-site')]) {
        expect(res.status).toBe(403);
        expect(res.body.error.code).toBe('FORBIDDEN');
        expect(res.headers['set-cookie']).toBeUndefined();
      }
      const host = ownOrigin();
      await t.http().post('/api/v1/sessions').set('Origin', host).send({}).expect(201);
      await t.http().post('/api/v1/sessions').send({}).expect(201);
    });
    it('does not apply to Bearer requests', async () => {
      const s = await t.newSession();
      await t.http().patch(`/api/v1/conversations/${id}`).set('Authorization', `Bearer ${s.token}`).set('Origin', 'https://evil.example').send({ title: 'x' }).expect(404);
    });
  });

  it('CORS never answers * with credentials', async () => {
    const res = await t.http().options('/api/v1/conversations').set('Origin', 'https://partner.example').set('Access-Control-Request-Method', 'GET');
    expect(res.headers['access-control-allow-origin']).toBe('https://partner.example');
    expect(res.headers['access-control-allow-credentials']).toBe('true');
    const evil = await t.http().options('/api/v1/conversations').set('Origin', 'https://evil.example').set('Access-Control-Request-Method', 'GET');
    expect(evil.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('CORS answers preflights only, with the methods there are, and its headers reach every refusal, the Host checks\' too', async () => {
    const origin = 'https://partner.example';
    const preflight = await t.http().options('/api/v1/conversations').set('Origin', origin).set('Access-Control-Request-Method', 'PATCH').expect(204);
    expect(preflight.headers['access-control-allow-methods']).toBe('GET,HEAD,POST,PATCH,DELETE');
    // Any other OPTIONS is the routes' to answer (cors answered 204 to all, an unknown path's too), with the origin's headers.
    const plain = await t.http().options('/api/v1/chat').set('Origin', origin).expect(405);
    expect(plain.headers['allow']).toBe('POST');
    expect(plain.headers['access-control-allow-origin']).toBe(origin);
    const nowhere = await t.http().options('/api/v1/no/such/route').set('Origin', origin).expect(404);
    expect(nowhere.body.error.code).toBe('NOT_FOUND');
    // A host name not served: the refusal's message reaches the listed origin's script (it was an opaque CORS failure).
    const unserved = await t.http().get('/api/v1/conversations').set('Host', 'api.example.com').set('Origin', origin).expect(403);
    expect(unserved.headers['access-control-allow-origin']).toBe(origin);
    expect(unserved.body.error.code).toBe('FORBIDDEN');
    // So is a preflight under it: refused before it is answered.
    await t.http().options('/api/v1/conversations').set('Host', 'api.example.com').set('Origin', origin).set('Access-Control-Request-Method', 'GET').expect(403);
    // A download's name is readable there.
    const live = await t.http().get('/api/v1/health/live').set('Origin', origin).expect(200);
    expect(live.headers['access-control-expose-headers']).toBe('X-Request-Id,Retry-After,Content-Disposition');
  });

  it('answers HEAD on every documented GET operation with its GET\'s status and headers, and no body (as the document says)', async () => {
    const s = await t.newSession();
    const auth = { Authorization: `Bearer ${s.token}` };
    const chat = await t.http().post('/api/v1/chat').set(auth).send({ message: 'head me' }).buffer(true).parse((res, done) => {
      let text = '';
      res.on('data', (chunk: Buffer) => { text += chunk.toString(); });
      res.on('end', () => done(null, text));
    }).expect(200);
    const start = JSON.parse(/^data: (.*)$/m.exec(chat.body as string)![1]) as { conversation_id: string; message_id: string };
    const file = await t.http().post('/api/v1/files/upload').set(auth).attach('file', Buffer.from('head notes'), 'head.txt').expect(201);
    const ids: Record<string, string> = { message_id: start.message_id, file: (file.body as { file_id: string }).file_id, conversation: start.conversation_id, session: s.id };
    const doc = (await t.http().get('/api/docs-json').expect(200)).body as { paths: Record<string, Record<string, unknown>>; info: { description: string } };
    expect(doc.info.description).toMatch(/Every GET operation answers HEAD too/);
    const gets = Object.entries(doc.paths).filter(([, item]) => 'get' in item).map(([path]) => path);
    expect(gets.length).toBeGreaterThan(10);
    for (const template of gets) {
      const path = template.replace('{message_id}', ids.message_id)
        .replace('{id}', template.startsWith('/api/v1/files') ? ids.file : template.startsWith('/api/v1/sessions') ? ids.session : ids.conversation);
      const get = await t.http().get(path).set(auth);
      const head = await t.http().head(path).set(auth);
      expect({ path, status: head.status, type: head.headers['content-type'], body: head.text }).toEqual({ path, status: get.status, type: get.headers['content-type'], body: undefined });
      expect(get.status, path).toBeLessThan(300);
    }
  });

  it('documents every route, both auth schemes and the error envelope in OpenAPI', async () => {
    const res = await t.http().get('/api/docs-json').expect(200);
    const paths = Object.keys(res.body.paths);
    expect(paths).toEqual(expect.arrayContaining(['/api/v1/sessions', '/api/v1/sessions/{id}', '/api/v1/conversations', '/api/v1/conversations/{id}', '/api/v1/health']));
    expect(Object.keys(res.body.components.securitySchemes)).toEqual(expect.arrayContaining(['bearer', 'cookie']));
    expect(res.body.components.schemas.ErrorEnvelopeDto).toBeDefined();
    expect(res.body.paths['/api/v1/conversations'].get.responses.default).toBeDefined();
    // Public operations say so (`security: []`); guarded ones name their schemes; no empty server list.
    expect(res.body.paths['/api/v1/sessions'].post.security).toEqual([]);
    expect(res.body.paths['/api/v1/health'].get.security).toEqual([]);
    expect(res.body.paths['/api/v1/conversations'].get.security).toEqual(expect.arrayContaining([{ bearer: [] }]));
    expect(res.body.servers).toEqual([{ url: '/', description: 'This Parley instance' }]);
    // The errors a route answers with are documented per status, with their codes (they were only a default).
    const statuses = (path: string, method: string): string[] => Object.keys(res.body.paths[path][method].responses).sort();
    expect(statuses('/api/v1/chat', 'post')).toEqual(['200', '400', '401', '403', '404', '409', '413', '415', '429', '503', 'default']);
    expect(res.body.paths['/api/v1/chat'].post.responses['409'].description).toMatch(/GENERATION_IN_PROGRESS/);
    // Regenerating from a view that missed a later question is a CONFLICT; a list of another session's files is SESSION_NOT_FOUND.
    expect(res.body.paths['/api/v1/chat/regenerate'].post.responses['409'].description).toMatch(/`CONFLICT`.*GENERATION_IN_PROGRESS/);
    expect(res.body.paths['/api/v1/files'].get.responses['404'].description).toMatch(/SESSION_NOT_FOUND.*CONVERSATION_NOT_FOUND/);
    expect(res.body.paths['/api/v1/chat'].post.responses['429'].headers['Retry-After']).toBeDefined();
    expect(statuses('/api/v1/files/upload', 'post')).toEqual(expect.arrayContaining(['413', '415', '422', '503']));
    expect(res.body.paths['/api/v1/files/upload'].post.responses['413'].description).toMatch(/FILE_TOO_LARGE.*QUOTA_EXCEEDED/);
    expect(statuses('/api/v1/conversations/{id}', 'patch')).toEqual(expect.arrayContaining(['404', '403']));
    // A host name not served is 403 on every operation but the probes (live, ready), which answer under any name.
    expect(statuses('/api/v1/health', 'get')).toEqual(['200', '400', '403', '503', 'default']);
    expect(statuses('/api/v1/health/live', 'get')).toEqual(['200', '400', 'default']);
    const sse = res.body.paths['/api/v1/chat'].post.responses['200'].content['text/event-stream'].schema;
    expect(sse.oneOf.map((s: { $ref: string }) => s.$ref.split('/').pop())).toEqual(['SseStartEventDto', 'SseTokenEventDto', 'SseDoneEventDto', 'SseErrorEventDto']);
    expect(Object.keys(res.body.paths)).toEqual(expect.arrayContaining(['/api/v1/chat', '/api/v1/chat/streams/{message_id}', '/api/v1/files/upload', '/api/v1/files/{id}/content']));
    // Paging parameters are integers (they were an empty object schema, typed as objects by generated clients).
    type Parameter = { name: string; in: string; schema: Record<string, unknown> };
    const query = (path: string): Record<string, Record<string, unknown>> => Object.fromEntries(
      (res.body.paths[path].get.parameters as Parameter[]).filter((p) => p.in === 'query').map((p) => [p.name, p.schema]));
    expect(query('/api/v1/conversations')).toMatchObject({ limit: { type: 'integer', minimum: 1, maximum: 100, default: 20 }, offset: { type: 'integer', minimum: 0 } });
    expect(query('/api/v1/conversations/{id}')).toMatchObject({ limit: { type: 'integer', maximum: 200 } });
    expect(query('/api/v1/conversations/{id}/messages')).toMatchObject({ limit: { type: 'integer' }, before: { type: 'integer', minimum: 0 } });
    // A session is created without a body as well.
    expect(res.body.paths['/api/v1/sessions'].post.requestBody.required).toBe(false);
    // The access gate: its header, its body field and its 401.
    const createSession = res.body.paths['/api/v1/sessions'].post;
    expect((createSession.parameters as Parameter[]).map((p) => p.name)).toContain('X-Access-Token');
    expect(createSession.responses['401'].description).toMatch(/UNAUTHORIZED/);
    expect(res.body.components.schemas.CreateSessionDto.properties.access_token).toBeDefined();
    expect(statuses('/api/v1/conversations', 'get')).toContain('404');
    expect(statuses('/api/v1/files', 'get')).toContain('404');
    // Every error is JSON, on streaming and download routes too (they were documented as text/event-stream
    // and application/octet-stream, the success's type).
    for (const [path, item] of Object.entries(res.body.paths as Record<string, Record<string, { responses: Record<string, { content?: object }> }>>)) {
      for (const [method, op] of Object.entries(item)) {
        for (const [status, response] of Object.entries(op.responses)) {
          if (status !== 'default' && Number(status) < 400) continue;
          expect(Object.keys(response.content ?? {}), `${method} ${path} ${status}`).toEqual(['application/json']);
        }
      }
    }
    // A message without feedback has null there: the schema allows it (nullable alone does not widen an enum).
    expect(res.body.components.schemas.MessageDto.properties.feedback.enum).toEqual(['positive', 'negative', null]);
    // Error codes are the enum a client switches on, in the envelope, a stored message and a stream's error event.
    expect(res.body.components.schemas.MessageDto.properties.error_code.enum).toEqual([...Object.values(ErrorCode), null]);
    expect(res.body.components.schemas.SseErrorEventDto.properties.code.enum).toEqual(Object.values(ErrorCode));
    // The Idempotency-Key's rule, as the server checks it, so a generated client knows it before a 400.
    const key = (res.body.paths['/api/v1/chat'].post.parameters as Array<{ name: string; schema: { pattern: string; maxLength: number } }>)
      .find((p) => p.name === 'Idempotency-Key')!;
    expect(key.schema).toMatchObject({ type: 'string', pattern: '^[A-Za-z0-9._:-]{1,128}$', maxLength: 128 });
  });
});

describe('rate limit on ordinary routes', () => {
  let t: TestApp;
  beforeAll(async () => { t = await createTestApp('sqlite', { RATE_LIMIT_REQUESTS_PER_MINUTE: '5' }); });
  afterAll(async () => { await t.close(); });

  it('limits per session: one session\'s burst does not affect another', async () => {
    const a = await t.newSession();
    const b = await t.newSession();
    for (let i = 0; i < 5; i++) await t.http().get('/api/v1/conversations').set('Authorization', `Bearer ${a.token}`).expect(200);
    const res = await t.http().get('/api/v1/conversations').set('Authorization', `Bearer ${a.token}`).expect(429);
    expect(res.body.error.code).toBe('RATE_LIMIT_EXCEEDED');
    expect(res.headers['retry-after']).toMatch(/^\d+$/);
    await t.http().get('/api/v1/conversations').set('Authorization', `Bearer ${b.token}`).expect(200);
  });

  it('is one budget per session across the routes, chat requests included', async () => {
    const s = await t.newSession();
    const auth = `Bearer ${s.token}`;
    for (const path of ['/api/v1/conversations', '/api/v1/chat/config', '/api/v1/files', '/api/v1/conversations', '/api/v1/chat/config']) {
      await t.http().get(path).set('Authorization', auth).expect(200);
    }
    await t.http().get('/api/v1/files').set('Authorization', auth).expect(429);
    await t.http().post('/api/v1/chat').set('Authorization', auth).send({ message: '  ' }).expect(429);
  });

  it('counts refused sign-ins per address: a logged-out token, or none, gets 429 past the budget; a signed-in client does not', async () => {
    const s = await t.newSession();
    const gone = await t.newSession();
    await t.http().delete('/api/v1/sessions/current').set('Authorization', `Bearer ${gone.token}`).expect(204);
    // An ended session is known to be ended: its token costs no database read.
    const reads = vi.spyOn(RawSql.prototype, 'findById');
    for (let i = 0; i < 3; i++) await t.http().get('/api/v1/conversations').set('Authorization', `Bearer ${gone.token}`).expect(401);
    for (let i = 0; i < 2; i++) await t.http().get('/api/v1/conversations').expect(401);
    expect(reads).not.toHaveBeenCalled();
    reads.mockRestore();
    const res = await t.http().get('/api/v1/conversations').set('Authorization', `Bearer ${gone.token}`).expect(429);
    expect(res.body.error.code).toBe('RATE_LIMIT_EXCEEDED');
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    await t.http().get('/api/v1/files').set('Authorization', 'Bearer not-a-token').expect(429);
    await t.http().get('/api/v1/conversations').set('Authorization', `Bearer ${s.token}`).expect(200);
  });
});

/** The first Set-Cookie header of a response (the session cookie). */
const cookieOf = (res: { headers: Record<string, unknown> }): string => (res.headers['set-cookie'] as string[])[0];

describe('the session cookie over https, whatever NODE_ENV', () => {
  it.each(['development', 'test'])('is Secure under NODE_ENV=%s with an https PUBLIC_URL, on sign-in and on sign-out', async (nodeEnv) => {
    const t = await createTestApp('sqlite', { NODE_ENV: nodeEnv, PUBLIC_URL: 'https://chat.example.com' });
    try {
      const created = await t.http().post('/api/v1/sessions').send({}).expect(201);
      expect(cookieOf(created)).toMatch(/^__Host-session_token=[^;]+; Max-Age=\d+; Path=\/; Expires=[^;]+; HttpOnly; Secure; SameSite=Lax$/);
      const token = (created.body as { token: string }).token;
      const cleared = await t.http().delete('/api/v1/sessions/current').set('Authorization', `Bearer ${token}`).expect(204);
      expect(cookieOf(cleared)).toMatch(/^__Host-session_token=;.*; Secure/);
    } finally {
      await t.close();
    }
  });

  it('is Secure under NODE_ENV=development behind a trusted gateway forwarding https, and only then', async () => {
    const trusted = await createTestApp('sqlite', { NODE_ENV: 'development', TRUST_PROXY: 'loopback' });
    try {
      const forwarded = await trusted.http().post('/api/v1/sessions').set('X-Forwarded-Proto', 'https').send({}).expect(201);
      expect(cookieOf(forwarded)).toMatch(/^__Host-session_token=.*; Secure/);
      // Over https only the prefixed cookie is read: one planted under the plain name (from a sibling subdomain) is not.
      const token = (forwarded.body as { token: string }).token;
      const overHttps = (cookie: string) => trusted.http().get('/api/v1/sessions/current').set('X-Forwarded-Proto', 'https').set('Cookie', cookie);
      await overHttps(`__Host-session_token=${token}`).expect(200);
      expect((await overHttps(`session_token=${token}`).expect(401)).body.error.code).toBe('UNAUTHORIZED');
      // Plain http (a LAN install): a Secure cookie would be dropped by the browser.
      const plain = await trusted.http().post('/api/v1/sessions').send({}).expect(201);
      expect(cookieOf(plain)).toMatch(/^session_token=/);
      expect(cookieOf(plain)).not.toMatch(/Secure/);
    } finally {
      await trusted.close();
    }
    // Nobody's X-Forwarded-Proto counts without TRUST_PROXY: the client could claim anything.
    const untrusted = await createTestApp('sqlite', { NODE_ENV: 'development' });
    try {
      const claimed = await untrusted.http().post('/api/v1/sessions').set('X-Forwarded-Proto', 'https').send({}).expect(201);
      expect(cookieOf(claimed)).not.toMatch(/Secure/);
    } finally {
      await untrusted.close();
    }
  });
});

describe('swagger in production', () => {
  it('is off unless SWAGGER_ENABLED=true', async () => {
    const t = await createTestApp('sqlite', { NODE_ENV: 'production' });
    try {
      await t.http().get('/api/docs-json').expect(404);
      // Plain http (a LAN install): a Secure cookie would be dropped by the browser.
      const plain = await t.http().post('/api/v1/sessions').send({}).expect(201);
      expect(cookieOf(plain)).not.toMatch(/Secure/);
    } finally {
      await t.close();
    }
  });

  it('marks the cookie Secure in production behind https (PUBLIC_URL or a trusted gateway\'s X-Forwarded-Proto)', async () => {
    const t = await createTestApp('sqlite', { NODE_ENV: 'production', TRUST_PROXY: 'loopback' });
    try {
      const forwarded = await t.http().post('/api/v1/sessions').set('X-Forwarded-Proto', 'https').send({}).expect(201);
      expect(cookieOf(forwarded)).toMatch(/; Secure/);
    } finally {
      await t.close();
    }
    const u = await createTestApp('sqlite', { NODE_ENV: 'production', PUBLIC_URL: 'https://chat.example.com' });
    try {
      const res = await u.http().post('/api/v1/sessions').send({}).expect(201);
      expect(cookieOf(res)).toMatch(/; Secure/);
    } finally {
      await u.close();
    }
  });
});
