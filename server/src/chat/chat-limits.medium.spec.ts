import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { type ChatHarness, createChatHarness } from '../testing/chat-harness.js';
import { dialects } from '../testing/dialects.js';
import { tokensOf } from '../testing/sse-client.js';
import { sleep, waitFor } from '../testing/wait.js';
import { FALLBACK_TEXTS } from './fallback-texts.js';
import { MAX_QUEUED_CHARS, STALL_HEARTBEATS } from './sse-writer.js';
import { StreamLimit } from './stream-limit.js';

const readers = dialects().flatMap((dialect) => [[dialect, 'true'], [dialect, 'false']] as const);

describe.each(readers)('reply limits (MAX_REPLY_CHARS, UPSTREAM_MAX_DURATION_MS) on %s, UPSTREAM_WORKER=%s', (dialect, upstreamWorker) => {
  let h: ChatHarness;
  let token: string;
  beforeAll(async () => {
    // First byte and idle timeouts 500 ms (see the harness): a model that trickles faster runs on.
    h = await createChatHarness(dialect, { MAX_REPLY_CHARS: '5005', UPSTREAM_MAX_DURATION_MS: '1000', UPSTREAM_WORKER: upstreamWorker });
    token = (await h.t.newSession()).token;
  });
  afterAll(async () => { await h.close(); });

  it('cuts a reply that goes past MAX_REPLY_CHARS, however the model goes on: complete, finish_reason length, stored cut at the limit, upstream closed', async () => {
    const piece = '0123456789'.repeat(2);
    h.fake.on('ignores max_tokens', { tokens: [piece], endless: true });
    const conn = h.send(token, { message: 'ignores max_tokens' });
    const events = await conn.all();
    const expected = piece.repeat(250) + '01234';
    expect(expected).toHaveLength(5005);
    expect(tokensOf(events)).toBe(expected);
    const final = events.at(-1)!.data;
    expect(final).toMatchObject({ type: 'done', finished: true, status: 'complete', finish_reason: 'length' });
    const row = await h.message(final.message_id as string);
    expect(row).toMatchObject({ status: 'complete', finishReason: 'length', errorCode: null, content: expected, leaseExpiresAt: null });
    await waitFor('the upstream connection to close', () => h.fake.openResponses === 0, 5_000, 20);

    // The conversation is free again: the next question is answered, not refused with 409.
    h.fake.on('and then', { tokens: ['fine'] });
    const next = await h.send(token, { message: 'and then', conversation_id: events[0].data.conversation_id }).all();
    expect(next.at(-1)!.data).toMatchObject({ type: 'done', status: 'complete', finish_reason: 'stop' });
  });

  it('ends a reply still running at UPSTREAM_MAX_DURATION_MS like one cut at its length, its text kept', async () => {
    h.fake.on('trickles', { tokens: ['drip '], endless: true, tokenDelayMs: 50 });
    const startedAt = Date.now();
    const events = await h.send(token, { message: 'trickles' }).all();
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(950);
    const final = events.at(-1)!.data;
    expect(final).toMatchObject({ type: 'done', status: 'complete', finish_reason: 'length' });
    const text = tokensOf(events);
    expect(text).toMatch(/^(drip )+$/);
    expect(await h.message(final.message_id as string)).toMatchObject({ status: 'complete', finishReason: 'length', content: text, leaseExpiresAt: null });
    await waitFor('the upstream connection to close', () => h.fake.openResponses === 0, 5_000, 20);
  });

  it('fails a reply that has no text yet at UPSTREAM_MAX_DURATION_MS (a model that sends only empty deltas) with OPENAI_ERROR', async () => {
    h.fake.on('keeps alive', { tokens: [''], endless: true, tokenDelayMs: 50 });
    const events = await h.send(token, { message: 'keeps alive' }).all();
    const final = events.at(-1)!.data;
    expect(final).toEqual({
      type: 'error', finished: true, message_id: expect.any(String), status: 'failed', code: 'OPENAI_ERROR', error: FALLBACK_TEXTS.openaiUnavailable,
    });
    expect(await h.message(final.message_id as string)).toMatchObject({ status: 'failed', errorCode: 'OPENAI_ERROR', content: '', leaseExpiresAt: null });
    await waitFor('the upstream connection to close', () => h.fake.openResponses === 0, 5_000, 20);
  });
});

describe.each(dialects())('a reader that does not read on %s', (dialect) => {
  let h: ChatHarness;
  beforeAll(async () => {
    // Heartbeats every 250 ms: a reader that reads nothing is cut after STALL_HEARTBEATS of them.
    h = await createChatHarness(dialect, {
      MAX_REPLY_CHARS: '8000000', STREAM_HEARTBEAT_MS: '250', STREAM_MAX_PER_SESSION: '1', STREAM_FLUSH_INTERVAL_MS: '250',
    });
  });
  afterAll(async () => { await h.close(); });

  it('holds a bounded part of a long finished answer for it, and its stream slot until it is cut for not reading', async () => {
    const session = await h.t.newSession();
    // 8 M characters: more than the loopback connection's buffers take, so most of a replay waits in the server.
    const piece = `${'x'.repeat(7999)} `;
    h.fake.on('a long answer', { tokens: [piece], endless: true });
    const asker = h.send(session.token, { message: 'a long answer' });
    const [start] = await asker.until((e) => e.length >= 1);
    asker.destroy();
    const messageId = start.data.message_id as string;
    const row = await h.waitForRow(messageId, (m) => m.status !== 'streaming', 30_000);
    expect(row).toMatchObject({ status: 'complete', finishReason: 'length' });
    expect(row.content).toHaveLength(8_000_000);
    const limit = h.t.app.get(StreamLimit);
    await waitFor('the asking stream to give its slot back', () => limit.openFor(session.id) === 0, 5_000, 20);

    const responses: ServerResponse[] = [];
    const server = h.t.app.getHttpServer();
    const capture = (req: IncomingMessage, res: ServerResponse): void => { if (req.url?.startsWith('/api/v1/chat/streams/')) responses.push(res); };
    server.prependListener('request', capture);
    const path = `/api/v1/chat/streams/${messageId}`;
    const reader = connect(Number(new URL(h.url).port), '127.0.0.1');
    try {
      reader.pause();
      reader.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${session.token}\r\n\r\n`);
      const response = await waitFor('the follow to start', () => responses[0], 5_000, 5);
      let most = 0;
      let backedUpAt = 0;
      let wasRefused = false;
      const deadline = Date.now() + 15_000;
      // Until it is cut (or the test gives up: nothing waited, or it was never cut).
      while (!response.destroyed && response.socket && Date.now() < deadline) {
        const waiting = response.socket.writableLength;
        most = Math.max(most, waiting);
        if (waiting > 0 && backedUpAt === 0) {
          backedUpAt = Date.now();
          // Its answer was all replayed to the stream at once, yet the session's one slot is still held.
          expect(limit.openFor(session.id)).toBe(1);
          const refused = h.get(session.token, path);
          await refused.all();
          wasRefused = refused.status === 429;
        }
        await sleep(5);
      }
      expect(backedUpAt).toBeGreaterThan(0);
      expect(wasRefused).toBe(true);
      expect(most).toBeLessThanOrEqual(MAX_QUEUED_CHARS + piece.length + 200);
      expect(response.destroyed).toBe(true);
      // Cut for not reading after STALL_HEARTBEATS heartbeats, not at once.
      expect(Date.now() - backedUpAt).toBeGreaterThanOrEqual((STALL_HEARTBEATS - 1) * 250);
      await waitFor('the cut stream to give its slot back', () => limit.openFor(session.id) === 0, 5_000, 20);
    } finally {
      server.off('request', capture);
      reader.destroy();
    }

    // A reader that reads gets the whole answer, in bounded pieces.
    const whole = await h.get(session.token, path).all();
    expect(tokensOf(whole)).toBe(row.content);
    expect(whole.at(-1)!.data).toMatchObject({ type: 'done', status: 'complete', finish_reason: 'length' });
  });
});
