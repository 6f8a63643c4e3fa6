#!/usr/bin/env node
// Time to first token added by Parley: POST /api/v1/chat through the built server vs the same
// completion requested from the loopback upstream directly, sequentially, interleaved, one run.
//
//   npm run build:server && node bench/chat-ttft.mjs [--requests 200] [--warmup 20] [--postgres postgres://…/admin-db] [--continue] [--dist DIR] [--syscalls]
//
// With --postgres, a scratch database is created on that server for the run and dropped after.
//
// The upstream is server/src/testing/fake-openai-server.ts (transpiled on the fly; Node built-ins
// only), answering at once. "First token" = the first SSE event carrying content: a chunk with a
// non-empty delta.content directly, a {"type":"token"} event through Parley. Each Parley request
// starts a new conversation (JWT check, ownership, conversation + 2 message rows, upstream call).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, fallback) => { const i = args.indexOf(`--${name}`); return i === -1 ? fallback : args[i + 1]; };
const REQUESTS = Number(opt('requests', '200'));
const WARMUP = Number(opt('warmup', '20'));
const PG_ADMIN = opt('postgres', undefined);
/** --cpu-prof DIR: writes the server's V8 CPU profile there (open it in Chrome DevTools). */
const CPU_PROF = opt('cpu-prof', undefined);
/**
 * --syscalls: counts the server's system calls (all its threads, strace -f -c) over the measured
 * requests and prints them per request: a count that does not depend on how busy the machine is,
 * where times and CPU do (strace slows every call, so the times of such a run mean nothing).
 */
const SYSCALLS = args.includes('--syscalls');
/** --dist DIR: the build to run (its server/main.js), for an A/B against an older build kept aside. */
const DIST = opt('dist', join(root, 'dist'));

async function loadFakeServer(dir) {
  const source = readFileSync(join(root, 'server/src/testing/fake-openai-server.ts'), 'utf8');
  const out = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } });
  const file = join(dir, 'fake-openai-server.mjs');
  writeFileSync(file, out.outputText);
  return (await import(pathToFileURL(file).href)).FakeOpenAiServer;
}

function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

const agent = new Agent({ keepAlive: true, maxSockets: 4 });

/** POSTs JSON; resolves with ms until the first event `isToken` accepts, then reads the rest. */
function timeToFirstToken(url, body, headers, isToken, onStart) {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const started = process.hrtime.bigint();
    let first;
    const req = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...headers } }, (res) => {
      if (res.statusCode !== 200) { reject(new Error(`${url} answered ${res.statusCode}`)); res.resume(); return; }
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        if (first !== undefined) return;
        buffer += chunk;
        let at;
        while ((at = buffer.indexOf('\n\n')) !== -1) {
          const frame = buffer.slice(0, at);
          buffer = buffer.slice(at + 2);
          const data = frame.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
          const event = data && data !== '[DONE]' ? JSON.parse(data) : undefined;
          if (event?.type === 'start') onStart?.(event);
          if (event && isToken(event)) { first = Number(process.hrtime.bigint() - started) / 1e6; break; }
        }
      });
      res.on('end', () => (first === undefined ? reject(new Error('no token')) : resolve(first)));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

async function json(url, method, body, headers = {}) {
  const res = await fetch(url, { method, headers: { 'content-type': 'application/json', ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${await res.text()}`);
  return res.json();
}

/** --continue: the measured Parley requests each add a turn to a conversation started in the warm-up (round robin). */
const CONTINUE = args.includes('--continue');

/** strace -f -c attached to `pid` until stop(), which resolves with [syscall, calls] by calls, most first. */
async function traceSyscalls(pid, out) {
  const strace = spawn('strace', ['-f', '-c', '-q', '-o', out, '-p', String(pid)], { stdio: 'ignore' });
  await new Promise((resolve, reject) => { strace.once('spawn', resolve); strace.once('error', reject); });
  // Attached to every thread before the first measured request (strace prints nothing to say so).
  await new Promise((r) => setTimeout(r, 1000));
  return {
    stop: async () => {
      strace.kill('SIGINT');
      await new Promise((r) => strace.once('exit', r));
      const rows = readFileSync(out, 'utf8').split('\n').map((line) => line.trim().split(/\s+/))
        .filter((f) => f.length >= 5 && /^\d/.test(f[0]) && f.at(-1) !== 'total')
        .map((f) => [f.at(-1), Number(f[3])]);
      return rows.sort((a, b) => b[1] - a[1]);
    },
  };
}

/** CPU time (user + system, ms) the server process has used so far (Linux /proc). */
function cpuMs(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10; // clock ticks of 10 ms (USER_HZ 100)
  } catch {
    return NaN;
  }
}

function stats(samples) {
  const s = [...samples].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)];
  return { n: s.length, median: q(0.5), p90: q(0.9), p99: q(0.99), mean: s.reduce((a, b) => a + b, 0) / s.length, min: s[0], max: s.at(-1) };
}

async function scratchPostgres(adminUrl) {
  const { default: pg } = await import('pg');
  const name = `parley_ttft_${process.pid}_${Date.now()}`;
  const admin = async (sql) => { const c = new pg.Client({ connectionString: adminUrl }); await c.connect(); try { await c.query(sql); } finally { await c.end(); } };
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

const dir = mkdtempSync(join(tmpdir(), 'parley-ttft-'));
const pgScratch = PG_ADMIN ? await scratchPostgres(PG_ADMIN) : undefined;
const DATABASE = pgScratch?.url;
const FakeOpenAiServer = await loadFakeServer(dir);
const fake = new FakeOpenAiServer();
const upstream = await fake.start();
fake.defaultReply = { tokens: ['Hello', ' there', ', ', 'friend', '.'] };
const port = await freePort();
const server = spawn(process.execPath, [...(process.env.TTFT_PRELOAD ? ["-r", process.env.TTFT_PRELOAD] : []), ...(CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF}`] : []), join(DIST, 'server/main.js')], {
  cwd: root,
  stdio: ['ignore', 'inherit', 'inherit'],
  env: {
    PATH: process.env.PATH, NODE_ENV: 'production', PORT: String(port), HOST: '127.0.0.1', DATA_DIR: dir, LOG_LEVEL: 'warn',
    DATABASE_URL: DATABASE ?? `sqlite:${join(dir, 'bench.sqlite')}`, SESSION_SECRET: 'bench-secret-that-is-long-enough-0123456789',
    LLM_PROVIDER: 'openai', OPENAI_BASE_URL: upstream, OPENAI_API_KEY: 'sk-bench', OPENAI_MODEL: 'fake-model',
    RATE_LIMIT_CHAT_PER_MINUTE: '1000000', RATE_LIMIT_CHAT_PER_HOUR: '1000000', RATE_LIMIT_REQUESTS_PER_MINUTE: '1000000',
    SWAGGER_ENABLED: 'false', CLIENT_DIR: join(dir, 'no-client'),
    // The upstream on the main thread for an A/B (UPSTREAM_WORKER=false node bench/chat-ttft.mjs).
    ...(process.env.UPSTREAM_WORKER ? { UPSTREAM_WORKER: process.env.UPSTREAM_WORKER } : {}),
  },
});
const base = `http://127.0.0.1:${port}`;
try {
  for (let i = 0; ; i++) {
    try { await json(`${base}/api/v1/health`, 'GET'); break; } catch (err) {
      if (i > 200) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const { token } = await json(`${base}/api/v1/sessions`, 'POST', {});
  const auth = { authorization: `Bearer ${token}` };
  // The same prompt Parley sends for a first message: system prompt + the user message.
  const system = 'You are Parley, a helpful assistant. Answer clearly and use Markdown where it helps.';
  const direct = () => timeToFirstToken(`${upstream}/chat/completions`, {
    model: 'fake-model', stream: true, stream_options: { include_usage: true }, max_tokens: 2048,
    messages: [{ role: 'system', content: system }, { role: 'user', content: 'How fast is the first token?' }],
  }, { authorization: 'Bearer sk-bench' }, (c) => Boolean(c.choices?.[0]?.delta?.content));
  const started = [];
  let turn = 0;
  const parley = (isWarmUp = false) => {
    const body = { message: 'How fast is the first token?' };
    if (CONTINUE && !isWarmUp) body.conversation_id = started[turn++ % started.length];
    return timeToFirstToken(`${base}/api/v1/chat`, body, auth, (e) => e.type === 'token', (e) => { if (isWarmUp) started.push(e.conversation_id); });
  };

  for (let i = 0; i < WARMUP; i++) { await direct(); await parley(true); }
  const d = [];
  const p = [];
  const tracer = SYSCALLS ? await traceSyscalls(server.pid, join(dir, 'strace.txt')) : undefined;
  const cpuBefore = cpuMs(server.pid);
  for (let i = 0; i < REQUESTS; i++) {
    // Interleaved (and alternating which goes first) so drift and GC affect both alike.
    if (i % 2 === 0) { d.push(await direct()); p.push(await parley()); } else { p.push(await parley()); d.push(await direct()); }
  }
  const serverCpu = (cpuMs(server.pid) - cpuBefore) / REQUESTS;
  const syscalls = await tracer?.stop();
  const sd = stats(d);
  const sp = stats(p);
  const f = (x) => x.toFixed(2).padStart(8);
  console.log(`\nTime to first token, ${REQUESTS} sequential requests each (after ${WARMUP} warm-up), database ${DATABASE ? 'postgres' : 'sqlite'}${CONTINUE ? `, each a turn added to one of ${started.length} conversations` : ', each a new conversation'}, ms`);
  console.log(`                      median      p90      p99     mean      min      max`);
  console.log(`direct upstream    ${f(sd.median)} ${f(sd.p90)} ${f(sd.p99)} ${f(sd.mean)} ${f(sd.min)} ${f(sd.max)}`);
  console.log(`through Parley     ${f(sp.median)} ${f(sp.p90)} ${f(sp.p99)} ${f(sp.mean)} ${f(sp.min)} ${f(sp.max)}`);
  console.log(`added by Parley    ${f(sp.median - sd.median)} ${f(sp.p90 - sd.p90)} ${f(sp.p99 - sd.p99)} ${f(sp.mean - sd.mean)}`);
  // Wall times depend on what else runs on the machine; the CPU the server spends per chat does not.
  console.log(`upstream TCP connections opened: ${fake.connections} for ${2 * (REQUESTS + WARMUP)} requests`);
  console.log(`server CPU per chat request (whole request incl. the 5-token answer): ${serverCpu.toFixed(2)} ms; load average ${(await import('node:os')).loadavg()[0].toFixed(2)}`);
  if (syscalls) {
    const total = syscalls.reduce((sum, [, calls]) => sum + calls, 0);
    console.log(`\nSystem calls per chat request (server, all threads; under strace, so the times above are not Parley's): ${(total / REQUESTS).toFixed(1)}`);
    for (const [name, calls] of syscalls.slice(0, 12)) console.log(`  ${name.padEnd(16)} ${(calls / REQUESTS).toFixed(2).padStart(7)}`);
  }
} finally {
  server.kill('SIGTERM');
  await new Promise((r) => server.once('exit', r));
  agent.destroy();
  await fake.stop();
  await pgScratch?.drop();
  rmSync(dir, { recursive: true, force: true });
}
