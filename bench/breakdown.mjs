// Where Parley's time to first token goes, at one concurrency. The same closed-loop load as
// scenario 1 goes straight to the loopback upstream and through POST /api/v1/chat (two blocks
// each, alternating); inside the server, the probe records each chat request's phases from the
// product's diagnostics channels (server/src/common/diagnostics.ts) and Node's
// http.server.request.start: the HTTP pipeline (body, guards, validation), the chat service (checks,
// the turn's rows, the generation's start), start to first token written (the model's side,
// of which the round trip through the upstream worker), and the whole time in the server. What the
// client sees beyond the server's total is the sockets and the event loops on both ends.
//
//   npm run build:server && node bench/breakdown.mjs [--concurrency=150] [--rounds=4] [--warmup-rounds=2] [--tokens=100] [--tokens-per-s=50]
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

const quantile = (values, q) => {
  const v = [...values].sort((a, b) => a - b);
  return v.length === 0 ? NaN : v[Math.min(v.length - 1, Math.floor(q * v.length))];
};

const upstream = await startUpstream();
const server = await startServer({ dist, env: relayEnv(upstream), label: 'breakdown' });
const agent = keepAliveAgent();
try {
  const sessions = await sessionsFor(server, agent, c);
  await closedLoop({ open: relayTarget(server, agent, sessions, shape), concurrency: Math.min(c, 20), rounds: warmupRounds, replyMs });
  const client = { direct: [], relay: [] };
  const phases = { pipeline: [], service: [], toFirstToken: [], workerRoundTrip: [], total: [] };
  for (const mode of ['direct', 'relay', 'relay', 'direct']) {
    const open = mode === 'direct' ? directTarget(upstream, agent, shape) : relayTarget(server, agent, sessions, shape);
    if (mode === 'relay') await server.probe('phasesStart');
    const got = pooled(await closedLoop({ open, concurrency: c, rounds, replyMs }));
    if (mode === 'relay') {
      const recorded = await server.probe('phasesStop');
      for (const k of Object.keys(phases)) phases[k].push(...recorded[k]);
    }
    if (got.errors > 0) throw new Error(`${got.errors} ${mode} streams failed: ${JSON.stringify(got.errorKinds)}`);
    client[mode].push(...got.ttft);
  }
  const row = (name, values) => `| ${name} | ${fmt(median(values))} | ${fmt(quantile(values, 0.9))} | ${fmt(p99(values))} | ${values.length} |`;
  console.log(`\nTime to first token at ${c} streams (${shape.tokens} tokens at ${fmt(1000 / intervalMs)}/s, the upstream's first after ${fmt(intervalMs)} ms), ms`);
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
  console.log(`Outside the server (client through Parley - server total, medians): ${fmt(median(client.relay) - median(phases.total))} ms`);
} finally {
  agent.destroy();
  await server.stop();
  await upstream.stop();
}
