import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { type ReceivedEvent, SseConnection, tokensOf } from '../testing/sse-client.js';
import { FakeOpenAiServer } from '../testing/fake-openai-server.js';
import { createScratchDatabase } from '../testing/postgres.js';
import {
  findNginx, freePort, LocalNginx, PrivateRedis, requireBuiltServer, ServerInstance, sleep, waitFor,
} from './topology.js';

/**
 * The deployment of docker-compose.yml, as processes (no Docker engine here): nginx with the
 * repository's nginx.conf in front of two built server instances on one PostgreSQL database
 * and a private Redis, with a loopback OpenAI-compatible upstream.
 */
const GRACE_MS = 1_500;
const LEASE_MS = 3_000;
const CHAT_PER_MINUTE = 6;

const words = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i} `);
const ids = (events: ReceivedEvent[]): number[] => events.map((e) => e.id ?? -1);
const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];

interface Message { id: string; role: string; status: string; content: string }

describe('topology: nginx + two instances + PostgreSQL + Redis', () => {
  const fake = new FakeOpenAiServer();
  let dir: string;
  let pg: Awaited<ReturnType<typeof createScratchDatabase>>;
  let redis: PrivateRedis;
  let a: ServerInstance;
  let b: ServerInstance;
  let nginx: LocalNginx;

  beforeAll(async () => {
    requireBuiltServer();
    findNginx();
    dir = mkdtempSync(join(tmpdir(), 'parley-topology-'));
    const [baseUrl, db, ports] = await Promise.all([
      fake.start(), createScratchDatabase(), Promise.all([freePort(), freePort(), freePort(), freePort()]),
    ]);
    pg = db;
    redis = new PrivateRedis(ports[0]);
    await redis.start();
    const env = {
      NODE_ENV: 'production', LOG_LEVEL: 'warn', DATABASE_URL: pg.url, REDIS_URL: redis.url,
      SESSION_SECRET: 'topology-secret-that-is-long-enough-0123456789',
      OPENAI_BASE_URL: baseUrl, OPENAI_API_KEY: 'test-key', OPENAI_MODEL: 'fake-model', UPSTREAM_MAX_RETRIES: '0',
      // One data directory for both, as the shared volume of docker-compose.yml.
      DATA_DIR: join(dir, 'data'), CLIENT_DIR: join(dir, 'no-spa'), TRUST_PROXY: 'loopback',
      SHUTDOWN_GRACE_MS: String(GRACE_MS), STREAM_LEASE_MS: String(LEASE_MS), STREAM_LEASE_CHECK_INTERVAL_MS: '1000',
      STREAM_FLUSH_INTERVAL_MS: '100', RATE_LIMIT_CHAT_PER_MINUTE: String(CHAT_PER_MINUTE), RATE_LIMIT_SESSIONS_PER_MINUTE: '10000',
    };
    a = new ServerInstance('instance-a', ports[1], env);
    b = new ServerInstance('instance-b', ports[2], env);
    // Together, against an empty database: the migrations must run exactly once.
    a.start();
    b.start();
    await Promise.all([a.ready(), b.ready()]);
    nginx = new LocalNginx(join(dir, 'nginx'), ports[3], [{ host: '127.0.0.1', port: a.port }, { host: '127.0.0.1', port: b.port }]);
    await nginx.start();
  }, 90_000);

  afterAll(async () => {
    // Every process this test started, each by its own handle.
    await Promise.allSettled([nginx?.proc?.stop(), a?.proc?.stop(), b?.proc?.stop()]);
    await redis?.proc?.stop();
    await fake.stop();
    await pg?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  afterEach((ctx) => {
    if (ctx.task.result?.state !== 'fail') return;
    for (const p of [a.proc, b.proc, nginx.proc, redis.proc]) if (p) console.log(`--- ${p.name} ---\n${p.output.slice(-4_000)}`);
  });

  async function newSession(base: string): Promise<string> {
    const res = await fetch(`${base}/api/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(201);
    return ((await res.json()) as { token: string }).token;
  }

  function send(base: string, token: string, message: string): SseConnection {
    return SseConnection.open(`${base}/api/v1/chat`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: { message } });
  }

  function resume(base: string, token: string, messageId: string, lastEventId?: number): SseConnection {
    return SseConnection.open(`${base}/api/v1/chat/streams/${messageId}`, {
      headers: { authorization: `Bearer ${token}`, ...(lastEventId === undefined ? {} : { 'last-event-id': String(lastEventId) }) },
    });
  }

  async function messagesOf(base: string, token: string, conversationId: string): Promise<Message[]> {
    const res = await fetch(`${base}/api/v1/conversations/${conversationId}`, { headers: { authorization: `Bearer ${token}` } });
    if (!res.ok) throw new Error(`GET conversation: ${res.status}`);
    return ((await res.json()) as { messages: Message[] }).messages;
  }

  /** A destructive test that failed half-way must not take the next ones down with it. */
  async function ensureRunning(...instances: ServerInstance[]): Promise<void> {
    for (const i of instances) if (!i.proc?.isRunning) i.start();
    await Promise.all(instances.map((i) => i.ready()));
  }

  const startOf = (events: ReceivedEvent[]): { message_id: string; conversation_id: string } =>
    events[0].data as { message_id: string; conversation_id: string };

  it('ran the migrations exactly once although both instances started together', async () => {
    const client = new Client({ connectionString: pg.url });
    await client.connect();
    try {
      const rows = (await client.query<{ name: string; n: string }>('SELECT name, COUNT(*) AS n FROM migrations GROUP BY name')).rows;
      expect(rows.length).toBeGreaterThan(0);
      expect(rows.filter((r) => Number(r.n) !== 1)).toEqual([]);
    } finally {
      await client.end();
    }
  });

  it('gateway: SPA with security headers, long cache on hashed assets, gzip, /metrics hidden, API proxied', async () => {
    const index = await fetch(`${nginx.url}/conversations/123`); // a client route falls back to index.html
    expect(index.status).toBe(200);
    expect(await index.text()).toContain('<app-root>');
    expect(index.headers.get('cache-control')).toBe('no-cache');
    expect(index.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(index.headers.get('x-frame-options')).toBe('DENY');
    expect(index.headers.get('x-content-type-options')).toBe('nosniff');
    const asset = await fetch(`${nginx.url}/main-ABCD1234.js`, { headers: { 'accept-encoding': 'gzip' } });
    expect(asset.headers.get('cache-control')).toMatch(/max-age=(\d{8,})/);
    expect(asset.headers.get('content-encoding')).toBe('gzip');
    expect((await fetch(`${nginx.url}/metrics`)).status).toBe(404);
    expect((await fetch(`${a.url}/metrics`)).status).toBe(200); // scraped on the internal network
    const api = await fetch(`${nginx.url}/api/v1/health`);
    expect(api.status).toBe(200);
    // The API's own (helmet) headers, once: nginx adds none of its own there.
    expect(api.headers.get('x-frame-options')).toBe('DENY');
    expect(api.headers.get('cache-control')).toBe('no-store');
    const big = await fetch(`${nginx.url}/api/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ pad: 'x'.repeat(12 * 1024 * 1024) }) });
    expect(big.status).toBe(413); // client_max_body_size, before any backend sees it
    // nginx's own error on the API is the API's envelope too, with the id it would have passed on.
    expect(big.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(((await big.json()) as { error: { code: string; request_id: string } }).error)
      .toMatchObject({ code: 'PAYLOAD_TOO_LARGE', request_id: big.headers.get('x-request-id') });
    // /api itself is an API path nothing answers (the backend's 404), not nginx's 301 to /api/.
    const bare = await fetch(`${nginx.url}/api`, { redirect: 'manual' });
    expect(bare.status).toBe(404);
    expect(((await bare.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
  });

  it('passes the real client address on, and a client cannot forge it through the gateway', async () => {
    const res = await fetch(`${nginx.url}/api/v1/sessions`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': '203.0.113.66' }, body: '{}',
    });
    const { session } = (await res.json()) as { session: { id: string } };
    const client = new Client({ connectionString: pg.url });
    await client.connect();
    try {
      const row = (await client.query<{ ip_address: string }>('SELECT ip_address FROM sessions WHERE id = $1', [session.id])).rows[0];
      expect(row?.ip_address).toBe('127.0.0.1'); // the test client's address as nginx saw it
    } finally {
      await client.end();
    }
  });

  it('delivers events through nginx one by one, not buffered', async () => {
    fake.on('unbuffered-check', { tokens: words('w', 10), tokenDelayMs: 100 });
    const token = await newSession(nginx.url);
    const conn = send(nginx.url, token, 'unbuffered-check');
    const arrivals: number[] = [];
    for (let n = 1; n <= 10; n++) {
      await conn.until((events) => events.filter((e) => e.data.type === 'token').length >= n);
      arrivals.push(Date.now());
    }
    const events = await conn.all();
    expect(conn.status).toBe(200);
    expect(conn.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(conn.headers['content-encoding']).toBeUndefined();
    expect(events.at(-1)?.data).toMatchObject({ type: 'done', status: 'complete' });
    // 100 ms between upstream tokens: buffering would deliver them in one lump at the end.
    const gaps = arrivals.slice(1).map((t, i) => t - arrivals[i]);
    expect(gaps.filter((g) => g >= 50).length).toBeGreaterThanOrEqual(7);
    expect(arrivals.at(-1)! - arrivals[0]).toBeGreaterThanOrEqual(700);
  });

  it('measures the time-to-first-token latency nginx adds', async () => {
    fake.on('ttft-check', { tokens: ['Hi', '!'] });
    const ttft = async (base: string, token: string): Promise<number> => {
      const started = performance.now();
      const conn = send(base, token, 'ttft-check');
      await conn.until((events) => events.some((e) => e.data.type === 'token'));
      const ms = performance.now() - started;
      await conn.all();
      return ms;
    };
    const direct: number[] = [];
    const viaNginx: number[] = [];
    let token = '';
    for (let i = 0; i < 30; i++) {
      if (i % 3 === 0) token = await newSession(a.url); // 2 chats per round, under the per-session limit
      // Interleaved, so both see the same machine load; nginx spreads over both instances.
      direct.push(await ttft(i % 2 === 0 ? a.url : b.url, token));
      viaNginx.push(await ttft(nginx.url, token));
    }
    direct.sort((x, y) => x - y);
    viaNginx.sort((x, y) => x - y);
    const report = {
      runs: direct.length,
      direct: { median: percentile(direct, 50), p99: percentile(direct, 99) },
      nginx: { median: percentile(viaNginx, 50), p99: percentile(viaNginx, 99) },
      addedMedianMs: percentile(viaNginx, 50) - percentile(direct, 50),
      addedP99Ms: percentile(viaNginx, 99) - percentile(direct, 99),
    };
    console.log(`[topology] time to first token (ms): ${JSON.stringify(report, (_k, v: unknown) => (typeof v === 'number' ? Math.round(v * 10) / 10 : v))}`);
    expect(report.addedMedianMs).toBeLessThan(50);
  }, 90_000);

  it('resumes through instance B a generation started through instance A, without gap or duplicate', async () => {
    const tokens = words('r', 30);
    fake.on('resume-check', { tokens, tokenDelayMs: 40 });
    const token = await newSession(a.url);
    const first = send(a.url, token, 'resume-check');
    const before = [...await first.until((events) => events.length >= 6)];
    first.destroy();
    const { message_id: messageId } = startOf(before);
    const lastId = before.at(-1)!.id!;
    const after = await resume(b.url, token, messageId, lastId).all();
    const all = [...before, ...after];
    expect(ids(all)).toEqual(all.map((_, i) => i));
    expect(tokensOf(all)).toBe(tokens.join(''));
    expect(all.at(-1)?.data).toMatchObject({ type: 'done', status: 'complete' });
  });

  it('stops through instance B a generation running on instance A', async () => {
    fake.on('stop-check', { tokens: words('s', 100), tokenDelayMs: 40 });
    const token = await newSession(a.url);
    const conn = send(a.url, token, 'stop-check');
    const { message_id: messageId, conversation_id: conversationId } = startOf(await conn.until((events) => events.length >= 4));
    const res = await fetch(`${b.url}/api/v1/chat/streams/${messageId}/stop`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ message_id: messageId, status: 'stopped' });
    const events = await conn.all();
    expect(events.at(-1)?.data).toMatchObject({ type: 'done', status: 'stopped' });
    const reply = (await messagesOf(b.url, token, conversationId)).find((m) => m.id === messageId)!;
    expect(reply).toMatchObject({ status: 'stopped', content: tokensOf(events) });
    expect(reply.content.length).toBeGreaterThan(0);
  });

  it('lets one reply at a time run per conversation across instances: two sends at once through A and B, one 409', async () => {
    fake.on('one-at-a-time', { tokens: words('o', 5), tokenDelayMs: 20 });
    // A session per round: the chat rate limit here is CHAT_PER_MINUTE per session.
    for (let round = 0; round < 8; round++) {
      const token = await newSession(a.url);
      const { conversation_id: conversationId } = startOf(await send(a.url, token, `one-at-a-time opening ${round}`).all());
      const sendTo = (base: string): SseConnection => SseConnection.open(`${base}/api/v1/chat`, {
        method: 'POST', headers: { authorization: `Bearer ${token}` }, body: { message: `one-at-a-time ${round}`, conversation_id: conversationId },
      });
      const both = [sendTo(a.url), sendTo(b.url)];
      await Promise.all(both.map((c) => c.all()));
      expect(both.map((c) => c.status).sort()).toEqual([200, 409]);
      expect(both.find((c) => c.status === 409)!.json).toMatchObject({ error: { code: 'GENERATION_IN_PROGRESS' } });
      const replies = (await messagesOf(b.url, token, conversationId)).filter((m) => m.role === 'assistant');
      expect(replies.map((m) => m.status)).toEqual(['complete', 'complete']);
    }
  });

  it('counts the chat rate limit across instances', async () => {
    const token = await newSession(a.url);
    for (let i = 0; i < CHAT_PER_MINUTE; i++) {
      const conn = send(i % 2 === 0 ? a.url : b.url, token, `limit-check ${i}`);
      await conn.all();
      expect(conn.status).toBe(200);
    }
    const over = send(b.url, token, 'limit-check over');
    await over.all();
    expect(over.status).toBe(429);
    expect(over.json).toMatchObject({ error: { code: 'RATE_LIMIT_EXCEEDED' } });
    expect(Number(over.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('keeps serving through nginx when the streaming instance is SIGKILLed; the reply ends interrupted with its partial text', async () => {
    await ensureRunning(a, b);
    const tokens = words('k', 200);
    fake.on('kill-check', { tokens, tokenDelayMs: 40 });
    const token = await newSession(a.url);
    const conn = send(a.url, token, 'kill-check');
    const { message_id: messageId, conversation_id: conversationId } = startOf(await conn.until((events) => events.length >= 10));
    await sleep(300); // a few flushes (every 100 ms) reach the database
    a.proc!.kill('SIGKILL');
    await a.proc!.exited;
    await conn.ended;

    // The other instance keeps serving through the gateway.
    for (let i = 0; i < 6; i++) {
      expect((await fetch(`${nginx.url}/api/v1/health/ready`)).status).toBe(200);
      await newSession(nginx.url);
    }
    a.start();
    await a.ready();
    const reply = await waitFor('the reply to be interrupted', async () => {
      const m = (await messagesOf(nginx.url, token, conversationId)).find((x) => x.id === messageId);
      return m?.status === 'interrupted' ? m : undefined;
    }, LEASE_MS * 4);
    expect(reply.content.length).toBeGreaterThan(0);
    expect(tokens.join('').startsWith(reply.content)).toBe(true);
  }, 60_000);

  it('on SIGTERM lets a running generation finish, saves a longer one as interrupted after the grace period, exits 0', async () => {
    await ensureRunning(a, b);
    const short = words('f', 10);
    fake.on('term-short', { tokens: short, tokenDelayMs: 50 });
    fake.on('term-long', { tokens: words('l', 400), tokenDelayMs: 50 });
    const token = await newSession(a.url);
    const shortConn = send(a.url, token, 'term-short');
    const longConn = send(a.url, token, 'term-long');
    await shortConn.until((events) => events.length >= 2);
    const { message_id: longId, conversation_id: longConversation } = startOf(await longConn.until((events) => events.length >= 2));
    const signalled = Date.now();
    a.proc!.kill('SIGTERM');

    // The draining instance takes no new connections; the gateway sends them to the other one.
    await waitFor('instance A to stop accepting', async () => fetch(`${a.url}/api/v1/health/live`).then(() => false, () => true), 2_000, 20);
    expect((await fetch(`${nginx.url}/api/v1/health/ready`)).status).toBe(200);

    const shortEvents = await shortConn.all();
    expect(shortEvents.at(-1)?.data).toMatchObject({ type: 'done', status: 'complete' });
    expect(tokensOf(shortEvents)).toBe(short.join(''));
    const longEvents = await longConn.all();
    expect(longEvents.at(-1)?.data).toMatchObject({ type: 'error', status: 'interrupted' });
    const exit = await a.proc!.exited;
    const took = Date.now() - signalled;
    expect(exit.code).toBe(0);
    expect(took).toBeGreaterThanOrEqual(GRACE_MS - 100);
    expect(took).toBeLessThan(GRACE_MS + 2_500);
    const reply = (await messagesOf(nginx.url, token, longConversation)).find((m) => m.id === longId)!;
    expect(reply.status).toBe('interrupted');
    expect(reply.content).toBe(tokensOf(longEvents));

    a.start();
    await a.ready();
  }, 60_000);

  it('serves every request through a rolling restart (stop A, start it, once ready stop B and start it): no 502 from the gateway', async () => {
    await ensureRunning(a, b);
    const statuses = new Map<number, number>();
    let isPolling = true;
    // A client's requests all along (liveness: outside the rate limits), through the gateway.
    const polling = (async () => {
      while (isPolling) {
        const res = await fetch(`${nginx.url}/api/v1/health/live`);
        await res.arrayBuffer();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        await sleep(20);
      }
    })();
    for (const instance of [a, b]) {
      instance.proc!.kill('SIGTERM');
      await instance.proc!.exited;
      await sleep(300); // requests meet it refused: the gateway skips it
      instance.start();
      await instance.ready();
    }
    isPolling = false;
    await polling;
    expect(Object.fromEntries(statuses)).toEqual({ 200: expect.any(Number) });
    expect(statuses.get(200)).toBeGreaterThan(20);
  }, 60_000);

  // The drain waited for the instance's own generations only: a stream following, through A, an
  // answer B generates stayed open, app.close() waited for it, and the watchdog exited 1 after
  // SHUTDOWN_GRACE_MS + 10 s.
  it('on SIGTERM ends a stream following another instance\'s answer cleanly, exits 0 at once; the client resumes through the gateway', async () => {
    await ensureRunning(a, b);
    const tokens = words('g', 500);
    fake.on('term-follower', { tokens, tokenDelayMs: 40 });
    const token = await newSession(b.url);
    const owner = send(b.url, token, 'term-follower');
    const { message_id: messageId } = startOf(await owner.until((events) => events.length >= 4));
    // A hears of the answer over Redis at once; by now it follows it rather than rebuilding it from its row.
    const follower = resume(a.url, token, messageId);
    await follower.until((events) => events.length >= 4);
    const signalled = Date.now();
    a.proc!.kill('SIGTERM');

    const cut = await follower.all();
    expect(follower.isComplete).toBe(true);
    expect(cut.some((e) => e.data.finished === true)).toBe(false);
    const exit = await a.proc!.exited;
    expect(exit.code).toBe(0);
    expect(Date.now() - signalled).toBeLessThan(GRACE_MS + 2_500);

    // As the SPA does: a 502 is tried again. nginx may have just seen B refuse connections (the rolling restart
    // before this test) and skips it for a moment; with A refused too it has no live instance for that moment.
    let again = resume(nginx.url, token, messageId, cut.at(-1)!.id!);
    let rest = await again.all();
    for (let attempt = 1; again.status === 502 && attempt < 10; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 300));
      again = resume(nginx.url, token, messageId, cut.at(-1)!.id!);
      rest = await again.all();
    }
    expect(again.status).toBe(200);
    const all = [...cut, ...rest];
    expect(ids(all)).toEqual(all.map((_, i) => i));
    expect(tokensOf(all)).toBe(tokens.join(''));
    expect(all.at(-1)?.data).toMatchObject({ type: 'done', status: 'complete' });
    await owner.all();

    a.start();
    await a.ready();
  }, 60_000);

  it('recovers by itself when Redis restarts mid-run: 503 meanwhile, then shared state works again', async () => {
    await ensureRunning(a, b);
    const token = await newSession(nginx.url);
    await redis.proc!.stop();
    for (const instance of [a, b]) {
      const ready = await waitFor(`${instance.name} to notice`, async () => {
        const res = await fetch(`${instance.url}/api/v1/health/ready`);
        return res.status === 503 ? (await res.json()) as { checks: Record<string, string> } : undefined;
      }, 10_000);
      expect(ready.checks.redis).toBe('down');
      expect((await fetch(`${instance.url}/api/v1/health/live`)).status).toBe(200);
    }
    const refused = send(nginx.url, token, 'while redis is down');
    await refused.all();
    expect(refused.status).toBe(503);
    expect(refused.json).toMatchObject({ error: { code: 'SERVICE_UNAVAILABLE' } });
    // Through the gateway, every request gets the instances' own 503 with Retry-After: a 503 takes no
    // instance out of rotation (it used to, and then nginx answered its own 502 page to everything).
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${nginx.url}/api/v1/conversations`, { headers: { authorization: `Bearer ${token}` } });
      expect(res.status).toBe(503);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('SERVICE_UNAVAILABLE');
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
      const ready = await fetch(`${nginx.url}/api/v1/health/ready`);
      expect(ready.status).toBe(503);
      expect(((await ready.json()) as { checks: Record<string, string> }).checks.redis).toBe('down');
    }

    await redis.start();
    await Promise.all([a.ready(15_000), b.ready(15_000)]);
    // Served through the gateway at once, not after a fail_timeout.
    for (let i = 0; i < 4; i++) expect((await fetch(`${nginx.url}/api/v1/health/ready`)).status).toBe(200);
    const tokens = words('after', 20);
    fake.on('redis-after', { tokens, tokenDelayMs: 30 });
    const first = send(a.url, token, 'redis-after');
    const before = [...await first.until((events) => events.length >= 4)];
    first.destroy();
    const after = await resume(b.url, token, startOf(before).message_id, before.at(-1)!.id!).all();
    const all = [...before, ...after];
    expect(ids(all)).toEqual(all.map((_, i) => i));
    expect(tokensOf(all)).toBe(tokens.join(''));
  }, 60_000);
});
