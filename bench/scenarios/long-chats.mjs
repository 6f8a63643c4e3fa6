// 4. Long chats stay flat: the latest page of a 10,000-message conversation against the same
// request on a 20-message one, and the first page of a session with 5,000 conversations against
// one with 5, on SQLite and on PostgreSQL. Rows are seeded straight into the migrated database.
// Also, for the record (a search reads every message of the session, so it is not flat): a search
// by message text in the session of the 10,000-message chat against one with 20 messages, and the
// longest stall of the event loop (every user's streams) while that session is searched and the
// long chat deleted. And a text file uploaded into a session that holds ~95 MB of extracted text (near
// its 100 MB quota, which every upload checks) against one into an empty session.
import { join } from 'node:path';
import { createSession, jsonRequest } from '../lib/api.mjs';
import { keepAliveAgent } from '../lib/sse.mjs';
import { scratchPostgres, seedPostgres, seedPostgresFiles, seedSqlite, seedSqliteFiles } from '../lib/seed.mjs';
import { startServer } from '../lib/server.mjs';
import { median, p99 } from '../lib/stats.mjs';
import { fmt } from '../lib/table.mjs';

export const title = 'Long chats (latest page, first page of conversations)';

/** Uploads a small text file of its own content; its time in ms. */
async function uploadText(base, token, n) {
  const form = new FormData();
  form.append('file', new Blob([`Note ${n}: ${Math.random()}`], { type: 'text/plain' }), `note-${n}.txt`);
  const t0 = performance.now();
  const res = await fetch(`${base}/api/v1/files/upload`, { method: 'POST', body: form, headers: { authorization: `Bearer ${token}` } });
  const body = await res.json();
  if (res.status !== 201) throw new Error(`upload: ${res.status} ${JSON.stringify(body).slice(0, 200)}`);
  return performance.now() - t0;
}

/** Times `reps` rounds of the given requests, interleaved so drift hits all alike. */
async function timeInterleaved(base, agent, requests, reps, warmup = 10) {
  const times = requests.map(() => []);
  for (let r = -warmup; r < reps; r++) {
    // A shuffled order each round, so no request always follows the same one.
    const order = requests.map((_, i) => i).sort(() => Math.random() - 0.5);
    for (const i of order) {
      const { path, token } = requests[i];
      const res = await jsonRequest(base, 'GET', path, { token, agent });
      if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`);
      if (r >= 0) times[i].push(res.ms);
    }
  }
  return times;
}

async function measure(ctx, dialect, env, seed, seedFiles) {
  const nMessages = ctx.opt('long-messages', 10_000, 2_000);
  const nConversations = ctx.opt('long-conversations', 5_000, 1_000);
  const reps = ctx.opt('long-reps', 200, 40);
  const server = await startServer({ dist: ctx.dist, env, label: `long-${dialect}` });
  const agent = keepAliveAgent();
  try {
    const chatter = await createSession(server.url, agent);
    const hoarder = await createSession(server.url, agent);
    const light = await createSession(server.url, agent);
    const reader = await createSession(server.url, agent);
    const [small, big] = await seed(server, chatter.id, [20, nMessages]);
    await seed(server, hoarder.id, Array(nConversations).fill(0));
    await seed(server, light.id, Array(5).fill(0));
    await seed(server, reader.id, [20]);
    // In every user message of the seed (and in no title): each of the session's messages is read.
    const search = '/api/v1/conversations?limit=20&q=tab%20closes';
    const [tSmall, tBig, tFew, tMany, tOlder, tSearchSmall, tSearchBig] = await timeInterleaved(server.url, agent, [
      { path: `/api/v1/conversations/${small}?limit=50`, token: chatter.token },
      { path: `/api/v1/conversations/${big}?limit=50`, token: chatter.token },
      { path: '/api/v1/conversations?limit=20&offset=0', token: light.token },
      { path: '/api/v1/conversations?limit=20&offset=0', token: hoarder.token },
      { path: `/api/v1/conversations/${big}/messages?before=${Math.floor(nMessages / 2)}&limit=50`, token: chatter.token },
      { path: search, token: reader.token },
      { path: search, token: chatter.token },
    ], reps);
    const found = await jsonRequest(server.url, 'GET', search, { token: chatter.token, agent });
    if (found.body.total !== 2 || !found.body.conversations.every((c) => c.match?.snippet.text.includes('tab closes'))) {
      throw new Error(`the search did not find both conversations by their messages: ${JSON.stringify(found.body).slice(0, 300)}`);
    }
    const check = await jsonRequest(server.url, 'GET', `/api/v1/conversations/${big}?limit=50`, { token: chatter.token, agent });
    if (check.body.messages.length !== 50 || check.body.messages.at(-1).position !== nMessages - 1) {
      throw new Error('the latest page of the long chat is not its last 50 messages');
    }
    const list = await jsonRequest(server.url, 'GET', '/api/v1/conversations?limit=20', { token: hoarder.token, agent });
    if (list.body.total !== nConversations) throw new Error(`list total ${list.body.total} != ${nConversations}`);
    // What a long session's search and delete cost everyone else: the event loop's longest stall (prom-client's
    // lag monitor, reset at each scrape, 10 ms resolution) over 20 searches of each session, then while the
    // 10,000-message chat is deleted. On SQLite the search's reads run on a worker and the delete goes in chunks.
    const stallMax = async () => {
      const text = await (await fetch(`${server.url}/metrics`)).text();
      const m = /^nodejs_eventloop_lag_max_seconds (\S+)/m.exec(text);
      if (!m) throw new Error('no nodejs_eventloop_lag_max_seconds in /metrics');
      return Number(m[1]) * 1000;
    };
    const stalls = {};
    for (const [name, token] of [['searchSmall', reader.token], ['searchBig', chatter.token]]) {
      await stallMax();
      for (let i = 0; i < 20; i++) await jsonRequest(server.url, 'GET', search, { token, agent });
      stalls[name] = await stallMax();
    }
    await stallMax();
    const removed = await jsonRequest(server.url, 'DELETE', `/api/v1/conversations/${big}`, { token: chatter.token, agent });
    if (removed.status !== 204) throw new Error(`DELETE the long chat: ${removed.status}`);
    stalls.deleteBig = await stallMax();
    // Uploads into a session holding ~95 MB of extracted text (what its quota counts) and into an empty one, in turn.
    const [filer, empty] = [await createSession(server.url, agent), await createSession(server.url, agent)];
    const nFiles = ctx.opt('quota-files', 280, 280);
    const fileChars = 340_000;
    await seedFiles(server, filer.id, nFiles, fileChars);
    const uploads = { empty: [], full: [] };
    const uploadReps = ctx.opt('quota-uploads', 20, 6);
    for (let i = -2; i < uploadReps; i++) {
      const e = await uploadText(server.url, empty.token, i);
      const f = await uploadText(server.url, filer.token, i);
      if (i >= 0) { uploads.empty.push(e); uploads.full.push(f); }
    }
    await stallMax();
    for (let i = 0; i < 5; i++) await uploadText(server.url, filer.token, 100 + i);
    stalls.uploadFull = await stallMax();
    ctx.details[`long_${dialect}`] = {
      stalls,
      nMessages, nConversations, reps,
      smallChat: { median: median(tSmall), p99: p99(tSmall) }, bigChat: { median: median(tBig), p99: p99(tBig) },
      olderPageMiddle: { median: median(tOlder), p99: p99(tOlder) },
      fewConversations: { median: median(tFew), p99: p99(tFew) }, manyConversations: { median: median(tMany), p99: p99(tMany) },
      searchSmall: { median: median(tSearchSmall), p99: p99(tSearchSmall) }, searchBig: { median: median(tSearchBig), p99: p99(tSearchBig) },
      uploads: { nFiles, fileChars, empty: { median: median(uploads.empty), p99: p99(uploads.empty) }, full: { median: median(uploads.full), p99: p99(uploads.full) } },
    };
    const uploadRatio = median(uploads.full) / median(uploads.empty);
    const searchRatio = median(tSearchBig) / median(tSearchSmall);
    const chatRatio = median(tBig) / median(tSmall);
    const listRatio = median(tMany) / median(tFew);
    return [
      { id: '4', name: `Latest page of a ${nMessages.toLocaleString('en')}-message chat, ${dialect}`, value: chatRatio, unit: '×',
        baseline: `20-message chat ${fmt(median(tSmall), 'ms')} → ${fmt(median(tBig), 'ms')} (p99 ${fmt(p99(tSmall))} → ${fmt(p99(tBig))} ms)`,
        target: '< 2×', pass: chatRatio < 2 },
      { id: '4', name: `First page of ${nConversations.toLocaleString('en')} conversations, ${dialect}`, value: listRatio, unit: '×',
        baseline: `5 conversations ${fmt(median(tFew), 'ms')} → ${fmt(median(tMany), 'ms')} (p99 ${fmt(p99(tFew))} → ${fmt(p99(tMany))} ms)`,
        target: '< 2×', pass: listRatio < 2 },
      { id: '4', name: `Search by message text, a session of ${(nMessages + 20).toLocaleString('en')} messages, ${dialect}`, value: searchRatio, unit: '×',
        baseline: `20 messages ${fmt(median(tSearchSmall), 'ms')} → ${fmt(median(tSearchBig), 'ms')} (p99 ${fmt(p99(tSearchSmall))} → ${fmt(p99(tSearchBig))} ms); reads every message`,
        target: '–', pass: null },
      { id: '4', name: `Longest event-loop stall: 20 searches of that session / deleting its ${nMessages.toLocaleString('en')}-message chat, ${dialect}`,
        value: Math.max(stalls.searchBig, stalls.deleteBig), unit: 'ms',
        baseline: `searches ${fmt(stalls.searchBig)} ms, delete ${fmt(stalls.deleteBig)} ms; 20 searches of a 20-message session ${fmt(stalls.searchSmall)} ms`,
        target: '–', pass: null },
      { id: '4', name: `A text file uploaded into a session holding ${fmt((nFiles * fileChars) / 1e6)} MB of extracted text (${nFiles} files; quota 100 MB), ${dialect}`,
        value: uploadRatio, unit: '×',
        baseline: `empty session ${fmt(median(uploads.empty), 'ms')} → ${fmt(median(uploads.full), 'ms')} (median of ${uploadReps}); longest event-loop stall over 5 such uploads ${fmt(stalls.uploadFull)} ms`,
        target: '< 2×', pass: uploadRatio < 2 },
    ];
  } finally {
    agent.destroy();
    await server.stop();
  }
}

export async function run(ctx) {
  const rows = await measure(ctx, 'SQLite', {}, (server, sessionId, counts) => seedSqlite(join(server.dir, 'parley.sqlite'), sessionId, counts),
    (server, sessionId, n, chars) => seedSqliteFiles(join(server.dir, 'parley.sqlite'), sessionId, n, chars));
  const adminUrl = ctx.opt('pg-url', 'postgres://postgres@127.0.0.1:5432/test');
  if (adminUrl === 'none') return [...rows, { id: '4', name: 'Long chats, PostgreSQL', skipped: '--pg-url=none' }];
  let db;
  try {
    db = await scratchPostgres(adminUrl, `parley_bench_${process.pid}`);
  } catch (err) {
    return [...rows, { id: '4', name: 'Long chats, PostgreSQL', skipped: `PostgreSQL unreachable (${err.message})` }];
  }
  try {
    rows.push(...await measure(ctx, 'PostgreSQL', { DATABASE_URL: db.url }, (_server, sessionId, counts) => seedPostgres(db.url, sessionId, counts),
      (_server, sessionId, n, chars) => seedPostgresFiles(db.url, sessionId, n, chars)));
  } finally {
    await db.drop();
  }
  return rows;
}
