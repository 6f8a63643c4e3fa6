import { createTestApp, type TestApp } from '../testing/test-app.js';
import { isLocalUnproxied } from './metrics.controller.js';
import { MetricsService } from './metrics.service.js';

const TOKEN = 'metrics-token-0123456789';

describe('/metrics', () => {
  let t: TestApp;
  beforeAll(async () => { t = await createTestApp('sqlite', { METRICS_TOKEN: TOKEN }); });
  afterAll(async () => { await t.close(); });

  it('needs the METRICS_TOKEN bearer token when one is set', async () => {
    await t.http().get('/metrics').expect(401);
    await t.http().get('/metrics').set('Authorization', 'Bearer wrong-token-0123456789').expect(401);
    await t.http().get('/metrics').set('Authorization', `Bearer ${TOKEN}`).expect(200);
  });

  it('labels requests by route template, never by raw path', async () => {
    const s = await t.newSession();
    await t.http().get(`/api/v1/sessions/${s.id}`).set('Authorization', `Bearer ${s.token}`).expect(200);
    await t.http().get('/api/v1/conversations/00000000-0000-4000-8000-000000000000').set('Authorization', `Bearer ${s.token}`).expect(404);
    await t.http().get('/api/v1/nope/123').expect(404);
    const res = await t.http().get('/metrics').set('Authorization', `Bearer ${TOKEN}`).expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = res.text;
    expect(text).toContain('parley_requests_total{method="GET",endpoint="/api/v1/sessions/:id",status="200"} 1');
    expect(text).toContain('parley_requests_total{method="GET",endpoint="/api/v1/conversations/:id",status="404"} 1');
    expect(text).toContain('endpoint="<unmatched>",status="404"');
    expect(text).not.toContain(s.id);
    expect(text).toMatch(/parley_request_duration_seconds_bucket\{le="0.1",method="POST",endpoint="\/api\/v1\/sessions"\} \d+/);
    expect(text).toMatch(/parley_active_sessions [1-9]/);
    expect(text).toContain('parley_streaming_connections 0');
    expect(text).toContain('parley_log_lines_dropped_total 0');
    expect(text).toContain('process_cpu_user_seconds_total');
    expect(text).toContain('nodejs_eventloop_lag_seconds');
  });

  it('records a chat generation: time to first token, tokens, final status, stream connections', async () => {
    const s = await t.newSession();
    const res = await t.http().post('/api/v1/chat').set('Authorization', `Bearer ${s.token}`).send({ message: 'hello metrics' }).expect(200);
    expect(res.text).toContain('"type":"done"');
    const text = (await t.http().get('/metrics').set('Authorization', `Bearer ${TOKEN}`).expect(200)).text;
    expect(text).toMatch(/parley_time_to_first_token_seconds_count\{provider="offline",model="[^"]+"\} 1/);
    expect(text).toMatch(/parley_tokens_streamed_total\{provider="offline",model="[^"]+"\} [1-9]/);
    expect(text).toContain('parley_generations_total{status="complete"} 1');
    expect(text).toContain('parley_requests_total{method="POST",endpoint="/api/v1/chat",status="200"} 1');
  });

  it('exposes the chat and file metrics that their services record', async () => {
    const m = t.app.get(MetricsService);
    m.timeToFirstToken.observe({ provider: 'openai', model: 'm' }, 0.4);
    m.tokensStreamed.inc({ provider: 'openai', model: 'm' }, 12);
    m.upstreamErrors.inc({ code: 'rate_limited' });
    m.fileExtraction.observe({ file_type: 'pdf', outcome: 'ok' }, 0.2);
    const text = (await t.http().get('/metrics').set('Authorization', `Bearer ${TOKEN}`).expect(200)).text;
    expect(text).toContain('parley_time_to_first_token_seconds_count{provider="openai",model="m"} 1');
    expect(text).toContain('parley_tokens_streamed_total{provider="openai",model="m"} 12');
    expect(text).toContain('parley_upstream_errors_total{code="rate_limited"} 1');
    expect(text).toContain('parley_file_extraction_seconds_count{file_type="pdf",outcome="ok"} 1');
  });
});

describe('/metrics without METRICS_TOKEN', () => {
  let t: TestApp;
  beforeAll(async () => { t = await createTestApp('sqlite'); });
  afterAll(async () => { await t.close(); });

  it('answers a scrape from this host, and anything that came through a proxy as a route that does not exist', async () => {
    await t.http().get('/metrics').expect(200);
    const missing = (await t.http().get('/metricz').expect(404)).body as { error: Record<string, unknown> };
    for (const header of ['X-Forwarded-For', 'X-Real-IP', 'Forwarded']) {
      const res = await t.http().get('/metrics').set(header, header === 'Forwarded' ? 'for=203.0.113.7' : '203.0.113.7').expect(404);
      const { error } = res.body as { error: Record<string, unknown> };
      expect(error.code).toBe(missing.error.code);
      expect(error.message).toBe(String(missing.error.message).replace('/metricz', '/metrics'));
      expect(res.text).not.toContain('parley_');
    }
  });

  it('counts only loopback peers with no forwarding header as local', () => {
    const req = (remoteAddress: string, headers: Record<string, string> = {}) => ({ socket: { remoteAddress }, headers }) as never;
    expect(['127.0.0.1', '127.5.6.7', '::1', '::ffff:127.0.0.1'].map((a) => isLocalUnproxied(req(a)))).toEqual([true, true, true, true]);
    expect(['10.0.0.5', '::ffff:10.0.0.5', '192.168.1.20', 'fe80::1', '', '::ffff:128.0.0.1'].map((a) => isLocalUnproxied(req(a)))).toEqual([false, false, false, false, false, false]);
    expect(isLocalUnproxied(req('127.0.0.1', { 'x-forwarded-for': '198.51.100.1' }))).toBe(false);
  });
});
