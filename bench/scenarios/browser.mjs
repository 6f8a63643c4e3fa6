// 7. Browser: in Chromium, streaming a long Markdown answer with code blocks (main-thread busy time
// per second and the longest task, from a Chrome trace), against the same number of plain-word
// tokens at the same pace; and opening a 1,000-message conversation until its last message is
// visible, against a 10-message one.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from '@playwright/test';
import { directive } from '../lib/load.mjs';
import { codeAnswer } from '../lib/reply-text.mjs';
import { seedSqlite } from '../lib/seed.mjs';
import { startServer } from '../lib/server.mjs';
import { median } from '../lib/stats.mjs';
import { fmt } from '../lib/table.mjs';
import { rendererTasks } from '../lib/trace-tasks.mjs';
import { startUpstream } from '../lib/upstream.mjs';
import { relayEnv } from './relay.mjs';

export const title = 'Browser (streaming render, long conversation)';

// BENCH_TRACE_JS=1 adds V8's sampling profiler to the traces (which functions ran in the longest tasks: `node
// bench/lib/trace-tasks.mjs TRACE`); it slows the page down, so the figures of such a run are not comparable.
const TRACE_CATEGORIES = ['devtools.timeline', 'disabled-by-default-devtools.timeline', 'toplevel',
  ...(process.env.BENCH_TRACE_JS ? ['disabled-by-default-v8.cpu_profiler'] : [])];

const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];

function sessionIdFromCookie(cookies) {
  const token = cookies.find((c) => c.name === 'session_token')?.value;
  if (!token) throw new Error('the SPA did not get a session cookie');
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8')).sid;
}

async function streamAnswer(browser, page, baseUrl, shape, traceFile) {
  await page.goto(`${baseUrl}/`);
  const input = page.locator('textarea[aria-label="Message"]');
  await input.waitFor();
  await input.fill(`Write it up ${directive(shape)}`);
  await browser.startTracing(page, { path: traceFile, categories: TRACE_CATEGORIES });
  const t0 = Date.now();
  await input.press('Enter');
  const answer = page.locator('article[aria-label="Answer"]').last();
  await answer.waitFor();
  await page.waitForFunction(() => {
    const all = document.querySelectorAll('article[aria-label="Answer"]');
    const last = all[all.length - 1];
    return last && last.getAttribute('data-status') === 'complete' && last.getAttribute('aria-busy') !== 'true';
  }, undefined, { timeout: shape.tokens * shape.intervalMs * 4 + 60_000, polling: 250 });
  const wallMs = Date.now() - t0;
  const buf = await browser.stopTracing();
  const tasks = rendererTasks(JSON.parse(buf.toString('utf8')));
  if (tasks.length === 0) throw new Error('no renderer main-thread tasks in the trace');
  // The streaming window: from the first to the last task that follows the send.
  const from = tasks[0].ts;
  const to = tasks.at(-1).ts + tasks.at(-1).dur;
  const busy = tasks.reduce((a, t) => a + t.dur, 0);
  const longest = tasks.reduce((a, t) => (t.dur > a.dur ? t : a), tasks[0]);
  const over50 = tasks.filter((t) => t.dur > 50).length;
  const longestCpuMs = tasks.reduce((a, t) => Math.max(a, t.cpu), 0);
  const textLength = (await answer.innerText()).length;
  return { wallMs, windowMs: to - from, busyMsPerS: (busy / (to - from)) * 1000, longestMs: longest.dur, longestRanMs: longest.cpu, longestCpuMs, longestAtS: (longest.ts - from) / 1000, over50, tasks: tasks.length, textLength };
}

/**
 * Opens a conversation from inside the app (the router, as a click in the sidebar does: the page and
 * its loaded code, highlight.js included, stay) with a trace running until `settleMs` after its last
 * message is visible: the longest task.
 */
async function openTraced(browser, page, url, needle, settleMs, traceFile) {
  await browser.startTracing(page, { path: traceFile, categories: TRACE_CATEGORIES });
  await navigateInApp(page, url);
  const visibleMs = await lastVisibleAt(page, needle);
  await page.waitForTimeout(settleMs);
  const tasks = rendererTasks(JSON.parse((await browser.stopTracing()).toString('utf8')));
  const longest = tasks.reduce((a, t) => (t.dur > a.dur ? t : a), { dur: 0, cpu: 0 });
  // All the main thread's running time while the conversation opened and settled (the longest task
  // is what a reader feels; this is the work, less noisy from run to run).
  const ranMs = tasks.reduce((a, t) => a + t.cpu, 0);
  return { visibleMs, longestMs: longest.dur, longestRanMs: longest.cpu, longestCpuMs: tasks.reduce((a, t) => Math.max(a, t.cpu), 0), over50: tasks.filter((t) => t.dur > 50).length, ranMs };
}

/**
 * Scrolls an open conversation to its top, which loads its older page, with a trace running until `settleMs`
 * after `expected` messages are in the thread: the longest task, and when the last of them was rendered.
 */
async function olderTraced(browser, page, expected, settleMs, traceFile) {
  await browser.startTracing(page, { path: traceFile, categories: TRACE_CATEGORIES });
  const from = await page.locator('.scroller').evaluate((el) => {
    el.scrollTo({ top: 0 });
    return performance.now();
  });
  const shownAt = await page.waitForFunction((n) => (document.querySelectorAll('article.msg').length >= n ? performance.now() : false), expected,
    { polling: 'raf', timeout: 30_000 }).then((h) => h.jsonValue());
  await page.waitForTimeout(settleMs);
  const tasks = rendererTasks(JSON.parse((await browser.stopTracing()).toString('utf8')));
  const longest = tasks.reduce((a, t) => (t.dur > a.dur ? t : a), { dur: 0, cpu: 0 });
  return { shownMs: shownAt - from, longestMs: longest.dur, longestRanMs: longest.cpu, over50: tasks.filter((t) => t.dur > 50).length,
    ranMs: tasks.reduce((a, t) => a + t.cpu, 0) };
}

/**
 * Opens a conversation at one of its messages (`?m=`, as a search result does) from inside the app, then
 * scrolls down until `lastNeedle` is in the thread (its later pages loaded as the reader reaches the
 * bottom), with a trace running until `settleMs` after: when the message was in view, the longest task.
 */
async function matchTraced(browser, page, url, lastNeedle, settleMs, traceFile) {
  await browser.startTracing(page, { path: traceFile, categories: TRACE_CATEGORIES });
  const from = await page.evaluate(() => performance.now());
  await navigateInApp(page, url);
  const focusedAt = await page.waitForFunction(() => {
    const focused = document.querySelector('app-message-item.is-focused');
    const r = focused?.getBoundingClientRect();
    return r && r.height > 0 && r.top >= 0 && r.top < window.innerHeight ? performance.now() : false;
  }, undefined, { polling: 'raf', timeout: 30_000 }).then((h) => h.jsonValue());
  await page.waitForTimeout(settleMs);
  let pages = 0;
  for (; pages < 50; pages++) {
    const isAll = await page.evaluate((n) => [...document.querySelectorAll('article.msg')].some((a) => a.textContent.includes(n)), lastNeedle);
    if (isAll) break;
    await page.locator('.scroller').evaluate((el) => el.scrollTo({ top: el.scrollHeight }));
    await page.waitForTimeout(300);
  }
  await page.waitForTimeout(settleMs);
  const tasks = rendererTasks(JSON.parse((await browser.stopTracing()).toString('utf8')));
  const longest = tasks.reduce((a, t) => (t.dur > a.dur ? t : a), { dur: 0, cpu: 0 });
  return { focusedMs: focusedAt - from, scrolls: pages, longestMs: longest.dur, longestRanMs: longest.cpu, over50: tasks.filter((t) => t.dur > 50).length,
    ranMs: tasks.reduce((a, t) => a + t.cpu, 0) };
}

/** The id of the message at `position` of a conversation, read through the API with the page's own session. */
async function messageIdAt(page, conversationId, position) {
  return page.evaluate(async ({ id, at }) => {
    const res = await fetch(`/api/v1/conversations/${id}/messages?before=${at + 1}&limit=1`);
    return (await res.json()).messages[0].id;
  }, { id: conversationId, at: position });
}

/** Goes to `url` through the app's router, as a click in the sidebar does. */
async function navigateInApp(page, url) {
  await page.evaluate((path) => {
    history.pushState(null, '', path);
    dispatchEvent(new PopStateEvent('popstate', { state: null }));
  }, new URL(url).pathname + new URL(url).search);
}

/** Opens a conversation from inside the app and waits until its last message is visible and `settleMs` more. */
async function openInApp(page, url, needle, settleMs) {
  await navigateInApp(page, url);
  await lastVisibleAt(page, needle);
  await page.waitForTimeout(settleMs);
}

async function timeToLastVisible(page, url, needle) {
  await page.goto(url);
  return lastVisibleAt(page, needle);
}

/** performance.now() once the last message, holding `needle`, is visible at the bottom. */
async function lastVisibleAt(page, needle) {
  const handle = await page.waitForFunction((n) => {
    const all = document.querySelectorAll('article.msg');
    const last = all[all.length - 1];
    if (!last || !last.textContent.includes(n)) return false;
    const r = last.getBoundingClientRect();
    return r.height > 0 && r.top < window.innerHeight && r.bottom <= window.innerHeight + 2 ? performance.now() : false;
  }, needle, { polling: 'raf', timeout: 30_000 });
  return handle.jsonValue();
}

export async function run(ctx) {
  const clientDir = join(ctx.dist, 'client', 'browser');
  if (!existsSync(join(clientDir, 'index.html'))) {
    return [{ id: '7', name: title, skipped: `no SPA build at ${clientDir} (npm run build:client, or --build-client)` }];
  }
  const executablePath = ctx.opt('chromium', process.env.CHROMIUM_PATH ?? '/usr/bin/chromium');
  const tokens = ctx.opt('browser-tokens', 10_000, 600);
  const codeTokens = ctx.opt('browser-code-tokens', 6_000, 600);
  const intervalMs = ctx.opt('browser-interval-ms', 4);
  const nMessages = ctx.opt('browser-messages', 1_000, 1_000);
  const reps = ctx.opt('browser-reps', 5, 3);
  // How long a trace runs on after the last message is visible (late highlighting, idle callbacks).
  const settleMs = ctx.opt('browser-settle-ms', 1500, 500);
  const upstream = await startUpstream();
  const server = await startServer({ dist: ctx.dist, env: { ...relayEnv(upstream), STREAM_HEARTBEAT_MS: '15000' }, label: 'browser' });
  // launch() always starts from a fresh temporary profile (user-data dir) of its own.
  const browser = await chromium.launch({ executablePath, args: ARGS, headless: true });
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const traces = join(ctx.resultsDir, `${ctx.ts}-trace`);
    const plain = await streamAnswer(browser, page, server.url, { tokens, intervalMs, reply: 'plain' }, `${traces}-plain.json`);
    const md = await streamAnswer(browser, page, server.url, { tokens, intervalMs, reply: 'markdown' }, `${traces}-markdown.json`);
    // An answer that is one long code block: the open block, highlighted, grows for the whole stream.
    const code = await streamAnswer(browser, page, server.url, { tokens: codeTokens, intervalMs, reply: 'code' }, `${traces}-code.json`);
    ctx.log('browser streaming', JSON.stringify({ plain, md, code }));

    const sid = sessionIdFromCookie(await context.cookies());
    const [big] = seedSqlite(join(server.dir, 'parley.sqlite'), sid, [nMessages], Date.UTC(2026, 1, 1));
    const [small] = seedSqlite(join(server.dir, 'parley.sqlite'), sid, [10], Date.UTC(2026, 1, 2));
    const tBig = [];
    const tSmall = [];
    for (let i = 0; i < reps; i++) {
      tSmall.push(await timeToLastVisible(page, `${server.url}/c/${small}`, '(#9)'));
      tBig.push(await timeToLastVisible(page, `${server.url}/c/${big}`, `(#${nMessages - 1})`));
    }
    // A conversation whose answers each hold an 80-line code block, against the same one in prose.
    const codeLines = ctx.opt('browser-code-lines', 80, 80);
    // Another such conversation is opened first, so highlight.js is loaded (as after any code block).
    // Every answer's code is its own (codeAnswer's second argument), in every conversation: see reply-text.mjs.
    const codeOf = (base) => ({ assistantText: (position) => codeAnswer(codeLines, base + position) });
    const [warmChat] = seedSqlite(join(server.dir, 'parley.sqlite'), sid, [50], Date.UTC(2026, 1, 3), codeOf(1000));
    const [codeChat] = seedSqlite(join(server.dir, 'parley.sqlite'), sid, [50], Date.UTC(2026, 1, 3, 1), codeOf(2000));
    const [proseChat] = seedSqlite(join(server.dir, 'parley.sqlite'), sid, [50], Date.UTC(2026, 1, 4));
    await timeToLastVisible(page, `${server.url}/c/${warmChat}`, '(#49)');
    await page.waitForTimeout(settleMs);
    const openProse = await openTraced(browser, page, `${server.url}/c/${proseChat}`, '(#49)', settleMs, `${traces}-open-prose.json`);
    const openCode = await openTraced(browser, page, `${server.url}/c/${codeChat}`, '(#49)', settleMs, `${traces}-open-code.json`);
    // Scrolled to the top, a 100-message conversation loads its older 50 (code answers, and the same in prose).
    const [olderCodeChat] = seedSqlite(join(server.dir, 'parley.sqlite'), sid, [100], Date.UTC(2026, 1, 5), codeOf(3000));
    const [olderProseChat] = seedSqlite(join(server.dir, 'parley.sqlite'), sid, [100], Date.UTC(2026, 1, 6));
    await openInApp(page, `${server.url}/c/${olderProseChat}`, '(#99)', settleMs);
    const olderProse = await olderTraced(browser, page, 100, settleMs, `${traces}-older-prose.json`);
    await openInApp(page, `${server.url}/c/${olderCodeChat}`, '(#99)', settleMs);
    const olderCode = await olderTraced(browser, page, 100, settleMs, `${traces}-older-code.json`);
    // A search match at message 20 of another such conversation: opened there, then read on to its end.
    const [matchCodeChat] = seedSqlite(join(server.dir, 'parley.sqlite'), sid, [100], Date.UTC(2026, 1, 7), codeOf(4000));
    const matchUrl = `${server.url}/c/${matchCodeChat}?m=${await messageIdAt(page, matchCodeChat, 20)}`;
    const atMatch = await matchTraced(browser, page, matchUrl, '(#99)', settleMs, `${traces}-match-code.json`);
    ctx.details.browser = { tokens, codeTokens, intervalMs, plain, markdown: md, code, openMs: { small: tSmall, big: tBig }, openProse, openCode, olderProse, olderCode, atMatch, traces };
    return [
      { id: '7', name: `Streaming a ${tokens.toLocaleString('en')}-token Markdown answer: longest main-thread task`, value: md.longestMs, unit: 'ms',
        baseline: `plain words: longest ${fmt(plain.longestMs, 'ms')}; Markdown: ${md.over50} tasks > 50 ms of ${md.tasks} (longest at ${fmt(md.longestAtS, 's')}, `
          + `running ${fmt(md.longestRanMs, 'ms')} of it; the most running time of any task ${fmt(md.longestCpuMs, 'ms')}, plain words ${fmt(plain.longestCpuMs, 'ms')})`,
        target: '≤ 50 ms', pass: md.longestMs <= 50 },
      { id: '7', name: 'Streaming it: main-thread busy time per second', value: md.busyMsPerS, unit: 'ms/s',
        baseline: `plain words ${fmt(plain.busyMsPerS, 'ms/s')} (${fmt(md.busyMsPerS / plain.busyMsPerS)}×); ${fmt(1000 / intervalMs)} tokens/s, ${fmt(md.windowMs / 1000, 's')}`,
        target: '–', pass: null },
      { id: '7', name: `Streaming a ${codeTokens.toLocaleString('en')}-token answer that is one code block: longest main-thread task`, value: code.longestMs, unit: 'ms',
        baseline: `${fmt(code.textLength / 1000)} K characters; ${code.over50} tasks > 50 ms of ${code.tasks}, running ${fmt(code.longestRanMs, 'ms')} of the longest; `
          + `the most running time of any task ${fmt(code.longestCpuMs, 'ms')}; busy ${fmt(code.busyMsPerS, 'ms/s')}`,
        target: '≤ 50 ms', pass: code.longestMs <= 50 },
      { id: '7', name: `Opening a 50-message conversation whose answers hold ${codeLines}-line code blocks: longest main-thread task`, value: openCode.longestMs, unit: 'ms',
        baseline: `the same in prose: ${fmt(openProse.longestMs, 'ms')}; running ${fmt(openCode.longestRanMs, 'ms')} of the longest, ${openCode.over50} tasks > 50 ms; `
          + `main thread running ${fmt(openCode.ranMs, 'ms')} in all (prose ${fmt(openProse.ranMs, 'ms')}); `
          + `opened in the app with highlight.js loaded, traced until ${fmt(settleMs / 1000, 's')} after the last message is visible`,
        target: '≤ 50 ms', pass: openCode.longestMs <= 50 },
      { id: '7', name: `Scrolling to the top of a 100-message conversation of ${codeLines}-line code blocks: its older 50 loaded, longest main-thread task`, value: olderCode.longestMs, unit: 'ms',
        baseline: `the same in prose: ${fmt(olderProse.longestMs, 'ms')}; running ${fmt(olderCode.longestRanMs, 'ms')} of the longest, ${olderCode.over50} tasks > 50 ms; `
          + `all 100 in the thread ${fmt(olderCode.shownMs, 'ms')} after the scroll (prose ${fmt(olderProse.shownMs, 'ms')}); main thread running ${fmt(olderCode.ranMs, 'ms')} in all (prose ${fmt(olderProse.ranMs, 'ms')})`,
        target: '≤ 50 ms', pass: olderCode.longestMs <= 50 },
      { id: '7', name: `A search match at message 20 of a 100-message conversation of ${codeLines}-line code blocks: opened there, read on to the end, longest main-thread task`, value: atMatch.longestMs, unit: 'ms',
        baseline: `the match in view ${fmt(atMatch.focusedMs, 'ms')} after the navigation; the later messages loaded in ${atMatch.scrolls} scrolls to the bottom; `
          + `running ${fmt(atMatch.longestRanMs, 'ms')} of the longest, ${atMatch.over50} tasks > 50 ms; main thread running ${fmt(atMatch.ranMs, 'ms')} in all`,
        target: '≤ 50 ms', pass: atMatch.longestMs <= 50 },
      { id: '7', name: `Opening a ${nMessages.toLocaleString('en')}-message conversation until the last message is visible`, value: median(tBig) / median(tSmall), unit: '×',
        baseline: `10 messages ${fmt(median(tSmall), 'ms')} → ${fmt(median(tBig), 'ms')} (navigation start to visible, median of ${reps})`,
        target: '< 2×', pass: median(tBig) / median(tSmall) < 2 },
    ];
  } finally {
    await browser.close();
    await server.stop();
    await upstream.stop();
  }
}
