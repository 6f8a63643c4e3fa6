import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildWorker, WORKER_BUILD_DIR } from './testing/worker-build.js';

interface LogLine { level: number; msg: string; port?: number; variable?: string; suggestion?: string }

/** main.ts as `npm start` runs it, compiled as the build does, in a process of its own. */
describe('main: the server process', () => {
  let child: ChildProcess | undefined;
  let dir: string;
  let out = '';
  let errors = '';
  // Whole lines only: a chunk may end inside one.
  const lines = (): LogLine[] => out.split('\n').slice(0, -1).filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine);

  beforeAll(async () => {
    buildWorker(join(__dirname, 'main.ts'));
    // As build:server does: the worker threads' plain-JS entries sit beside the compiled code.
    for (const file of ['files/extract.worker.mjs', 'database/sqlite-checkpoint.worker.mjs', 'database/sqlite-read.worker.mjs']) {
      copyFileSync(join(__dirname, file), join(WORKER_BUILD_DIR, file));
    }
    dir = mkdtempSync(join(tmpdir(), 'parley-main-'));
    child = spawn(process.execPath, [join(WORKER_BUILD_DIR, 'main.js')], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'test', LOG_LEVEL: 'info',
        PORT: '0', HOST: '127.0.0.1', DATA_DIR: dir, CLIENT_DIR: join(dir, 'no-client'), LLM_PROVIDER: 'offline', UPSTREAM_WORKER: 'false',
        // Misspelt settings: each is named with the setting it meant, its value never.
        SESSION_SECRETT: 'value-of-a-misspelt-secret-0123456789',
        MAX_UPLOAD_BYTE: '987654321',
      },
    });
    const started = child;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "Parley listening" line within 60 s:\n${out}${errors}`)), 60_000);
      started.stdout?.on('data', (b: Buffer) => {
        out += b.toString();
        if (lines().some((l) => l.msg.startsWith('Parley listening'))) { clearTimeout(timer); resolve(); }
      });
      started.stderr?.on('data', (b: Buffer) => { errors += b.toString(); });
      started.once('exit', (code) => { clearTimeout(timer); reject(new Error(`the server exited (${code}):\n${out}${errors}`)); });
    });
  }, 120_000);

  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child?.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('logs the port it really listens on (PORT=0 takes a free one), and answers there', async () => {
    const listening = lines().find((l) => l.msg.startsWith('Parley listening'))!;
    expect(listening.port).toBeGreaterThan(0);
    expect(listening.msg).toBe(`Parley listening on http://localhost:${listening.port}`);
    expect((await fetch(`http://127.0.0.1:${listening.port}/api/v1/health/live`)).status).toBe(200);
  });

  it('stops on a SIGTERM sent to the shell `npm start` runs its script in (a process manager stopping npm): the script execs node', async () => {
    const script = (JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start;
    expect(script).toContain('dist/server/main.js');
    const own = mkdtempSync(join(tmpdir(), 'parley-npm-start-'));
    // As npm runs a script: `sh -c <script>`, with the build's main in place of dist's.
    const shell = spawn('sh', ['-c', script.replace('dist/server/main.js', join(WORKER_BUILD_DIR, 'main.js'))], {
      // A group of its own: whatever the test finds, nothing it started outlives it (a node left behind, reparented).
      detached: true, stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'test', LOG_LEVEL: 'info', PORT: '0', HOST: '127.0.0.1', DATA_DIR: own,
        CLIENT_DIR: join(own, 'no-client'), LLM_PROVIDER: 'offline', UPSTREAM_WORKER: 'false' },
    });
    let log = '';
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`not listening within 60 s:\n${log}`)), 60_000);
        shell.stdout?.on('data', (b: Buffer) => { log += b.toString(); if (log.includes('Parley listening')) { clearTimeout(timer); resolve(); } });
        shell.once('exit', (code) => { clearTimeout(timer); reject(new Error(`exited (${code}):\n${log}`)); });
      });
      const exited = new Promise<number | null>((resolve) => shell.once('exit', resolve));
      shell.kill('SIGTERM');
      // The same signal again while it drains (the group stopped, npm passing its own on; Ctrl+C reaches npm and node
      // alike) does not cut the drain short: with no handler left, it ended the process at once, by the signal.
      await new Promise((resolve) => setTimeout(resolve, 20));
      shell.kill('SIGTERM');
      // The shell's pid is node's: it drains and says goodbye (a shell in between died alone and node served on).
      expect(await exited).toBe(0);
      expect(log).toContain('"msg":"bye"');
    } finally {
      try { process.kill(-shell.pid!, 'SIGKILL'); } catch { /* the group is gone */ }
      rmSync(own, { recursive: true, force: true });
    }
  }, 90_000);

  it('warns once about each variable that looks like a setting but is not one, naming the setting, never the value', () => {
    const warnings = lines().filter((l) => l.level === 40 && l.variable !== undefined);
    expect(warnings.map((l) => [l.variable, l.suggestion])).toEqual(expect.arrayContaining([
      ['SESSION_SECRETT', 'SESSION_SECRET'],
      ['MAX_UPLOAD_BYTE', 'MAX_UPLOAD_BYTES'],
    ]));
    expect(warnings).toHaveLength(2);
    expect(warnings.find((l) => l.variable === 'SESSION_SECRETT')!.msg).toMatch(/SESSION_SECRETT .*SESSION_SECRET/);
    for (const value of ['value-of-a-misspelt-secret', '987654321']) expect(out + errors).not.toContain(value);
  });
});
