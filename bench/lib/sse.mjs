// A minimal SSE client over a keep-alive http.Agent that timestamps every event as it arrives.
// It reads Parley's events ({type:"token"|...}) and OpenAI's chunks (choices[0].delta.content).
import http from 'node:http';

export function keepAliveAgent() {
  return new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 1024, scheduling: 'fifo' });
}

/**
 * @returns {Promise<{status:number, t0:number, tHeaders:number, tokenTimes:number[], tEnd:number,
 *   start?:object, final?:object, error?:string, aborted:boolean, text:string, body?:any}>}
 * Times are performance.now() values. `abortAfterTokens` drops the connection after that many tokens.
 */
export function streamRequest({ url, method = 'POST', headers = {}, body, agent, dialect = 'parley', abortAfterTokens, timeoutMs = 120_000, keepText = false }) {
  return new Promise((resolve) => {
    const u = new URL(url);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const out = { status: 0, t0: performance.now(), tHeaders: NaN, tokenTimes: [], tEnd: NaN, aborted: false, text: '' };
    let settled = false;
    const settle = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (Number.isNaN(out.tEnd)) out.tEnd = performance.now();
      if (!keepText) out.text = undefined;
      resolve(out);
    };
    const req = http.request({
      host: u.hostname, port: u.port, path: u.pathname + u.search, method, agent,
      headers: {
        accept: 'text/event-stream',
        ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
        ...headers,
      },
    }, (res) => {
      out.status = res.statusCode;
      out.tHeaders = performance.now();
      const isSse = String(res.headers['content-type'] ?? '').startsWith('text/event-stream');
      if (!isSse) {
        const parts = [];
        res.on('data', (c) => parts.push(c));
        res.on('end', () => {
          const text = Buffer.concat(parts).toString('utf8');
          try { out.body = JSON.parse(text); } catch { out.body = text; }
          out.error = `HTTP ${res.statusCode} ${out.body?.error?.code ?? ''}`.trim();
          settle();
        });
        return;
      }
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        const now = performance.now();
        buf += chunk;
        let idx;
        while ((idx = buf.indexOf('\n\n')) !== -1) {
          const block = buf.slice(0, idx);
          buf = buf.slice(idx + 2);
          let data = '';
          for (const line of block.split('\n')) if (line.startsWith('data:')) data += line.slice(line[5] === ' ' ? 6 : 5);
          if (!data) continue; // a comment (": ping") or an id-only block
          if (onData(data, now)) return;
        }
      });
      res.on('end', () => { out.tEnd = performance.now(); settle(); });
      res.on('error', (e) => { out.error ??= String(e.message); settle(); });
      res.on('close', () => settle());
    });

    const onData = (data, now) => {
      if (dialect === 'openai') {
        if (data === '[DONE]') { out.final = { type: 'done' }; out.tEnd = now; return false; }
        const j = JSON.parse(data);
        const c = j.choices?.[0]?.delta?.content;
        if (c) { out.tokenTimes.push(now); if (keepText) out.text += c; }
      } else {
        const j = JSON.parse(data);
        if (j.type === 'token') { out.tokenTimes.push(now); if (keepText) out.text += j.token; }
        else if (j.type === 'start') out.start = j;
        else if (j.finished) { out.final = j; out.tEnd = now; if (j.type === 'error') out.error = `event ${j.code}`; }
      }
      if (abortAfterTokens !== undefined && out.tokenTimes.length >= abortAfterTokens && !out.final) {
        out.aborted = true;
        out.tEnd = now;
        req.destroy();
        settle();
        return true;
      }
      return false;
    };

    const timer = setTimeout(() => { out.error = 'client timeout'; req.destroy(); settle(); }, timeoutMs);
    req.on('error', (e) => { if (!out.aborted) out.error ??= String(e.message); settle(); });
    if (payload) req.write(payload);
    req.end();
  });
}

/** Per-stream figures: time to first token, total time, inter-token gaps (ms). */
export function streamFigures(r) {
  const ttft = r.tokenTimes.length ? r.tokenTimes[0] - r.t0 : NaN;
  const total = r.tEnd - r.t0;
  const gaps = [];
  for (let i = 1; i < r.tokenTimes.length; i++) gaps.push(r.tokenTimes[i] - r.tokenTimes[i - 1]);
  return { ttft, total, gaps };
}
