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
