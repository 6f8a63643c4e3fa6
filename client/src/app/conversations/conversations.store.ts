import { DestroyRef, Injectable, computed, inject, signal } from '@angular/core';
import { takeUntilDestroyed } from '@angular/core/rxjs-interop';
import { DraftStore } from '../chat/draft-store';
import { API_BASE, ApiClient } from '../core/api-client';
import { ApiError, friendlyMessage } from '../core/api-error';
import type { Conversation, ConversationPage } from '../core/api-models';
import { type TabNews, TabsChannel } from './tabs-channel';

const PAGE_SIZE = 20;
/** A list that could not be read is read again by itself: after 2 s, then twice as long each time up to 30 s (as ChatStore's). */
const LOAD_RETRY_FIRST_MS = 2_000;
const LOAD_RETRY_MAX_MS = 30_000;

/** The API says the conversation does not exist (any more): deleted elsewhere, or never this session's. */
export function isConversationGone(error: unknown): boolean {
  return error instanceof ApiError && error.status === 404 && error.code === 'CONVERSATION_NOT_FOUND';
}

/** The sidebar's conversations, newest first, fetched page by page. */
@Injectable({ providedIn: 'root' })
export class ConversationsStore {
  private readonly api = inject(ApiClient);
  private readonly drafts = inject(DraftStore);
  private readonly items = signal<Conversation[]>([]);
  private readonly totalCount = signal(0);
  private readonly loading = signal(false);
  private readonly loaded = signal(false);
  private readonly search = signal('');
  /** Bumps with each new search: a page asked for under an earlier one is dropped when it arrives. */
  private searchGeneration = 0;
  /** Conversations known deleted: a page asked for before the deletion does not bring them back. */
  private readonly deleted = new Set<string>();
  private readonly tabs = inject(TabsChannel);
  private readonly loadFailure = signal<string | null>(null);
  private loadRetry?: ReturnType<typeof setTimeout>;
  private loadAttempts = 0;

  readonly conversations = this.items.asReadonly();
  readonly isLoading = this.loading.asReadonly();
  readonly isLoaded = this.loaded.asReadonly();
  readonly hasMore = computed(() => this.items().length < this.totalCount());
  readonly isEmpty = computed(() => this.loaded() && this.items().length === 0);
  /** The text the list is filtered by (titles containing it, any case); '' for all conversations. */
  readonly query = this.search.asReadonly();
  /** Why the list could not be read, while nothing of it is shown (it is being tried again); null otherwise. */
  readonly loadError = this.loadFailure.asReadonly();

  constructor() {
    inject(DestroyRef).onDestroy(() => clearTimeout(this.loadRetry));
    // The list follows what the other tabs of this browser do (the open conversation follows in ChatStore).
    this.tabs.news.pipe(takeUntilDestroyed()).subscribe((news) => this.followOtherTab(news));
  }

  /** Shows only the conversations whose title contains `text` ('' shows them all again). */
  async setQuery(text: string): Promise<void> {
    const trimmed = text.trim();
    // Accent marks alone are nothing to search for (the API refuses them): the whole list, as for ''.
    const query = trimmed.normalize('NFKD').replace(/\p{M}/gu, '') === '' ? '' : trimmed;
    if (query === this.search()) return;
    this.search.set(query);
    this.searchGeneration++;
    this.items.set([]);
    this.totalCount.set(0);
    this.loaded.set(false);
    await this.loadFirstPage();
  }

  /**
   * Reads the top of the list. When nothing of it is shown yet, a failure does not reject: the list says why in
   * place of the conversations (a blank sidebar said nothing, not even "No conversations yet") and tries again by
   * itself, after the server's Retry-After when it gave one. With conversations shown, it rejects for the caller.
   */
  async loadFirstPage(): Promise<void> {
    clearTimeout(this.loadRetry);
    const generation = this.searchGeneration;
    try {
      await this.fetch(0, PAGE_SIZE, true);
    } catch (error: unknown) {
      if (this.loaded()) throw error;
      // A newer search took over: its own load says how it went.
      if (generation !== this.searchGeneration) return;
      this.failLoad(error);
    }
  }

  /** Reads the list again after a failure (the list's Retry, and the automatic retries). */
  retryLoad(): Promise<void> {
    if (this.loadFailure() === null) return Promise.resolve();
    return this.loadFirstPage();
  }

  async loadMore(): Promise<void> {
    if (this.loading() || !this.hasMore()) return;
    await this.fetch(this.items().length, PAGE_SIZE, false);
  }

  /** Re-reads the top of the list (order and titles change as answers arrive). */
  async refresh(): Promise<void> {
    await this.fetch(0, Math.min(100, Math.max(PAGE_SIZE, this.items().length)), true);
  }

  async rename(id: string, title: string): Promise<void> {
    let conversation: Conversation;
    try {
      ({ conversation } = await this.api.patch<{ conversation: Conversation }>(
        `${API_BASE}/conversations/${encodeURIComponent(id)}`, { title }));
    } catch (error: unknown) {
      // Deleted elsewhere: its row goes, and the caller says why nothing was renamed.
      if (isConversationGone(error)) this.forget(id);
      throw error;
    }
    this.items.update((list) => list.map((c) => (c.id === id ? conversation : c)));
    this.tabs.tell({ conversationId: id, change: 'renamed', title: conversation.title ?? '', updatedAt: conversation.updated_at });
  }

  async remove(id: string): Promise<void> {
    try {
      await this.api.delete(`${API_BASE}/conversations/${encodeURIComponent(id)}`);
    } catch (error: unknown) {
      // Already deleted elsewhere (another browser, the API): what was asked for is done.
      if (!isConversationGone(error)) throw error;
    }
    this.forget(id);
    this.tabs.tell({ conversationId: id, change: 'deleted' });
  }

  /**
   * Takes out of the list a conversation found deleted (by another tab, or opening it answered not found), with its
   * draft; a page on its way does not bring it back.
   */
  forget(id: string): void {
    this.deleted.add(id);
    this.drafts.forget(id);
    const isListed = this.items().some((c) => c.id === id);
    if (!isListed) return;
    this.items.update((list) => list.filter((c) => c.id !== id));
    this.totalCount.update((n) => Math.max(0, n - 1));
  }

  private failLoad(error: unknown): void {
    this.loadFailure.set(friendlyMessage(error));
    // Network failures (status 0), 5xx and 429 are worth another try (as ChatStore's reconnect); a refusal waits for Retry.
    const isRefused = error instanceof ApiError && error.status >= 400 && error.status < 500 && error.status !== 429;
    if (isRefused) return;
    const backoff = Math.min(LOAD_RETRY_MAX_MS, LOAD_RETRY_FIRST_MS * 2 ** this.loadAttempts++);
    const retryAfter = error instanceof ApiError ? error.retryAfterSeconds : undefined;
    this.loadRetry = setTimeout(() => void this.retryLoad(), retryAfter ? retryAfter * 1000 : backoff);
  }

  /** Follows what another tab did. */
  private followOtherTab(news: TabNews): void {
    switch (news.change) {
      case undefined:
        // Not a request per token: a tab says so when an answer starts and when it ends.
        this.refresh().catch(() => undefined);
        break;
      case 'deleted':
        this.forget(news.conversationId);
        break;
      case 'renamed':
        // As the renaming tab shows it: in its place, until the list is read again.
        this.items.update((list) => list.map((c) => (c.id === news.conversationId ? { ...c, title: news.title, updated_at: news.updatedAt } : c)));
        break;
    }
  }

  /**
   * The loaded conversations that a fresh top of the list leaves out and that still belong below it, in their order.
   * Not those after the first `limit` loaded: a new conversation pushes each one down by one, and the one pushed out
   * of the fresh top was then neither in it nor kept (offset paging, which counts what is loaded, never brought it
   * back). Left out are those the list no longer has (deleted elsewhere, or no longer matching the search): all of
   * them when the fresh page reaches the end of the list, else those newer than its last (the list is newest first
   * and a conversation only gets newer, so one still there would be in the page). One deleted elsewhere further down
   * cannot be told apart and stays until the list is read again or opening it finds it gone (another tab of this
   * browser says so at once: forget).
   */
  private below(fresh: readonly Conversation[], loaded: readonly Conversation[], isWholeList: boolean): Conversation[] {
    if (isWholeList) return [];
    const ids = new Set(fresh.map((c) => c.id));
    const last = fresh.at(-1)?.updated_at ?? '';
    return loaded.filter((c) => !ids.has(c.id) && c.updated_at <= last);
  }

  private async fetch(offset: number, limit: number, replace: boolean): Promise<void> {
    this.loading.set(true);
    const generation = this.searchGeneration;
    const query = this.search();
    try {
      const filter = query ? `&q=${encodeURIComponent(query)}` : '';
      const page = await this.api.get<ConversationPage>(`${API_BASE}/conversations?limit=${limit}&offset=${offset}${filter}`);
      if (generation !== this.searchGeneration) return;
      // A page asked for before a deletion here (or heard of from another tab) may still hold that conversation.
      const fresh = page.conversations.filter((c) => !this.deleted.has(c.id));
      this.totalCount.set(page.total - (page.conversations.length - fresh.length));
      if (replace) {
        this.items.set([...fresh, ...this.below(fresh, this.items(), offset + limit >= page.total)]);
      } else {
        const known = new Set(this.items().map((c) => c.id));
        this.items.update((list) => [...list, ...fresh.filter((c) => !known.has(c.id))]);
      }
      this.loaded.set(true);
      if (this.loadFailure() !== null) {
        clearTimeout(this.loadRetry);
        this.loadFailure.set(null);
      }
      this.loadAttempts = 0;
    } finally {
      if (generation === this.searchGeneration) this.loading.set(false);
    }
  }
}
