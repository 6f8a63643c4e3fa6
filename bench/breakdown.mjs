// Where Parley's time to first token goes, at one concurrency. The same closed-loop load as
// scenario 1 goes straight to the loopback upstream and through POST /api/v1/chat (two blocks
// each, alternating); inside the server, the probe records each chat request's phases from the
// product's diagnostics channels (server/src/common/diagnostics.ts) and Node's
// http.server.request.start: the HTTP pipeline (body, guards, validation), the chat service (checks,
// the turn's rows, the generation's start), start to first token written (the model's side,
// of which the round trip through the upstream worker), and the whole time in the server. What the
// client sees beyond the server's total is the sockets and the event loops on both ends.
// Then the stream's end: last token → final event on both paths, how late the upstream's own
// timers wrote the first and last tokens (its load differs between the two paths), the time added
// at a few token positions, and the stream time added.
//
//   npm run build:server && node bench/breakdown.mjs [--concurrency=150] [--rounds=4] [--warmup-rounds=2] [--tokens=100] [--tokens-per-s=50] [--follow-up]
//
// --follow-up: every stream through Parley after a worker's first adds a turn to the conversation
// that worker's previous stream was in (its history grows by a turn per round), instead of starting one.
//
// Numbers for one machine and one run; compare phases within a run, not across machines.
import { cliArgs } from './lib/cli.mjs';
import { closedLoop, directTarget, pooled, relayTarget } from './lib/load.mjs';
import { startServer } from './lib/server.mjs';
import { keepAliveAgent } from './lib/sse.mjs';
import { median, p99 } from './lib/stats.mjs';
import { fmt } from './lib/table.mjs';
import { startUpstream } from './lib/upstream.mjs';
import { relayEnv, sessionsFor } from './scenarios/relay.mjs';

const { args, num, concurrency: c, shape, replyMs } = cliArgs();
const { intervalMs } = shape;
const rounds = num('rounds', 4);
// Warm-up: closed-loop rounds at up to 20 streams before measuring (more of them: a server whose
// request path V8 has optimized, as after a while in production).
const warmupRounds = num('warmup-rounds', 2);
const dist = args.dist ?? 'dist';
const isFollowUp = 'follow-up' in args;

const quantile = (values, q) => {
  const v = [...values].sort((a, b) => a - b);
  return v.length === 0 ? NaN : v[Math.min(v.length - 1, Math.floor(q * v.length))];
};

const upstream = await startUpstream();
const server = await startServer({ dist, env: relayEnv(upstream), label: 'breakdown' });
const agent = keepAliveAgent();
try {
  const sessions = await sessionsFor(server, agent, c);
  // With --follow-up, each closed-loop worker's conversation (it keeps its session: sessions[worker % c]).
  const conversationOf = new Map();
  const relay = isFollowUp
    ? async (worker) => {
      const id = conversationOf.get(worker);
      const r = await relayTarget(server, agent, sessions, shape, id === undefined ? {} : { conversation_id: id })(worker);
      if (r.start?.conversation_id) conversationOf.set(worker, r.start.conversation_id);
      return r;
    }
    : relayTarget(server, agent, sessions, shape);
  await closedLoop({ open: relay, concurrency: Math.min(c, 20), rounds: warmupRounds, replyMs });
  const client = { direct: [], relay: [] };
  // The stream's end: its last token → its final event ([DONE] / done), and the whole stream.
  const tail = { direct: [], relay: [] };
  const total = { direct: [], relay: [] };
  const lastToken = { direct: [], relay: [] };
  // Per stream, first token → final event: what the stream's end adds beyond its start.
  const span = { direct: [], relay: [] };
  const atIndex = { direct: new Map(), relay: new Map() };
  // Where in the stream Parley's added time changes: first, second, middle, last two tokens.
  const INDEXES = [...new Set([0, 1, Math.floor(shape.tokens / 2), shape.tokens - 2, shape.tokens - 1])].filter((k) => k >= 0);
  const late = { direct: { first: [], last: [] }, relay: { first: [], last: [] } };
  const phases = { pipeline: [], service: [], toFirstToken: [], workerRoundTrip: [], total: [] };
  for (const mode of ['direct', 'relay', 'relay', 'direct']) {
    const open = mode === 'direct' ? directTarget(upstream, agent, shape) : relay;
    if (mode === 'relay') await server.probe('phasesStart');
    await upstream.lateness();
    const results = await closedLoop({ open, concurrency: c, rounds, replyMs });
    const l = await upstream.lateness();
    late[mode].first.push(...l.first);
    late[mode].last.push(...l.last);
    const got = pooled(results);
    for (const r of results) if (r.final && r.tokenTimes.length > 0) {
      tail[mode].push(r.tEnd - r.tokenTimes.at(-1));
      lastToken[mode].push(r.tokenTimes.at(-1) - r.t0);
      span[mode].push(r.tEnd - r.tokenTimes[0]);
      for (const k of INDEXES) if (k < r.tokenTimes.length) {
        if (!atIndex[mode].has(k)) atIndex[mode].set(k, []);
        atIndex[mode].get(k).push(r.tokenTimes[k] - r.t0);
      }
    }
    if (mode === 'relay') {
      const recorded = await server.probe('phasesStop');
      for (const k of Object.keys(phases)) phases[k].push(...recorded[k]);
    }
    if (got.errors > 0) throw new Error(`${got.errors} ${mode} streams failed: ${JSON.stringify(got.errorKinds)}`);
    client[mode].push(...got.ttft);
    total[mode].push(...got.total);
  }
  const row = (name, values) => `| ${name} | ${fmt(median(values))} | ${fmt(quantile(values, 0.9))} | ${fmt(p99(values))} | ${values.length} |`;
  console.log(`\nTime to first token at ${c} streams (${shape.tokens} tokens at ${fmt(1000 / intervalMs)}/s, the upstream's first after ${fmt(intervalMs)} ms${isFollowUp ? '; through Parley each a follow-up question' : ''}), ms`);
  console.log('| Phase | median | p90 | p99 | n |\n|---|---|---|---|---|');
  console.log(row('client: direct to the upstream', client.direct));
  console.log(row('client: through Parley', client.relay));
  console.log(row('server: request → accepted (HTTP pipeline: body, guards, validation)', phases.pipeline));
  console.log(row('server: accepted → started (chat service: checks, rows, generation start)', phases.service));
  console.log(row('server: started → first token written (the model\'s side)', phases.toFirstToken));
  console.log(row('… of which posted to the upstream worker → its first token back', phases.workerRoundTrip));
  console.log(row('server: request → first token written', phases.total));
  const added = [median(client.relay) - median(client.direct), p99(client.relay) - p99(client.direct)];
  console.log(`\nAdded by Parley (client through Parley - direct): median ${fmt(added[0])} ms, p99 ${fmt(added[1])} ms`);
  console.log(`\nThe stream's end, ms`);
  console.log('| Phase | median | p90 | p99 | n |\n|---|---|---|---|---|');
  console.log(row('client: direct, last token → [DONE]', tail.direct));
  console.log(row('client: through Parley, last token → done', tail.relay));
  console.log(`Upstream timers late, medians: direct first ${fmt(median(late.direct.first))} last ${fmt(median(late.direct.last))} ms; relay first ${fmt(median(late.relay.first))} last ${fmt(median(late.relay.last))} ms`);
  console.log(`Token k added (median relay - median direct): ${INDEXES.map((k) => `${k}: ${fmt(median(atIndex.relay.get(k) ?? []) - median(atIndex.direct.get(k) ?? []))}`).join(', ')}`);
  console.log(`Last token added: median ${fmt(median(lastToken.relay) - median(lastToken.direct))} ms, p99 ${fmt(p99(lastToken.relay) - p99(lastToken.direct))} ms`);
  console.log(`First token → final event, per stream: direct ${fmt(median(span.direct))}, through Parley ${fmt(median(span.relay))} ms (median; added ${fmt(median(span.relay) - median(span.direct))} ms)`);
  console.log(`Stream time added: median ${fmt(median(total.relay) - median(total.direct))} ms, p99 ${fmt(p99(total.relay) - p99(total.direct))} ms`);
  console.log(`Outside the server (client through Parley - server total, medians): ${fmt(median(client.relay) - median(phases.total))} ms`);
} finally {
  agent.destroy();
  await server.stop();
  await upstream.stop();
}
