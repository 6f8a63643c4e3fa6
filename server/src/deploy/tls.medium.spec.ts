import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect as http2Connect, constants as http2 } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { FakeOpenAiServer } from '../testing/fake-openai-server.js';
import { findNginx, freePort, type LocalNginx, requireBuiltServer, type ServerInstance, startGatewayWithOneInstance } from './topology.js';

interface Reply { status: number; headers: IncomingHttpHeaders; body: string }

/**
 * The gateway with TLS on, as an operator turns it on: nginx/nginx.conf including
 * nginx/tls.conf.example (a self-signed certificate for 127.0.0.1 here), in front of a built
 * instance. HTTPS serves the app and the API with HSTS, streams answers; plain HTTP only redirects
 * (but for the healthcheck) and never sends HSTS; the session cookie is `__Host-` and Secure behind it.
 */
describe('gateway TLS: nginx.conf with nginx/tls.conf.example', () => {
  const fake = new FakeOpenAiServer();
  let dir: string;
  let ca: Buffer;
  let instance: ServerInstance;
  let nginx: LocalNginx;
  let tlsPort: number;

  beforeAll(async () => {
    requireBuiltServer();
    findNginx();
    dir = mkdtempSync(join(tmpdir(), 'parley-tls-'));
    const certificate = join(dir, 'fullchain.pem');
    const key = join(dir, 'privkey.pem');
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', certificate,
    ], { stdio: 'ignore' });
    ca = readFileSync(certificate);
    const [baseUrl, ports] = await Promise.all([fake.start(), Promise.all([freePort(), freePort(), freePort()])]);
    tlsPort = ports[2];
    ({ instance, nginx } = await startGatewayWithOneInstance({
      dir, upstreamUrl: baseUrl, secret: 'tls-test-secret-that-is-long-enough-0123456789', ports: [ports[0], ports[1]],
      tls: { port: tlsPort, certificate, key },
    }));
  }, 60_000);

  afterAll(async () => {
    await Promise.allSettled([nginx?.proc?.stop(), instance?.proc?.stop()]);
    await fake.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  afterEach((ctx) => {
    if (ctx.task.result?.state !== 'fail') return;
    for (const p of [instance.proc, nginx.proc]) if (p) console.log(`--- ${p.name} ---\n${p.output.slice(-4_000)}`);
  });

  /** One request, the whole body read; over HTTPS the test's certificate is the only one trusted. */
  function send(scheme: 'http' | 'https', path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const options = { host: '127.0.0.1', method: init.method ?? 'GET', path, headers: init.headers };
      const onResponse = (res: import('node:http').IncomingMessage): void => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => { body += chunk; });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      };
      const req = scheme === 'https'
        ? httpsRequest({ ...options, port: tlsPort, ca }, onResponse)
        : httpRequest({ ...options, port: nginx.port }, onResponse);
      req.on('error', reject);
      req.end(init.body);
    });
  }

  /** One request over HTTP/2 (a browser's protocol here), the whole answer read. */
  function sendH2(path: string, init: { method?: string; headers?: Record<string, string>; body?: Buffer | string } = {}): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const session = http2Connect(`https://127.0.0.1:${tlsPort}`, { ca });
      session.on('error', reject);
      const stream = session.request({ [http2.HTTP2_HEADER_METHOD]: init.method ?? 'GET', [http2.HTTP2_HEADER_PATH]: path, ...init.headers });
      let headers: IncomingHttpHeaders = {};
      let body = '';
      stream.setEncoding('utf8');
      stream.on('response', (h) => { headers = h; });
      stream.on('data', (chunk: string) => { body += chunk; });
      // nginx answers a body over the limit before reading it, then resets the stream: the answer is what counts.
      const done = (): void => {
        session.close();
        const status = Number(headers[http2.HTTP2_HEADER_STATUS]);
        if (status) resolve({ status, headers, body });
        else reject(new Error(`no answer over HTTP/2 for ${path}`));
      };
      stream.on('close', done);
      stream.on('error', () => undefined); // the reset after the answer; a missing answer fails in done()
      // A large body goes after its first KiB, a moment later: written all at once with the headers,
      // node's client saw the stream reset (ENHANCE_YOUR_CALM) instead of nginx's early 413 (curl,
      // and this, get the answer).
      const sent = typeof init.body === 'string' ? Buffer.from(init.body) : init.body;
      if (!sent || sent.length <= 1024) {
        stream.end(sent);
        return;
      }
      stream.write(sent.subarray(0, 1024));
      setTimeout(() => { if (!stream.destroyed) stream.end(sent.subarray(1024)); }, 100);
    });
  }

  it('answers a body over the limit over HTTP/2 with the JSON envelope, as over HTTP/1.1, and takes a same-origin write on its port', async () => {
    const big = Buffer.alloc(12 * 1024 * 1024, 'x');
    for (const [path, code, type] of [
      ['/api/v1/chat', 'PAYLOAD_TOO_LARGE', 'application/json'],
      ['/api/v1/sessions', 'PAYLOAD_TOO_LARGE', 'application/json'],
      ['/api/v1/files/upload', 'FILE_TOO_LARGE', 'multipart/form-data; boundary=x'],
    ] as const) {
      for (const length of [true, false]) {
          const reply = await sendH2(path, { method: 'POST', headers: { 'content-type': type, ...(length ? { 'content-length': String(big.length) } : {}) }, body: big });
        expect([path, length, reply.status, reply.headers['content-type']]).toEqual([path, length, 413, 'application/json; charset=utf-8']);
        const { error } = JSON.parse(reply.body) as { error: { code: string; request_id: string } };
        expect(error.code).toBe(code);
        expect(error.request_id).toBe(reply.headers['x-request-id']);
        expect(reply.headers['strict-transport-security']).toBe('max-age=63072000; includeSubDomains');
      }
    }
    // Outside the API, nginx's page.
    const page = await sendH2('/c/x', { method: 'POST', headers: { 'content-length': String(big.length) }, body: big });
    expect(page.status).toBe(413);
    expect(page.headers['content-type']).toMatch(/^text\/html/);

    // The gateway is on a port other than 443 and PUBLIC_URL is unset: the CSRF check needs that port.
    const own = `https://127.0.0.1:${tlsPort}`;
    const write = (origin: string) => sendH2('/api/v1/sessions', { method: 'POST', headers: { 'content-type': 'application/json', origin }, body: '{}' });
    expect((await write(own)).status).toBe(201);
    expect((await write('https://127.0.0.1')).status).toBe(403);
    expect((await write('https://evil.com')).status).toBe(403);
  });

  it('serves the app and the API over HTTPS with HSTS and the security headers, and offers HTTP/2', async () => {
    const app = await send('https', '/');
    expect(app.status).toBe(200);
    expect(app.headers['strict-transport-security']).toBe('max-age=63072000; includeSubDomains');
    expect(app.headers['content-security-policy']).toContain("default-src 'self'");
    const health = await send('https', '/api/v1/health/ready');
    expect(health.status).toBe(200);
    expect(health.headers['strict-transport-security']).toBe('max-age=63072000; includeSubDomains');
    const alpn = await new Promise<string | false>((resolve, reject) => {
      const socket = tlsConnect({ host: '127.0.0.1', port: tlsPort, ca, ALPNProtocols: ['h2', 'http/1.1'] }, () => {
        resolve(socket.alpnProtocol ?? false);
        socket.end();
      });
      socket.on('error', reject);
    });
    expect(alpn).toBe('h2');
  });

  it('only redirects plain HTTP to HTTPS (the healthcheck apart), without HSTS', async () => {
    for (const path of ['/', '/api/v1/health/ready', '/c/some-conversation?m=1']) {
      const res = await send('http', path);
      expect(res.status).toBe(301);
      expect(res.headers.location).toBe(`https://127.0.0.1${path}`);
      expect(res.headers['strict-transport-security']).toBeUndefined();
    }
    // A POST is not carried out over plain HTTP either: nothing is created.
    const post = await send('http', '/api/v1/sessions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(post.status).toBe(301);
    const healthz = await send('http', '/healthz');
    expect(healthz.status).toBe(200);
    expect(healthz.headers['strict-transport-security']).toBeUndefined();
  });

  it('sets the session cookie as __Host- and Secure behind it (the plain name not read), and streams an answer through it', async () => {
    const created = await send('https', '/api/v1/sessions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(created.status).toBe(201);
    // The __Host- cookie: this host only, Secure, Path=/, no Domain.
    const cookie = String(created.headers['set-cookie']?.[0] ?? '');
    expect(cookie).toMatch(/^__Host-session_token=[^;]+;/);
    expect(cookie).toMatch(/; Secure/i);
    expect(cookie).toMatch(/; HttpOnly/i);
    expect(cookie).toMatch(/; Path=\//);
    expect(cookie).not.toMatch(/Domain=/i);
    const token = (JSON.parse(created.body) as { token: string }).token;
    const current = (name: string) => send('https', '/api/v1/sessions/current', { headers: { cookie: `${name}=${token}` } });
    expect((await current('__Host-session_token')).status).toBe(200);
    expect((await current('session_token')).status).toBe(401);
    const chat = await send('https', '/api/v1/chat', {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ message: 'over TLS' }),
    });
    expect(chat.status).toBe(200);
    expect(chat.headers['content-type']).toMatch(/^text\/event-stream/);
    const events = chat.body.split('\n').filter((line) => line.startsWith('data: '))
      .map((line) => JSON.parse(line.slice(6)) as { type: string; token?: string; status?: string });
    expect(events[0]?.type).toBe('start');
    expect(events.filter((e) => e.type === 'token').map((e) => e.token).join('')).toMatch(/^You said: ?over TLS$/);
    expect(events.at(-1)).toMatchObject({ type: 'done', status: 'complete' });
  });
});
