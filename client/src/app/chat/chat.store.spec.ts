import { TestBed } from '@angular/core/testing';
import { Router } from '@angular/router';
import { Subject } from 'rxjs';
import { ConversationsStore } from '../conversations/conversations.store';
import { ApiClient } from '../core/api-client';
import { ApiError } from '../core/api-error';
import { ToastService } from '../shell/toast.service';
import { ChatApi, StreamCutError } from './chat-api.service';
import type { StreamedEvent } from './chat-events';
import { ChatStore, reconnectPause } from './chat.store';
import { STREAM_DRAW_INTERVAL_MS } from './token-drawer';

const start = (extra: Partial<StreamedEvent> = {}): StreamedEvent => ({
  type: 'start', conversation_id: 'c1', user_message_id: 'u1', message_id: 'm1', provider: 'openai', model: 'gpt-test',
  finished: false, eventId: '0', ...extra,
} as StreamedEvent);
const token = (text: string, id: string): StreamedEvent => ({ type: 'token', token: text, finished: false, eventId: id });
/** A message as the API returns it, its text its id. */
const storedRow = (conversationId: string, id: string, position: number, role: 'user' | 'assistant', status: string) => ({
  id, conversation_id: conversationId, position, role, content: id, status, created_at: '', updated_at: '',
  token_count: null, model_name: null, finish_reason: null, error_code: null, feedback: null, feedback_comment: null, files: [],
});
/** Long enough for the store's next draw (its interval, then a frame or its 16 ms timer without frames). */
const nextFrame = (): Promise<void> => new Promise((resolve) => { setTimeout(resolve, STREAM_DRAW_INTERVAL_MS + 50); });

describe('ChatStore', () => {
  let stream: Subject<StreamedEvent>;
  let chatApi: { send: ReturnType<typeof vi.fn>; regenerate: ReturnType<typeof vi.fn>; resume: ReturnType<typeof vi.fn>; stop: ReturnType<typeof vi.fn>; feedback: ReturnType<typeof vi.fn> };
  let navigate: ReturnType<typeof vi.fn>;
  let toasts: ToastService;
  let store: ChatStore;

  beforeEach(() => {
    stream = new Subject<StreamedEvent>();
    chatApi = {
      send: vi.fn(() => stream.asObservable()),
      regenerate: vi.fn(() => stream.asObservable()),
      resume: vi.fn(() => stream.asObservable()),
      stop: vi.fn(() => Promise.resolve({ message_id: 'm1', status: 'stopped' })),
      feedback: vi.fn((id: string, feedback: string) => Promise.resolve({ message_id: id, feedback, comment: null })),
    };
    navigate = vi.fn(() => Promise.resolve(true));
    TestBed.configureTestingModule({
      providers: [
        { provide: ChatApi, useValue: chatApi },
        { provide: Router, useValue: { navigate } },
        { provide: ConversationsStore, useValue: { refresh: () => Promise.resolve(), query: () => '', setQuery: () => Promise.resolve(), forget: () => undefined } },
        { provide: ApiClient, useValue: { get: vi.fn() } },
      ],
    });
    store = TestBed.inject(ChatStore);
    toasts = TestBed.inject(ToastService);
  });

  /** Opens conversation `id` as the API stores it: these messages (id, role, status), at positions 0, 1, … */
  async function openStored(id: string, messages: Array<[string, 'user' | 'assistant', string]>): Promise<void> {
    const get = TestBed.inject(ApiClient).get as ReturnType<typeof vi.fn>;
    get.mockResolvedValueOnce({ conversation: { id }, messages: messages.map(([mid, role, status], i) => storedRow(id, mid, i, role, status)), has_more: false });
    await store.open(id);
  }

  it('shows a malformed conversation link as not found, without asking the API', async () => {
    const get = TestBed.inject(ApiClient).get as ReturnType<typeof vi.fn>;
    await store.open('not-a-uuid');
    expect(store.isMissing()).toBe(true);
    expect(get).not.toHaveBeenCalled();
    expect(toasts.toasts()).toEqual([]);
  });

  it('says in place of the history when a conversation cannot be loaded, retries by itself, and shows it once it loads', async () => {
    vi.useFakeTimers();
    try {
      const get = TestBed.inject(ApiClient).get as ReturnType<typeof vi.fn>;
      const id = '00000000-0000-4000-8000-000000000001';
      get.mockRejectedValueOnce(ApiError.network()).mockRejectedValueOnce(new ApiError(502, 'INTERNAL_ERROR', 'bad gateway'));
      await store.open(id);
      expect(store.loadError()).toMatch(/cannot be reached|offline/);
      expect(store.messages()).toEqual([]);
      // The first retry after 2 s fails again; the next waits twice as long.
      await vi.advanceTimersByTimeAsync(2_000);
      expect(get).toHaveBeenCalledTimes(2);
      expect(store.loadError()).toBe('The server hit an unexpected error. Please try again.');
      await vi.advanceTimersByTimeAsync(3_000);
      expect(get).toHaveBeenCalledTimes(2);
      const user = {
        id: 'u1', conversation_id: id, position: 0, role: 'user', content: 'Hi', status: 'complete', created_at: '', updated_at: '',
        token_count: null, model_name: null, finish_reason: null, error_code: null, feedback: null, feedback_comment: null, files: [],
      };
      get.mockResolvedValueOnce({ conversation: { id }, messages: [user], has_more: false });
      await vi.advanceTimersByTimeAsync(1_000);
      expect(get).toHaveBeenCalledTimes(3);
      expect(store.loadError()).toBeNull();
      expect(store.messages().map((m) => m.id)).toEqual(['u1']);
      // Leaving a failed conversation stops its retries.
      get.mockRejectedValueOnce(ApiError.network());
      await store.open('00000000-0000-4000-8000-000000000002');
      await store.open(null);
      expect(store.loadError()).toBeNull();
      await vi.advanceTimersByTimeAsync(60_000);
      expect(get).toHaveBeenCalledTimes(4);
    } finally {
      vi.useRealTimers();
    }
  });

  it('catches up when the tab comes back: messages written elsewhere appear, a conversation deleted elsewhere is not found', async () => {
    const get = TestBed.inject(ApiClient).get as ReturnType<typeof vi.fn>;
    const id = '00000000-0000-4000-8000-000000000003';
    const row = (mid: string, position: number, role: 'user' | 'assistant', content: string) => ({
      id: mid, conversation_id: id, position, role, content, status: 'complete', created_at: '', updated_at: '',
      token_count: null, model_name: null, finish_reason: null, error_code: null, feedback: null, feedback_comment: null, files: [],
    });
    get.mockResolvedValueOnce({ conversation: { id }, messages: [row('u1', 0, 'user', 'Hi')], has_more: false });
    await store.open(id);
    expect(store.messages().map((m) => m.id)).toEqual(['u1']);
    get.mockResolvedValueOnce({ conversation: { id }, messages: [row('u1', 0, 'user', 'Hi'), row('u2', 1, 'user', 'From the other tab'), row('a2', 2, 'assistant', 'Answer')], has_more: false });
    await store.catchUp();
    expect(store.messages().map((m) => m.id)).toEqual(['u1', 'u2', 'a2']);
    get.mockRejectedValueOnce(new ApiError(404, 'CONVERSATION_NOT_FOUND', 'gone'));
    await store.catchUp();
    expect(store.isMissing()).toBe(true);
    expect(store.messages()).toEqual([]);
  });

  it('opens a conversation at a search match: the page around it, marked; reads on below it; goes to the end before a send', async () => {
    const get = TestBed.inject(ApiClient).get as ReturnType<typeof vi.fn>;
    const id = '00000000-0000-4000-8000-000000000004';
    const mid = (position: number) => `00000000-0000-4000-8000-${String(position).padStart(12, '0')}`;
    const row = (position: number) => ({
      id: mid(position), conversation_id: id, position, role: position % 2 ? 'assistant' : 'user', content: `text ${position}`, status: 'complete',
      created_at: '', updated_at: '', token_count: null, model_name: null, finish_reason: null, error_code: null, feedback: null, feedback_comment: null, files: [],
    });
    const rows = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => row(from + i));
    get.mockResolvedValueOnce({ conversation: { id }, messages: rows(5, 12), has_more: true, has_newer: true });
    await store.open(id, mid(10));
    expect(get).toHaveBeenLastCalledWith(`/api/v1/conversations/${id}?around=${mid(10)}&limit=50`);
    expect(store.focusedId()).toBe(mid(10));
    expect(store.hasNewer()).toBe(true);
    // Not the conversation's end: nothing to regenerate or edit there, and no catching up with the latest page.
    expect(store.regenerableId()).toBeNull();
    expect(store.editableId()).toBeNull();
    await store.catchUp();
    expect(get).toHaveBeenCalledTimes(1);

    // Another match on the page shown is only scrolled to.
    await store.open(id, mid(6));
    expect(store.focusedId()).toBe(mid(6));
    expect(get).toHaveBeenCalledTimes(1);

    get.mockResolvedValueOnce({ messages: rows(13, 32), has_more: true, has_newer: true });
    await store.loadNewer();
    expect(get).toHaveBeenLastCalledWith(`/api/v1/conversations/${id}/messages?after=12&limit=20`);
    expect(store.messages().map((m) => m.position)).toEqual(rows(5, 32).map((m) => m.position));

    // A send first shows the conversation's latest messages, then goes at their end; also when the view asked
    // for them a moment before (its own scroll to the end), and they are still on their way.
    get.mockResolvedValueOnce({ conversation: { id }, messages: rows(40, 49), has_more: true, has_newer: false });
    void store.showLatest();
    const sent = store.send('New question');
    await vi.waitFor(() => expect(chatApi.send).toHaveBeenCalled());
    expect(get).toHaveBeenLastCalledWith(`/api/v1/conversations/${id}?limit=50`);
    expect(store.hasNewer()).toBe(false);
    expect(store.focusedId()).toBeNull();
    expect(store.messages().map((m) => m.content).slice(-3, -1)).toEqual(['text 49', 'New question']);
    expect(store.messages().at(-2)?.position).toBe(50);
    stream.next(start({ conversation_id: id, user_message_id: 'm50', message_id: 'm51' }));
    expect(await sent).toBe(true);
  });

  it('opens at the latest messages when the match is gone (its answer regenerated since) or the address names no message', async () => {
    const get = TestBed.inject(ApiClient).get as ReturnType<typeof vi.fn>;
    const id = '00000000-0000-4000-8000-000000000005';
    get.mockRejectedValueOnce(new ApiError(404, 'MESSAGE_NOT_FOUND', 'Message not found'));
    get.mockResolvedValueOnce({ conversation: { id }, messages: [], has_more: false, has_newer: false });
    await store.open(id, '00000000-0000-4000-8000-0000000000ff');
    expect(get).toHaveBeenLastCalledWith(`/api/v1/conversations/${id}?limit=50`);
    expect(store.focusedId()).toBeNull();
    expect(store.isMissing()).toBe(false);
    // A mistyped one is not even asked for.
    get.mockClear();
    get.mockResolvedValueOnce({ conversation: { id }, messages: [], has_more: false, has_newer: false });
    await store.open(null);
    await store.open(id, 'not-an-id"]');
    expect(get).toHaveBeenCalledTimes(1);
    expect(get).toHaveBeenLastCalledWith(`/api/v1/conversations/${id}?limit=50`);
    expect(store.loadError()).toBeNull();
  });

  it('shows the message at once, then streams the answer into it', async () => {
    const accepted = store.send('Hello');
    expect(store.messages().map((m) => [m.role, m.content])).toEqual([['user', 'Hello'], ['assistant', '']]);
    expect(store.isStreaming()).toBe(true);

    stream.next(start());
    expect(await accepted).toBe(true);
    expect(store.messages().map((m) => m.id)).toEqual(['u1', 'm1']);
    expect(store.conversationId()).toBe('c1');
    expect(navigate).toHaveBeenCalledWith(['/c', 'c1']);

    stream.next(token('Hel', '1'));
    stream.next(token('lo!', '2'));
    await nextFrame();
    expect(store.messages()[1]?.content).toBe('Hello!');

    stream.next({ type: 'done', finished: true, message_id: 'm1', status: 'complete', finish_reason: 'stop', eventId: '3' });
    expect(store.isStreaming()).toBe(false);
    expect(store.messages()[1]).toMatchObject({ status: 'complete', model_name: 'gpt-test' });
    expect(store.announcement()).toBe('Answer: Hello!');
    expect(store.regenerableId()).toBe('m1');
    // Another conversation (a new chat here): the answer's words leave the live region with theirs.
    await store.open(null);
    expect(store.announcement()).toBe('');
  });

  it('keeps the done event\'s finish reason on the answer and says its notice after the answer\'s words', () => {
    void store.send('Hello');
    stream.next(start());
    stream.next(token('Half an', '1'));
    stream.next({ type: 'done', finished: true, message_id: 'm1', status: 'complete', finish_reason: 'length', eventId: '2' });
    expect(store.messages()[1]).toMatchObject({ content: 'Half an', status: 'complete', finish_reason: 'length' });
    expect(store.announcement()).toBe('Answer: Half an The answer was cut off at its length limit.');
  });

  it('says what an answer that completed without a word means, rather than "Answer: " alone', () => {
    void store.send('Hello');
    stream.next(start());
    stream.next({ type: 'done', finished: true, message_id: 'm1', status: 'complete', finish_reason: 'content_filter', eventId: '1' });
    expect(store.messages()[1]).toMatchObject({ content: '', status: 'complete', finish_reason: 'content_filter' });
    expect(store.announcement()).toBe('Answer: The model\'s provider withheld this answer (content filter).');
  });

  it('reads out the answer without a reasoning model\'s thinking', () => {
    void store.send('Hello');
    stream.next(start());
    stream.next(token('<think>Let me see</think>\n\nHi there', '1'));
    stream.next({ type: 'done', finished: true, message_id: 'm1', status: 'complete', finish_reason: 'stop', eventId: '2' });
    expect(store.announcement()).toBe('Answer: Hi there');
  });

  it('says a thinking-only answer has no text, without reading the thinking out', () => {
    void store.send('Hello');
    stream.next(start());
    stream.next(token('<think>Hmm</think>', '1'));
    stream.next({ type: 'done', finished: true, message_id: 'm1', status: 'complete', finish_reason: 'stop', eventId: '2' });
    expect(store.announcement()).toBe('Answer: The model returned no text.');
  });

  it('keeps on the answer the start event\'s word of files the model did not see whole, through a reconnect', async () => {
    const resumed = new Subject<StreamedEvent>();
    chatApi.resume.mockImplementation(() => resumed.asObservable());
    void store.send('Compare them');
    stream.next(start({ context: { truncated_files: ['big.txt'], omitted_files: ['small.txt'] } }));
    expect(store.messages()[1]).toMatchObject({ id: 'm1', context: { truncated_files: ['big.txt'], omitted_files: ['small.txt'] } });
    stream.next(token('Half', '1'));
    stream.error(new StreamCutError('1'));
    await new Promise((resolve) => { setTimeout(resolve, 600); });
    // The resume goes on after the last event seen (no start event again): the word stays.
    resumed.next(token(' of it', '2'));
    resumed.next({ type: 'done', finished: true, message_id: 'm1', status: 'complete', finish_reason: 'stop', eventId: '3' });
    expect(store.messages()[1]).toMatchObject({ status: 'complete', context: { truncated_files: ['big.txt'], omitted_files: ['small.txt'] } });
  });

  it('keeps the finish reason of an answer finished after a reconnect', async () => {
    const resumed = new Subject<StreamedEvent>();
    chatApi.resume.mockImplementation(() => resumed.asObservable());
    void store.send('Hello');
    stream.next(start());
    stream.next(token('Half', '1'));
    stream.error(new StreamCutError('1'));
    await new Promise((resolve) => { setTimeout(resolve, 600); }); // the first pause: 500 ms
    resumed.next({ type: 'done', finished: true, message_id: 'm1', status: 'complete', finish_reason: 'content_filter', eventId: '2' });
    expect(store.messages().at(-1)).toMatchObject({ content: 'Half', status: 'complete', finish_reason: 'content_filter' });
    expect(store.announcement()).toBe('Answer: Half The rest of this answer was withheld by the model\'s provider (content filter).');
  });

  it('sends a question asked while the conversation is still opening after its messages, not into a page that replaces it', async () => {
    // A draft restored on a reload and sent at once: the loaded page replaced the question and its answer.
    const get = TestBed.inject(ApiClient).get as ReturnType<typeof vi.fn>;
    const c1 = '00000000-0000-4000-8000-0000000000c1';
    let answer!: (page: unknown) => void;
    get.mockReturnValueOnce(new Promise((resolve) => { answer = resolve; }));
    const opened = store.open(c1);
    const accepted = store.send('A follow-up');
    answer({ conversation: { id: c1 }, messages: [storedRow(c1, 'u0', 0, 'user', 'complete'), storedRow(c1, 'a0', 1, 'assistant', 'complete')], has_more: false });
    await opened;
    await new Promise((resolve) => { setTimeout(resolve, 0); });
    expect(store.messages().map((m) => [m.role, m.position])).toEqual([['user', 0], ['assistant', 1], ['user', 2], ['assistant', 3]]);
    expect(chatApi.send).toHaveBeenCalledWith({ message: 'A follow-up', conversation_id: c1 }, expect.any(String));
    stream.next(start({ conversation_id: c1 }));
    expect(await accepted).toBe(true);
    expect(store.messages().map((m) => m.content).filter((c) => c === 'A follow-up')).toHaveLength(1);
  });

  it('draws the tokens of one frame in one update of the message, not one per token', async () => {
    void store.send('Hello');
    stream.next(start());
    const before = store.messages();
    for (const [i, piece] of ['One', ' two', ' three'].entries()) stream.next(token(piece, String(i + 1)));
    // Not drawn yet: the list is the same array until the frame.
    expect(store.messages()).toBe(before);
    await nextFrame();
    const after = store.messages();
    expect(after[1]?.content).toBe('One two three');
    stream.next(token(' four', '4'));
    await nextFrame();
    expect(store.messages()[1]?.content).toBe('One two three four');
  });

  it('redraws a fast stream about 20 times a second, not every frame, and loses no token', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'requestAnimationFrame', 'cancelAnimationFrame', 'performance'] });
    try {
      void store.send('Hello');
      stream.next(start());
      let draws = 0;
      let seen = store.messages();
      // 400 ms of a model sending 250 tokens a second.
      for (let i = 1; i <= 100; i++) {
        stream.next(token('x', String(i)));
        vi.advanceTimersByTime(4);
        if (store.messages() !== seen) {
          seen = store.messages();
          draws++;
        }
      }
      expect(draws).toBeGreaterThanOrEqual(400 / STREAM_DRAW_INTERVAL_MS - 2);
      expect(draws).toBeLessThanOrEqual(400 / STREAM_DRAW_INTERVAL_MS + 1);
      vi.advanceTimersByTime(STREAM_DRAW_INTERVAL_MS + 20);
      expect(store.messages()[1]?.content).toBe('x'.repeat(100));
    } finally {
      vi.useRealTimers();
    }
  });

  it('ends an answer with every token it received, drawn or not', () => {
    void store.send('Hello');
    stream.next(start());
    stream.next(token('All', '1'));
    stream.next(token(' of it', '2'));
    stream.next({ type: 'done', finished: true, message_id: 'm1', status: 'complete', finish_reason: 'stop', eventId: '3' });
    expect(store.messages()[1]).toMatchObject({ content: 'All of it', status: 'complete' });
    expect(store.announcement()).toBe('Answer: All of it');
  });

  it('keeps the tokens not drawn yet in what a reload resumes from', () => {
    sessionStorage.clear();
    void store.send('Hello');
    stream.next(start());
    stream.next(token('Half', '1'));
    stream.next(token(' way', '2'));
    window.dispatchEvent(new Event('pagehide'));
    expect(JSON.parse(sessionStorage.getItem('parley.stream') ?? 'null')).toEqual({ messageId: 'm1', lastEventId: '2', content: 'Half way' });
  });

  it('replaces what it showed when a resumed stream restates the answer from its start', async () => {
    const api = TestBed.inject(ApiClient) as unknown as { get: ReturnType<typeof vi.fn> };
    const streaming = {
      id: 'm1', conversation_id: 'c1', position: 1, role: 'assistant', content: 'Half', status: 'streaming', created_at: '', updated_at: '',
      token_count: null, model_name: 'gpt-test', finish_reason: null, error_code: null, feedback: null, feedback_comment: null, files: [],
    };
    api.get.mockResolvedValue({ messages: [streaming], has_more: false });
    // What this tab had shown before a reload: the live stream's events up to 57.
    sessionStorage.setItem('parley.stream', JSON.stringify({ messageId: 'm1', lastEventId: '57', content: 'Half an answer' }));
    await store.open('6f1c3a52-8f0e-4c7a-9b1d-2a4e5f6a7b8c');
    expect(chatApi.resume).toHaveBeenCalledWith('m1', '57');
    expect(store.messages()[0]?.content).toBe('Half an answer');
    // The server no longer holds those events (it restarted): the whole answer again, from its start.
    stream.next(start({ from_start: true, eventId: '0' }));
    stream.next(token('Half an answer, stored whole', '1'));
    stream.next({ type: 'error', finished: true, message_id: 'm1', status: 'interrupted', code: 'SERVICE_UNAVAILABLE', error: 'Cut.', eventId: '2' });
    expect(store.messages()[0]).toMatchObject({ content: 'Half an answer, stored whole', status: 'interrupted' });
    // Nothing shown was lost: no note under it.
    expect(store.messages()[0].hasLostText).toBeFalsy();
  });

  it('keeps the server\'s copy when it restates a cut answer shorter than what was shown, and says so under the answer', async () => {
    const resumed = new Subject<StreamedEvent>();
    chatApi.resume.mockImplementation(() => resumed.asObservable());
    void store.send('Hello');
    stream.next(start());
    stream.next(token('Half an answer', '1'));
    stream.next(token(' and its last words', '2'));
    // The server was killed: it had saved the answer up to its last quarter of a second.
    stream.error(new StreamCutError('2'));
    await new Promise((resolve) => { setTimeout(resolve, 600); }); // the first pause: 500 ms
    expect(chatApi.resume).toHaveBeenCalledWith('m1', '2');
    resumed.next(start({ from_start: true, eventId: '0' }));
    resumed.next(token('Half an answer', '1'));
    // Not while it may still grow (the answer goes on elsewhere and catches up).
    expect(store.messages().at(-1)?.hasLostText).toBeFalsy();
    resumed.next({ type: 'error', finished: true, message_id: 'm1', status: 'interrupted', code: 'SERVICE_UNAVAILABLE',
      error: 'This answer was interrupted before it finished.', eventId: '2' });
    expect(store.messages().at(-1)).toMatchObject({ content: 'Half an answer', status: 'interrupted', hasLostText: true });
  });

  it('spreads the reconnect pauses: up to half of each is random, so cut browsers do not all come back at once', () => {
    expect([0, 1, 2, 3, 4].map((attempt) => reconnectPause(attempt, 0))).toEqual([500, 1_000, 2_000, 3_000, 3_000]);
    expect([0, 1, 2, 3, 4].map((attempt) => reconnectPause(attempt, 1))).toEqual([250, 500, 1_000, 1_500, 1_500]);
    const pauses = new Set(Array.from({ length: 50 }, () => reconnectPause(3)));
    expect(pauses.size).toBeGreaterThan(10);
    for (const p of pauses) expect(p).toBeGreaterThanOrEqual(1_500);
  });

  it('tries a cut answer again at least every 3 s while the server is down (the composer can only stop meanwhile)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const attempts: Subject<StreamedEvent>[] = [];
      chatApi.resume.mockImplementation(() => { attempts.push(new Subject<StreamedEvent>()); return attempts.at(-1)!.asObservable(); });
      void store.send('Hello');
      stream.next(start());
      stream.error(new StreamCutError('0'));
      // Pauses of 0.5, 1 and 2 s, then 3 s each (they went on to 4 and 8 s).
      for (const pause of [500, 1_000, 2_000, 3_000, 3_000]) {
        const tries = attempts.length;
        await vi.advanceTimersByTimeAsync(pause + 100);
        expect(attempts).toHaveLength(tries + 1);
        attempts.at(-1)!.error(new ApiError(0, 'NETWORK_ERROR', 'Failed to fetch'));
      }
      expect(store.isStreaming()).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });

  it('tells the user while it reconnects to a cut answer, and goes on from the last event once the server answers', async () => {
    const resumed = new Subject<StreamedEvent>();
    chatApi.resume.mockImplementation(() => resumed.asObservable());
    void store.send('Hello');
    stream.next(start());
    stream.next(token('Half', '1'));
    stream.error(new StreamCutError('1'));
    expect(toasts.toasts().map((t) => t.text)).toContain('The connection to the server was lost. Reconnecting…');
    await new Promise((resolve) => { setTimeout(resolve, 600); }); // the first pause: 500 ms
    expect(chatApi.resume).toHaveBeenCalledWith('m1', '1');
    resumed.next(token(' an answer', '2'));
    expect(toasts.toasts()).toEqual([]);
    resumed.next({ type: 'done', finished: true, message_id: 'm1', status: 'complete', finish_reason: 'stop', eventId: '3' });
    expect(store.messages().at(-1)).toMatchObject({ content: 'Half an answer', status: 'complete' });
  });

  it('takes the reconnect notice away when the user leaves that answer', async () => {
    void store.send('Hello');
    stream.next(start());
    stream.error(new StreamCutError('0'));
    expect(toasts.toasts()).toHaveLength(1);
    await store.open(null);
    expect(toasts.toasts()).toEqual([]);
  });

  it('gives up at once when the server refuses the resume (the answer is gone)', async () => {
    const attempts: Subject<StreamedEvent>[] = [];
    chatApi.resume.mockImplementation(() => { attempts.push(new Subject<StreamedEvent>()); return attempts.at(-1)!.asObservable(); });
    void store.send('Hello');
    stream.next(start());
    stream.error(new StreamCutError('0'));
    await new Promise((resolve) => { setTimeout(resolve, 600); });
    attempts[0].error(new ApiError(0, 'NETWORK', 'Failed to fetch')); // the server is still down: tried again
    await new Promise((resolve) => { setTimeout(resolve, 1200); }); // the second pause: 1 s
    expect(chatApi.resume).toHaveBeenCalledTimes(2);
    attempts[1].error(new ApiError(404, 'MESSAGE_NOT_FOUND', 'Message not found'));
    await new Promise((resolve) => { setTimeout(resolve, 2200); });
    expect(chatApi.resume).toHaveBeenCalledTimes(2);
    expect(store.messages().at(-1)).toMatchObject({ status: 'interrupted' });
    expect(store.isStreaming()).toBe(false);
  });

  it('takes the message back and explains when it is refused before the answer starts', async () => {
    const accepted = store.send('Hello');
    stream.error(new ApiError(429, 'RATE_LIMIT_EXCEEDED', 'Too many', 30));
    expect(await accepted).toBe(false);
    expect(store.messages()).toEqual([]);
    expect(store.isStreaming()).toBe(false);
    expect(toasts.toasts()[0]?.text).toBe('You are sending messages too quickly. Try again in 30 s.');
  });

  it('shows an open conversation deleted elsewhere as gone when a send finds it so, leaves the list of it and says the words are kept', async () => {
    const forget = vi.spyOn(TestBed.inject(ConversationsStore), 'forget');
    const c1 = '11111111-1111-4111-8111-111111111111';
    await openStored(c1, [['u0', 'user', 'complete'], ['a0', 'assistant', 'complete']]);
    const accepted = store.send('Follow-up');
    stream.error(new ApiError(404, 'CONVERSATION_NOT_FOUND', 'Conversation not found'));
    expect(await accepted).toBe(false);
    expect(store.isMissing()).toBe(true);
    expect(store.messages()).toEqual([]);
    expect(forget).toHaveBeenCalledWith(c1);
    expect(toasts.toasts().map((t) => t.text)).toEqual(['This conversation was deleted elsewhere. Your message is kept: start a new chat to send it.']);
    // Any other refusal leaves the conversation open, as it was.
    await openStored(c1, [['u0', 'user', 'complete'], ['a0', 'assistant', 'complete']]);
    stream = new Subject<StreamedEvent>();
    const refused = store.send('Again');
    stream.error(new ApiError(404, 'FILE_NOT_FOUND', 'File not found'));
    expect(await refused).toBe(false);
    expect(store.isMissing()).toBe(false);
    expect(store.messages().map((m) => m.id)).toEqual(['u0', 'a0']);
    expect(forget).toHaveBeenCalledTimes(1);
  });

  it('stops through the stop endpoint and keeps the partial answer', async () => {
    void store.send('Hello');
    stream.next(start());
    stream.next(token('Partial', '1'));
    await store.stop();
    expect(chatApi.stop).toHaveBeenCalledWith('m1');
    stream.next({ type: 'done', finished: true, message_id: 'm1', status: 'stopped', finish_reason: null, eventId: '2' });
    expect(store.messages()[1]).toMatchObject({ content: 'Partial', status: 'stopped' });
    expect(store.isStreaming()).toBe(false);
  });

  it('shows a failed answer with its friendly reason', () => {
    void store.send('Hello');
    stream.next(start());
    stream.next({ type: 'error', finished: true, message_id: 'm1', status: 'failed', code: 'OPENAI_ERROR', error: 'The model is unavailable.', eventId: '1' });
    expect(store.messages()[1]).toMatchObject({ status: 'failed', errorText: 'The model is unavailable.', hasFailedLive: true, finish_reason: null });
  });

  it('keeps a refused request\'s reason on the failed answer, as a reload reads it from the stored row', () => {
    void store.send('Hello');
    stream.next(start());
    stream.next({
      type: 'error', finished: true, message_id: 'm1', status: 'failed', code: 'OPENAI_ERROR', finish_reason: 'context_length_exceeded',
      error: '', eventId: '1',
    });
    expect(store.messages()[1]).toMatchObject({
      status: 'failed', error_code: 'OPENAI_ERROR', finish_reason: 'context_length_exceeded',
      errorText: 'This is more than the model can read at once. Send a shorter message or smaller files; in a long conversation, starting a new one also helps.',
    });
  });

  it('reads a failure opened from history as history: its notice is not news to announce', async () => {
    const id = '00000000-0000-4000-8000-0000000000e1';
    await openStored(id, [['u1', 'user', 'complete'], ['m1', 'assistant', 'failed']]);
    expect(store.messages()[1]).toMatchObject({ status: 'failed' });
    expect(store.messages()[1].hasFailedLive).toBeFalsy();
  });

  it('regenerates in place of the last answer', async () => {
    void store.send('Hello');
    stream.next(start());
    stream.next({ type: 'done', finished: true, message_id: 'm1', status: 'complete', finish_reason: 'stop' });
    stream = new Subject<StreamedEvent>();
    const accepted = store.regenerate();
    expect(store.messages()).toHaveLength(2);
    stream.next(start({ message_id: 'm2', replaces_message_id: 'm1' }));
    expect(await accepted).toBe(true);
    stream.next(token('New', '1'));
    await nextFrame();
    expect(store.messages().map((m) => m.id)).toEqual(['u1', 'm2']);
    expect(store.messages()[1]?.content).toBe('New');
  });

  it('edits the last question: shown at once with the new answer, sent with the regeneration, restored if refused', async () => {
    void store.send('Helo');
    stream.next(start());
    stream.next({ type: 'done', finished: true, message_id: 'm1', status: 'complete', finish_reason: 'stop' });
    expect(store.editableId()).toBe('u1');
    stream = new Subject<StreamedEvent>();
    void store.regenerate({ text: 'Hello', messageId: 'u1' });
    expect(chatApi.regenerate).toHaveBeenLastCalledWith('c1', { text: 'Hello', messageId: 'u1' });
    expect(store.messages().map((m) => [m.role, m.content])).toEqual([['user', 'Hello'], ['assistant', '']]);
    // Nothing to edit while an answer runs.
    expect(store.editableId()).toBeNull();
    stream.error(new ApiError(400, 'VALIDATION_ERROR', 'message must be shorter'));
    await Promise.resolve();
    expect(store.messages().map((m) => [m.id, m.content])).toEqual([['u1', 'Helo'], ['m1', '']]);
    expect(store.editableId()).toBe('u1');
  });

  it('a regeneration takes from view every earlier answer to the question (the server deletes them all once it completes)', async () => {
    const id = '00000000-0000-4000-8000-000000000009';
    // A reload after a regeneration was stopped: the first answer is still stored under the stopped one.
    await openStored(id, [['u0', 'user', 'complete'], ['a0', 'assistant', 'complete'], ['u1', 'user', 'complete'], ['m1', 'assistant', 'complete'], ['m2', 'assistant', 'stopped']]);
    void store.regenerate();
    stream.next(start({ conversation_id: id, message_id: 'm3', replaces_message_id: 'm2' }));
    expect(store.messages().map((m) => m.id)).toEqual(['u0', 'a0', 'u1', 'm3']);
    // Completed, it replaced them (the server deleted them): they stay gone.
    stream.next({ type: 'done', finished: true, message_id: 'm3', status: 'complete', finish_reason: 'stop' });
    expect(store.messages().map((m) => m.id)).toEqual(['u0', 'a0', 'u1', 'm3']);
  });

  it('a regeneration followed after a reload takes the earlier answers from view once it completes (its start, naming them, is not replayed)', async () => {
    sessionStorage.setItem('parley.stream', JSON.stringify({ messageId: 'm3', lastEventId: '4', content: 'm3' }));
    await openStored('00000000-0000-4000-8000-00000000000a', [['u1', 'user', 'complete'], ['m1', 'assistant', 'complete'], ['m2', 'assistant', 'stopped'], ['m3', 'assistant', 'streaming']]);
    expect(chatApi.resume).toHaveBeenCalledWith('m3', '4');
    expect(store.messages().map((m) => m.id)).toEqual(['u1', 'm1', 'm2', 'm3']);
    stream.next(token(' and the rest', '5'));
    stream.next({ type: 'done', finished: true, message_id: 'm3', status: 'complete', finish_reason: 'stop', eventId: '6' });
    expect(store.messages().map((m) => m.id)).toEqual(['u1', 'm3']);
    expect(store.messages()[1]).toMatchObject({ content: 'm3 and the rest', status: 'complete' });
  });

  it('a regeneration followed after a reload that ends stopped leaves the earlier answers, as the server does', async () => {
    await openStored('00000000-0000-4000-8000-00000000000b', [['u1', 'user', 'complete'], ['m1', 'assistant', 'complete'], ['m2', 'assistant', 'streaming']]);
    stream.next({ type: 'done', finished: true, message_id: 'm2', status: 'stopped', finish_reason: 'stop_requested', eventId: '6' });
    expect(store.messages().map((m) => m.id)).toEqual(['u1', 'm1', 'm2']);
  });

  for (const ending of ['stopped', 'failed', 'cut'] as const) {
    it(`a regeneration that ends ${ending} shows the earlier answers again, before it, as a reload does`, () => {
      void store.send('Hello');
      stream.next(start());
      stream.next({ type: 'done', finished: true, message_id: 'm1', status: 'complete', finish_reason: 'stop' });
      stream = new Subject<StreamedEvent>();
      const announced = store.announcement();
      void store.regenerate({ text: 'Hello again', messageId: 'u1' });
      stream.next(start({ message_id: 'm2', replaces_message_id: 'm1' }));
      expect(store.messages().map((m) => m.id)).toEqual(['u1', 'm2']);
      if (ending === 'stopped') stream.next({ type: 'done', finished: true, message_id: 'm2', status: 'stopped', finish_reason: 'stop_requested' });
      else if (ending === 'failed') stream.next({ type: 'error', finished: true, message_id: 'm2', status: 'failed', code: 'OPENAI_ERROR', error: 'The model is unavailable.' });
      else stream.error(new ApiError(404, 'MESSAGE_NOT_FOUND', 'gone'));
      expect(store.messages().map((m) => [m.id, m.role])).toEqual([['u1', 'user'], ['m1', 'assistant'], ['m2', 'assistant']]);
      // The edited question stays edited (the server keeps the edit).
      expect(store.messages()[0].content).toBe('Hello again');
      // A failed answer is announced by its alert, not a second time here.
      expect(store.announcement()).toBe(ending === 'stopped' ? 'Answer stopped. ' : announced);
    });
  }

  it('tells other tabs when an answer starts and ends, and catches up at once when one of them does (a message sent there sits before this tab\'s last)', async () => {
    const get = TestBed.inject(ApiClient).get as ReturnType<typeof vi.fn>;
    const id = '00000000-0000-4000-8000-000000000010';
    const row = (mid: string, position: number, role: 'user' | 'assistant') => ({
      id: mid, conversation_id: id, position, role, content: mid, status: 'complete', created_at: '', updated_at: '',
      token_count: null, model_name: null, finish_reason: null, error_code: null, feedback: null, feedback_comment: null, files: [],
    });
    get.mockResolvedValueOnce({ conversation: { id }, messages: [row('u1', 0, 'user'), row('a1', 1, 'assistant'), row('u3', 4, 'user'), row('a3', 5, 'assistant')], has_more: false });
    await store.open(id);
    const otherTab = new BroadcastChannel('parley-conversations');
    const heard: unknown[] = [];
    otherTab.onmessage = (event: MessageEvent) => heard.push(event.data);
    try {
      // Another tab sent u2 and got a2: the last message here is the same, the one before it is not.
      get.mockResolvedValueOnce({
        conversation: { id },
        messages: [row('u1', 0, 'user'), row('a1', 1, 'assistant'), row('u2', 2, 'user'), row('a2', 3, 'assistant'), row('u3', 4, 'user'), row('a3', 5, 'assistant')],
        has_more: false,
      });
      otherTab.postMessage({ conversationId: id });
      await vi.waitFor(() => expect(store.messages().map((m) => m.id)).toEqual(['u1', 'a1', 'u2', 'a2', 'u3', 'a3']));
      // An answer sent from here is announced to the other tabs as it starts and as it ends.
      void store.send('Hello');
      stream.next(start({ conversation_id: id, message_id: 'a4', user_message_id: 'u4' }));
      stream.next({ type: 'done', finished: true, message_id: 'a4', status: 'complete', finish_reason: 'stop' });
      await vi.waitFor(() => expect(heard).toEqual([{ conversationId: id }, { conversationId: id }]));
    } finally {
      otherTab.close();
    }
  });

  it('shows the open conversation as not found once another tab deleted it, its answer left; another tab\'s rename names it, another\'s deletion leaves it be', async () => {
    const id = '00000000-0000-4000-8000-000000000011';
    await openStored(id, [['u1', 'user', 'complete'], ['a1', 'assistant', 'streaming']]);
    expect(store.isStreaming()).toBe(true);
    const otherTab = new BroadcastChannel('parley-conversations');
    try {
      otherTab.postMessage({ conversationId: '00000000-0000-4000-8000-000000000012', change: 'deleted' });
      otherTab.postMessage({ conversationId: id, change: 'renamed', title: 'Named there', updatedAt: '2025-01-01T00:00:00.000Z' });
      await vi.waitFor(() => expect(store.conversationTitle()).toBe('Named there'));
      expect(store.isMissing()).toBe(false);
      otherTab.postMessage({ conversationId: id, change: 'deleted' });
      await vi.waitFor(() => expect(store.isMissing()).toBe(true));
      expect(store.messages()).toEqual([]);
      expect(store.isStreaming()).toBe(false);
      expect(stream.observed).toBe(false);
    } finally {
      otherTab.close();
    }
  });

  it('records feedback optimistically', async () => {
    void store.send('Hello');
    stream.next(start());
    stream.next({ type: 'done', finished: true, message_id: 'm1', status: 'complete', finish_reason: 'stop' });
    await store.setFeedback('m1', 'positive');
    expect(chatApi.feedback).toHaveBeenCalledWith('m1', 'positive', undefined);
    expect(store.messages()[1]?.feedback).toBe('positive');
  });
});

describe('ChatStore with the sidebar', () => {
  let store: ChatStore;
  let conversations: ConversationsStore;
  const id = '00000000-0000-4000-8000-000000000021';
  const listed = (cid: string, title: string) => ({
    id: cid, session_id: 's1', title, created_at: '', updated_at: '', is_active: true, message_count: 2,
  });

  beforeEach(async () => {
    const get = vi.fn((url: string) => {
      if (url.startsWith('/api/v1/conversations?')) {
        return Promise.resolve({ conversations: [listed('00000000-0000-4000-8000-000000000020', 'Kept'), listed(id, 'Deleted elsewhere')], total: 2, limit: 20, offset: 0 });
      }
      return Promise.reject(new ApiError(404, 'CONVERSATION_NOT_FOUND', 'Conversation not found'));
    });
    TestBed.configureTestingModule({
      providers: [
        { provide: ChatApi, useValue: {} },
        { provide: Router, useValue: { navigate: () => Promise.resolve(true) } },
        { provide: ApiClient, useValue: { get } },
      ],
    });
    store = TestBed.inject(ChatStore);
    conversations = TestBed.inject(ConversationsStore);
    await conversations.loadFirstPage();
  });

  it('takes a conversation out of the list when opening it answers not found (deleted elsewhere, e.g. through the API)', async () => {
    await store.open(id);
    expect(store.isMissing()).toBe(true);
    expect(conversations.conversations().map((c) => c.title)).toEqual(['Kept']);
  });
});
