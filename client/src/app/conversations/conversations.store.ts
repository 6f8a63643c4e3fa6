import { Injectable, computed, inject, signal } from '@angular/core';
import { DraftStore } from '../chat/draft-store';
import { API_BASE, ApiClient } from '../core/api-client';
import type { Conversation, ConversationPage } from '../core/api-models';

const PAGE_SIZE = 20;

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

  readonly conversations = this.items.asReadonly();
  readonly isLoading = this.loading.asReadonly();
  readonly isLoaded = this.loaded.asReadonly();
  readonly hasMore = computed(() => this.items().length < this.totalCount());
  readonly isEmpty = computed(() => this.loaded() && this.items().length === 0);
  /** The text the list is filtered by (titles containing it, any case); '' for all conversations. */
  readonly query = this.search.asReadonly();

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
    await this.fetch(0, PAGE_SIZE, true);
  }

  async loadFirstPage(): Promise<void> {
    await this.fetch(0, PAGE_SIZE, true);
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
    const { conversation } = await this.api.patch<{ conversation: Conversation }>(
      `${API_BASE}/conversations/${encodeURIComponent(id)}`, { title });
    this.items.update((list) => list.map((c) => (c.id === id ? conversation : c)));
  }

  async remove(id: string): Promise<void> {
    await this.api.delete(`${API_BASE}/conversations/${encodeURIComponent(id)}`);
    this.drafts.forget(id);
    this.items.update((list) => list.filter((c) => c.id !== id));
    this.totalCount.update((n) => Math.max(0, n - 1));
  }

  /**
   * The loaded conversations that a fresh top of the list leaves out and that still belong below it, in their order.
   * Not those after the first `limit` loaded: a new conversation pushes each one down by one, and the one pushed out
   * of the fresh top was then neither in it nor kept (offset paging, which counts what is loaded, never brought it
   * back). Left out are those the list no longer has (deleted elsewhere, or no longer matching the search): all of
   * them when the fresh page reaches the end of the list, else those newer than its last (the list is newest first
   * and a conversation only gets newer, so one still there would be in the page). One deleted elsewhere further down
   * cannot be told apart and stays until the list is read again.
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
      this.totalCount.set(page.total);
      if (replace) {
        this.items.set([...page.conversations, ...this.below(page.conversations, this.items(), offset + limit >= page.total)]);
      } else {
        const known = new Set(this.items().map((c) => c.id));
        this.items.update((list) => [...list, ...page.conversations.filter((c) => !known.has(c.id))]);
      }
      this.loaded.set(true);
    } finally {
      if (generation === this.searchGeneration) this.loading.set(false);
    }
  }
}
