import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { FakeOpenAiServer } from '../testing/fake-openai-server.js';
import { findNginx, freePort, LocalNginx, requireBuiltServer, ServerInstance } from './topology.js';

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
    instance = new ServerInstance('instance', ports[0], {
      NODE_ENV: 'production', LOG_LEVEL: 'warn', SESSION_SECRET: 'tls-test-secret-that-is-long-enough-0123456789',
      OPENAI_BASE_URL: baseUrl, OPENAI_API_KEY: 'test-key', OPENAI_MODEL: 'fake-model',
      DATA_DIR: join(dir, 'data'), CLIENT_DIR: join(dir, 'no-spa'), TRUST_PROXY: 'loopback',
    }).start();
    await instance.ready();
    tlsPort = ports[2];
    nginx = new LocalNginx(join(dir, 'nginx'), ports[1], [{ host: '127.0.0.1', port: instance.port }], { port: tlsPort, certificate, key });
    await nginx.start();
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
