import { TestBed } from '@angular/core/testing';
import { ApiClient } from '../core/api-client';
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
