import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import express from 'express';
import pino from 'pino';
import { QueryFailedError } from 'typeorm';
import { createRootLogger, PinoNestLogger } from './logger.js';
import { requestLogMiddleware } from './request-log.js';
import { createTestApp, type TestApp } from '../testing/test-app.js';
import { buildWorker, WORKER_BUILD_DIR } from '../testing/worker-build.js';

/** What the logs may and may not contain: request ids and routes yes; tokens, cookies, message text no. */
describe('structured logs', () => {
  let t: TestApp;
  const lines: string[] = [];
  beforeAll(async () => {
    const sink = new Writable({ write(chunk: Buffer, _enc, done) { lines.push(...chunk.toString().split('\n').filter(Boolean)); done(); } });
    t = await createTestApp('sqlite', { LOG_LEVEL: 'info' }, { logDestination: sink });
  });
  afterAll(async () => { await t.close(); });

  it('log every request as JSON with its id, but never tokens, cookies, query strings or message text', async () => {
    const s = await t.newSession();
    const secretText = 'my-very-private-message-text-4711';
    const res = await t.http().post('/api/v1/chat').set('Authorization', `Bearer ${s.token}`).set('Cookie', s.cookie)
      .send({ message: secretText });
    expect(res.status).toBe(200);
    await t.http().get('/api/v1/conversations?limit=5&secret=query-value-0815').set('Authorization', `Bearer ${s.token}`).expect(400);
    await new Promise((r) => setTimeout(r, 100));
    const all = lines.join('\n');
    const parsed = lines.map((l) => JSON.parse(l) as { req?: { id?: string; path?: string } });
    expect(parsed.some((l) => l.req?.id === res.headers['x-request-id'] && l.req.path === '/api/v1/chat')).toBe(true);
    expect(all).not.toContain(s.token);
    expect(all).not.toContain(s.token.split('.')[2]);
    expect(all).not.toContain(secretText);
    expect(all).not.toContain('query-value-0815');
  });

  it('never logs the data a failed database statement carried', () => {
    const out: string[] = [];
    const sink = new Writable({ write(chunk: Buffer, _enc, done) { out.push(chunk.toString()); done(); } });
    const logger = createRootLogger('info', sink);
    const driverError = Object.assign(new Error('invalid byte sequence for encoding "UTF8": 0x00'), { parameters: ['private-text-0042'] });
    logger.error({ err: new QueryFailedError('INSERT INTO "messages" VALUES ($1)', ['private-text-0042'], driverError) }, 'could not save');
    const line = JSON.parse(out.join('')) as { err: { message: string; query: string; parameters: unknown; driverError: { parameters: unknown } } };
    expect(line.err.message).toContain('invalid byte sequence');
    expect(line.err.query).toContain('INSERT INTO');
    expect(line.err.parameters).toBe('[redacted]');
    expect(line.err.driverError.parameters).toBe('[redacted]');
    expect(out.join('')).not.toContain('private-text-0042');
  });
});

describe('the framework\'s log lines (PinoNestLogger)', () => {
  it('say why a start failed: an Error\'s message and stack, and the stack Nest passes beside a message', () => {
    const out: string[] = [];
    const sink = new Writable({ write(chunk: Buffer, _enc, done) { out.push(...chunk.toString().split('\n').filter(Boolean)); done(); } });
    const nest = new PinoNestLogger(createRootLogger('info', sink));
    nest.error(new Error('FILE_SCANNER=command needs FILE_SCANNER_COMMAND'), 'ExceptionHandler');
    nest.error('Unable to connect to the database', 'Error: database "x" does not exist\n    at Parser.parse (x.js:1:1)', 'TypeOrmModule');
    nest.log({ migrations: 2 }, 'migrations applied', 'Database');
    const [failed, connect, plain] = out.map((l) => JSON.parse(l) as { msg?: string; context?: string; err?: { message: string; stack: string }; stack?: string; migrations?: number });
    expect(failed).toMatchObject({ context: 'ExceptionHandler', msg: 'FILE_SCANNER=command needs FILE_SCANNER_COMMAND', err: { message: 'FILE_SCANNER=command needs FILE_SCANNER_COMMAND' } });
    expect(failed.err!.stack).toContain('logging.spec');
    expect(connect).toMatchObject({ context: 'TypeOrmModule', msg: 'Unable to connect to the database', stack: expect.stringContaining('does not exist') });
    expect(plain).toMatchObject({ context: 'Database', msg: 'migrations applied', migrations: 2 });
  });
});

/** The request log line itself, on a bare Express app: one line per response, however it ended. */
describe('request log middleware', () => {
  const lines: Array<{ level: number; msg: string; req: { id?: string; method: string; path: string }; res: { status: number }; responseTime: number; aborted?: boolean }> = [];
  let base = '';
  let server: ReturnType<ReturnType<typeof express>['listen']>;
  beforeAll(async () => {
    const sink = new Writable({ write(chunk: Buffer, _enc, done) { for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l)); done(); } });
    const app = express();
    app.use(requestLogMiddleware(pino({ base: undefined }, sink), (path) => path === '/quiet'));
    app.get('/ok', (_req, res) => { res.send('ok'); });
    app.get('/quiet', (_req, res) => { res.send('ok'); });
    app.get('/boom', (_req, res) => { res.status(500).send('no'); });
    app.get('/slow', (_req, res) => { res.write('started'); });
    server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => { server.closeAllConnections(); server.close(); });
  const settle = () => new Promise((r) => setTimeout(r, 50));

  it('logs a finished request once, without its query string', async () => {
    lines.length = 0;
    await (await fetch(`${base}/ok?token=secret-in-query`)).text();
    await settle();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 30, msg: 'request completed', req: { method: 'GET', path: '/ok' }, res: { status: 200 }, responseTime: expect.any(Number) });
    expect(lines[0].aborted).toBeUndefined();
    expect(JSON.stringify(lines)).not.toContain('secret-in-query');
  });

  it('logs a 5xx at error level and skips quiet paths', async () => {
    lines.length = 0;
    await (await fetch(`${base}/quiet`)).text();
    await (await fetch(`${base}/boom`)).text();
    await settle();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 50, msg: 'request failed', req: { path: '/boom' }, res: { status: 500 } });
  });

  it('logs a response the client abandoned as aborted', async () => {
    lines.length = 0;
    await new Promise<void>((resolve, reject) => {
      const req = request(`${base}/slow`, (res) => { res.once('data', () => { req.destroy(); resolve(); }); });
      req.on('error', (err) => { if (!req.destroyed) reject(err); });
      req.end();
    });
    await vi.waitFor(() => expect(lines).toHaveLength(1));
    expect(lines[0]).toMatchObject({ msg: 'request completed', req: { path: '/slow' }, res: { status: 200 }, aborted: true });
  });
});

/** Standard output as the server writes it (createRootLogger's default destination), in a process of its own. */
describe('log output', () => {
  const lines = 5000; // ~700 KB: far more than a pipe holds

  /**
   * Starts a process that logs `lines` lines while nobody reads its stdout and then reports how
   * many it dropped; waits for that report (false if it never came: the process hung writing),
   * then reads the whole output while the process exits as main.ts does (exitAfterLogs) with a
   * write still blocked on the full pipe.
   */
  async function logUnread(destination: string): Promise<{ reported: boolean; dropped: number; code: number | null; out: Array<{ i: number; msg: string }> }> {
    buildWorker(join(__dirname, 'logger.ts'));
    const script = `
      const { createRootLogger, stdoutDestination, droppedLogLines, exitAfterLogs } = require(${JSON.stringify(join(WORKER_BUILD_DIR, 'common', 'logger.js'))});
      const logger = createRootLogger('info', ${destination});
      for (let i = 0; i < ${lines}; i++) logger.info({ i, pad: 'x'.repeat(100) }, 'line');
      process.send(droppedLogLines());
      process.once('message', () => exitAfterLogs(logger, 0));
    `;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
    try {
      // Nobody reads the child's stdout yet: with blocking writes it would hang inside its loop.
      const report = await Promise.race([
        once(child, 'message').then(([dropped]) => ({ dropped: dropped as number })),
        new Promise<undefined>((resolve) => { setTimeout(() => resolve(undefined), 10_000); }),
      ]);
      if (!report) return { reported: false, dropped: 0, code: null, out: [] };
      const chunks: Buffer[] = [];
      child.stdout?.on('data', (chunk: Buffer) => chunks.push(chunk));
      const exited = once(child, 'exit');
      child.send('exit');
      const [code] = await exited as [number | null];
      const out = Buffer.concat(chunks).toString('utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { i: number; msg: string });
      return { reported: true, dropped: report.dropped, code, out };
    } finally {
      child.kill();
    }
  }

  it('queues lines while nobody reads stdout instead of stopping the event loop, and loses or reorders none when the process exits', async () => {
    const { reported, dropped, code, out } = await logUnread('undefined');
    expect(reported).toBe(true);
    expect(code).toBe(0);
    expect(dropped).toBe(0);
    expect(out).toHaveLength(lines);
    expect(out.every((l, n) => l.i === n && l.msg === 'line')).toBe(true);
  });

  it('drops and counts the lines beyond its buffer when the reader falls that far behind', async () => {
    const { reported, dropped, out } = await logUnread('stdoutDestination(64 * 1024)');
    expect(reported).toBe(true);
    expect(dropped).toBeGreaterThan(0);
    expect(out.length + dropped).toBe(lines);
    // What was kept is whole lines, in order.
    expect(out.every((l, n) => n === 0 || l.i > out[n - 1].i)).toBe(true);
  });

  it('writes the lines of a busy moment together, and writes a quiet server\'s lines within the flush interval', async () => {
    buildWorker(join(__dirname, 'logger.ts'));
    const script = `
      const { createRootLogger } = require(${JSON.stringify(join(WORKER_BUILD_DIR, 'common', 'logger.js'))});
      const logger = createRootLogger('info');
      for (let i = 0; i < 3; i++) logger.info({ i }, 'line');
      setInterval(() => undefined, 1000);
    `;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      // The process stays up: nothing but the flush timer writes these lines.
      const [chunk] = await Promise.race([
        once(child.stdout, 'data') as Promise<[Buffer]>,
        new Promise<never>((_resolve, reject) => { setTimeout(() => reject(new Error('no log line within 5 s')), 5000); }),
      ]);
      const out = chunk.toString('utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { i: number });
      // One write for the three (one per line before: the first line left alone).
      expect(out.map((l) => l.i)).toEqual([0, 1, 2]);
      expect(child.exitCode).toBeNull();
    } finally {
      child.kill();
    }
  });
});
