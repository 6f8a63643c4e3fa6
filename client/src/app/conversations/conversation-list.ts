import {
  ChangeDetectionStrategy, Component, DestroyRef, ElementRef, Injector, afterNextRender, computed, effect, inject, input, output, signal,
  untracked, viewChild,
} from '@angular/core';
import { Router, RouterLink } from '@angular/router';
import { friendlyMessage } from '../core/api-error';
import type { Conversation } from '../core/api-models';
import { isComposing } from '../core/ime';
import { Icon } from '../shell/icon';
import { ToastService } from '../shell/toast.service';
import { ConversationsStore } from './conversations.store';

interface ConversationGroup {
  label: string;
  items: Conversation[];
}

const DAY = 86_400_000;

/** How long typing must pause before the list is searched. */
const SEARCH_DELAY_MS = 250;

/**
 * The most of a snippet's text shown before its match. The server sends up to 40 characters, and in a row about 25
 * wide the match fell to a third line, which the two-line clamp hides: the result did not show why it was found.
 */
const SNIPPET_LEAD_CHARS = 16;
/** A cut this close to a space moves on to it, so the lead starts with a whole word. */
const SNIPPET_WORD_SLACK = 8;

/** The end of `before`, at most SNIPPET_LEAD_CHARS, after an ellipsis when cut. */
function snippetLead(before: string): string {
  if (before.length <= SNIPPET_LEAD_CHARS) return before;
  let from = before.length - SNIPPET_LEAD_CHARS;
  const space = before.indexOf(' ', from);
  if (space !== -1 && space - from < SNIPPET_WORD_SLACK && space < before.length - 1) from = space + 1;
  // Never half a character: not the second half of a surrogate pair, nor the accents or joiners of a cut one.
  const lead = before.slice(from).replace(/^[\udc00-\udfff]/, '').replace(/^(?:\p{M}|\u200d)+/u, '');
  // A word joiner holds the ellipsis to the text: a line could break after it, and a long word left the first line empty.
  return `…\u2060${lead}`;
}

function groupLabel(updatedAt: string, now: Date): string {
  const startOfToday = new Date(now.getFullYear(), now.getMonth(), now.getDate()).getTime();
  const time = Date.parse(updatedAt);
  if (time >= startOfToday) return 'Today';
  if (time >= startOfToday - DAY) return 'Yesterday';
  if (time >= startOfToday - 7 * DAY) return 'Previous 7 days';
  if (time >= startOfToday - 30 * DAY) return 'Previous 30 days';
  return 'Older';
}

/** The sidebar: conversations newest first, grouped by day, with inline rename and confirmed delete. */
@Component({
  selector: 'app-conversation-list',
  changeDetection: ChangeDetectionStrategy.OnPush,
  imports: [Icon, RouterLink],
  templateUrl: './conversation-list.html',
})
export class ConversationList {
  readonly activeId = input<string | null>(null);
  /** A conversation (or a new chat) was chosen: the phone layout closes the drawer, and the composer takes the keyboard. */
  readonly navigated = output();

  protected readonly store = inject(ConversationsStore);
  private readonly router = inject(Router);
  private readonly toasts = inject(ToastService);
  private readonly destroyRef = inject(DestroyRef);
  private isDestroyed = false;
  private readonly host = inject<ElementRef<HTMLElement>>(ElementRef);
  private readonly injector = inject(Injector);
  private observer: IntersectionObserver | null = null;
  protected readonly editingId = signal<string | null>(null);
  protected readonly pendingDelete = signal<Conversation | null>(null);
  private readonly confirmDialog = viewChild.required<ElementRef<HTMLDialogElement>>('confirm');
  private readonly sentinel = viewChild<ElementRef<HTMLElement>>('sentinel');
  private readonly scroller = viewChild.required<ElementRef<HTMLElement>>('scroller');

  protected readonly groups = computed<ConversationGroup[]>(() => {
    const now = new Date();
    const groups: ConversationGroup[] = [];
    for (const conversation of this.store.conversations()) {
      const label = groupLabel(conversation.updated_at, now);
      const last = groups.at(-1);
      if (last?.label === label) last.items.push(conversation);
      else groups.push({ label, items: [conversation] });
    }
    return groups;
  });

  constructor() {
    // The box is the reader's: what they type stays as typed (the store holds it trimmed). It follows the store
    // only when the search ends elsewhere (a new conversation started) or the list was made again (a drawer).
    // Not when the store only took the box's own search: the box may hold more by then (a key pressed between the
    // search applied and this effect ran was lost, "lisbon" becoming "isbon" right after Esc).
    effect(() => {
      const query = this.store.query();
      if (query === this.ownQuery) return;
      const input = untracked(() => this.searchInput())?.nativeElement;
      if (input && input.value.trim() !== query) input.value = query;
    });
    // A search typed just before the list goes is not run against a destroyed view.
    this.destroyRef.onDestroy(() => {
      this.isDestroyed = true;
      clearTimeout(this.searchTimer);
    });
    // A first load that fails is said in the list, and retried, by the store: it rejects only with a list shown.
    this.store.loadFirstPage().then(
      () => this.recheckEnd(),
      (error: unknown) => this.toasts.error(friendlyMessage(error), { key: 'conversations' }),
    );
    // A list that came with a retry after a failed load (no caller waits for it) has its end watched too.
    let hadFailed = false;
    effect(() => {
      const hasFailed = this.store.loadError() !== null;
      if (hadFailed && !hasFailed) untracked(() => this.recheckEnd());
      hadFailed = hasFailed;
    });
    afterNextRender(() => {
      if (typeof IntersectionObserver === 'undefined') return;
      // Load the next page when the end of the list scrolls into view.
      const observer = new IntersectionObserver((entries) => {
        if (entries.some((e) => e.isIntersecting)) this.loadMore();
      }, { root: this.scroller().nativeElement, rootMargin: '200px' });
      this.observer = observer;
      this.destroyRef.onDestroy(() => observer.disconnect());
      // The end is watched once the first page is drawn (recheckEnd). Watched before, the empty list's end
      // was in view, and that report could arrive after the first page had come but before it was drawn:
      // the second page was asked for with nothing scrolled.
      const sentinel = this.sentinel()?.nativeElement;
      if (sentinel && this.store.isLoaded()) observer.observe(sentinel);
    });
  }

  protected titleOf(conversation: Conversation): string {
    return conversation.title?.trim() || 'New conversation';
  }

  /** For a conversation a search found by a message: that message's line, cut around the match, and whose it is. */
  protected snippetOf(conversation: Conversation): { who: string; before: string; hit: string; after: string } | null {
    const match = conversation.match;
    if (!match) return null;
    const { text, start, length } = match.snippet;
    const at = Math.max(0, Math.min(text.length, start));
    const end = Math.max(at, Math.min(text.length, start + length));
    return { who: match.role === 'user' ? 'You' : 'Answer', before: snippetLead(text.slice(0, at)), hit: text.slice(at, end), after: text.slice(end) };
  }

  protected newChat(): void {
    // Navigating first: the parent, told next, can see the navigation under way.
    void this.router.navigate(['/']);
    this.navigated.emit();
  }

  /** A link opened in a new tab or window (a modified or middle click) leaves this page as it is. */
  protected onLinkClick(event: MouseEvent): void {
    if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
    this.navigated.emit();
  }

  private searchTimer?: ReturnType<typeof setTimeout>;
  /** The query this list's box last gave the store (undefined before any). */
  private ownQuery?: string;
  private readonly searchInput = viewChild<ElementRef<HTMLInputElement>>('search');

  /** Filters the list by titles and messages once typing pauses (a request per pause, not per key). */
  protected onSearch(text: string): void {
    clearTimeout(this.searchTimer);
    this.searchTimer = setTimeout(() => {
      const searching = this.store.setQuery(text);
      // Set by now (setQuery takes the query at once): what the box asked for.
      this.ownQuery = untracked(() => this.store.query());
      searching.then(() => this.recheckEnd(), (error: unknown) => this.toasts.error(friendlyMessage(error), { key: 'conversations' }));
    }, SEARCH_DELAY_MS);
  }

  /**
   * Esc empties the search box and shows every conversation again, and only that: the phone layout's drawer stays
   * open (it closed as well before). In an empty box Esc goes on to close the drawer.
   */
  protected clearSearch(input: HTMLInputElement, event: Event): void {
    if (input.value === '' || isComposing(event)) return;
    event.stopPropagation();
    input.value = '';
    this.onSearch('');
  }

  protected loadMore(): void {
    if (!this.store.hasMore() || this.store.isLoading()) return;
    const shown = this.store.conversations().length;
    this.store.loadMore().then(
      // A page that brought nothing new would only ask again; a failed one waits for the reader (Load more).
      () => { if (this.store.conversations().length > shown) this.recheckEnd(); },
      (error: unknown) => this.toasts.error(friendlyMessage(error)),
    );
  }

  /**
   * The observer reports changes only: an end of the list still in view once a page is drawn (a tall sidebar,
   * short pages) reported nothing, and the list stopped there. Observing it again reports where it is now.
   */
  private recheckEnd(): void {
    // A load the store finished after the list went (its retries outlive the list) has nothing left to watch.
    if (this.isDestroyed) return;
    afterNextRender(() => {
      const sentinel = this.sentinel()?.nativeElement;
      if (!this.observer || !sentinel) return;
      this.observer.unobserve(sentinel);
      this.observer.observe(sentinel);
    }, { injector: this.injector });
  }

  /**
   * The keys of a conversation's row, on its link and on its buttons: Up and Down (Home, End) move
   * between conversations, Left and Right between the link and its buttons, Esc back to the link; on
   * the link, F2 renames and Delete asks to delete. A conversation is one Tab stop, not three.
   */
  protected onRowKey(event: KeyboardEvent, conversation: Conversation): void {
    if (event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
    const from = event.currentTarget as HTMLElement;
    const row = from.closest('.conv-item');
    if (!row) return;
    const stops = Array.from(row.querySelectorAll<HTMLElement>('a.conv-link, .conv-actions button'));
    const at = stops.indexOf(from);
    let to: HTMLElement | undefined;
    switch (event.key) {
      case 'ArrowDown':
      case 'ArrowUp':
      case 'Home':
      case 'End': {
        const links = Array.from(this.scroller().nativeElement.querySelectorAll<HTMLElement>('a.conv-link'));
        const current = links.indexOf(stops[0]);
        const target = event.key === 'Home' ? 0 : event.key === 'End' ? links.length - 1 : current + (event.key === 'ArrowDown' ? 1 : -1);
        to = links[Math.max(0, Math.min(links.length - 1, target))];
        break;
      }
      case 'ArrowRight': to = stops[Math.min(stops.length - 1, at + 1)]; break;
      case 'ArrowLeft': to = stops[Math.max(0, at - 1)]; break;
      case 'Escape':
        if (at <= 0) return;
        // Back to the link only: the phone layout's drawer stays open.
        event.stopPropagation();
        to = stops[0];
        break;
      case 'F2': if (at === 0) { event.preventDefault(); this.startRename(conversation); } return;
      case 'Delete': if (at === 0) { event.preventDefault(); this.askDelete(conversation); } return;
      default: return;
    }
    if (!to) return;
    // The keys move the focus instead of scrolling the list (focus brings the target into view).
    event.preventDefault();
    to.focus();
  }

  protected startRename(conversation: Conversation): void {
    this.editingId.set(conversation.id);
    // The input exists after this change renders.
    setTimeout(() => {
      const input = document.getElementById(`rename-${conversation.id}`);
      if (input instanceof HTMLInputElement) {
        input.focus();
        input.select();
      }
    });
  }

  /** Enter saves the title, unless it commits an input method's composition (the title is still being typed). */
  protected renameOnEnter(conversation: Conversation, value: string, event: Event): void {
    if (!isComposing(event)) void this.saveRename(conversation, value);
  }

  protected async saveRename(conversation: Conversation, value: string): Promise<void> {
    if (this.editingId() !== conversation.id) return;
    this.editingId.set(null);
    const title = value.trim();
    this.focusLink(conversation.id);
    if (!title) {
      // Saying why nothing changed (a blank title was dropped without a word).
      this.toasts.show('A title cannot be empty; the conversation keeps its name.');
      return;
    }
    if (title === conversation.title) return;
    try {
      await this.store.rename(conversation.id, title);
    } catch (error: unknown) {
      this.toasts.error(friendlyMessage(error));
    }
  }

  /** Esc ends the rename only: the phone layout's drawer stays open, and the keyboard goes back to the row's link. */
  protected cancelRename(conversation: Conversation, event?: Event): void {
    if (event && isComposing(event)) return;
    event?.stopPropagation();
    this.editingId.set(null);
    this.focusLink(conversation.id);
  }

  protected askDelete(conversation: Conversation): void {
    this.pendingDelete.set(conversation);
    this.confirmDialog().nativeElement.showModal();
  }

  protected cancelDelete(): void {
    this.confirmDialog().nativeElement.close();
  }

  protected async confirmDelete(): Promise<void> {
    const conversation = this.pendingDelete();
    this.confirmDialog().nativeElement.close();
    if (!conversation) return;
    // Focus goes where the deleted one was (the next conversation, else the previous, else New chat),
    // not to the page's body with the removed row.
    const list = this.store.conversations();
    const at = list.findIndex((c) => c.id === conversation.id);
    const neighbour = list[at + 1] ?? list[at - 1];
    try {
      await this.store.remove(conversation.id);
      this.toasts.show('Conversation deleted');
      if (conversation.id === this.activeId()) await this.router.navigate(['/']);
      if (neighbour) this.focusLink(neighbour.id);
      else setTimeout(() => this.host.nativeElement.querySelector<HTMLElement>('.new-chat')?.focus());
    } catch (error: unknown) {
      this.toasts.error(friendlyMessage(error));
    }
  }

  private focusLink(id: string): void {
    setTimeout(() => document.getElementById(`conv-${id}`)?.focus());
  }
}
