// Starts the built Parley server as a child process with its own temp DATA_DIR and generous
// rate limits, waits for /api/v1/health, and exposes its pid, RSS, fds and the probe.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { cpuMs, openFds, preemptions, rssBytes } from './proc.mjs';

export const ROOT = resolve(new URL('../..', import.meta.url).pathname);
const PROBE = join(ROOT, 'bench', 'lib', 'probe.cjs');

/** The node flags of `npm start` (package.json), so the benchmarks run the server as users do. */
export const START_FLAGS = (() => {
  const words = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts.start.split(/\s+/);
  return words.slice(1, -1).filter((w) => w.startsWith('--'));
})();

export function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.unref();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls url until it answers 200 (or the child dies); returns ms since `since`. */
export async function waitHealthy(url, { since = performance.now(), timeoutMs = 60_000, child, intervalMs = 5 } = {}) {
  const deadline = since + timeoutMs;
  while (performance.now() < deadline) {
    if (child && child.exitCode !== null) throw new Error(`server exited with ${child.exitCode} before it was healthy`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (res.status === 200) {
        await res.arrayBuffer();
        return performance.now() - since;
      }
      await res.arrayBuffer();
    } catch { /* not listening yet */ }
    await sleep(intervalMs);
  }
  throw new Error(`${url} not healthy after ${timeoutMs} ms`);
}

const GENEROUS = '100000000';

/**
 * @param {object} o
 * @param {string} o.dist     directory holding server/main.js (default: <root>/dist)
 * @param {object} [o.env]    extra environment (wins over defaults)
 * @param {string} [o.dataDir] reuse a data dir (default: a fresh temp one, removed on stop)
 * @param {string[]} [o.nodeArgs] extra node flags
 */
export async function startServer({ dist, env = {}, dataDir, nodeArgs = [], label = 'server', withProbe = true } = {}) {
  const main = join(dist, 'server', 'main.js');
  if (!existsSync(main)) throw new Error(`${main} not found: run npm run build:server first (or pass --dist)`);
  const ownsDir = !dataDir;
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), 'parley-bench-'));
  const port = await freePort();
  const clientDir = join(dist, 'client', 'browser');
  const logPath = join(dir, `${label}.log`);
  const logFd = openSync(logPath, 'a');
  const childEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(port),
    DATA_DIR: dir,
    LOG_LEVEL: 'info',
    SWAGGER_ENABLED: 'false',
    RATE_LIMIT_CHAT_PER_MINUTE: GENEROUS,
    RATE_LIMIT_CHAT_PER_HOUR: GENEROUS,
    RATE_LIMIT_REQUESTS_PER_MINUTE: GENEROUS,
    RATE_LIMIT_SESSIONS_PER_MINUTE: GENEROUS,
    SHUTDOWN_GRACE_MS: '2000',
    ...(existsSync(clientDir) ? { CLIENT_DIR: clientDir } : {}),
    // BENCH_SERVER_ENV="UPSTREAM_WORKER=false STREAM_FLUSH_INTERVAL_MS=500": settings for an A/B of
    // the server's own (the server gets no other variable of the harness' environment).
    ...Object.fromEntries((process.env.BENCH_SERVER_ENV ?? '').split(/\s+/).filter(Boolean).map((pair) => {
      const at = pair.indexOf('=');
      if (at < 1) throw new Error(`BENCH_SERVER_ENV: ${pair} is not NAME=value`);
      return [pair.slice(0, at), pair.slice(at + 1)];
    })),
    ...env,
  };
  for (const [k, v] of Object.entries(childEnv)) if (v === undefined) delete childEnv[k];
  const started = performance.now();
  const extra = [...(process.env.BENCH_SERVER_PRELOAD ? ['-r', process.env.BENCH_SERVER_PRELOAD] : []), ...(process.env.BENCH_SERVER_FLAGS ? process.env.BENCH_SERVER_FLAGS.split(' ') : [])];
  const child = spawn(process.execPath, [...START_FLAGS, ...(withProbe ? ['--expose-gc', '-r', PROBE] : []), ...extra, ...nodeArgs, main], {
    cwd: ROOT, env: childEnv, stdio: ['ignore', logFd, logFd, withProbe ? 'ipc' : 'ignore'],
  });
  closeSync(logFd);
  // BENCH_SERVER_CPUS=1: the server (all its threads) on those CPUs; run the harness itself under
  // `taskset -c 0` to keep the load generator and the upstream off them.
  if (process.env.BENCH_SERVER_CPUS) spawnSync('taskset', ['-a', '-p', '-c', process.env.BENCH_SERVER_CPUS, String(child.pid)], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  let healthyMs;
  try {
    healthyMs = await waitHealthy(`${url}/api/v1/health`, { since: started, child });
  } catch (err) {
    child.kill('SIGKILL');
    const tail = existsSync(logPath) ? readFileSync(logPath, 'utf8').slice(-3000) : '';
    if (ownsDir) rmSync(dir, { recursive: true, force: true });
    throw new Error(`${err.message}\n--- ${label} log tail ---\n${tail}`);
  }

  let probeSeq = 0;
  const pending = new Map();
  child.on('message', (m) => {
    if (m && m.probe !== undefined && pending.has(m.probe)) {
      const { res, rej } = pending.get(m.probe);
      pending.delete(m.probe);
      if (m.error) rej(new Error(m.error)); else res(m.result);
    }
  });
  const probe = (op, args = {}) => new Promise((res, rej) => {
    const id = ++probeSeq;
    pending.set(id, { res, rej });
    child.send({ probe: id, op, ...args });
    setTimeout(() => { if (pending.delete(id)) rej(new Error(`probe ${op} timed out`)); }, 30_000).unref();
  });

  const exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
  return {
    url, port, pid: child.pid, dir, logPath, healthyMs, child,
    rss: () => rssBytes(child.pid),
    fds: () => openFds(child.pid),
    cpuMs: () => cpuMs(child.pid),
    preemptions: () => preemptions(child.pid),
    probe,
    log: () => (existsSync(logPath) ? readFileSync(logPath, 'utf8') : ''),
    async stop({ keepDir = false } = {}) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 8000);
        await exited;
        clearTimeout(t);
      }
      if (ownsDir && !keepDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
