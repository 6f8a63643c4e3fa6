import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
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
