// Summarises a V8 .cpuprofile: the functions with the most self time.
import { readFileSync } from 'node:fs';

export function topSelfTime(path, limit = 15) {
  const prof = JSON.parse(readFileSync(path, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const selfUs = new Map();
  for (let i = 0; i < prof.samples.length; i++) {
    const id = prof.samples[i];
    selfUs.set(id, (selfUs.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0));
  }
  const groups = new Map();
  let total = 0;
  for (const [id, us] of selfUs) {
    const cf = byId.get(id).callFrame;
    const file = cf.url.replace(/^file:\/\//, '').replace(/.*\/node_modules\//, 'node_modules/').replace(/.*\/(dist|\.build)\//, '');
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
  return { totalMs: total / 1000, busyMs: busy / 1000, top, packages };
}
