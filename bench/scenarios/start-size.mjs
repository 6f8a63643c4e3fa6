// 8. Start and size: cold start to a healthy response, against a bare Node HTTP server started and
// polled the same way in the same run; the initial JS bundle, gzipped, against the Angular budget.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { freePort, startServer, waitHealthy } from '../lib/server.mjs';
import { median } from '../lib/stats.mjs';
import { fmt } from '../lib/table.mjs';

export const title = 'Start and size';

async function bareNodeStart() {
  const port = await freePort();
  const t0 = performance.now();
  const child = spawn(process.execPath, ['-e',
    `require('http').createServer((q, s) => s.end('{"status":"ok"}')).listen(${port}, '127.0.0.1')`], { stdio: 'ignore' });
  try {
    return await waitHealthy(`http://127.0.0.1:${port}/`, { since: t0, child });
  } finally {
    child.kill('SIGKILL');
  }
}

export function initialJs(browserDir) {
  const html = readFileSync(join(browserDir, 'index.html'), 'utf8');
  const files = new Set();
  for (const m of html.matchAll(/<script[^>]*\bsrc="([^"]+\.js)"/g)) files.add(m[1]);
  for (const m of html.matchAll(/<link[^>]*rel="modulepreload"[^>]*href="([^"]+\.js)"/g)) files.add(m[1]);
  for (const m of html.matchAll(/<link[^>]*href="([^"]+\.js)"[^>]*rel="modulepreload"/g)) files.add(m[1]);
  let raw = 0;
  let gz = 0;
  for (const f of files) {
    const buf = readFileSync(join(browserDir, f.replace(/^\//, '')));
    raw += buf.length;
    gz += gzipSync(buf, { level: 6 }).length;
  }
  return { files: [...files], raw, gz };
}

export async function run(ctx) {
  // One start of each kind in quick mode: a cold start and a restart take ~2.8 s each on a slow machine.
  const reps = ctx.opt('start-reps', 5, 1);
  const bare = [];
  const cold = [];
  const warm = [];
  for (let i = 0; i < reps; i++) {
    bare.push(await bareNodeStart());
    const dir = mkdtempSync(join(tmpdir(), 'parley-bench-start-'));
    try {
      // First start on an empty DATA_DIR: includes creating the SQLite file and migrating.
      let s = await startServer({ dist: ctx.dist, dataDir: dir, withProbe: false, label: `cold${i}` });
      cold.push(s.healthyMs);
      await s.stop();
      s = await startServer({ dist: ctx.dist, dataDir: dir, withProbe: false, label: `warm${i}` });
      warm.push(s.healthyMs);
      await s.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const b = median(bare);
  ctx.details.start = { bareNodeMs: bare, coldMs: cold, warmMs: warm };
  const rows = [
    { id: '8', name: 'Cold start to healthy (empty DATA_DIR, migrations)', value: median(cold) - b, unit: 'ms added',
      baseline: `bare Node HTTP server ${fmt(b, 'ms')}; Parley ${fmt(median(cold), 'ms')} (${fmt(median(cold) / b)}×)`, target: '–', pass: null },
    { id: '8', name: 'Restart to healthy (migrated DATA_DIR)', value: median(warm) - b, unit: 'ms added',
      baseline: `bare Node ${fmt(b, 'ms')}; Parley ${fmt(median(warm), 'ms')} (${fmt(median(warm) / b)}×)`, target: '–', pass: null },
  ];
  const browserDir = [join(ctx.dist, 'client', 'browser'), join(ctx.root, 'dist', 'client', 'browser')].find((d) => existsSync(join(d, 'index.html')));
  if (!browserDir) {
    rows.push({ id: '8', name: 'Initial JS bundle (gzip)', skipped: 'no client build (npm run build:client)' });
  } else {
    const js = initialJs(browserDir);
    ctx.details.bundle = js;
    const budgetKb = initialBudgetKb(ctx.root);
    rows.push({ id: '8', name: 'Initial JS bundle (gzip -6)', value: js.gz / 1024, unit: 'KB',
      baseline: `${fmt(js.raw / 1024, 'KB')} raw in ${js.files.length} files; Angular budget ${budgetKb} KB raw (the build fails above it)`,
      target: `raw ≤ ${budgetKb} KB`, pass: js.raw / 1024 <= budgetKb });
  }
  return rows;
}

/** The initial bundle's error budget in angular.json (kB), the size the production build refuses to pass. */
function initialBudgetKb(root) {
  const angular = JSON.parse(readFileSync(join(root, 'angular.json'), 'utf8'));
  for (const project of Object.values(angular.projects)) {
    const budgets = project.architect?.build?.configurations?.production?.budgets ?? [];
    const initial = budgets.find((b) => b.type === 'initial');
    if (initial?.maximumError) return Number.parseFloat(initial.maximumError);
  }
  throw new Error('angular.json has no initial bundle budget');
}
