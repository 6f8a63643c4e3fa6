// 6. Write concurrency on SQLite: many sessions sending at once (each its own conversation,
// messages one after another, as a person would). Zero errors, exact rows, and throughput
// against one session sending alone in the same run.
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { pool } from '../lib/api.mjs';
import { directive } from '../lib/load.mjs';
import { plainTokens } from '../lib/reply-text.mjs';
import { startServer } from '../lib/server.mjs';
import { keepAliveAgent, streamRequest } from '../lib/sse.mjs';
import { fmt } from '../lib/table.mjs';
import { startUpstream } from '../lib/upstream.mjs';
import { relayEnv, sessionsFor } from './relay.mjs';

export const title = 'Write concurrency (SQLite)';

async function sendSeries(server, agent, session, sends, shape) {
  let conversationId;
  const outcomes = [];
  for (let i = 0; i < sends; i++) {
    const r = await streamRequest({
      url: `${server.url}/api/v1/chat`, agent, headers: { authorization: `Bearer ${session.token}` },
      body: { message: `Message ${i} ${directive(shape)}`, ...(conversationId ? { conversation_id: conversationId } : {}) },
    });
    conversationId ??= r.start?.conversation_id;
    outcomes.push(r.status === 200 && r.final?.status === 'complete' && !r.error ? 'ok' : (r.error ?? `status ${r.status} ${r.final?.status}`));
  }
  return { conversationId, outcomes };
}

export async function run(ctx) {
  const writers = ctx.opt('writers', 50, 50);
  const sendsEach = ctx.opt('writer-sends', 10, 3);
  const shape = { tokens: ctx.opt('writer-tokens', 20), intervalMs: 1 };
  const replyText = plainTokens(shape.tokens).join('');
  const upstream = await startUpstream();
  const server = await startServer({ dist: ctx.dist, env: relayEnv(upstream), label: 'writers' });
  const agent = keepAliveAgent();
  try {
    const sessions = await sessionsFor(server, agent, writers + 1);
    // Baseline: one session alone, the same number of sends per session.
    await sendSeries(server, agent, sessions[writers], 2, shape); // warm-up
    const t1 = performance.now();
    const alone = await sendSeries(server, agent, sessions[writers], sendsEach, shape);
    const aloneS = (performance.now() - t1) / 1000;
    const t0 = performance.now();
    const series = await pool(sessions.slice(0, writers), writers, (s) => sendSeries(server, agent, s, sendsEach, shape));
    const allS = (performance.now() - t0) / 1000;

    const errors = {};
    for (const o of series.flatMap((s) => s.outcomes).concat(alone.outcomes)) if (o !== 'ok') errors[o] = (errors[o] ?? 0) + 1;
    // On SQLite a reply's final event leaves just before its row is written, in the same synchronous run
    // (generation.service.ts): any request the server answers after it finds the row, but this reader of the
    // file is another process, and could read it before that write (one reply of 150 not yet final, in
    // two quick runs of eight). One round trip to the server first: its answer comes after that write.
    await fetch(`${server.url}/api/v1/health/live`);
    const db = new Database(join(server.dir, 'parley.sqlite'), { readonly: true, fileMustExist: true });
    const ids = series.map((s) => s.conversationId).filter(Boolean);
    const ph = ids.map(() => '?').join(',');
    const perConv = db.prepare(`SELECT conversation_id AS id, count(*) AS n, min(position) AS lo, max(position) AS hi,
      sum(role = 'assistant' AND status = 'complete' AND content = ?) AS good, max(c.message_count) AS mc
      FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE conversation_id IN (${ph}) GROUP BY conversation_id`).all(replyText, ...ids);
    const expected = 2 * sendsEach;
    const badConversations = perConv.filter((c) => c.n !== expected || c.lo !== 0 || c.hi !== expected - 1 || c.good !== sendsEach || c.mc !== expected);
    // What a wrong conversation's replies hold, to tell a lost write from a slow one.
    const replies = db.prepare(`SELECT position, status, length(content) AS chars, content = ? AS whole, error_code AS errorCode, finish_reason AS finishReason
      FROM messages WHERE conversation_id = ? AND role = 'assistant' ORDER BY position`);
    for (const c of badConversations.slice(0, 5)) c.replies = replies.all(replyText, c.id);
    db.close();
    const rowsOk = ids.length === writers && perConv.length === writers && badConversations.length === 0;
    const errorCount = Object.values(errors).reduce((a, b) => a + b, 0);
    const aloneRate = sendsEach / aloneS;
    const allRate = (writers * sendsEach) / allS;
    ctx.details.writers = { writers, sendsEach, aloneS, allS, aloneRate, allRate, errors, badConversations: badConversations.slice(0, 5) };
    // The server's warnings, when rows are wrong (a reply's final write that failed says so there).
    if (!rowsOk) ctx.details.writers.serverWarnings = server.log().split('\n').filter((l) => /"level":(40|50|60)/.test(l)).slice(0, 20);
    return [
      { id: '6', name: `${writers} sessions × ${sendsEach} sends at once: errors, exact rows`, value: `${errorCount} errors, rows ${rowsOk ? 'exact' : 'WRONG'}`,
        baseline: `${writers * expected} messages in ${ids.length} conversations, positions 0..${expected - 1}, replies complete and whole`,
        target: '0 errors, exact', pass: errorCount === 0 && rowsOk },
      { id: '6', name: `Send throughput, ${writers} sessions vs 1`, value: allRate / aloneRate, unit: '×',
        baseline: `1 session ${fmt(aloneRate)} sends/s; ${writers} sessions ${fmt(allRate)} sends/s (${shape.tokens}-token replies)`,
        target: '–', pass: null },
    ];
  } finally {
    agent.destroy();
    await server.stop();
    await upstream.stop();
  }
}
