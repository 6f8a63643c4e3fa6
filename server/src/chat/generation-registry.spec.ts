import { lastValueFrom, toArray } from 'rxjs';
import type { ChatEvent, SequencedEvent } from './chat-events.js';
import { InMemoryGenerationRegistry, REPLAY_RETENTION_MS } from './generation-registry.js';
import { formatSseEvent } from './sse-writer.js';

const start: ChatEvent = { type: 'start', conversation_id: 'c', user_message_id: 'u', message_id: 'm', provider: 'offline', model: 'x', finished: false };
const done: ChatEvent = { type: 'done', finished: true, message_id: 'm', status: 'complete', finish_reason: 'stop', usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 } };
const token = (text: string, ms: number): ChatEvent => ({ type: 'token', token: text, finished: false, timestamp: new Date(ms).toISOString() });
const plain = (events: SequencedEvent[]) => events.map((e) => ({ id: e.id, event: e.event }));
const wire = (events: SequencedEvent[]) => events.map((e) => formatSseEvent(e)).join('');
const jsonWire = (events: SequencedEvent[]) => events.map((e) => `id: ${e.id}\ndata: ${JSON.stringify(e.event)}\n\n`).join('');

describe('InMemoryGenerationRegistry', () => {
  // Tokens of every shape: empty-looking text, unicode and surrogate pairs, JSON-hostile
  // characters, shared and distinct timestamps, one far from the channel's start.
  const texts = ['Hel', 'lo', ' 🙂', '"q"\\', '\n', 'é', '', '𝔸b', 'x'.repeat(500)];
  const base = Date.now();
  const published: ChatEvent[] = [start, ...texts.map((t, i) => token(t, base + Math.floor(i / 2) * 7)), token('late', base + 86_400_000), done];

  function publishAll(registry: InMemoryGenerationRegistry, until = published.length): SequencedEvent[] {
    registry.open('m', 'c');
    return published.slice(0, until).map((e) => registry.publish('m', e));
  }

  it('replays a finished (compacted) answer exactly: the events after Last-Event-ID, once, same ids and JSON', async () => {
    const registry = new InMemoryGenerationRegistry();
    const live = publishAll(registry);
    expect(plain(live)).toEqual(published.map((event, id) => ({ id, event })));
    for (let after = -1; after < published.length; after++) {
      const replay = await lastValueFrom(registry.follow('m', after)!.pipe(toArray()));
      expect(plain(replay)).toEqual(plain(live).slice(after + 1));
      expect(wire(replay)).toBe(jsonWire(live.slice(after + 1)));
    }
    // Past the end: nothing, and closed (a RedisGenerationRegistry following it from another instance does the same).
    for (const after of [published.length, 999_999_999]) expect(await lastValueFrom(registry.follow('m', after)!.pipe(toArray()))).toEqual([]);
    expect(registry.activeIn('c')).toBeUndefined();
  });

  it('publishes tokens by publishToken exactly as by publish: same ids, same bytes, live and replayed', async () => {
    const viaEvents = new InMemoryGenerationRegistry();
    const expected = publishAll(viaEvents);
    const registry = new InMemoryGenerationRegistry();
    registry.open('m', 'c');
    const live = published.map((e) => (e.type === 'token' ? registry.publishToken('m', e.token, Date.parse(e.timestamp)) : registry.publish('m', e)));
    expect(wire(live)).toBe(jsonWire(expected));
    expect(plain(live)).toEqual(plain(expected));
    expect(JSON.parse(JSON.stringify(live))).toEqual(plain(expected));
    const replay = await lastValueFrom(registry.follow('m', 3)!.pipe(toArray()));
    expect(wire(replay)).toBe(jsonWire(expected.slice(4)));
  });

  it('resumes a live answer from Last-Event-ID, then continues live without a gap or a duplicate', async () => {
    const registry = new InMemoryGenerationRegistry();
    publishAll(registry, 5);
    const resumed = lastValueFrom(registry.follow('m', 2)!.pipe(toArray()));
    published.slice(5).forEach((e) => registry.publish('m', e));
    const got = await resumed;
    expect(got.map((e) => e.id)).toEqual(Array.from({ length: published.length - 3 }, (_, i) => i + 3));
    expect(plain(got).map((e) => e.event)).toEqual(published.slice(3));
    expect(wire(got)).toBe(jsonWire(got));
  });

  it('sends a live answer\'s follower only the events after a Last-Event-ID it has not reached yet', async () => {
    const registry = new InMemoryGenerationRegistry();
    publishAll(registry, 3);
    const ahead = lastValueFrom(registry.follow('m', 6)!.pipe(toArray()));
    const far = lastValueFrom(registry.follow('m', 999_999_999)!.pipe(toArray()));
    published.slice(3).forEach((e) => registry.publish('m', e));
    expect((await ahead).map((e) => e.id)).toEqual(Array.from({ length: published.length - 7 }, (_, i) => i + 7));
    expect(await far).toEqual([]); // as for a finished answer
  });

  it('keeps an event it cannot rebuild exactly (an unusual timestamp) as it was', async () => {
    const registry = new InMemoryGenerationRegistry();
    registry.open('m', 'c');
    const odd: ChatEvent = { type: 'token', token: 'a', finished: false, timestamp: '2026-01-01T00:00:00Z' };
    [start, odd, done].forEach((e) => registry.publish('m', e));
    const replay = await lastValueFrom(registry.follow('m', -1)!.pipe(toArray()));
    expect(plain(replay)).toEqual([{ id: 0, event: start }, { id: 1, event: odd }, { id: 2, event: done }]);
  });

  it('serializes an event once for all its listeners', () => {
    const registry = new InMemoryGenerationRegistry();
    registry.open('m', 'c');
    const seen: string[] = [];
    registry.follow('m', -1)!.subscribe((e) => seen.push(formatSseEvent(e)));
    registry.follow('m', -1)!.subscribe((e) => seen.push(formatSseEvent(e)));
    const stringify = vi.spyOn(JSON, 'stringify');
    registry.publish('m', start);
    expect(stringify).toHaveBeenCalledTimes(1);
    stringify.mockRestore();
    expect(seen).toHaveLength(2);
    expect(seen[0]).toBe(seen[1]);
  });

  it('forgets a finished answer after REPLAY_RETENTION_MS, each counted from its own end', () => {
    vi.useFakeTimers();
    try {
      const registry = new InMemoryGenerationRegistry();
      const answer = (id: string): void => {
        registry.open(id, `c-${id}`);
        [start, token('x', Date.now()), done].forEach((e) => registry.publish(id, e));
      };
      answer('a');
      vi.advanceTimersByTime(60_000);
      answer('b');
      registry.open('live', 'c-live');
      vi.advanceTimersByTime(REPLAY_RETENTION_MS - 60_000);
      expect(registry.follow('a', -1)).toBeUndefined();
      expect(registry.follow('b', -1)).toBeDefined();
      vi.advanceTimersByTime(60_000);
      expect(registry.follow('b', -1)).toBeUndefined();
      expect(registry.follow('live', -1)).toBeDefined();
    } finally {
      vi.useRealTimers();
    }
  });

  it('keeps at most STREAM_REPLAY_MAX_ANSWERS finished answers, forgetting the oldest first, never a live one', () => {
    const registry = new InMemoryGenerationRegistry(REPLAY_RETENTION_MS, 3);
    const finish = (id: string): void => {
      registry.open(id, `c-${id}`);
      [start, token(`text of ${id}`, Date.now()), done].forEach((e) => registry.publish(id, e));
    };
    registry.open('live', 'c-live');
    ['a', 'b', 'c', 'd', 'e'].forEach(finish);
    expect(['a', 'b', 'c', 'd', 'e'].map((id) => registry.follow(id, -1) !== undefined)).toEqual([false, false, true, true, true]);
    expect(registry.follow('live', -1)).toBeDefined();
    const replayed: string[] = [];
    registry.follow('c', -1)!.subscribe((e) => replayed.push(formatSseEvent(e)));
    expect(replayed).toHaveLength(3);
    expect(replayed[1]).toContain('"token":"text of c"');
    // With no room at all, a finished answer is forgotten at once (a resume restates the stored row).
    const none = new InMemoryGenerationRegistry(REPLAY_RETENTION_MS, 0);
    none.open('x', 'c-x');
    [start, done].forEach((e) => none.publish('x', e));
    expect(none.follow('x', -1)).toBeUndefined();
    expect(none.activeIn('c-x')).toBeUndefined();
  });

  it('keeps a finished answer for the configured retention (STREAM_REPLAY_RETENTION_MS)', () => {
    vi.useFakeTimers();
    try {
      const registry = new InMemoryGenerationRegistry(10_000);
      registry.open('a', 'c-a');
      [start, token('x', Date.now()), done].forEach((e) => registry.publish('a', e));
      vi.advanceTimersByTime(9_999);
      expect(registry.follow('a', -1)).toBeDefined();
      vi.advanceTimersByTime(1);
      expect(registry.follow('a', -1)).toBeUndefined();
    } finally {
      vi.useRealTimers();
    }
  });

  it('forgets a deleted conversation\'s answers at once: finished ones now, a running one as it finishes (its followers still get the end)', async () => {
    const registry = new InMemoryGenerationRegistry();
    const answer = (id: string, conversationId: string, isFinished = true): void => {
      registry.open(id, conversationId);
      [start, token(`text of ${id}`, Date.now()), ...(isFinished ? [done] : [])].forEach((e) => registry.publish(id, e));
    };
    answer('gone-1', 'deleted');
    answer('kept', 'other');
    answer('gone-running', 'deleted', false);
    const live = lastValueFrom(registry.follow('gone-running', 0)!.pipe(toArray()));
    await registry.forgetConversation('deleted');
    expect(registry.follow('gone-1', -1)).toBeUndefined();
    expect(registry.follow('kept', -1)).toBeDefined();
    // Still running: its stream goes on and ends as usual, then nothing of it is kept.
    expect(registry.activeIn('deleted')).toBe('gone-running');
    registry.publish('gone-running', done);
    expect((await live).map((e) => e.event.type)).toEqual(['token', 'done']);
    expect(registry.follow('gone-running', -1)).toBeUndefined();
    expect(registry.activeIn('deleted')).toBeUndefined();
  });
});
