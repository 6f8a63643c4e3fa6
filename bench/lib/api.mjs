// Tiny JSON client for the Parley API (Bearer auth, keep-alive).
import http from 'node:http';

export function jsonRequest(base, method, path, { token, body, agent, headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(path, base);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const t0 = performance.now();
    const req = http.request({
      host: u.hostname, port: u.port, path: u.pathname + u.search, method, agent,
      headers: {
        accept: 'application/json',
        ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...headers,
      },
    }, (res) => {
      const parts = [];
      res.on('data', (c) => parts.push(c));
      res.on('end', () => {
        const ms = performance.now() - t0;
        const text = Buffer.concat(parts).toString('utf8');
        let json;
        try { json = text ? JSON.parse(text) : undefined; } catch { json = text; }
        resolve({ status: res.statusCode, body: json, ms, bytes: text.length, headers: res.headers });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  });
}

export async function createSession(base, agent) {
  const r = await jsonRequest(base, 'POST', '/api/v1/sessions', { body: { user_agent: 'parley-bench' }, agent });
  if (r.status !== 201) throw new Error(`POST /sessions: ${r.status} ${JSON.stringify(r.body)}`);
  return { id: r.body.session.id, token: r.body.token };
}

/** Runs fn over items with at most `limit` in flight. */
export async function pool(items, limit, fn) {
  const results = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
