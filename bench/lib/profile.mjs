// Summarises a V8 .cpuprofile: the functions with the most self time.
import { readFileSync } from 'node:fs';

export function topSelfTime(path, limit = 15) {
  const prof = JSON.parse(readFileSync(path, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const selfUs = new Map();
  // Sample 0's delta is the time before the profiler started: not ours.
  for (let i = 1; i < prof.samples.length; i++) {
    const id = prof.samples[i];
    selfUs.set(id, (selfUs.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0));
  }
  const groups = new Map();
  let total = 0;
  for (const [id, us] of selfUs) {
    const cf = byId.get(id).callFrame;
    const file = cf.url.replace(/^file:\/\//, '').replace(/.*\/node_modules\//, 'node_modules/').replace(/.*\/(dist|_build)\//, '');
    const key = `${cf.functionName || '(anonymous)'} ${file}${cf.url ? `:${cf.lineNumber + 1}` : ''}`;
    groups.set(key, (groups.get(key) ?? 0) + us);
    total += us;
  }
  const idle = [...groups].filter(([k]) => k.startsWith('(idle)')).reduce((a, [, v]) => a + v, 0);
  const busy = total - idle;
  const top = [...groups].filter(([k]) => !k.startsWith('(idle)')).sort((a, b) => b[1] - a[1]).slice(0, limit)
    .map(([fn, us]) => ({ fn, ms: Number((us / 1000).toFixed(1)), pctOfBusy: Number(((100 * us) / busy).toFixed(1)) }));
  // Self time by package, which is often the clearer story.
  const byPkg = new Map();
  for (const [k, us] of groups) {
    if (k.startsWith('(idle)')) continue;
    const m = /node_modules\/((@[^/]+\/)?[^/]+)/.exec(k);
    const pkg = m ? m[1] : k.includes('server/') ? 'parley' : k.includes('node:') || /\(program\)|\(garbage collector\)/.test(k) ? k.split(' ')[0] : 'node internals';
    byPkg.set(pkg, (byPkg.get(pkg) ?? 0) + us);
  }
  const packages = [...byPkg].sort((a, b) => b[1] - a[1]).slice(0, 12)
    .map(([pkg, us]) => ({ pkg, pctOfBusy: Number(((100 * us) / busy).toFixed(1)) }));
  // Inclusive time of the product's own functions (each sample counted once per frame).
  const parent = new Map();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const inclusive = new Map();
  for (const [id, us] of selfUs) {
    const seen = new Set();
    for (let cur = id; cur; cur = parent.get(cur)) {
      const cf = byId.get(cur).callFrame;
      if (!/\/(dist|_build)\/server\//.test(cf.url)) continue;
      const key = `${cf.functionName || '(anonymous)'} ${cf.url.replace(/.*\/(dist|_build)\//, '')}:${cf.lineNumber + 1}`;
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + us);
    }
  }
  const ownInclusive = [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, limit)
    .map(([fn, us]) => ({ fn, ms: Number((us / 1000).toFixed(1)), pctOfBusy: Number(((100 * us) / busy).toFixed(1)) }));
  return { totalMs: total / 1000, busyMs: busy / 1000, top, packages, ownInclusive };
}

/** Where a function's self time comes from: its callers `depth` frames up. */
export function callersOf(path, fnName, depth = 6, limit = 6) {
  const prof = JSON.parse(readFileSync(path, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map();
  prof.samples.forEach((s, i) => { if (i > 0) selfUs.set(s, (selfUs.get(s) ?? 0) + (prof.timeDeltas[i] ?? 0)); });
  const stacks = new Map();
  for (const [id, us] of selfUs) {
    if (byId.get(id).callFrame.functionName !== fnName) continue;
    const chain = [];
    for (let cur = parent.get(id), k = 0; cur && k < depth; cur = parent.get(cur), k++) {
      const f = byId.get(cur).callFrame;
      chain.push(`${f.functionName || '(anon)'} ${f.url.split('/').slice(-2).join('/')}:${f.lineNumber + 1}`);
    }
    const key = chain.join(' < ');
    stacks.set(key, (stacks.get(key) ?? 0) + us);
  }
  return [...stacks].sort((a, b) => b[1] - a[1]).slice(0, limit).map(([stack, us]) => ({ ms: Number((us / 1000).toFixed(1)), stack }));
}

// CLI: node bench/lib/profile.mjs FILE [--callers=fnName]
if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()) && process.argv[2]) {
  const file = process.argv[2];
  const callers = process.argv.find((a) => a.startsWith('--callers='))?.slice(10);
  console.log(JSON.stringify(callers !== undefined ? callersOf(file, callers) : topSelfTime(file, 25), null, 1));
}
