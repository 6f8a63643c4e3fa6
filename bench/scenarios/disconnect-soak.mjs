// 3. Disconnect soak: thousands of streams opened and dropped mid-answer. Each generation runs on
// without its listener (by design), so the reply is short. Afterwards: memory (after a full GC)
// back to its baseline, no fd/handle/listener growth, and every reply row in a final status.
// A finished reply's events stay in memory for the replay window (an exact resume with
// Last-Event-ID, STREAM_REPLAY_RETENTION_MS, 5 min by default): the server here runs with a short
// window, memory is measured inside it (what the window costs) and after it (the baseline), and
// without the cap on how many finished answers are kept (STREAM_REPLAY_MAX_ANSWERS), so every
// dropped stream is in the first figure.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { pool } from '../lib/api.mjs';
import { diff, isCompiledCode, summarize } from '../lib/heap-diff.mjs';
import { closedLoop, relayTarget } from '../lib/load.mjs';
import { fdKinds } from '../lib/proc.mjs';
import { sleep, startServer } from '../lib/server.mjs';
import { keepAliveAgent } from '../lib/sse.mjs';
import { fmt } from '../lib/table.mjs';
import { startUpstream } from '../lib/upstream.mjs';
import { relayEnv, sessionsFor } from './relay.mjs';

export const title = 'Disconnect soak';

const MB = 2 ** 20;

// Longer than both keep-alive timeouts (Parley's HTTP server 5 s, undici's pool to the upstream 4 s),
// so idle pooled sockets are gone before fds are counted, before and after alike.
const IDLE_MS = 6000;

/**
 * Reads the server's memory and resources once its sockets have been idle IDLE_MS: `idleSince` is
 * when the last stream settled (a wait already spent since then, on the replay window or an
 * earlier snapshot, counts towards it).
 */
async function snapshot(server, idleSince, heapSnapshotPath) {
  await sleep(Math.max(0, idleSince + IDLE_MS - performance.now()));
  if (heapSnapshotPath) await server.probe('heapSnapshot', { path: heapSnapshotPath });
  const s = await server.probe('stats', { gc: true });
  return {
    rss: server.rss(), heapUsed: s.memory.heapUsed, external: s.memory.external, workerHeapUsed: s.workers.heapUsed, fds: server.fds(), fdKinds: fdKinds(server.pid),
    handles: s.resources, listeners: s.processListeners, warnings: s.warnings,
  };
}

const sumValues = (o) => Object.values(o).reduce((a, b) => a + b, 0);

async function settle(server, upstream, dbFile, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const up = await upstream.stats();
    const db = new Database(dbFile, { readonly: true, fileMustExist: true });
    const streaming = db.prepare("SELECT count(*) AS n FROM messages WHERE status = 'streaming'").get().n;
    db.close();
    if (up.open === 0 && streaming === 0) return;
    if (Date.now() > deadline) return;
    await sleep(250);
  }
}

export async function run(ctx) {
  const streams = ctx.opt('soak-streams', 2000, 200);
  const concurrency = ctx.opt('soak-concurrency', 100, 50);
  const tokens = ctx.opt('soak-tokens', 20);
  const intervalMs = ctx.opt('soak-interval-ms', 10);
  const dropAfter = 2;
  const retentionMs = ctx.opt('soak-retention-ms', 20_000, 5_000);
  const shape = { tokens, intervalMs, abortAfterTokens: dropAfter };
  const upstream = await startUpstream();
  const server = await startServer({ dist: ctx.dist, env: { ...relayEnv(upstream), STREAM_REPLAY_RETENTION_MS: String(retentionMs), STREAM_REPLAY_MAX_ANSWERS: '1000000' }, label: 'soak' });
  const dbFile = join(server.dir, 'parley.sqlite');
  const agent = keepAliveAgent();
  try {
    const sessions = await sessionsFor(server, agent, concurrency);
    const open = relayTarget(server, agent, sessions, shape);
    // Warm-up with the same pattern, so JIT code, pools and caches count in the baseline: with
    // only 200 streams of warm-up, the optimised code V8 kept compiling during the 2,000 measured
    // ones (~2 MB: code, deopt data, relocation info, by heap snapshot diff) read as ~1 KB per stream.
    const warm = Math.max(200, streams / 2);
    await closedLoop({ open, concurrency, rounds: Math.ceil(warm / concurrency), warmupRounds: 0, replyMs: tokens * intervalMs });
    await settle(server, upstream, dbFile);
    ctx.log('soak: warmed up');
    // The warm-up's answers leave the replay window, and the sockets go idle, in the same wait.
    const warmSettled = performance.now();
    await sleep(retentionMs);
    const snapBefore = join(ctx.resultsDir, `${ctx.ts}-soak-before.heapsnapshot`);
    const snapAfter = join(ctx.resultsDir, `${ctx.ts}-soak-after.heapsnapshot`);
    const before = await snapshot(server, warmSettled, snapBefore);
    const upBefore = await upstream.stats();
    ctx.log('soak: baseline taken');
    const t0 = performance.now();
    const results = await pool(Array.from({ length: streams }, (_, i) => i), concurrency, (i) => open(i));
    const openMs = performance.now() - t0;
    const tSettle = performance.now();
    await settle(server, upstream, dbFile);
    const settleMs = performance.now() - tSettle;
    const settled = performance.now();
    ctx.log('soak: streams settled');
    const inWindow = await snapshot(server, settled);
    await sleep(Math.max(0, settled + retentionMs + 1000 - performance.now()));
    const after = await snapshot(server, settled, snapAfter);
    // Heap growth by object type from two heap snapshots, V8's compiled code set apart: the JIT
    // keeps optimising for a while (~1.5 MB over 2,000 streams here), which is not per-stream data.
    ctx.log('soak: after-snapshot taken');
    const growth = diff(summarize(snapBefore), summarize(snapAfter));
    const codeGrowth = growth.filter((d) => isCompiledCode(d.key)).reduce((a, d) => a + d.size, 0);
    const dataGrowth = growth.filter((d) => !isCompiledCode(d.key)).reduce((a, d) => a + d.size, 0);
    const topData = growth.filter((d) => !isCompiledCode(d.key)).slice(0, 5);
    for (const f of [snapBefore, snapAfter]) rmSync(f, { force: true });
    ctx.log('soak: snapshots compared');
    const upAfter = await upstream.stats();
    const db = new Database(dbFile, { readonly: true, fileMustExist: true });
    const statuses = Object.fromEntries(db.prepare("SELECT status, count(*) AS n FROM messages WHERE role = 'assistant' GROUP BY status").all().map((r) => [r.status, r.n]));
    const lengths = db.prepare("SELECT min(length(content)) AS lo, max(length(content)) AS hi FROM messages WHERE role = 'assistant'").get();
    db.close();

    const dropped = results.filter((r) => r.aborted).length;
    const failed = results.filter((r) => !r.aborted).length;
    const nonFinal = statuses.streaming ?? 0;
    const upstreamCompleted = upAfter.completed - upBefore.completed;
    const heapDelta = after.heapUsed - before.heapUsed;
    const windowDelta = inWindow.heapUsed - before.heapUsed;
    const fdDelta = after.fds - before.fds;
    const handleDelta = sumValues(after.handles) - sumValues(before.handles);
    const listenerDelta = sumValues(after.listeners) - sumValues(before.listeners);
    const leakWarnings = after.warnings.MaxListenersExceededWarning ?? 0;
    const log = server.log();
    ctx.details.soak = {
      streams, concurrency, tokens, intervalMs, dropAfter, openMs, settleMs, dropped, notDropped: failed,
      errorsSample: results.filter((r) => !r.aborted).slice(0, 3).map((r) => r.error),
      upstreamCompleted, upstreamAborted: upAfter.aborted - upBefore.aborted, statuses, contentLength: lengths,
      retentionMs, before, inWindow, after, heapSnapshotGrowth: { dataBytes: dataGrowth, compiledCodeBytes: codeGrowth, topData }, maxListenersWarningsInLog: (log.match(/MaxListenersExceededWarning/g) ?? []).length,
    };
    // The worker threads (upstream reader) have no snapshot: their heap after a full GC.
    const workerDelta = after.workerHeapUsed - before.workerHeapUsed;
    const memOk = dataGrowth / streams < 1024 && workerDelta / streams < 1024; // under 1 KB per finished stream: no growth with streams
    return [
      { id: '3', name: `Soak: ${streams} streams dropped after ${dropAfter} tokens: final statuses`,
        value: `${nonFinal} left streaming`, baseline: `statuses ${JSON.stringify(statuses)}; ${dropped}/${streams} dropped; upstream completed ${upstreamCompleted}`,
        target: '0 left streaming, all dropped', pass: nonFinal === 0 && dropped === streams },
      { id: '3', name: `Soak: heap held per finished stream inside the replay window (${fmt(retentionMs / 1000)} s here, 5 min by default)`, value: windowDelta / streams, unit: 'B',
        baseline: `heap ${fmt(before.heapUsed / MB, 'MB')} → ${fmt(inWindow.heapUsed / MB, 'MB')} after GC, 6 s after the last stream`,
        target: '–', pass: null },
      { id: '3', name: 'Soak: heap kept per stream once the replay window passed (snapshot diff, compiled code apart)', value: dataGrowth / streams, unit: 'B',
        baseline: `objects +${fmt(dataGrowth / 1024, 'KB')}, V8 compiled code +${fmt(codeGrowth / 1024, 'KB')}; heapUsed ${fmt(before.heapUsed / MB, 'MB')} → ${fmt(after.heapUsed / MB, 'MB')}; worker threads' heap ${fmt(before.workerHeapUsed / MB, 'MB')} → ${fmt(after.workerHeapUsed / MB, 'MB')} (${fmt(workerDelta / streams)} B per stream) (RSS not comparable: heap snapshots inflate it)`,
        target: '< 1 KB per stream (back to baseline)', pass: memOk },
      { id: '3', name: 'Soak: fds / handles / process listeners delta', value: `${fdDelta} / ${handleDelta} / ${listenerDelta}`,
        baseline: `fds ${before.fds} → ${after.fds} ${JSON.stringify(after.fdKinds)}; handles ${JSON.stringify(after.handles)}; MaxListeners warnings ${leakWarnings}`,
        target: '≤ 2 / ≤ 2 / 0, no warnings', pass: fdDelta <= 2 && handleDelta <= 2 && listenerDelta === 0 && leakWarnings === 0 },
    ];
  } finally {
    agent.destroy();
    await server.stop();
    await upstream.stop();
  }
}
