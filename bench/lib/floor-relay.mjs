// The floor: the least any Node relay does for one chat stream, measured beside Parley in the same
// run (scenario 1) to tell what the machine allows from what Parley adds. POST /api/v1/chat with
// {"message"} → one request to the upstream over a keep-alive agent → each upstream chunk parsed
// (JSON) and re-sent as Parley's token event. No auth, no validation, no storage, no replay, no
// framework: nothing a real product could leave out, so Parley can only come near it, not under.
// Runs as its own process (startFloorRelay), like the upstream.
import http from 'node:http';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { forkService } from './fork-service.mjs';
import { cpuMs, preemptions } from './proc.mjs';

const SELF = fileURLToPath(import.meta.url);

/**
 * FLOOR_DB=<file>: the floor also stores what Parley stores, the least way better-sqlite3 allows, on
 * its one thread: the question and the reply's row in one transaction before the upstream is called,
 * every running reply's text every 250 ms in one transaction (one timer for all), and the reply's
 * final text and status once its last event is written. It tells what persisting costs a relay
 * on this machine, apart from everything else Parley does.
 */
function openStore(file) {
  if (!file) return undefined;
  const db = new (createRequire(import.meta.url)('better-sqlite3'))(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec(`CREATE TABLE IF NOT EXISTS messages (id TEXT PRIMARY KEY, conversation_id TEXT NOT NULL, role TEXT NOT NULL,
    content TEXT NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)`);
  const insert = db.prepare('INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?)');
  const update = db.prepare('UPDATE messages SET content = ?, status = ?, updated_at = ? WHERE id = ?');
  const turn = db.transaction((conversationId, userId, replyId, text, now) => {
    insert.run(userId, conversationId, 'user', text, 'complete', now, now);
    insert.run(replyId, conversationId, 'assistant', '', 'streaming', now, now);
  });
  const running = new Map();
  const flush = db.transaction(() => {
    const now = new Date().toISOString();
    for (const [id, r] of running) if (r.content.length !== r.saved) { r.saved = r.content.length; update.run(r.content, 'streaming', now, id); }
  });
  setInterval(() => { if (running.size > 0) flush(); }, 250).unref();
  return {
    start(conversationId, userId, replyId, text) {
      turn(conversationId, userId, replyId, text, new Date().toISOString());
      const r = { content: '', saved: 0 };
      running.set(replyId, r);
      return r;
    },
    end(replyId, status) {
      const r = running.get(replyId);
      if (!r) return;
      running.delete(replyId);
      update.run(r.content, status, new Date().toISOString(), replyId);
    },
  };
}

function runServer() {
  const upstream = new URL(process.env.FLOOR_UPSTREAM);
  const store = openStore(process.env.FLOOR_DB);
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  let seq = 0;
  const event = (id, e) => `id: ${id}\ndata: ${JSON.stringify(e)}\n\n`;
  const server = http.createServer((req, res) => {
    if (req.method !== 'POST') { res.writeHead(404).end(); return; }
    const parts = [];
    req.on('data', (c) => parts.push(c));
    req.on('end', () => {
      const { message } = JSON.parse(Buffer.concat(parts).toString('utf8'));
      const payload = JSON.stringify({ model: 'bench-model', stream: true, messages: [{ role: 'user', content: message }] });
      const messageId = `m${seq++}`;
      const reply = store?.start(`c${messageId}`, `u${messageId}`, messageId, message);
      let id = 0;
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
      res.socket?.setNoDelay(true);
      res.write(event(id++, { type: 'start', message_id: messageId, finished: false }));
      const up = http.request({
        host: upstream.hostname, port: upstream.port, path: `${upstream.pathname}/chat/completions`, method: 'POST', agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      }, (ures) => {
        ures.setEncoding('utf8');
        let buf = '';
        ures.on('data', (chunk) => {
          buf += chunk;
          let out = '';
          let at;
          while ((at = buf.indexOf('\n\n')) !== -1) {
            const block = buf.slice(0, at);
            buf = buf.slice(at + 2);
            if (!block.startsWith('data: ')) continue;
            const data = block.slice(6);
            if (data === '[DONE]') {
              res.end(out + event(id++, { type: 'done', finished: true, message_id: messageId, status: 'complete' }));
              store?.end(messageId, 'complete');
              return;
            }
            const token = JSON.parse(data).choices?.[0]?.delta?.content;
            if (token) {
              out += event(id++, { type: 'token', token, finished: false, timestamp: new Date().toISOString() });
              if (reply) reply.content += token;
            }
          }
          if (out) res.write(out);
        });
      });
      res.on('close', () => { up.destroy(); store?.end(messageId, 'disconnected'); });
      up.end(payload);
    });
  });
  server.keepAliveTimeout = 120_000;
  server.listen(0, '127.0.0.1', () => process.send?.({ ready: true, port: server.address().port }));
  process.on('disconnect', () => process.exit(0));
}

/** Forks the floor relay in front of `upstream`; resolves with { url, cpuMs(), preemptions(), stop() }. */
export async function startFloorRelay(upstream, { db } = {}) {
  const service = await forkService(SELF, { FLOOR_UPSTREAM: upstream.baseUrl, ...(db ? { FLOOR_DB: db } : {}) }, 'floor relay');
  return { url: `http://127.0.0.1:${service.port}`, cpuMs: () => cpuMs(service.pid), preemptions: () => preemptions(service.pid), stop: service.stop };
}

if (process.argv[1] === SELF) runServer();
