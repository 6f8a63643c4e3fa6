// Closed-loop stream load: `concurrency` workers, each opening one stream after another, their
// starts spread over one reply so the load is steady rather than a burst. The same loop drives
// the direct baseline (client → upstream) and the relay (client → Parley → upstream).
import { streamFigures, streamRequest } from './sse.mjs';

export const directive = ({ tokens, intervalMs, reply = 'plain' }) =>
  `[bench tokens=${tokens} interval=${intervalMs} first=${intervalMs} reply=${reply}]`;

export function directTarget(upstream, agent, shape) {
  return (worker) => streamRequest({
    url: `${upstream.baseUrl}/chat/completions`, agent, dialect: 'openai',
    body: {
      model: 'bench-model', stream: true, stream_options: { include_usage: true },
      messages: [{ role: 'user', content: `Tell me how a relay works ${directive(shape)} (w${worker})` }],
    },
  });
}

export function relayTarget(server, agent, sessions, shape, extra = {}) {
  return (worker) => streamRequest({
    url: `${server.url}/api/v1/chat`, agent, dialect: 'parley',
    headers: { authorization: `Bearer ${sessions[worker % sessions.length].token}` },
    body: { message: `Tell me how a relay works ${directive(shape)} (w${worker})`, ...extra },
    ...(shape.abortAfterTokens !== undefined ? { abortAfterTokens: shape.abortAfterTokens } : {}),
  });
}

/**
 * Runs `rounds` streams per worker (plus `warmupRounds` not counted) with `concurrency` workers.
 * `onSteady` is called once every worker has finished its warm-up (for sampling memory etc.).
 */
export async function closedLoop({ open, concurrency, rounds, warmupRounds = 1, replyMs, onSteady }) {
  const counted = [];
  let allTokens = 0; // warm-up streams included, for per-token costs measured over the whole run
  let warmedUp = 0;
  let steadyResolve;
  const steady = new Promise((r) => { steadyResolve = r; });
  const worker = async (w) => {
    await new Promise((r) => setTimeout(r, (w * replyMs) / concurrency));
    for (let i = 0; i < warmupRounds + rounds; i++) {
      if (i === warmupRounds && ++warmedUp === concurrency) steadyResolve();
      const r = await open(w);
      allTokens += r.tokenTimes.length;
      if (i >= warmupRounds) counted.push(r);
    }
  };
  if (warmupRounds === 0) steadyResolve();
  const sampler = onSteady ? steady.then(() => onSteady()) : Promise.resolve();
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  await sampler;
  counted.allTokens = allTokens;
  return counted;
}

/** Pools the figures of many streams. */
export function pooled(results) {
  const ttft = [];
  const total = [];
  const gaps = [];
  let errors = 0;
  const errorKinds = {};
  for (const r of results) {
    if (r.error || r.status !== 200 || !r.final) {
      errors++;
      const k = r.error ?? `status ${r.status}${r.final ? '' : ' no final event'}`;
      errorKinds[k] = (errorKinds[k] ?? 0) + 1;
      continue;
    }
    const f = streamFigures(r);
    ttft.push(f.ttft);
    total.push(f.total);
    for (const g of f.gaps) gaps.push(g);
  }
  return { ttft, total, gaps, errors, errorKinds, n: results.length };
}
