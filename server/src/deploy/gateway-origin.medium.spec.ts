import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeOpenAiServer } from '../testing/fake-openai-server.js';
import { findNginx, freePort, type LocalNginx, requireBuiltServer, type ServerInstance, startGatewayWithOneInstance } from './topology.js';

/**
 * A gateway published on a port other than 80 (compose's HTTP_PORT), without PUBLIC_URL: the
 * backend's CSRF check compares a browser's Origin with the host the gateway passes on, which must
 * keep its port, or every write from the browser is refused. A foreign host or origin still is.
 */
describe('gateway on another port than 80: same-origin writes pass the CSRF check, foreign ones do not', () => {
  const fake = new FakeOpenAiServer();
  let dir: string;
  let instance: ServerInstance;
  let nginx: LocalNginx;

  beforeAll(async () => {
    requireBuiltServer();
    findNginx();
    dir = mkdtempSync(join(tmpdir(), 'parley-origin-'));
    const [baseUrl, ports] = await Promise.all([fake.start(), Promise.all([freePort(), freePort()])]);
    ({ instance, nginx } = await startGatewayWithOneInstance({
      dir, upstreamUrl: baseUrl, secret: 'origin-test-secret-that-is-long-enough-0123456789', ports: [ports[0], ports[1]],
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

  /** POST /api/v1/sessions through the gateway as a browser would, with this Host and Origin (fetch cannot set Host). */
  function createSession(host: string, origin: string): Promise<{ status: number; code?: string }> {
    return new Promise((resolve, reject) => {
      const req = request({
        host: '127.0.0.1', port: nginx.port, method: 'POST', path: '/api/v1/sessions',
        headers: { host, origin, 'content-type': 'application/json', 'sec-fetch-site': 'same-origin' },
      }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => { body += chunk; });
        res.on('end', () => {
          const code = res.statusCode === 201 ? undefined : (JSON.parse(body) as { error: { code: string } }).error.code;
          resolve({ status: res.statusCode ?? 0, code });
        });
      });
      req.on('error', reject);
      req.end('{}');
    });
  }

  it('creates a session from the page\'s own origin, port included', async () => {
    const own = `127.0.0.1:${nginx.port}`;
    expect(await createSession(own, `http://${own}`)).toEqual({ status: 201, code: undefined });
    expect(await createSession(`localhost:${nginx.port}`, `http://localhost:${nginx.port}`)).toEqual({ status: 201, code: undefined });
  });

  it('refuses another origin, the same host on another port, and a host name not served', async () => {
    const own = `127.0.0.1:${nginx.port}`;
    expect(await createSession(own, 'http://evil.com')).toEqual({ status: 403, code: 'FORBIDDEN' });
    expect(await createSession(own, 'http://127.0.0.1')).toEqual({ status: 403, code: 'FORBIDDEN' });
    expect(await createSession(`evil.com:${nginx.port}`, `http://evil.com:${nginx.port}`)).toEqual({ status: 403, code: 'FORBIDDEN' });
    expect(await createSession('evil.com', 'http://evil.com')).toEqual({ status: 403, code: 'FORBIDDEN' });
  });
});
