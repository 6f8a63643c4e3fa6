import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findNginx, freePort, LocalNginx, LoopbackHttpServer } from './topology.js';

/**
 * The README's sign-in gate for TRUSTED_IDENTITY_HEADER ("Access gate"), applied to nginx/nginx.conf as
 * an operator would, in front of a stand-in oauth2-proxy (its /oauth2/auth answers 200 with
 * X-Auth-Request-Email for a signed-in cookie) and an echo backend: what an instance receives.
 * The gate must not cost the server-level headers (a location with a proxy_set_header of its own
 * inherits none of them: client address, request id, keep-alive), and a client's own identity header
 * never reaches an instance. No built server is needed.
 */

/** The README's recipe, word for word (checked below): the part inside `server { … }`. */
const RECIPE_SERVER = `# inside \`server { … }\` of nginx/nginx.conf, with oauth2-proxy at oauth2-proxy:4180
location /oauth2/ {
    proxy_pass http://oauth2-proxy:4180;
    proxy_set_header Host $gw_fwd_host;
    proxy_set_header X-Real-IP $remote_addr;
    proxy_set_header X-Auth-Request-Redirect $request_uri;
}
location = /oauth2/auth {
    internal;
    proxy_pass http://oauth2-proxy:4180;
    proxy_pass_request_body off;
    proxy_set_header Content-Length "";
    proxy_set_header Host $gw_fwd_host;
    proxy_set_header X-Real-IP $remote_addr;
}
# A page asks for a sign-in; the API answers a JSON 401 (UNAUTHORIZED, reason identity_required).
error_page 401 = /oauth2/sign_in;
`;

/** The README's recipe: the lines at the top of the gated locations. */
const RECIPE_LOCATIONS = `# at the top of \`location ^~ /api/ {\`, \`location = /api {\` and \`location / {\` (the stream and
# upload locations inside /api/ inherit them; the hashed bundles and /media/ stay public)
auth_request /oauth2/auth;
auth_request_set $gw_identity $upstream_http_x_auth_request_email;
`;

const GATED_LOCATIONS = ['location ^~ /api/ {', 'location = /api {', 'location / {'];

/** nginx.conf with the recipe added where the README says, oauth2-proxy being `authAddress`. */
function withSignInGate(template: string, authAddress: string): string {
  const serverName = /^\s*server_name _;$/m.exec(template);
  if (!serverName) throw new Error('nginx.conf has no `server_name _;` line to add the gate after');
  let edited = template.replace(serverName[0], `${serverName[0]}\n${RECIPE_SERVER.replaceAll('oauth2-proxy:4180', authAddress)}`);
  for (const location of GATED_LOCATIONS) {
    const lines = edited.split('\n').filter((l) => l.trim() === location);
    if (lines.length !== 1) throw new Error(`nginx.conf has ${lines.length} \`${location}\` lines, not one`);
    edited = edited.replace(lines[0], `${lines[0]}\n${RECIPE_LOCATIONS}`);
  }
  return edited;
}

const SIGNED_IN = '_oauth2_proxy=alice';
/** Signed in, but the auth service names nobody (no X-Auth-Request-Email). */
const SIGNED_IN_ANONYMOUS = '_oauth2_proxy=anonymous';

interface Seen { method: string; url: string; headers: IncomingHttpHeaders; socket: string }

/** A small HTTP server on loopback; `answer` decides (once the body is read), every request is recorded. */
class StubServer extends LoopbackHttpServer {
  readonly seen: Seen[] = [];

  constructor(port: number, private readonly answer: (req: IncomingMessage, res: ServerResponse) => void) {
    super(port);
  }

  protected override handle(req: IncomingMessage, res: ServerResponse): void {
    this.seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, socket: `${req.socket.remotePort}` });
    req.resume();
    req.on('end', () => this.answer(req, res));
  }
}

/** Stands in for oauth2-proxy with --set-xauthrequest. */
function oauth2Proxy(req: IncomingMessage, res: ServerResponse): void {
  const cookie = req.headers.cookie ?? '';
  if (req.url?.startsWith('/oauth2/auth')) {
    if (cookie.includes(SIGNED_IN)) res.writeHead(202, { 'x-auth-request-email': 'alice@example.com' }).end();
    else if (cookie.includes(SIGNED_IN_ANONYMOUS)) res.writeHead(202).end();
    else res.writeHead(401).end();
    return;
  }
  res.writeHead(200, { 'content-type': 'text/html' }).end('<h1>Sign in with your organisation</h1>');
}

function echo(_req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
}

/** Headers a client forges, hoping the gateway passes them on. */
const FORGED = {
  'x-forwarded-email': 'mallory@example.com', 'x-forwarded-for': '203.0.113.9', 'x-real-ip': '203.0.113.9',
  'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example', 'x-request-id': 'client-chosen-id',
};

describe('gateway: the README\'s sign-in gate (TRUSTED_IDENTITY_HEADER) keeps every server-level header', () => {
  let dir: string;
  let backend: StubServer;
  let auth: StubServer;
  /** nginx.conf as shipped. */
  let plain: LocalNginx;
  /** nginx.conf with the README's gate. */
  let gated: LocalNginx;

  beforeAll(async () => {
    findNginx();
    dir = mkdtempSync(join(tmpdir(), 'parley-identity-'));
    const ports = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    backend = new StubServer(ports[0], echo);
    auth = new StubServer(ports[1], oauth2Proxy);
    await Promise.all([backend.start(), auth.start()]);
    const upstreams = [{ host: '127.0.0.1', port: backend.port }];
    plain = new LocalNginx(join(dir, 'plain'), ports[2], upstreams);
    gated = new LocalNginx(join(dir, 'gated'), ports[3], upstreams, undefined, undefined, (t) => withSignInGate(t, `127.0.0.1:${auth.port}`));
    await Promise.all([plain.start(), gated.start()]);
  }, 30_000);

  afterAll(async () => {
    await Promise.allSettled([plain?.proc?.stop(), gated?.proc?.stop()]);
    await Promise.allSettled([backend?.stop(), auth?.stop()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  beforeEach(() => {
    backend.seen.length = 0;
    auth.seen.length = 0;
  });

  afterEach((ctx) => {
    if (ctx.task.result?.state !== 'fail') return;
    for (const p of [plain.proc, gated.proc]) if (p) console.log(`--- ${p.name} ---\n${p.output.slice(-4_000)}`);
  });

  /** What the gateway must pass whatever the gate: its own view of the client, never the client's. */
  function expectGatewayHeaders(seen: Seen, gatewayPort: number, requestId: string | null): void {
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen.headers['x-real-ip']).toBe('127.0.0.1');
    expect(seen.headers['x-forwarded-proto']).toBe('http');
    // The host as the client asked for it, port included (the CSRF check compares Origin with it).
    expect(seen.headers.host).toBe(`127.0.0.1:${gatewayPort}`);
    expect(seen.headers['x-forwarded-host']).toBe(`127.0.0.1:${gatewayPort}`);
    expect(seen.headers['x-request-id']).toMatch(/^[0-9a-f]{32}$/);
    if (requestId) expect(seen.headers['x-request-id']).toBe(requestId);
    // Keep-alive to the instances: no `Connection: close`.
    expect(seen.headers.connection).toBeUndefined();
  }

  it('is the recipe the README gives', () => {
    const readme = readFileSync(join(__dirname, '..', '..', '..', 'README.md'), 'utf8');
    expect(readme).toContain(`\`\`\`nginx\n${RECIPE_SERVER}\`\`\``);
    expect(readme).toContain(`\`\`\`nginx\n${RECIPE_LOCATIONS}\`\`\``);
  });

  it('as shipped, drops a client\'s own X-Forwarded-Email and replaces its forwarded headers', async () => {
    const res = await fetch(`${plain.url}/api/v1/conversations`, { headers: FORGED });
    expect(res.status).toBe(200);
    expect(backend.seen).toHaveLength(1);
    expect(backend.seen[0].headers['x-forwarded-email']).toBeUndefined();
    expectGatewayHeaders(backend.seen[0], plain.port, res.headers.get('x-request-id'));
  });

  it('passes the identity from the auth service, and only that, on every API route, over kept-alive connections', async () => {
    const requests: [string, RequestInit][] = [
      ['/api/v1/conversations', {}],
      ['/api/v1/chat', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"message":"hi"}' }],
      ['/api/v1/chat/streams/00000000-0000-4000-8000-000000000000', {}],
      ['/api/v1/files/upload', { method: 'POST', headers: { 'content-type': 'multipart/form-data; boundary=x' }, body: '--x--\r\n' }],
      ['/api', {}],
      ['/api/v1/sessions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }],
    ];
    for (const [path, init] of requests) {
      const res = await fetch(`${gated.url}${path}`, { ...init, headers: { ...FORGED, ...(init.headers as Record<string, string>), cookie: SIGNED_IN } });
      expect([path, res.status]).toEqual([path, 200]);
      await res.arrayBuffer();
      const seen = backend.seen.at(-1)!;
      expect(seen.url).toBe(path);
      expect(seen.headers['x-forwarded-email']).toBe('alice@example.com');
      expectGatewayHeaders(seen, gated.port, null);
    }
    expect(backend.seen).toHaveLength(requests.length);
    // One connection from nginx (keepalive in the upstream block) carried them all, one after another.
    expect(new Set(backend.seen.map((s) => s.socket)).size).toBe(1);
    expect(auth.seen.map((s) => s.url)).toEqual(requests.map(() => '/oauth2/auth'));
  });

  it('drops a client\'s own X-Forwarded-Email when the auth service names nobody', async () => {
    const res = await fetch(`${gated.url}/api/v1/conversations`, { headers: { ...FORGED, cookie: SIGNED_IN_ANONYMOUS } });
    expect(res.status).toBe(200);
    expect(backend.seen).toHaveLength(1);
    expect(backend.seen[0].headers['x-forwarded-email']).toBeUndefined();
    expectGatewayHeaders(backend.seen[0], gated.port, res.headers.get('x-request-id'));
  });

  it('without a sign-in: the API answers the JSON 401 the SPA knows, a page goes to the sign-in, no instance is reached', async () => {
    for (const path of ['/api/v1/conversations', '/api']) {
      const res = await fetch(`${gated.url}${path}`, { headers: FORGED });
      expect(res.status).toBe(401);
      expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
      const { error } = (await res.json()) as { error: { code: string; details?: { reason?: string }; request_id: string } };
      expect(error).toMatchObject({ code: 'UNAUTHORIZED', details: { reason: 'identity_required' } });
      expect(error.request_id).toBe(res.headers.get('x-request-id'));
    }
    const page = await fetch(`${gated.url}/c/some-conversation`);
    expect(await page.text()).toContain('Sign in with your organisation');
    expect(auth.seen.map((s) => s.url)).toEqual(['/oauth2/auth', '/oauth2/auth', '/oauth2/auth', '/oauth2/sign_in']);
    expect(backend.seen).toHaveLength(0);
    // The container's healthcheck stays open.
    expect((await fetch(`${gated.url}/healthz`)).status).toBe(200);
  });
});
