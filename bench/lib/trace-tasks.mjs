// A Chromium trace's renderer main-thread tasks: all of them (`rendererTasks`, what bench scenario 7 measures), and
// as a command, the longest ones (scenario 7 writes the traces next to its results), each with
// what it spent its time on (script, style, layout, paint…) and, when the trace holds V8's samples
// (BENCH_TRACE_JS=1), the functions that ran longest in it (self time).
//
//   node bench/lib/trace-tasks.mjs TRACE.json [--top=3] [--functions=12]
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { cliArgs } from './cli.mjs';

const PHASES = ['FunctionCall', 'EvaluateScript', 'TimerFire', 'FireAnimationFrame', 'FireIdleCallback', 'EventDispatch',
  'ParseHTML', 'UpdateLayoutTree', 'Layout', 'PrePaint', 'Paint', 'Layerize', 'Commit'];

/**
 * The page's renderer main thread (`pid:tid`): the CrRendererMain with the most task time (a navigation can leave
 * another, nearly idle, in the trace).
 */
function rendererMainThread(events) {
  const mains = new Set(events.filter((e) => e.ph === 'M' && e.name === 'thread_name' && e.args?.name === 'CrRendererMain').map((e) => `${e.pid}:${e.tid}`));
  const busy = new Map();
  for (const e of events) {
    const key = `${e.pid}:${e.tid}`;
    if (e.ph === 'X' && e.name === 'RunTask' && e.dur && mains.has(key)) busy.set(key, (busy.get(key) ?? 0) + e.dur);
  }
  return [...busy].sort((a, b) => b[1] - a[1])[0]?.[0];
}

/**
 * Main-thread tasks of the renderer from a Chrome trace: [{ts, dur, cpu}] in ms. `dur` is wall
 * time (what a user waits, and what the Long Tasks API counts); `cpu` is the thread's own running
 * time inside it (the trace's `tdur`), which leaves out the time it waited for a core.
 */
export function rendererTasks(trace) {
  const events = trace.traceEvents ?? trace;
  const key = rendererMainThread(events);
  return events
    .filter((e) => e.ph === 'X' && e.name === 'RunTask' && e.dur && `${e.pid}:${e.tid}` === key)
    .map((e) => ({ ts: e.ts / 1000, dur: e.dur / 1000, cpu: (e.tdur ?? e.dur) / 1000 }))
    .sort((a, b) => a.ts - b.ts);
}

/** V8's samples on one thread: [{ ts, frame }] in trace time, the leaf frame of each sample. */
function samplesOf(events, key) {
  // The Profile event is on the sampled thread; its chunks come from the profiler's own thread (same process and id).
  const pid = key.split(':')[0];
  const profiles = new Map();
  for (const e of events) {
    if (e.name === 'Profile' && `${e.pid}:${e.tid}` === key) profiles.set(e.id, { t: e.args.data.startTime, nodes: new Map(), samples: [] });
    if (e.name !== 'ProfileChunk' || String(e.pid) !== pid) continue;
    const p = profiles.get(e.id);
    if (!p) continue;
    const cpu = e.args.data.cpuProfile ?? {};
    for (const n of cpu.nodes ?? []) p.nodes.set(n.id, n.callFrame);
    const deltas = e.args.data.timeDeltas ?? [];
    (cpu.samples ?? []).forEach((id, i) => {
      p.t += deltas[i] ?? 0;
      p.samples.push({ ts: p.t, id });
    });
  }
  const out = [];
  for (const p of profiles.values()) {
    for (const s of p.samples) {
      const f = p.nodes.get(s.id);
      if (f) out.push({ ts: s.ts, frame: f });
    }
  }
  return out.sort((a, b) => a.ts - b.ts);
}

export function longestTasks(path, { top = 3, functions = 12 } = {}) {
  const raw = JSON.parse(readFileSync(path, 'utf8'));
  const events = raw.traceEvents ?? raw;
  const key = rendererMainThread(events);
  if (!key) return [];
  const own = events.filter((e) => `${e.pid}:${e.tid}` === key && e.ph === 'X');
  const tasks = own.filter((e) => e.name === 'RunTask' && e.dur).sort((a, b) => b.dur - a.dur).slice(0, top);
  const samples = samplesOf(events, key);
  const first = Math.min(...own.map((e) => e.ts));
  return tasks.map((t) => {
    const phases = {};
    for (const e of own) {
      if (e === t || e.ts < t.ts || e.ts + e.dur > t.ts + t.dur || !PHASES.includes(e.name)) continue;
      phases[e.name] = (phases[e.name] ?? 0) + e.dur / 1000;
    }
    // Self time per function: each sample stands for the time to the next one.
    const self = new Map();
    const inTask = samples.filter((s) => s.ts >= t.ts && s.ts <= t.ts + t.dur);
    inTask.forEach((s, i) => {
      const next = inTask[i + 1]?.ts ?? t.ts + t.dur;
      const f = s.frame;
      const name = `${f.functionName || '(anonymous)'} ${(f.url ?? '').split('/').pop()}${f.url ? `:${f.lineNumber + 1}` : ''}`;
      self.set(name, (self.get(name) ?? 0) + (next - s.ts) / 1000);
    });
    return {
      atMs: Number(((t.ts - first) / 1000).toFixed(1)),
      ms: Number((t.dur / 1000).toFixed(1)),
      cpuMs: Number(((t.tdur ?? 0) / 1000).toFixed(1)),
      phases: Object.fromEntries(Object.entries(phases).sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, Number(v.toFixed(1))])),
      functions: [...self].filter(([k]) => !k.startsWith('(idle)')).sort((a, b) => b[1] - a[1]).slice(0, functions)
        .map(([fn, ms]) => ({ fn, ms: Number(ms.toFixed(1)) })),
    };
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { num } = cliArgs();
  const path = process.argv.slice(2).find((a) => !a.startsWith('--'));
  if (!path) {
    console.error('usage: node bench/lib/trace-tasks.mjs TRACE.json [--top=3] [--functions=12]');
    process.exit(2);
  }
  console.log(JSON.stringify(longestTasks(path, { top: num('top', 3), functions: num('functions', 12) }), null, 1));
}
