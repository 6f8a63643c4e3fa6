// Compares two builds of the server under the same relay load, alternating A and B in one run
// (A B, B A, A B, ...) so the machine's drift hits both alike: server CPU per relayed token, CPU
// per stream, TTFT median / p99, and B's ratio to A. For "did this change make the relay cheaper",
// where scenario 1's absolute figures move more between runs than the change itself.
//
//   git worktree add /tmp/parley-base <rev> && (cd /tmp/parley-base && npm ci && npm run build:server)
//   npm run build:server && node bench/compare.mjs --a=/tmp/parley-base/dist --b=dist
//
// Prints server CPU per token and per stream, TTFT median and p99, the stream time median, the inter-token gap p99.
// Options: --concurrency=150 --tokens=100 --tokens-per-s=50 --rounds=8 (blocks per build; each block
// is 2 streams per worker), --a-flags="--some-v8-flag" and --b-flags=… (extra node flags for one side),
// --a-env="NAME=value NAME2=value" and --b-env=… (extra environment for one side, e.g. the same
// build with and without a setting: --a=dist --b=dist --a-env=UPSTREAM_WORKER=false).
import { cliArgs } from './lib/cli.mjs';
import { closedLoop, pooled, relayTarget } from './lib/load.mjs';
import { startServer } from './lib/server.mjs';
import { keepAliveAgent } from './lib/sse.mjs';
import { median, p99 } from './lib/stats.mjs';
import { fmt } from './lib/table.mjs';
import { startUpstream } from './lib/upstream.mjs';
import { relayEnv, sessionsFor } from './scenarios/relay.mjs';

const { args, num, concurrency: c, shape, replyMs } = cliArgs();
const { tokens, intervalMs } = shape;
const rounds = num('rounds', 8);
if (!args.a || !args.b) {
  console.error('usage: node bench/compare.mjs --a=<dist dir> --b=<dist dir> [--concurrency=150 --tokens=100 --tokens-per-s=50 --rounds=8]');
  process.exit(2);
}

/** "NAME=value NAME2=value" as an object. */
function envArg(text) {
  return Object.fromEntries((text ?? '').split(' ').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
}

const upstream = await startUpstream();
const builds = {};
try {
  const flags = (side) => (args[`${side}-flags`] ? args[`${side}-flags`].split(' ') : []);
  builds.A = await startServer({ dist: args.a, env: { ...relayEnv(upstream), ...envArg(args['a-env']) }, label: 'A', nodeArgs: flags('a') });
  builds.B = await startServer({ dist: args.b, env: { ...relayEnv(upstream), ...envArg(args['b-env']) }, label: 'B', nodeArgs: flags('b') });
} catch (err) {
  // One did not start: the others must not outlive this run.
  await builds.A?.stop();
  await upstream.stop();
  throw err;
}
const agent = keepAliveAgent();
try {
  const sessions = { A: await sessionsFor(builds.A, agent, c), B: await sessionsFor(builds.B, agent, c) };
  const acc = { A: { cpu: 0, tokens: 0, streams: 0, ttft: [], total: [], gaps: [], errors: 0 }, B: { cpu: 0, tokens: 0, streams: 0, ttft: [], total: [], gaps: [], errors: 0 } };
  for (const name of ['A', 'B']) {
    await closedLoop({ open: relayTarget(builds[name], agent, sessions[name], shape), concurrency: Math.min(c, 20), rounds: 2, replyMs });
  }
  for (let r = 0; r < rounds; r++) {
    for (const name of r % 2 ? ['B', 'A'] : ['A', 'B']) {
      const server = builds[name];
      const cpu0 = server.cpuMs();
      const got = await closedLoop({ open: relayTarget(server, agent, sessions[name], shape), concurrency: c, rounds: 2, replyMs });
      const cpu = server.cpuMs() - cpu0;
      const p = pooled(got);
      Object.assign(acc[name], { cpu: acc[name].cpu + cpu, tokens: acc[name].tokens + got.allTokens, streams: acc[name].streams + got.length, errors: acc[name].errors + p.errors });
      acc[name].ttft.push(...p.ttft);
      acc[name].total.push(...p.total);
      for (const g of p.gaps) acc[name].gaps.push(g);
      console.log(`[block ${r + 1}/${rounds}] ${name}: ${fmt((1000 * cpu) / got.allTokens)} µs CPU per token, TTFT ${fmt(median(p.ttft))} / ${fmt(p99(p.ttft))} ms`);
    }
  }
  const figure = (x) => ({
    perToken: (1000 * x.cpu) / x.tokens, perStream: x.cpu / x.streams, ttft: [median(x.ttft), p99(x.ttft)], total: median(x.total), gapP99: p99(x.gaps), errors: x.errors,
  });
  const A = figure(acc.A);
  const B = figure(acc.B);
  console.log(`\n${c} streams, ${tokens} tokens at ${fmt(1000 / intervalMs)}/s, ${rounds} blocks each`);
  console.log('| Measure | A | B | B / A |\n|---|---|---|---|');
  console.log(`| Server CPU per relayed token (µs) | ${fmt(A.perToken)} | ${fmt(B.perToken)} | ${fmt(B.perToken / A.perToken)}× |`);
  console.log(`| Server CPU per stream (ms) | ${fmt(A.perStream)} | ${fmt(B.perStream)} | ${fmt(B.perStream / A.perStream)}× |`);
  // Two decimals: a change to the relay moves the median by tenths of a millisecond on ~22 ms.
  console.log(`| TTFT median (ms) | ${A.ttft[0].toFixed(2)} | ${B.ttft[0].toFixed(2)} | ${fmt(B.ttft[0] / A.ttft[0])}× (${B.ttft[0] >= A.ttft[0] ? '+' : ''}${(B.ttft[0] - A.ttft[0]).toFixed(2)} ms) |`);
  console.log(`| Stream time median (ms; to the final event) | ${A.total.toFixed(2)} | ${B.total.toFixed(2)} | ${B.total >= A.total ? '+' : ''}${(B.total - A.total).toFixed(2)} ms |`);
  console.log(`| TTFT p99 (ms) | ${fmt(A.ttft[1])} | ${fmt(B.ttft[1])} | ${fmt(B.ttft[1] / A.ttft[1])}× |`);
  console.log(`| Inter-token gap p99 (ms; pace ${fmt(intervalMs)}) | ${fmt(A.gapP99)} | ${fmt(B.gapP99)} | ${fmt(B.gapP99 / A.gapP99)}× |`);
  console.log(`| Errors | ${A.errors} | ${B.errors} | |`);
} finally {
  agent.destroy();
  await builds.A.stop();
  await builds.B.stop();
  await upstream.stop();
}
