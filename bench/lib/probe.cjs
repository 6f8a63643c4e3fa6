// Preloaded into the server under test (node -r bench/lib/probe.cjs) by the harness only; it never
// ships with the product. Over the IPC channel it answers: memory (optionally after a full GC),
// active handles by type, process listeners, warnings seen, event-loop delay since the last
// reset, starts/stops a CPU profile of just the measured window, and writes heap snapshots.
'use strict';
const { monitorEventLoopDelay } = require('node:perf_hooks');
const { writeFileSync } = require('node:fs');
const { isMainThread, threadId } = require('node:worker_threads');

// The server's worker threads (upstream reader, SQLite checkpointer) load this preload too: each
// answers the main thread's probe with its own heap, after a full GC when asked, so that memory
// figures cover every isolate of the process and not the main one only.
const HEAP_CHANNEL = 'parley-bench-probe-heap';

if (!isMainThread) {
  const channel = new BroadcastChannel(HEAP_CHANNEL);
  channel.unref();
  channel.onmessage = ({ data }) => {
    if (data?.op !== 'heap') return;
    if (data.gc && typeof global.gc === 'function') global.gc();
    const m = process.memoryUsage();
    const spaces = Object.fromEntries(require('node:v8').getHeapSpaceStatistics().map((sp) => [sp.space_name, sp.space_size]));
    channel.postMessage({ op: 'heapReply', id: data.id, threadId, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers, spaces });
  };
} else if (typeof process.send === 'function') {
  process.channel?.unref(); // never keep the server alive on our account
  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
  const warnings = {};
  process.on('warning', (w) => { warnings[w.name] = (warnings[w.name] ?? 0) + 1; });
  let session = null;
  let phases = null;

  const post = (method, params = {}) => new Promise((resolve, reject) => {
    session.post(method, params, (err, res) => (err ? reject(err) : resolve(res)));
  });

  /** The worker threads' heaps (summed), each after a full GC when `gc`. */
  const workerHeaps = async (gc) => {
    const channel = new BroadcastChannel(HEAP_CHANNEL);
    const id = `${process.pid}-${Date.now()}-${Math.random()}`;
    const sum = { count: 0, heapUsed: 0, heapTotal: 0, external: 0, arrayBuffers: 0, threads: [] };
    channel.onmessage = ({ data }) => {
      if (data?.op !== 'heapReply' || data.id !== id) return;
      sum.count++;
      sum.heapUsed += data.heapUsed;
      sum.heapTotal += data.heapTotal;
      sum.threads.push({ threadId: data.threadId, heapUsed: data.heapUsed, heapTotal: data.heapTotal, spaces: data.spaces });
      sum.external += data.external;
      sum.arrayBuffers += data.arrayBuffers;
    };
    channel.postMessage({ op: 'heap', id, gc });
    await new Promise((r) => setTimeout(r, 200));
    channel.close();
    return sum;
  };

  const handlers = {
    async stats(msg) {
      const workers = await workerHeaps(Boolean(msg.gc));
      if (msg.gc && typeof global.gc === 'function') {
        global.gc();
        await new Promise((r) => setTimeout(r, 50));
        global.gc();
      }
      const resources = {};
      for (const r of process.getActiveResourcesInfo()) resources[r] = (resources[r] ?? 0) + 1;
      const listeners = {};
      for (const name of process.eventNames()) listeners[String(name)] = process.listenerCount(name);
      const ns = (v) => v / 1e6;
      const out = {
        memory: process.memoryUsage(),
        newSpace: require('node:v8').getHeapSpaceStatistics().find((sp) => sp.space_name === 'new_space')?.space_size ?? 0,
        workers,
        resources,
        processListeners: listeners,
        warnings: { ...warnings },
        loopDelay: {
          n: loop.count, mean: ns(loop.mean), p50: ns(loop.percentile(50)), p99: ns(loop.percentile(99)), max: ns(loop.max),
        },
      };
      if (msg.resetLoop) loop.reset();
      return out;
    },
    async heapSnapshot(msg) {
      // For finding what a scenario left behind (compare two with bench/lib/heap-diff.mjs).
      if (typeof global.gc === 'function') global.gc();
      return { path: require('node:v8').writeHeapSnapshot(msg.path) };
    },
    // The phases of each chat request to its first token, from the product's diagnostics channels
    // (server/src/common/diagnostics.ts) and Node's own http.server.request.start; subscribed only
    // between phasesStart and phasesStop, so no other measurement pays for it.
    async phasesStart() {
      phases?.stop();
      phases = phaseRecorder();
      return { ok: true };
    },
    async phasesStop() {
      const result = phases?.stop() ?? {};
      phases = null;
      return result;
    },
    async profileStart() {
      const inspector = require('node:inspector');
      session = new inspector.Session();
      session.connect();
      await post('Profiler.enable');
      await post('Profiler.setSamplingInterval', { interval: 200 });
      await post('Profiler.start');
      return { ok: true };
    },
    async profileStop(msg) {
      if (!session) return { ok: false };
      const { profile } = await post('Profiler.stop');
      writeFileSync(msg.path, JSON.stringify(profile));
      session.disconnect();
      session = null;
      return { ok: true, path: msg.path };
    },
  };

  /** Subscribes to the chat channels; stop() unsubscribes and returns each phase's samples (ms). */
  function phaseRecorder() {
    const dc = require('node:diagnostics_channel');
    const now = () => performance.now();
    const requests = new WeakMap();
    const posted = new Map();
    const out = { pipeline: [], service: [], toFirstToken: [], total: [], workerRoundTrip: [] };
    const subs = {
      'http.server.request.start': ({ request }) => { requests.set(request, { start: now() }); },
      'parley:chat.accepted': ({ request }) => { const r = requests.get(request); if (r) r.accepted = now(); },
      'parley:chat.started': ({ request }) => { const r = requests.get(request); if (r) r.started = now(); },
      'parley:chat.first-token-written': ({ request }) => {
        const r = requests.get(request);
        if (!r || r.accepted === undefined || r.started === undefined) return;
        const t = now();
        out.pipeline.push(r.accepted - r.start);
        out.service.push(r.started - r.accepted);
        out.toFirstToken.push(t - r.started);
        out.total.push(t - r.start);
      },
      'parley:upstream.posted': ({ id }) => { posted.set(id, now()); },
      'parley:upstream.first-token': ({ id }) => {
        const t = posted.get(id);
        if (t === undefined) return;
        posted.delete(id);
        out.workerRoundTrip.push(now() - t);
      },
    };
    for (const [name, fn] of Object.entries(subs)) dc.subscribe(name, fn);
    return { stop: () => { for (const [name, fn] of Object.entries(subs)) dc.unsubscribe(name, fn); return out; } };
  }

  process.on('message', (msg) => {
    if (!msg || msg.probe === undefined || !handlers[msg.op]) return;
    handlers[msg.op](msg).then(
      (result) => process.send({ probe: msg.probe, result }),
      (err) => process.send({ probe: msg.probe, error: String(err?.stack ?? err) }),
    );
  });
}
