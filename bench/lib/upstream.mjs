// A loopback OpenAI-compatible server that streams a fixed reply at a fixed pace.
// Run as a child process (`node bench/lib/upstream.mjs`, see startUpstream) so its event loop and
// CPU are apart from both the server under test and the measuring client.
//
// Defaults come from the environment (UPSTREAM_TOKENS, UPSTREAM_INTERVAL_MS, UPSTREAM_FIRST_MS,
// UPSTREAM_REPLY=plain|markdown|code); one request can override them with a directive anywhere in its
// last user message: "[bench tokens=20 interval=10 first=0 reply=markdown]".
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { forkService } from './fork-service.mjs';
import { codeTokens, markdownTokens, plainTokens } from './reply-text.mjs';

const SELF = fileURLToPath(import.meta.url);

function directive(body) {
  const msgs = Array.isArray(body?.messages) ? body.messages : [];
  const last = [...msgs].reverse().find((m) => m.role === 'user');
  const text = typeof last?.content === 'string' ? last.content
    : Array.isArray(last?.content) ? last.content.map((p) => p.text ?? '').join(' ') : '';
  const m = /\[bench ([^\]]*)\]/.exec(text);
  const out = {};
  if (m) for (const kv of m[1].trim().split(/\s+/)) { const [k, v] = kv.split('='); out[k] = v; }
  return out;
}

const cache = new Map();
function tokensFor(kind, n) {
  const key = `${kind}:${n}`;
  if (!cache.has(key)) cache.set(key, kind === 'markdown' ? markdownTokens(n) : kind === 'code' ? codeTokens(n) : plainTokens(n));
  return cache.get(key);
}

function runServer() {
  const defaults = {
    tokens: Number(process.env.UPSTREAM_TOKENS ?? 100),
    interval: Number(process.env.UPSTREAM_INTERVAL_MS ?? 20),
    first: Number(process.env.UPSTREAM_FIRST_MS ?? process.env.UPSTREAM_INTERVAL_MS ?? 20),
    reply: process.env.UPSTREAM_REPLY ?? 'plain',
  };
  const stats = { started: 0, completed: 0, aborted: 0, open: 0, nonStream: 0 };
  // How late the upstream's own timers wrote each stream's first and last token (ms after due).
  let lateness = { first: [], last: [] };
  let seq = 0;

  const server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/bench/lateness') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(lateness));
      lateness = { first: [], last: [] };
      return;
    }
    if (req.method === 'GET' && req.url === '/bench/stats') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(stats));
      return;
    }
    if (req.method === 'GET' && req.url?.endsWith('/models')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ object: 'list', data: [{ id: 'bench-model', object: 'model', owned_by: 'bench' }] }));
      return;
    }
    if (req.method !== 'POST' || !req.url?.endsWith('/chat/completions')) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'not found', type: 'invalid_request_error' } }));
      return;
    }
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let body;
      try { body = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch { body = {}; }
      const d = directive(body);
      const n = Number(d.tokens ?? defaults.tokens);
      const interval = Number(d.interval ?? defaults.interval);
      const first = Number(d.first ?? d.interval ?? defaults.first);
      const tokens = tokensFor(d.reply ?? defaults.reply, n);
      const id = `chatcmpl-bench-${++seq}`;
      const created = Math.floor(Date.now() / 1000);
      const model = body.model ?? 'bench-model';
      const usage = { prompt_tokens: 10, completion_tokens: tokens.length, total_tokens: 10 + tokens.length };
      if (!body.stream) {
        stats.nonStream++;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({
          id, object: 'chat.completion', created, model,
          choices: [{ index: 0, message: { role: 'assistant', content: tokens.join('') }, finish_reason: 'stop' }], usage,
        }));
        return;
      }
      stats.started++;
      stats.open++;
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
      const chunk = (delta, finish = null) => `data: ${JSON.stringify({
        id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta, finish_reason: finish }],
      })}\n\n`;
      res.write(chunk({ role: 'assistant', content: '' }));
      const t0 = performance.now();
      let i = 0;
      let timer = null;
      let closed = false;
      const finish = () => {
        res.write(chunk({}, 'stop'));
        if (body.stream_options?.include_usage) {
          res.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [], usage })}\n\n`);
        }
        res.end('data: [DONE]\n\n');
        closed = true;
        stats.open--;
        stats.completed++;
      };
      // Token i is due at t0 + first + i*interval: an absolute schedule, so jitter never accumulates.
      const tick = () => {
        if (closed) return;
        const now = performance.now();
        while (i < tokens.length && t0 + first + i * interval <= now + 0.5) {
          if (i === 0) lateness.first.push(now - (t0 + first));
          else if (i === tokens.length - 1) lateness.last.push(now - (t0 + first + i * interval));
          res.write(chunk({ content: tokens[i++] }));
        }
        if (i >= tokens.length) { finish(); return; }
        timer = setTimeout(tick, Math.max(0, t0 + first + i * interval - performance.now()));
      };
      res.on('close', () => {
        if (!closed) { closed = true; stats.open--; stats.aborted++; }
        clearTimeout(timer);
      });
      timer = setTimeout(tick, first);
    });
  });
  server.keepAliveTimeout = 120_000;
  server.listen(Number(process.env.UPSTREAM_PORT ?? 0), '127.0.0.1', () => {
    const { port } = server.address();
    if (process.send) process.send({ ready: true, port });
    else console.log(`upstream listening on http://127.0.0.1:${port}/v1`);
  });
  process.on('disconnect', () => process.exit(0));
}

/** Forks the upstream in its own process; resolves with its base URL (".../v1"). */
export async function startUpstream(env = {}) {
  const service = await forkService(SELF, env, 'upstream');
  const origin = `http://127.0.0.1:${service.port}`;
  return {
    origin, baseUrl: `${origin}/v1`, pid: service.pid,
    async stats() { return (await fetch(`${origin}/bench/stats`)).json(); },
    /** The first and last tokens' lateness since the previous call (and resets it). */
    async lateness() { return (await fetch(`${origin}/bench/lateness`)).json(); },
    stop: service.stop,
  };
}

if (process.argv[1] === SELF && process.argv.includes('--serve')) runServer();
else if (process.argv[1] === SELF) runServer();
