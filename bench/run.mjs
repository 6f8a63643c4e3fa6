#!/usr/bin/env node
// Parley benchmark suite: `npm run bench [-- --quick] [--only=1,4] [--out=bench/results/x.json]`.
// Every figure is a ratio or a difference against a baseline measured in the same run, because
// absolute times on shared machines mean little. See docs/performance.md.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { buildClient, buildServer } from './lib/build.mjs';
import { ROOT } from './lib/server.mjs';
import { renderTable } from './lib/table.mjs';

const SCENARIOS = [
  ['8', './scenarios/start-size.mjs'],
  ['4', './scenarios/long-chats.mjs'],
  ['1,2', './scenarios/relay.mjs'],
  ['3', './scenarios/disconnect-soak.mjs'],
  ['6', './scenarios/write-concurrency.mjs'],
  ['6', './scenarios/sqlite-checkpoint.mjs'],
  ['5', './scenarios/upload-under-load.mjs'],
  ['7', './scenarios/browser.mjs'],
];

function parseArgs(argv) {
  const flags = {};
  for (const a of argv) {
    const m = /^--([^=]+)(?:=(.*))?$/.exec(a);
    if (!m) throw new Error(`unknown argument ${a}`);
    flags[m[1]] = m[2] ?? true;
  }
  return flags;
}

const flags = parseArgs(process.argv.slice(2));
if (flags.help) {
  console.log(`usage: npm run bench -- [--quick] [--only=1,2,4] [--out=FILE] [--dist=DIR] [--profile]
  sizes (flag or BENCH_<NAME> env, e.g. --concurrency=1,50 or BENCH_SOAK_STREAMS=500):
  --concurrency --tokens --tokens-per-s --relay-samples --memory-stream-ms --soak-streams --soak-tokens --soak-retention-ms --long-messages
  --long-conversations --writers --writer-sends --sqlite-commits --upload-streams --pdf-pages --browser-tokens --browser-code-tokens --browser-code-lines
  --browser-messages --pg-url (PostgreSQL for scenarios 1 and 4; "none" skips it) --redis-url (Redis for scenario 1's
  production setup; "none" skips it) --production (1: scenario 1 also measures Parley on PostgreSQL + Redis; on in full mode) --chromium
  --build            compile the server into bench/_build first and measure that (--build-client: the SPA too)
  --dist=DIR         measure DIR/server/main.js and DIR/client/browser (default: dist)
  --profile          write a .cpuprofile of the measured window of each load scenario and summarise it`);
  process.exit(0);
}
const quick = Boolean(flags.quick);
const started = new Date();
const loadAtStart = loadavg();
const ts = started.toISOString().replace(/[:.]/g, '-');

/** A size: --name=, else BENCH_NAME, else the quick or full default. */
function opt(name, full, quickValue = full) {
  const env = process.env[`BENCH_${name.toUpperCase().replace(/-/g, '_')}`];
  const raw = flags[name] ?? env;
  const def = quick ? quickValue : full;
  if (raw === undefined) return def;
  if (Array.isArray(def)) return String(raw).split(',').map(Number);
  if (typeof def === 'number') return Number(raw);
  return raw;
}

let distDefault = join(ROOT, 'dist');
if (flags.build || flags['build-client']) {
  distDefault = join(ROOT, 'bench', '_build');
  if (flags.build) buildServer(ROOT, distDefault);
  if (flags['build-client']) buildClient(ROOT, distDefault);
}

const only = flags.only ? new Set(String(flags.only).split(',').map((s) => s.trim())) : null;
const ctx = {
  quick, opt, flags, root: ROOT,
  dist: resolve(flags.dist ?? process.env.BENCH_DIST ?? distDefault),
  profile: Boolean(flags.profile),
  resultsDir: join(ROOT, 'bench', 'results'),
  ts,
  log: (...a) => console.error(`[${((performance.now()) / 1000).toFixed(1)}s]`, ...a),
  details: {},
};
mkdirSync(ctx.resultsDir, { recursive: true });

const rows = [];
for (const [ids, file] of SCENARIOS) {
  const idList = ids.split(',');
  if (only && !idList.some((id) => only.has(id))) continue;
  const mod = await import(file);
  const t = performance.now();
  ctx.log(`scenario ${ids}: ${mod.title}`);
  try {
    const got = await mod.run(ctx);
    rows.push(...got);
  } catch (err) {
    ctx.log(`scenario ${ids} failed:`, err?.stack ?? err);
    rows.push({ id: idList[0], name: mod.title, error: String(err?.message ?? err).split('\n')[0].slice(0, 160) });
  }
  ctx.details[`scenario_${ids}_seconds`] = Number(((performance.now() - t) / 1000).toFixed(1));
  ctx.log(`scenario ${ids} took ${ctx.details[`scenario_${ids}_seconds`]} s`);
}

const durationS = (performance.now() / 1000);
const table = renderTable(rows);
console.log(`\nParley benchmarks (${quick ? 'quick' : 'full'} mode, ${durationS.toFixed(0)} s, ${cpus().length} CPUs, node ${process.version}, load average ${loadAtStart[0].toFixed(1)} at start, ${loadavg()[0].toFixed(1)} at end)\n`);
console.log(table);
const out = resolve(flags.out ?? join(ctx.resultsDir, `${ts}.json`));
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify({
  startedAt: started.toISOString(), mode: quick ? 'quick' : 'full', durationS: Number(durationS.toFixed(1)),
  machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, memGb: Number((totalmem() / 2 ** 30).toFixed(1)), node: process.version, loadavgAtStart: loadAtStart, loadavgAtEnd: loadavg() },
  argv: process.argv.slice(2), rows, details: ctx.details, table,
}, null, 2)}\n`);
console.log(`\nresults: ${out}`);
process.exit(rows.some((r) => r.error) ? 1 : 0);
