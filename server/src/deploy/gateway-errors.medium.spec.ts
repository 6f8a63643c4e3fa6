import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GatewayTimeouts } from './nginx-config.js';
import { findNginx, freePort, LocalNginx, LoopbackHttpServer } from './topology.js';

/**
 * The gateway's own behaviour at the edges, with nginx/nginx.conf (only addresses, ports, paths and
 * the two marked timeouts rewritten) in front of two small stand-in backends whose answers the test
 * chooses: a backend's 503 reaches the client as it is and takes no instance out of rotation, and
 * what nginx answers by itself on /api/ (no instance, a timeout, a body over the limit, a request it
 * cannot read) is the API's JSON error envelope, not an nginx page. No built server is needed.
 */
type Mode = 'ok' | 'unavailable' | 'hang';

/** Stands in for one API instance: answers by `mode`, and records what reached it. */
class StandInBackend extends LoopbackHttpServer {
  mode: Mode = 'ok';
  readonly seen: { method: string; url: string; requestId: string }[] = [];

  protected override handle(req: IncomingMessage, res: ServerResponse): void {
    const requestId = String(req.headers['x-request-id'] ?? '');
    this.seen.push({ method: req.method ?? '', url: req.url ?? '', requestId });
    req.resume();
    const json = (status: number, body: unknown, headers: Record<string, string> = {}): void => {
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'x-request-id': requestId, ...headers });
      res.end(JSON.stringify(body));
    };
    switch (this.mode) {
      case 'hang':
        return; // accepted, never answered
      case 'unavailable':
        // What an instance answers while PostgreSQL or Redis is down (all-exceptions.filter.ts).
        json(503, { error: { code: 'SERVICE_UNAVAILABLE', message: 'The service is temporarily unavailable; please retry shortly.', timestamp: new Date().toISOString(), request_id: requestId } }, { 'retry-after': '5' });
        return;
      case 'ok':
        if (req.url === '/api') {
          json(404, { error: { code: 'NOT_FOUND', message: 'Cannot GET /api', timestamp: new Date().toISOString(), request_id: requestId } });
        } else if (req.url?.startsWith('/api/v1/chat/streams/') && !req.url.endsWith('/stop')) {
          // An answer stream: a heartbeat every 300 ms, longer in all than the API's read timeout here.
          res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
          let beats = 0;
          const timer = setInterval(() => {
            if (++beats < 6) {
              res.write(': ping\n\n');
              return;
            }
            clearInterval(timer);
            res.end('data: {"type":"done"}\n\n');
          }, 300);
          res.on('close', () => clearInterval(timer));
        } else {
          json(200, { port: this.port, url: req.url });
        }
        return;
    }
  }
}

interface RawReply { status: number; headers: Record<string, string>; body: string }

/** One request written byte for byte (what fetch refuses to send), the answer read to the end. */
function rawRequest(port: number, request: string): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.end(request));
    let data = '';
    socket.setEncoding('latin1');
    socket.setTimeout(5_000, () => socket.destroy(new Error('no answer within 5 s')));
    socket.on('data', (chunk: string) => { data += chunk; });
    socket.on('error', reject);
    socket.on('close', () => {
      const split = data.indexOf('\r\n\r\n');
      const [statusLine, ...lines] = data.slice(0, split).split('\r\n');
      const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine ?? '')?.[1] ?? 0), headers, body: data.slice(split + 4) });
    });
  });
}

/** The envelope nginx writes itself: JSON, a code, the request id it also gives the backend, a timestamp. */
function expectGatewayEnvelope(reply: { status: number; headers: Record<string, string>; body: string }, status: number, code: string): void {
  expect(reply.status).toBe(status);
  expect(reply.headers['content-type']).toBe('application/json; charset=utf-8');
  expect(reply.headers['cache-control']).toBe('no-store');
  const { error } = JSON.parse(reply.body) as { error: { code: string; message: string; timestamp: string; request_id: string } };
  expect(error).toEqual({ code, message: expect.any(String), timestamp: expect.any(String), request_id: expect.stringMatching(/^[0-9a-f]{32}$/) });
  expect(error.request_id).toBe(reply.headers['x-request-id']);
  expect(Math.abs(Date.parse(error.timestamp) - Date.now())).toBeLessThan(60_000);
}

async function replyOf(res: Response): Promise<RawReply> {
  return { status: res.status, headers: Object.fromEntries(res.headers), body: await res.text() };
}

const MIB = 1024 * 1024;
const TIMEOUTS: GatewayTimeouts = { apiRead: '1s', nextUpstream: '500ms' };

describe('gateway: nginx.conf passes backend errors through and answers its own on /api/ as the JSON envelope', () => {
  let dir: string;
  let backends: [StandInBackend, StandInBackend];
  /** In front of both stand-ins. */
  let gw: LocalNginx;
  /** In front of two ports nothing listens on. */
  let gwDown: LocalNginx;
  const extra: LocalNginx[] = [];

  const hits = (): number => backends[0].seen.length + backends[1].seen.length;
  const setMode = (mode: Mode): void => { for (const b of backends) b.mode = mode; };

  /** A gateway of its own, for a test that leaves instances marked failed (a timeout counts as one). */
  async function ownGateway(name: string): Promise<LocalNginx> {
    const nginx = new LocalNginx(join(dir, name), await freePort(), backends.map((b) => ({ host: '127.0.0.1', port: b.port })), undefined, TIMEOUTS);
    extra.push(nginx);
    await nginx.start();
    return nginx;
  }

  beforeAll(async () => {
    findNginx();
    dir = mkdtempSync(join(tmpdir(), 'parley-gateway-'));
    const ports = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort(), freePort()]);
    backends = [new StandInBackend(ports[0]), new StandInBackend(ports[1])];
    await Promise.all(backends.map((b) => b.start()));
    gw = new LocalNginx(join(dir, 'gw'), ports[2], backends.map((b) => ({ host: '127.0.0.1', port: b.port })), undefined, TIMEOUTS);
    gwDown = new LocalNginx(join(dir, 'gw-down'), ports[3], [{ host: '127.0.0.1', port: ports[4] }, { host: '127.0.0.1', port: ports[5] }], undefined, TIMEOUTS);
    await Promise.all([gw.start(), gwDown.start()]);
  }, 30_000);

  afterAll(async () => {
    await Promise.allSettled([gw?.proc?.stop(), gwDown?.proc?.stop(), ...extra.map((n) => n.proc?.stop())]);
    await Promise.allSettled((backends ?? []).map((b) => b.stop()));
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  beforeEach(() => {
    setMode('ok');
    for (const b of backends) b.seen.length = 0;
  });

  afterEach((ctx) => {
    if (ctx.task.result?.state !== 'fail') return;
    for (const p of [gw.proc, gwDown.proc, ...extra.map((n) => n.proc)]) if (p) console.log(`--- ${p.name} ---\n${p.output.slice(-4_000)}`);
  });

  it('passes a backend\'s 503 through unchanged, ten times in a row, and the instances stay in rotation', async () => {
    setMode('unavailable');
    const requests: [string, RequestInit][] = [
      ['/api/v1/conversations', {}], ['/api/v1/health', {}], ['/api/v1/health/ready', {}],
      ['/api/v1/sessions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }],
      ['/api/v1/chat', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"message":"hi"}' }],
    ];
    for (let i = 0; i < 10; i++) {
      const [path, init] = requests[i % requests.length];
      const res = await fetch(`${gw.url}${path}`, init);
      expect([path, res.status]).toEqual([path, 503]);
      expect(res.headers.get('retry-after')).toBe('5');
      expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
      const body = (await res.json()) as { error: { code: string; message: string; request_id: string } };
      // The backend's own envelope (its message, the id nginx gave it), not one nginx wrote.
      expect(body.error).toMatchObject({ code: 'SERVICE_UNAVAILABLE', message: 'The service is temporarily unavailable; please retry shortly.' });
      expect(body.error.request_id).toBe(res.headers.get('x-request-id'));
    }
    // Each request reached one instance once: a 503 is not retried on the other, which would say the same.
    expect(hits()).toBe(10);

    // The dependency is back: the very next requests are served (no instance was marked failed).
    setMode('ok');
    for (let i = 0; i < 4; i++) expect((await fetch(`${gw.url}/api/v1/health`)).status).toBe(200);
  });

  it('answers the envelope (502, SERVICE_UNAVAILABLE, Retry-After, a request id) when no instance is reachable', async () => {
    for (const [path, init] of [
      ['/api/v1/health', {}],
      ['/api/v1/conversations', { headers: { authorization: 'Bearer x' } }],
      ['/api/v1/chat', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"message":"hi"}' }],
      ['/api/v1/chat/streams/00000000-0000-4000-8000-000000000000', {}],
      ['/api/v1/files/upload', { method: 'POST', headers: { 'content-type': 'multipart/form-data; boundary=x' }, body: '--x--\r\n' }],
      ['/api', {}],
    ] as [string, RequestInit][]) {
      const reply = await replyOf(await fetch(`${gwDown.url}${path}`, init));
      expectGatewayEnvelope(reply, 502, 'SERVICE_UNAVAILABLE');
      expect(reply.headers['retry-after']).toBe('5');
    }
    // The app itself does not need an instance.
    const app = await fetch(`${gwDown.url}/c/some-conversation`);
    expect(app.status).toBe(200);
    expect(await app.text()).toContain('<app-root>');
  });

  it('answers a request an instance accepted but never answered with one 504 envelope after one read timeout', async () => {
    setMode('hang');
    const own = await ownGateway('gw-hang');
    for (const [path, init] of [
      ['/api/v1/conversations', {}],
      // A plain call under /api/v1/chat: the API's read timeout, not the answer streams' hour.
      ['/api/v1/chat/streams/00000000-0000-4000-8000-000000000000/stop', { method: 'POST' }],
    ] as [string, RequestInit][]) {
      const before = hits();
      const started = Date.now();
      const reply = await replyOf(await fetch(`${own.url}${path}`, { ...init, signal: AbortSignal.timeout(5_000) }));
      const took = Date.now() - started;
      expectGatewayEnvelope(reply, 504, 'SERVICE_UNAVAILABLE');
      expect(reply.headers['retry-after']).toBe('5');
      // One read timeout (1 s here), on one instance: not retried on the other after waiting.
      expect(took).toBeGreaterThanOrEqual(900);
      expect(took).toBeLessThan(1_900);
      expect(hits() - before).toBe(1);
    }
  });

  it('streams an answer through its own location, not cut by the API read timeout', async () => {
    const started = Date.now();
    const res = await fetch(`${gw.url}/api/v1/chat/streams/00000000-0000-4000-8000-000000000000`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const text = await res.text();
    expect(text.endsWith('data: {"type":"done"}\n\n')).toBe(true);
    expect(Date.now() - started).toBeGreaterThan(1_500); // longer than the 1 s read timeout of the plain calls
  });

  it('answers a body over the limit with the JSON 413 envelope: FILE_TOO_LARGE for an upload, PAYLOAD_TOO_LARGE elsewhere', async () => {
    const big = Buffer.alloc(12 * MIB, 'x');
    const upload = await replyOf(await fetch(`${gw.url}/api/v1/files/upload`, { method: 'POST', headers: { 'content-type': 'multipart/form-data; boundary=x' }, body: big }));
    expectGatewayEnvelope(upload, 413, 'FILE_TOO_LARGE');
    const json = await replyOf(await fetch(`${gw.url}/api/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: big }));
    expectGatewayEnvelope(json, 413, 'PAYLOAD_TOO_LARGE');
    expect(json.headers['retry-after']).toBeUndefined();
    expect(hits()).toBe(0); // refused before any instance saw it
    // Outside the API, nginx's page stays.
    const page = await fetch(`${gw.url}/c/x`, { method: 'POST', body: big });
    expect(page.status).toBe(413);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
  });

  it('answers a request nginx cannot read (400, 414) with the JSON envelope on /api/, with a page elsewhere', async () => {
    const twoHosts = await rawRequest(gw.port, 'GET /api/v1/conversations HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n');
    expectGatewayEnvelope(twoHosts, 400, 'VALIDATION_ERROR');
    const badChunks = await rawRequest(gw.port, 'POST /api/v1/sessions HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n');
    expectGatewayEnvelope(badChunks, 400, 'VALIDATION_ERROR');
    const badLine = await rawRequest(gw.port, 'GET /api/v1/conversations x HTTP/1.1\r\nHost: a\r\n\r\n');
    expectGatewayEnvelope(badLine, 400, 'VALIDATION_ERROR');
    // Longer than large_client_header_buffers (8 KiB): nginx never read a URI, only the request line.
    const longUri = await rawRequest(gw.port, `GET /api/v1/conversations?q=${'a'.repeat(9_000)} HTTP/1.1\r\nHost: a\r\n\r\n`);
    expectGatewayEnvelope(longUri, 414, 'VALIDATION_ERROR');
    expect(hits()).toBe(0);

    for (const request of [`GET /c/${'a'.repeat(9_000)} HTTP/1.1\r\nHost: a\r\n\r\n`, 'GARBAGE\r\n\r\n', 'GET /c/x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n']) {
      const page = await rawRequest(gw.port, request);
      expect([400, 414]).toContain(page.status);
      expect(page.headers['content-type']).toMatch(/^text\/html/);
    }
  });

  it('answers a Transfer-Encoding it does not implement (501) and an HTTP version it does not support (505) with the envelope on /api/, a page elsewhere', async () => {
    const gzipped = (path: string) => `POST ${path} HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nTransfer-Encoding: gzip\r\n\r\n`;
    const http2Line = (path: string) => `GET ${path} HTTP/2.0\r\nHost: a\r\n\r\n`;
    expectGatewayEnvelope(await rawRequest(gw.port, gzipped('/api/v1/sessions')), 501, 'VALIDATION_ERROR');
    expectGatewayEnvelope(await rawRequest(gw.port, gzipped('/api')), 501, 'VALIDATION_ERROR');
    expectGatewayEnvelope(await rawRequest(gw.port, http2Line('/api/v1/health')), 505, 'VALIDATION_ERROR');
    expect(hits()).toBe(0);
    for (const [request, status] of [[gzipped('/c/x'), 501], [http2Line('/'), 505]] as const) {
      const page = await rawRequest(gw.port, request);
      expect(page.status).toBe(status);
      expect(page.headers['content-type']).toMatch(/^text\/html/);
      expect(page.body).toContain(`<h1>${status}</h1>`);
    }
  });

  it('passes GET /api to the API (its 404 envelope), not nginx\'s 301 HTML redirect to /api/', async () => {
    const res = await fetch(`${gw.url}/api`, { redirect: 'manual' });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
    expect(backends.flatMap((b) => b.seen.map((s) => s.url))).toEqual(['/api']);
    // The API's own headers only: none of the app's (Content-Security-Policy is the backend's to set).
    expect(res.headers.get('content-security-policy')).toBeNull();
  });
  it('logs each request with the id the backend and the envelope carry, and the instance that answered', async () => {
    const res = await fetch(`http://127.0.0.1:${gw.port}/api/v1/conversations?q=my%20secret%20diagnosis`);
    expect(res.status).toBe(200);
    const id = res.headers.get('x-request-id') ?? backends.flatMap((b) => b.seen).at(-1)!.requestId;
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    let line: string | undefined;
    for (let i = 0; i < 50 && !line; i++) {
      line = readFileSync(join(gw.dir, 'access.log'), 'utf8').split('\n').find((l) => l.includes(`rid=${id}`));
      if (!line) await new Promise((r) => setTimeout(r, 20));
    }
    // The path, never what was searched for (the backends log no query string either).
    expect(line).not.toContain('secret');
    expect(line).toMatch(new RegExp(`"GET /api/v1/conversations\\?\\.\\.\\. HTTP/1\\.1" 200 \\d+ rid=${id} rt=[\\d.]+ upstream=127\\.0\\.0\\.1:(${backends[0].port}|${backends[1].port}) `));
  });
});
