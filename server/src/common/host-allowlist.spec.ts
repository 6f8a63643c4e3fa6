import { DataSource } from 'typeorm';
import { loadConfig } from '../config/app-config.js';
import { Session } from '../sessions/session.entity.js';
import { createTestApp, type TestApp } from '../testing/test-app.js';
import { HostAllowlist, hostName } from './host-allowlist.js';

describe('HostAllowlist', () => {
  it('serves addresses and localhost always, other names only when listed', () => {
    const none = new HostAllowlist([]);
    for (const host of ['127.0.0.1', '127.0.0.1:3000', '192.168.1.20:8080', '[::1]:3000', '[::1]', '[fe80::1]', 'localhost', 'LOCALHOST:3000', 'app.localhost', 'localhost.']) {
      expect(none.allows(host), host).toBe(true);
    }
    // A rebound name is a name: refused until the operator lists it.
    for (const host of ['attacker.example', 'attacker.example:3000', 'localhost.attacker.example', '127.0.0.1.nip.io', 'mybox', '']) {
      expect(none.allows(host), host).toBe(false);
    }
  });

  it('takes exact names and .domain entries (the domain and its subdomains), in any case, and * for any', () => {
    const list = new HostAllowlist(['Chat.Example.com', '.corp.example']);
    expect(list.allows('chat.example.com:443')).toBe(true);
    expect(list.allows('CHAT.EXAMPLE.COM.')).toBe(true);
    expect(list.allows('other.example.com')).toBe(false);
    expect(list.allows('corp.example')).toBe(true);
    expect(list.allows('a.b.corp.example')).toBe(true);
    expect(list.allows('evilcorp.example')).toBe(false);
    expect(new HostAllowlist(['*']).allows('anything.example')).toBe(true);
  });

  it('reads a Host header as HTTP writes it, and nothing else', () => {
    expect(hostName('Example.COM:8080')).toBe('example.com');
    expect(hostName('[::1]:3000')).toBe('::1');
    expect(hostName('example.com.')).toBe('example.com');
    for (const bad of ['a b', 'user@host', 'host:port', 'host:123456', '[::1', 'a/b']) expect(hostName(bad), bad).toBeUndefined();
  });

  it('is configured from ALLOWED_HOSTS and PUBLIC_URL, refusing a malformed entry at boot', () => {
    const config = loadConfig({ DATA_DIR: '/tmp', SESSION_SECRET: 'x'.repeat(32), ALLOWED_HOSTS: 'a.example, .b.example', PUBLIC_URL: 'https://chat.example.com' });
    expect(config.allowedHosts).toEqual(['a.example', '.b.example', 'chat.example.com']);
    expect(() => loadConfig({ DATA_DIR: '/tmp', SESSION_SECRET: 'x'.repeat(32), ALLOWED_HOSTS: 'http://a.example' })).toThrow(/ALLOWED_HOSTS/);
  });
});

describe('requests under a host name the app does not serve (DNS rebinding)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp('sqlite', { ALLOWED_HOSTS: '.corp.example', TRUST_PROXY: 'loopback', RATE_LIMIT_SESSIONS_PER_MINUTE: '1000' });
  });
  afterAll(async () => { await t.close(); });

  const sessions = () => t.app.get(DataSource).getRepository(Session).count();

  it('are refused with 403 FORBIDDEN before anything runs: no session is created', async () => {
    const before = await sessions();
    const res = await t.http().post('/api/v1/sessions').set('Host', 'attacker.example:3000').set('Origin', 'http://attacker.example:3000').send({}).expect(403);
    expect(res.body.error).toMatchObject({ code: 'FORBIDDEN', request_id: res.headers['x-request-id'] });
    expect(res.body.error.message).toMatch(/ALLOWED_HOSTS/);
    expect(res.headers['x-frame-options']).toBe('DENY');
    await t.http().get('/').set('Host', 'attacker.example').expect(403);
    expect(await sessions()).toBe(before);
  });

  it('checks the forwarded host and the Host header alike: neither can stand in for the other', async () => {
    await t.http().post('/api/v1/sessions').set('Host', '127.0.0.1').set('X-Forwarded-Host', 'attacker.example').send({}).expect(403);
    await t.http().post('/api/v1/sessions').set('Host', 'attacker.example').set('X-Forwarded-Host', 'localhost').send({}).expect(403);
    await t.http().post('/api/v1/sessions').set('Host', '127.0.0.1').set('X-Forwarded-Host', 'chat.corp.example').send({}).expect(201);
  });

  it('serves addresses, localhost and listed names; probes pass under any name', async () => {
    for (const host of ['127.0.0.1', 'localhost:3000', 'chat.corp.example']) {
      await t.http().post('/api/v1/sessions').set('Host', host).send({}).expect(201);
    }
    await t.http().get('/api/v1/health/live').set('Host', 'parley-1.internal').expect(200);
    await t.http().get('/api/v1/health/ready').set('Host', 'parley-1.internal').expect(200);
  });

  it('answers the metrics (tokenless: loopback only) and the health report under served names only: a rebound page on 127.0.0.1 reads neither', async () => {
    for (const path of ['/metrics', '/api/v1/health']) {
      const res = await t.http().get(path).set('Host', 'attacker.example:3000').expect(403);
      expect(res.body.error.code).toBe('FORBIDDEN');
      await t.http().get(path).set('Host', '127.0.0.1:3000').expect(200);
      await t.http().get(path).set('Host', 'localhost').expect(200);
    }
  });

  it('answers a scrape that needs METRICS_TOKEN under any name (it has its own proof)', async () => {
    const scraped = await createTestApp('sqlite', { ALLOWED_HOSTS: '.corp.example', METRICS_TOKEN: 'a-metrics-token-0123456789' });
    try {
      await scraped.http().get('/metrics').set('Host', 'parley-1.internal').set('Authorization', 'Bearer a-metrics-token-0123456789').expect(200);
      await scraped.http().get('/metrics').set('Host', 'parley-1.internal').expect(401);
      await scraped.http().get('/api/v1/health').set('Host', 'parley-1.internal').expect(403);
    } finally {
      await scraped.close();
    }
  });

  it('sends Cross-Origin-Opener-Policy where the browser honours it: https or loopback, not a plain-http LAN name', async () => {
    const coop = async (host: string, proto?: string): Promise<string | undefined> => {
      const req = t.http().get('/api/v1/health').set('Host', host);
      const res = await (proto ? req.set('X-Forwarded-Proto', proto) : req);
      expect(res.status).toBe(200);
      expect(res.headers['content-security-policy']).toMatch(/frame-ancestors 'none'/); // every other header stays
      return res.headers['cross-origin-opener-policy'];
    };
    // Over http under a LAN name the browser ignores it, logging an error on every page load.
    expect(await coop('chat.corp.example')).toBeUndefined();
    expect(await coop('chat.corp.example', 'https')).toBe('same-origin');
    for (const host of ['localhost:3000', 'app.localhost', '127.0.0.1', '[::1]:3000']) expect(await coop(host)).toBe('same-origin');
  });
});
