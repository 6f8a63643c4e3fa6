import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { waitFor } from '../testing/wait.js';
import { type GatewayTimeouts, localNginxConfig, localTlsConfig, readNginxTemplate, TLS_CONF_EXAMPLE_PATH } from './nginx-config.js';

/** The built server CI runs (`npm run build` comes before the tests). */
export const SERVER_MAIN = join(__dirname, '..', '..', '..', 'dist', 'server', 'main.js');

export function requireBuiltServer(): void {
  if (!existsSync(SERVER_MAIN)) {
    throw new Error(`The topology test runs the built server, and ${SERVER_MAIN} is missing: run \`npm run build\` first (CI does).`);
  }
}

export function findNginx(): string {
  for (const p of ['/usr/sbin/nginx', '/usr/bin/nginx']) if (existsSync(p)) return p;
  throw new Error('nginx is not installed: apt-get install -y --no-install-recommends nginx (.ci/run does)');
}

export function findRedisServer(): string {
  for (const p of ['/usr/bin/redis-server', '/usr/local/bin/redis-server']) if (existsSync(p)) return p;
  throw new Error('redis-server is not installed');
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export { sleep, waitFor } from '../testing/wait.js';

/** Every child still running; killed if the test process exits without cleaning up (a crash, a timeout). */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** A child process whose output is kept (shown when a test fails) and whose exit can be awaited. */
export class Proc {
  readonly child: ChildProcess;
  output = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(readonly name: string, command: string, args: string[], env?: NodeJS.ProcessEnv) {
    this.child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (b: Buffer): void => { this.output = (this.output + b.toString()).slice(-20_000); };
    this.child.stdout?.on('data', keep);
    this.child.stderr?.on('data', keep);
    running.add(this.child);
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => {
      running.delete(this.child);
      resolve({ code, signal });
    }));
  }

  get isRunning(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.isRunning) this.child.kill(signal);
  }

  /** Ends the process: SIGTERM, then SIGKILL after `ms`. */
  async stop(ms = 5_000): Promise<void> {
    if (!this.isRunning) return;
    this.kill('SIGTERM');
    const timer = setTimeout(() => this.kill('SIGKILL'), ms);
    await this.exited;
    clearTimeout(timer);
  }
}

/** One Parley instance: `node dist/server/main.js` on its own port. */
export class ServerInstance {
  proc?: Proc;

  constructor(readonly name: string, readonly port: number, readonly env: Record<string, string>) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  start(): this {
    this.proc = new Proc(this.name, process.execPath, [SERVER_MAIN], {
      PATH: process.env.PATH, ...this.env, PORT: String(this.port), HOST: '127.0.0.1', INSTANCE_ID: this.name,
    });
    return this;
  }

  async ready(timeoutMs = 30_000): Promise<void> {
    await waitFor(`${this.name} to be ready`, async () => {
      if (this.proc && !this.proc.isRunning) throw new Error(`${this.name} exited:\n${this.proc.output}`);
      return (await fetch(`${this.url}/api/v1/health/ready`)).ok;
    }, timeoutMs);
  }
}

/** A small HTTP server on loopback standing in for a backend or a service in a gateway test: `handle` answers. */
export class LoopbackHttpServer {
  private server?: Server;

  constructor(readonly port: number, private readonly handler?: (req: IncomingMessage, res: ServerResponse) => void) {}

  /** Answers a request: the handler given, or a subclass's own. */
  protected handle(req: IncomingMessage, res: ServerResponse): void {
    this.handler?.(req, res);
  }

  async start(): Promise<void> {
    const server = createHttpServer((req, res) => this.handle(req, res));
    this.server = server;
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/**
 * One built instance (SQLite, production mode, the given upstream) behind the shipped gateway, with TLS when given: the
 * setup of the specs that test what the gateway does to a real instance's answers.
 */
export async function startGatewayWithOneInstance(options: {
  dir: string; upstreamUrl: string; secret: string; ports: [instance: number, http: number]; tls?: { port: number; certificate: string; key: string };
}): Promise<{ instance: ServerInstance; nginx: LocalNginx }> {
  const { dir, upstreamUrl, secret, ports, tls } = options;
  const instance = new ServerInstance('instance', ports[0], {
    NODE_ENV: 'production', LOG_LEVEL: 'warn', SESSION_SECRET: secret,
    OPENAI_BASE_URL: upstreamUrl, OPENAI_API_KEY: 'test-key', OPENAI_MODEL: 'fake-model',
    DATA_DIR: join(dir, 'data'), CLIENT_DIR: join(dir, 'no-spa'), TRUST_PROXY: 'loopback',
  }).start();
  await instance.ready();
  const nginx = new LocalNginx(join(dir, 'nginx'), ports[1], [{ host: '127.0.0.1', port: instance.port }], tls);
  await nginx.start();
  return { instance, nginx };
}

/** A private redis-server (never the shared one on 6379), nothing kept on disk. */
export class PrivateRedis {
  proc?: Proc;
  constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.proc = new Proc('redis', findRedisServer(), ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no']);
    await waitFor('redis', () => {
      if (this.proc && !this.proc.isRunning) throw new Error(`redis exited:\n${this.proc.output}`);
      return Promise.resolve(spawnSync('redis-cli', ['-p', String(this.port), 'ping'], { encoding: 'utf8' }).stdout.trim() === 'PONG');
    }, 10_000, 50);
  }
}

/** nginx in the foreground with nginx/nginx.conf rewritten for loopback ports and a temp dir. */
export class LocalNginx {
  proc?: Proc;
  /**
   * With `tls`, nginx/tls.conf.example is included as the gateway would, on its own port with that
   * certificate; with `timeouts`, the marked timeouts are shortened (a stuck backend answers quickly);
   * with `edit`, nginx.conf gets an operator's additions first (e.g. the README's sign-in gate).
   */
  constructor(
    readonly dir: string, readonly port: number, readonly upstreams: { host: string; port: number }[],
    readonly tls?: { port: number; certificate: string; key: string },
    readonly timeouts?: GatewayTimeouts,
    readonly edit?: (template: string) => string,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const nginx = findNginx();
    mkdirSync(join(this.dir, 'html'), { recursive: true });
    writeFileSync(join(this.dir, 'html', 'index.html'), '<!doctype html><title>Parley</title><app-root></app-root>');
    writeFileSync(join(this.dir, 'html', 'main-ABCD1234.js'), 'console.log("parley");\n'.repeat(200));
    const isRoot = process.getuid?.() === 0;
    let tlsConf: string | undefined;
    if (this.tls) {
      tlsConf = join(this.dir, 'tls.conf');
      writeFileSync(tlsConf, localTlsConfig(readFileSync(TLS_CONF_EXAMPLE_PATH, 'utf8'), this.tls));
    }
    const template = this.edit ? this.edit(readNginxTemplate()) : readNginxTemplate();
    writeFileSync(join(this.dir, 'nginx.conf'), localNginxConfig(template, { dir: this.dir, port: this.port, upstreams: this.upstreams, isRoot, tlsConf, timeouts: this.timeouts }));
    this.proc = new Proc('nginx', nginx, ['-e', join(this.dir, 'error.log'), '-p', this.dir, '-c', join(this.dir, 'nginx.conf'), '-g', 'daemon off;']);
    await waitFor('nginx', async () => {
      if (this.proc && !this.proc.isRunning) throw new Error(`nginx exited:\n${this.proc.output}`);
      return (await fetch(`${this.url}/healthz`)).ok;
    }, 10_000, 50);
  }
}
