// 6b. SQLite commits and WAL checkpoints. better-sqlite3 runs on the event loop, so a commit that
// stalls, stalls every stream. SQLite checkpoints by itself inside the commit that takes the WAL
// past 1000 pages (page copy + fsync); Parley's SqliteCheckpointer (server/src/database) turns that
// off and checkpoints in a worker thread. The same steady write load (one commit pair every 2 ms,
// ~the chat's writes at 150 streams) runs against both in this run; each commit pair is timed.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { mean, p99, max } from '../lib/stats.mjs';
import { fmt } from '../lib/table.mjs';

export const title = 'SQLite commit stalls: SQLite\'s own checkpoint vs the checkpoint worker';

const require = createRequire(import.meta.url);

async function commitLoad({ commits, checkpointer }) {
  const dir = mkdtempSync(join(tmpdir(), 'parley-bench-ckpt-'));
  const path = join(dir, 'db.sqlite');
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec(`CREATE TABLE message (id TEXT PRIMARY KEY, conversation_id TEXT NOT NULL, content TEXT NOT NULL,
    status TEXT NOT NULL, created_at TEXT NOT NULL);
    CREATE INDEX message_conv ON message (conversation_id, created_at);
    CREATE INDEX message_status ON message (status)`);
  const worker = checkpointer ? new checkpointer.SqliteCheckpointer(db, path) : undefined;
  worker?.start();
  const insert = db.prepare('INSERT INTO message VALUES (?, ?, ?, ?, ?)');
  const update = db.prepare('UPDATE message SET content = ?, status = ? WHERE id = ?');
  const times = [];
  try {
    for (let i = 0; i < commits; i++) {
      const t = performance.now();
      insert.run(`m${i}`, `c${i % 300}`, 'x'.repeat(200), 'streaming', new Date().toISOString());
      update.run('y'.repeat(600), 'complete', `m${Math.max(0, i - 50)}`);
      times.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, 2));
    }
    return { times, walMb: statSync(`${path}-wal`).size / 2 ** 20, status: worker?.status() };
  } finally {
    await worker?.stop();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(ctx) {
  const commits = ctx.opt('sqlite-commits', 6000, 1000);
  const checkpointer = require(join(ctx.dist, 'server', 'database', 'sqlite-checkpointer.js'));
  const results = {};
  // Twice each, alternating, so drift on the machine hits both alike.
  for (const round of [0, 1]) {
    for (const mode of round === 0 ? ['sqlite', 'worker'] : ['worker', 'sqlite']) {
      const got = await commitLoad({ commits: commits / 2, checkpointer: mode === 'worker' ? checkpointer : undefined });
      const r = (results[mode] ??= { times: [], walMb: 0 });
      r.times.push(...got.times);
      r.walMb = Math.max(r.walMb, got.walMb);
      if (got.status) r.mainCheckpoints = (r.mainCheckpoints ?? 0) + got.status.mainCheckpoints;
    }
  }
  const figure = (r) => ({
    mean: mean(r.times), p99: p99(r.times), max: max(r.times), over2: r.times.filter((t) => t > 2).length, walMb: r.walMb,
  });
  const s = figure(results.sqlite);
  const w = figure(results.worker);
  ctx.details.sqliteCheckpoint = { commits, sqlite: s, worker: { ...w, mainCheckpoints: results.worker.mainCheckpoints } };
  ctx.log('sqlite checkpoint', JSON.stringify(ctx.details.sqliteCheckpoint));
  return [
    {
      id: '6', name: `SQLite commit pairs over 2 ms (of ${commits}): checkpoint worker vs SQLite's own checkpoint`,
      value: `${w.over2} vs ${s.over2}`, raw: [w.over2, s.over2],
      baseline: `longest ${fmt(w.max)} vs ${fmt(s.max)} ms; p99 ${fmt(w.p99)} vs ${fmt(s.p99)} ms; WAL at most ${fmt(w.walMb, 'MB')} vs ${fmt(s.walMb, 'MB')}`,
      target: '–', pass: null,
    },
    {
      id: '6', name: 'SQLite commit pair, mean time on the event loop (checkpoint worker / SQLite\'s own)', value: w.mean / s.mean, unit: '×',
      baseline: `${fmt(w.mean)} vs ${fmt(s.mean)} ms`, target: '–', pass: null,
    },
  ];
}
