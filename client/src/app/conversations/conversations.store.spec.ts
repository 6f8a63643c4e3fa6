import { TestBed } from '@angular/core/testing';
import { ApiClient } from '../core/api-client';
import { ApiError } from '../core/api-error';
import type { Conversation } from '../core/api-models';
import { ConversationsStore } from './conversations.store';

const conversation = (id: string, title: string): Conversation => ({
  id, session_id: 's1', title, created_at: '', updated_at: '', is_active: true, message_count: 2,
});

describe('ConversationsStore search', () => {
  let get: ReturnType<typeof vi.fn>;
  let store: ConversationsStore;

  beforeEach(() => {
    get = vi.fn();
    TestBed.configureTestingModule({ providers: [{ provide: ApiClient, useValue: { get } }] });
    store = TestBed.inject(ConversationsStore);
  });

  it('asks the API for the titles containing the text, shows only those, and everything again once cleared', async () => {
    get.mockResolvedValueOnce({ conversations: [conversation('a', 'Trip'), conversation('b', 'Food')], total: 2, limit: 20, offset: 0 });
    await store.loadFirstPage();
    get.mockResolvedValueOnce({ conversations: [conversation('b', 'Food')], total: 1, limit: 20, offset: 0 });
    await store.setQuery('  50% food ');
    expect(get).toHaveBeenLastCalledWith('/api/v1/conversations?limit=20&offset=0&q=50%25%20food');
    expect(store.conversations().map((c) => c.id)).toEqual(['b']);
    expect(store.query()).toBe('50% food');
    get.mockResolvedValueOnce({ conversations: [conversation('a', 'Trip'), conversation('b', 'Food')], total: 2, limit: 20, offset: 0 });
    await store.setQuery('');
    expect(get).toHaveBeenLastCalledWith('/api/v1/conversations?limit=20&offset=0');
    expect(store.conversations().map((c) => c.id)).toEqual(['a', 'b']);
  });

  it('takes accent marks alone for no search (the API refuses them), and a mark with a letter for a search', async () => {
    get.mockResolvedValueOnce({ conversations: [conversation('b', 'Food')], total: 1, limit: 20, offset: 0 });
    await store.setQuery('food');
    get.mockResolvedValueOnce({ conversations: [conversation('a', 'Trip'), conversation('b', 'Food')], total: 2, limit: 20, offset: 0 });
    await store.setQuery(' \u0301 ');
    expect(get).toHaveBeenLastCalledWith('/api/v1/conversations?limit=20&offset=0');
    expect(store.query()).toBe('');
    get.mockResolvedValueOnce({ conversations: [], total: 0, limit: 20, offset: 0 });
    await store.setQuery('e\u0301');
    expect(get).toHaveBeenLastCalledWith('/api/v1/conversations?limit=20&offset=0&q=e%CC%81');
  });

  it('drops a page that arrives after the search changed (typing on while one was asked for)', async () => {
    let answerFirst: (page: unknown) => void = () => undefined;
    get.mockReturnValueOnce(new Promise((resolve) => { answerFirst = resolve; }));
    const first = store.setQuery('tr');
    get.mockResolvedValueOnce({ conversations: [conversation('a', 'Trip')], total: 1, limit: 20, offset: 0 });
    await store.setQuery('trip');
    answerFirst({ conversations: [conversation('x', 'Travel'), conversation('a', 'Trip')], total: 2, limit: 20, offset: 0 });
    await first;
    expect(store.conversations().map((c) => c.id)).toEqual(['a']);
    expect(store.isLoading()).toBe(false);
  });
});

describe('ConversationsStore refresh', () => {
  /** The API's list, newest first: c0 updated last. */
  let server: Conversation[];
  let store: ConversationsStore;
  const at = (minute: number): string => new Date(Date.UTC(2025, 0, 1, 0, minute)).toISOString();
  const ids = (list: readonly Conversation[]): string[] => list.map((c) => c.id);

  beforeEach(() => {
    server = Array.from({ length: 150 }, (_, i) => ({ ...conversation(`c${i}`, `Chat ${i}`), updated_at: at(1_000 - i) }));
    const get = vi.fn((url: string) => {
      const params = new URL(url, 'http://parley.test').searchParams;
      const offset = Number(params.get('offset'));
      const limit = Number(params.get('limit'));
      return Promise.resolve({ conversations: server.slice(offset, offset + limit), total: server.length, limit, offset });
    });
    TestBed.configureTestingModule({ providers: [{ provide: ApiClient, useValue: { get } }] });
    store = TestBed.inject(ConversationsStore);
  });

  async function loadUntil(count: number): Promise<void> {
    await store.loadFirstPage();
    while (store.conversations().length < count) await store.loadMore();
  }

  it('keeps every loaded conversation when a new one is created with more than 100 loaded, and pages on without gaps', async () => {
    await loadUntil(120);
    expect(store.conversations()).toHaveLength(120);
    server.unshift({ ...conversation('new', 'New chat'), updated_at: at(2_000) });
    await store.refresh();
    // c99 was pushed from the fresh top 100 to place 101: still listed, where the API has it.
    expect(ids(store.conversations())).toEqual(ids(server.slice(0, 121)));
    await store.loadMore();
    expect(ids(store.conversations())).toEqual(ids(server.slice(0, 141)));
    while (store.hasMore()) await store.loadMore();
    expect(ids(store.conversations())).toEqual(ids(server));
  });

  it('keeps below the fresh top an answered conversation moved up from there, and drops one deleted elsewhere', async () => {
    await loadUntil(120);
    const [answered] = server.splice(110, 1);
    server.splice(5, 1);
    server.unshift({ ...answered, updated_at: at(2_000) });
    await store.refresh();
    expect(ids(store.conversations())).toEqual(ids(server.slice(0, 119)));
    while (store.hasMore()) await store.loadMore();
    expect(ids(store.conversations())).toEqual(ids(server));
  });

  it('drops the conversations a refresh of the whole list no longer has', async () => {
    server = server.slice(0, 30);
    await loadUntil(30);
    server.splice(25, 2);
    await store.refresh();
    expect(ids(store.conversations())).toEqual(ids(server));
    expect(store.hasMore()).toBe(false);
  });
});

describe('ConversationsStore and the other tabs of this browser', () => {
  /** The API's list, newest first. */
  let server: Conversation[];
  let api: { get: ReturnType<typeof vi.fn>; patch: ReturnType<typeof vi.fn>; delete: ReturnType<typeof vi.fn> };
  let store: ConversationsStore;
  /** Another tab of this browser, on the channel they share. */
  let otherTab: BroadcastChannel;
  let heard: unknown[];
  const ids = (): string[] => store.conversations().map((c) => c.id);
  const notFound = (): ApiError => new ApiError(404, 'CONVERSATION_NOT_FOUND', 'Conversation not found');

  beforeEach(() => {
    server = Array.from({ length: 30 }, (_, i) => ({ ...conversation(`c${i}`, `Chat ${i}`), updated_at: new Date(Date.UTC(2025, 0, 1, 0, 100 - i)).toISOString() }));
    api = {
      get: vi.fn((url: string) => {
        const params = new URL(url, 'http://parley.test').searchParams;
        const offset = Number(params.get('offset'));
        const limit = Number(params.get('limit'));
        return Promise.resolve({ conversations: server.slice(offset, offset + limit), total: server.length, limit, offset });
      }),
      patch: vi.fn((url: string, { title }: { title: string }) => {
        const found = server.find((c) => url.endsWith(`/${c.id}`));
        return found ? Promise.resolve({ conversation: { ...found, title, updated_at: '2025-02-01T00:00:00.000Z' } }) : Promise.reject(notFound());
      }),
      delete: vi.fn((url: string) => {
        const at = server.findIndex((c) => url.endsWith(`/${c.id}`));
        if (at === -1) return Promise.reject(notFound());
        server.splice(at, 1);
        return Promise.resolve();
      }),
    };
    TestBed.configureTestingModule({ providers: [{ provide: ApiClient, useValue: api }] });
    store = TestBed.inject(ConversationsStore);
    heard = [];
    otherTab = new BroadcastChannel('parley-conversations');
    otherTab.onmessage = (event: MessageEvent) => heard.push(event.data);
  });

  afterEach(() => otherTab.close());

  it('follows another tab at once: one deleted there leaves the list (far down too), one renamed there takes its title, one started there appears', async () => {
    await store.loadFirstPage();
    await store.loadMore();
    expect(ids()).toHaveLength(30);
    server.splice(27, 1);
    otherTab.postMessage({ conversationId: 'c27', change: 'deleted' });
    await vi.waitFor(() => expect(ids()).not.toContain('c27'));
    expect(store.hasMore()).toBe(false);
    otherTab.postMessage({ conversationId: 'c12', change: 'renamed', title: 'Lisbon', updatedAt: '2025-02-01T00:00:00.000Z' });
    await vi.waitFor(() => expect(store.conversations().find((c) => c.id === 'c12')?.title).toBe('Lisbon'));
    server.unshift({ ...conversation('new', 'Started there'), updated_at: '2025-02-02T00:00:00.000Z' });
    otherTab.postMessage({ conversationId: 'new' });
    await vi.waitFor(() => expect(ids()[0]).toBe('new'));
    expect(ids()).toEqual(server.map((c) => c.id));
  });

  it('tells the other tabs of a rename and a delete made here, ids and titles only', async () => {
    await store.loadFirstPage();
    await store.rename('c3', 'Trip');
    await store.remove('c4');
    await vi.waitFor(() => expect(heard).toEqual([
      { conversationId: 'c3', change: 'renamed', title: 'Trip', updatedAt: '2025-02-01T00:00:00.000Z' },
      { conversationId: 'c4', change: 'deleted' },
    ]));
  });

  it('takes a delete of a conversation already deleted elsewhere as done, and a rename of one as its end in the list', async () => {
    await store.loadFirstPage();
    server.splice(2, 2); // c2 and c3, deleted through the API
    await store.remove('c2');
    expect(ids()).not.toContain('c2');
    await expect(store.rename('c3', 'Trip')).rejects.toThrow('Conversation not found');
    expect(ids()).not.toContain('c3');
    expect(ids()).toHaveLength(18);
  });

  it('does not bring back a conversation deleted while a page was on its way', async () => {
    await store.loadFirstPage();
    let answer: (page: unknown) => void = () => undefined;
    api.get.mockReturnValueOnce(new Promise((resolve) => { answer = resolve; }));
    const refreshed = store.refresh();
    otherTab.postMessage({ conversationId: 'c1', change: 'deleted' });
    await vi.waitFor(() => expect(ids()).not.toContain('c1'));
    answer({ conversations: server.slice(0, 20), total: server.length, limit: 20, offset: 0 });
    await refreshed;
    expect(ids()).not.toContain('c1');
    expect(ids()).toHaveLength(19);
  });
});

describe('ConversationsStore first load failing', () => {
  let get: ReturnType<typeof vi.fn>;
  let store: ConversationsStore;
  const page = { conversations: [conversation('a', 'Trip')], total: 1, limit: 20, offset: 0 };

  beforeEach(() => {
    vi.useFakeTimers();
    get = vi.fn();
    TestBed.configureTestingModule({ providers: [{ provide: ApiClient, useValue: { get } }] });
    store = TestBed.inject(ConversationsStore);
  });

  afterEach(() => vi.useRealTimers());

  it('says why in place of the list, retries after Retry-After, then backs off, and clears once a load succeeds', async () => {
    get.mockRejectedValueOnce(new ApiError(503, 'SERVICE_UNAVAILABLE', 'The service is temporarily unavailable', 5))
      .mockRejectedValueOnce(ApiError.network());
    await store.loadFirstPage(); // resolves: the store says it and tries again
    expect(store.loadError()).toBe('Parley\'s server is briefly unavailable. Try again in 5 s.');
    expect(store.isEmpty()).toBe(false);
    // Not before the server's Retry-After.
    await vi.advanceTimersByTimeAsync(4_900);
    expect(get).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(100);
    expect(get).toHaveBeenCalledTimes(2);
    expect(store.loadError()).toMatch(/cannot be reached|offline/);
    // No Retry-After this time: the backoff, 4 s on a second failure.
    get.mockResolvedValueOnce(page);
    await vi.advanceTimersByTimeAsync(3_900);
    expect(get).toHaveBeenCalledTimes(2);
    await vi.advanceTimersByTimeAsync(100);
    expect(get).toHaveBeenCalledTimes(3);
    expect(store.loadError()).toBeNull();
    expect(store.conversations().map((c) => c.id)).toEqual(['a']);
    await vi.advanceTimersByTimeAsync(120_000);
    expect(get).toHaveBeenCalledTimes(3);
  });

  it('retries at once when asked, instead of the scheduled retry', async () => {
    get.mockRejectedValueOnce(new ApiError(429, 'RATE_LIMIT_EXCEEDED', 'Rate limit exceeded', 30));
    await store.loadFirstPage();
    expect(store.loadError()).toBe('Too many requests. Try again in 30 s.');
    get.mockResolvedValueOnce(page);
    await store.retryLoad();
    expect(get).toHaveBeenCalledTimes(2);
    expect(store.loadError()).toBeNull();
    expect(store.conversations().map((c) => c.id)).toEqual(['a']);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(get).toHaveBeenCalledTimes(2);
  });

  it('does not retry a refusal by itself (a 4xx other than 429 will not change): it waits for Retry', async () => {
    get.mockRejectedValueOnce(new ApiError(403, 'FORBIDDEN', 'Not allowed.'));
    await store.loadFirstPage();
    expect(store.loadError()).toBe('Not allowed.');
    await vi.advanceTimersByTimeAsync(120_000);
    expect(get).toHaveBeenCalledTimes(1);
  });

  it('still rejects a failed reload with conversations shown (the caller says it; the list stays)', async () => {
    get.mockResolvedValueOnce(page);
    await store.loadFirstPage();
    get.mockRejectedValueOnce(ApiError.network());
    await expect(store.loadFirstPage()).rejects.toBeInstanceOf(ApiError);
    expect(store.loadError()).toBeNull();
    expect(store.conversations().map((c) => c.id)).toEqual(['a']);
  });
});
