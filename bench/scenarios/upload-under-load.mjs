// 5. Uploads under load: a 100-page PDF extracted while 100 paced streams flow. The same streams
// are measured in windows without an upload before and after (the baseline) and during the
// uploads; the difference in inter-token p99 and in event-loop delay is what an upload costs them.
import { join } from 'node:path';
import { makePdf } from '../lib/pdf.mjs';
import { topSelfTime } from '../lib/profile.mjs';
import { directive } from '../lib/load.mjs';
import { sleep, startServer } from '../lib/server.mjs';
import { keepAliveAgent, streamRequest } from '../lib/sse.mjs';
import { p99 } from '../lib/stats.mjs';
import { fmt } from '../lib/table.mjs';
import { startUpstream } from '../lib/upstream.mjs';
import { relayEnv, sessionsFor } from './relay.mjs';

export const title = 'Uploads under load';

/** Gaps between consecutive tokens whose later token arrived inside [from, to). */
function gapsIn(results, from, to) {
  const out = [];
  for (const r of results) {
    const t = r.tokenTimes;
    for (let i = 1; i < t.length; i++) if (t[i] >= from && t[i] < to) out.push(t[i] - t[i - 1]);
  }
  return out;
}

async function upload(server, session, pdf, name) {
  const form = new FormData();
  form.append('file', new Blob([pdf], { type: 'application/pdf' }), name);
  const t0 = performance.now();
  const res = await fetch(`${server.url}/api/v1/files/upload`, { method: 'POST', body: form, headers: { authorization: `Bearer ${session.token}` } });
  const body = await res.json();
  if (res.status !== 201) throw new Error(`upload: ${res.status} ${JSON.stringify(body).slice(0, 200)}`);
  return { ms: performance.now() - t0, pages: body.pages, chars: body.extracted_chars };
}

export async function run(ctx) {
  const streams = ctx.opt('upload-streams', 100, 30);
  const pages = ctx.opt('pdf-pages', 100, 100);
  const uploads = ctx.opt('uploads', 3, 1);
  const tokensPerS = ctx.opt('tokens-per-s', 50);
  const intervalMs = 1000 / tokensPerS;
  const shape = { tokens: 100, intervalMs };
  const pdf = await makePdf(pages);
  const upstream = await startUpstream();
  const server = await startServer({ dist: ctx.dist, env: { ...relayEnv(upstream), MAX_UPLOAD_BYTES: String(50 * 2 ** 20) }, label: 'uploads' });
  const agent = keepAliveAgent();
  try {
    const sessions = await sessionsFor(server, agent, streams + 1);
    const uploader = sessions[streams];
    await upload(server, uploader, pdf, 'warmup.pdf'); // the worker's code is loaded once
    let stop = false;
    const results = [];
    const worker = async (w) => {
      await sleep((w * shape.tokens * intervalMs) / streams);
      while (!stop) {
        results.push(await streamRequest({
          url: `${server.url}/api/v1/chat`, agent, headers: { authorization: `Bearer ${sessions[w].token}` },
          body: { message: `Summarise ${directive(shape)}` },
        }));
      }
    };
    const running = Array.from({ length: streams }, (_, w) => worker(w));
    await sleep(shape.tokens * intervalMs * 1.5); // all streams flowing
    const windows = [];
    const measure = async (kind, fn) => {
      await server.probe('stats', { resetLoop: true });
      const from = performance.now();
      const extra = await fn();
      const to = performance.now();
      const loop = (await server.probe('stats', { resetLoop: true })).loopDelay;
      windows.push({ kind, from, to, loop, ...extra });
    };
    const quietMs = ctx.quick ? 2000 : 4000;
    await measure('quiet', () => sleep(quietMs));
    for (let i = 0; i < uploads; i++) {
      const profiling = ctx.profile && i === 0;
      if (profiling) await server.probe('profileStart');
      await measure('upload', async () => ({ upload: await upload(server, uploader, pdf, `book-${i}.pdf`) }));
      if (profiling) {
        const path = join(ctx.resultsDir, `${ctx.ts}-upload.cpuprofile`);
        await server.probe('profileStop', { path });
        ctx.details.profile_upload = { path, ...topSelfTime(path) };
      }
      await measure('quiet', () => sleep(quietMs));
    }
    stop = true;
    await Promise.all(running);

    const quiet = windows.filter((w) => w.kind === 'quiet');
    const busy = windows.filter((w) => w.kind === 'upload');
    const gq = quiet.flatMap((w) => gapsIn(results, w.from, w.to));
    const gb = busy.flatMap((w) => gapsIn(results, w.from, w.to));
    const loopQ = Math.max(...quiet.map((w) => w.loop.p99));
    const loopB = Math.max(...busy.map((w) => w.loop.p99));
    const maxB = Math.max(...busy.map((w) => w.loop.max));
    const errors = results.filter((r) => r.error || r.status !== 200).length;
    const added = p99(gb) - p99(gq);
    ctx.details.uploads = { streams, pages, pdfBytes: pdf.length, windows, gapsQuiet: gq.length, gapsUpload: gb.length, errors };
    const up = busy[0].upload;
    return [
      { id: '5', name: `Inter-token p99 added by a ${pages}-page PDF upload, ${streams} streams${errors ? ` [${errors} errors]` : ''}`,
        value: added, unit: 'ms',
        baseline: `p99 gap ${fmt(p99(gq))} ms without, ${fmt(p99(gb))} ms during ${busy.length} upload(s) of ${fmt(up.ms, 'ms')} (${up.pages} pages, ${up.chars} chars)`,
        target: '< 20 ms', pass: added < 20 && errors === 0 },
      { id: '5', name: 'Event-loop delay p99 during the upload (max)', value: loopB - loopQ, unit: 'ms added',
        baseline: `p99 ${fmt(loopQ)} ms without, ${fmt(loopB)} ms during (max ${fmt(maxB)} ms)`, target: '–', pass: null },
    ];
  } finally {
    agent.destroy();
    await server.stop();
    await upstream.stop();
  }
}
