import { Injectable, computed, inject, signal } from '@angular/core';
import { takeUntilDestroyed } from '@angular/core/rxjs-interop';
import { Router } from '@angular/router';
import type { Observable, Subscription } from 'rxjs';
import { ConversationsStore, isConversationGone } from '../conversations/conversations.store';
import { type TabNews, TabsChannel } from '../conversations/tabs-channel';
import { API_BASE, ApiClient } from '../core/api-client';
import { ApiError, friendlyMessage } from '../core/api-error';
import type { Attachment, ConversationDetail, Feedback, MessagePage } from '../core/api-models';
import { randomId } from '../core/random-id';
import { NetworkStatus } from '../shell/network-status';
import { ToastService } from '../shell/toast.service';
import { answerNotice } from './answer-notices';
import { ChatApi, StreamCutError } from './chat-api.service';
import { ChatConfigStore } from './chat-config.store';
import { failureText } from './failure-texts';
import { MarkdownRenderer } from './markdown-renderer';
import type { StreamedEvent } from './chat-events';
import { type ChatMessage, emptyMessage, withoutEarlierAnswers, withoutReplaced } from './chat-message';
import { saveStreamSnapshot, takeStreamSnapshot } from './stream-snapshot';
import { splitThinking } from './think-block';
import { TokenDrawer } from './token-drawer';

const PAGE_SIZE = 50;
/**
 * Newer messages are loaded in smaller pages: they are rendered at once, below the reader (an older page is
 * rendered a batch per task, see MessageList), and 20 short messages stay within one frame's budget or two.
 */
const NEWER_PAGE_SIZE = 20;
/** Retries of a conversation that failed to load: the first after this, then doubling. */
const LOAD_RETRY_FIRST_MS = 2_000;
const LOAD_RETRY_MAX_MS = 30_000;
/** A tab shown and focused at once catches up once. */
const CATCH_UP_MIN_MS = 1_000;
/** How much of an answer's source its announcement is made from (it says at most 2,000 characters). */
const ANNOUNCED_SOURCE_CHARS = 4_000;
/** How long a cut answer is reconnected to (a server restarting, a network change) before giving up. */
const RECONNECT_FOR_MS = 120_000;
/**
 * The longest pause between two tries (the first is 0.5 s, then doubling). While it reconnects the composer shows
 * Stop and sends nothing, so a server back for 7 s (up to 8 s before) was time the user could only wait.
 */
const RECONNECT_MAX_PAUSE_MS = 3_000;

/**
 * The pause before reconnect try `attempt`: the growing pause, less a random part of at most its half,
 * so that the browsers a restarting server cut do not all come back at the same instants.
 */
export function reconnectPause(attempt: number, random = Math.random()): number {
  const pause = Math.min(RECONNECT_MAX_PAUSE_MS, 500 * 2 ** attempt);
  return Math.round(pause * (1 - random / 2));
}

interface FollowContext {
  /** The id the streamed answer has in `list` now (a local id until `start`). */
  assistantId: string;
  /** Local user message to renumber on `start`. */
  userId?: string;
  /** What to undo when the request fails before the stream opens. */
  rollback?: () => void;
}

/** The form of a conversation or message id (a UUID). */
const SERVER_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The open conversation: its messages, the answer streaming into it, and every chat action. */
@Injectable({ providedIn: 'root' })
export class ChatStore {
  private readonly api = inject(ApiClient);
  private readonly chat = inject(ChatApi);
  private readonly config = inject(ChatConfigStore);
  private readonly conversations = inject(ConversationsStore);
  private readonly tabs = inject(TabsChannel);
  private readonly router = inject(Router);
  private readonly toasts = inject(ToastService);
  private readonly network = inject(NetworkStatus);
  private readonly markdown = inject(MarkdownRenderer);

  private readonly currentId = signal<string | null>(null);
  private readonly list = signal<ChatMessage[]>([]);
  /** The open conversation's title as last read with its messages (the sidebar may be showing a search). */
  private readonly openTitle = signal<string | null>(null);
  readonly conversationTitle = this.openTitle.asReadonly();
  private readonly hasOlderPages = signal(false);
  private readonly loadingOlder = signal(false);
  /** The list is a page opened around a message (a search match): the conversation goes on below it. */
  private readonly hasNewerPages = signal(false);
  private readonly loadingNewer = signal(false);
  /** The message the conversation was opened at (a search match), to scroll to and mark; null otherwise. */
  private readonly focus = signal<string | null>(null);
  private readonly loadingConversation = signal(false);
  private readonly missing = signal(false);
  /** Why the open conversation could not be loaded (server unreachable, 5xx); null when it was or is loading. */
  private readonly loadFailure = signal<string | null>(null);
  private loadRetry?: ReturnType<typeof setTimeout>;
  private loadAttempts = 0;
  private readonly streamingId = signal<string | null>(null);
  private readonly announcementText = signal('');

  readonly conversationId = this.currentId.asReadonly();
  readonly messages = this.list.asReadonly();
  readonly hasOlder = this.hasOlderPages.asReadonly();
  readonly isLoadingOlder = this.loadingOlder.asReadonly();
  readonly hasNewer = this.hasNewerPages.asReadonly();
  readonly isLoadingNewer = this.loadingNewer.asReadonly();
  readonly focusedId = this.focus.asReadonly();
  readonly isLoading = this.loadingConversation.asReadonly();
  readonly isMissing = this.missing.asReadonly();
  readonly loadError = this.loadFailure.asReadonly();
  readonly streamingMessageId = this.streamingId.asReadonly();
  readonly isStreaming = computed(() => this.streamingId() !== null);
  readonly announcement = this.announcementText.asReadonly();
  /** The answer Regenerate would replace: the last message, when it is a finished answer. */
  readonly regenerableId = computed(() => {
    const last = this.list().at(-1);
    // A page opened around a message is not the conversation's end: its last answer is not the last one.
    if (this.hasNewerPages()) return null;
    return last && last.role === 'assistant' && !this.isStreaming() && !last.id.startsWith('local-') ? last.id : null;
  });

  /** The question an edit would change: the last user message, once the conversation is stored and no answer runs. */
  readonly editableId = computed(() => {
    if (this.isStreaming() || this.hasNewerPages()) return null;
    const list = this.list();
    for (let i = list.length - 1; i >= 0; i--) {
      if (list[i].role === 'user') return list[i].id.startsWith('local-') ? null : list[i].id;
    }
    return null;
  });

  private subscription: Subscription | null = null;
  private isOwnStream = false;
  /** The server id of the answer being streamed (known from `start`). */
  private streamMessageId: string | null = null;
  /** The earlier answers a running regeneration hides (restoreHidden), oldest first. */
  private hiddenAnswers: { answers: ChatMessage[] } | null = null;
  private lastEventId: string | undefined;
  /** How much of the streamed answer was shown when the server last restated it from its start (restartContent). */
  private shownBeforeRestart: { messageId: string; length: number } | null = null;
  /** Tokens are drawn a few times a second, not one by one (TokenDrawer). */
  private readonly tokens = new TokenDrawer((id, text) =>
    this.list.update((list) => list.map((m) => (m.id === id ? { ...m, content: m.content + text } : m))));
  private isStopRequested = false;
  private loadGeneration = 0;
  /** The latest page on its way after a page opened around a message (showLatest). */
  private latestLoad: Promise<void> | null = null;
  /**
   * The conversation being opened, until its messages are in: a question sent meanwhile (a draft
   * restored on a reload and sent at once) waits for them, or the loaded page replaced it and its
   * answer, which the user then never saw.
   */
  private opening: Promise<void> | null = null;

  constructor() {
    window.addEventListener('pagehide', () => this.saveSnapshot());
    // Another tab, window or device may have written meanwhile: a tab shown again, or a window focused
    // again (two windows side by side stay visible), catches up; once for both events.
    let lastCatchUp = 0;
    const onBack = (): void => {
      if (document.visibilityState !== 'visible' || Date.now() - lastCatchUp < CATCH_UP_MIN_MS) return;
      lastCatchUp = Date.now();
      void this.catchUp();
    };
    document.addEventListener('visibilitychange', onBack);
    window.addEventListener('focus', onBack);
    this.tabs.news.pipe(takeUntilDestroyed()).subscribe((news) => this.followOtherTab(news));
  }

  /** Tells this browser's other tabs that a conversation's messages changed here. */
  private tellTabs(conversationId: string | null): void {
    if (conversationId) this.tabs.tell({ conversationId });
  }

  /**
   * The open conversation follows what another tab of this browser did to it (the sidebar follows by itself). An
   * answer started or ended there is caught up with at once, visible or not (this tab showed its own next exchange
   * right after the old ones, without the one sent meanwhile there, until a reload or a focus); deleted there, it is
   * not found here, with nothing left to send into or export.
   */
  private followOtherTab(news: TabNews): void {
    if (news.conversationId !== this.currentId()) return;
    switch (news.change) {
      case undefined:
        void this.catchUpOpen();
        break;
      case 'deleted':
        this.showMissing();
        break;
      case 'renamed':
        this.openTitle.set(news.title);
        break;
    }
  }

  /** The open conversation is gone: its answer is left, its retries stop, and the view says it is not found. */
  private showMissing(): void {
    this.detach();
    clearTimeout(this.loadRetry);
    this.loadFailure.set(null);
    this.list.set([]);
    this.openTitle.set(null);
    this.announcementText.set('');
    this.hasOlderPages.set(false);
    this.hasNewerPages.set(false);
    this.focus.set(null);
    this.missing.set(true);
  }

  /**
   * Brings the list and the open conversation up to date with what happened elsewhere: new conversations,
   * messages sent and answers started from another tab (followed live), a conversation deleted there
   * (shown as not found). Not while this tab streams or loads: it is current then.
   */
  async catchUp(): Promise<void> {
    this.conversations.refresh().catch(() => undefined);
    await this.catchUpOpen();
  }

  /** Brings the open conversation up to date (catchUp without the list). */
  private async catchUpOpen(): Promise<void> {
    const id = this.currentId();
    if (id === null || this.isStreaming() || this.loadingConversation() || this.loadFailure() !== null || this.missing()) return;
    // Reading an earlier part (opened at a search match): the latest page is fetched when the reader goes there.
    if (this.hasNewerPages()) return;
    const generation = this.loadGeneration;
    try {
      const detail = await this.latestPage(id);
      if (generation !== this.loadGeneration || this.isStreaming() || this.currentId() !== id) return;
      const shown = this.list().at(-1);
      const latest = detail.messages.at(-1);
      // The same messages in the same order (one sent from another tab may sit before this tab's own last one).
      const ids = (list: readonly ChatMessage[]): string => list.map((m) => m.id).join();
      const isSame = ids(this.list().slice(-detail.messages.length)) === ids(detail.messages)
        && shown?.status === latest?.status && shown?.content.length === latest?.content.length;
      this.openTitle.set(detail.conversation?.title ?? null);
      if (isSame) return;
      this.list.set(detail.messages);
      this.hasOlderPages.set(detail.has_more);
      if (latest?.role === 'assistant' && latest.status === 'streaming') this.reattach(latest);
    } catch (error: unknown) {
      if (generation !== this.loadGeneration || this.currentId() !== id) return;
      if (error instanceof ApiError && error.status === 404) {
        this.list.set([]);
        this.missing.set(true);
        if (isConversationGone(error)) this.conversations.forget(id);
      }
      // Anything else: what is shown stays; the next send or visit says what is wrong.
    }
  }

  /** A conversation with its latest page of messages. */
  private latestPage(id: string): Promise<ConversationDetail> {
    return this.api.get<ConversationDetail>(`${API_BASE}/conversations/${encodeURIComponent(id)}?limit=${PAGE_SIZE}`);
  }

  /** The page around message `at` (its latest page without one, or when that message is gone: deleted by a regeneration since). */
  private async pageAt(id: string, at: string | null): Promise<ConversationDetail> {
    // A mistyped `?m=` (no message id can look like it) opens at the latest messages too.
    if (at === null || !SERVER_ID.test(at)) return this.latestPage(id);
    try {
      return await this.api.get<ConversationDetail>(
        `${API_BASE}/conversations/${encodeURIComponent(id)}?around=${encodeURIComponent(at)}&limit=${PAGE_SIZE}`);
    } catch (error: unknown) {
      if (error instanceof ApiError && error.status === 404 && error.code === 'MESSAGE_NOT_FOUND') return this.latestPage(id);
      throw error;
    }
  }

  /**
   * Leaves a page opened around a message for the conversation's latest messages (Jump to latest, a send);
   * while they load, the same load.
   */
  showLatest(): Promise<void> {
    const id = this.currentId();
    if (id === null || !this.hasNewerPages()) return this.latestLoad ?? Promise.resolve();
    this.focus.set(null);
    this.hasNewerPages.set(false);
    this.list.set([]);
    const load: Promise<void> = this.open(id).finally(() => {
      if (this.latestLoad === load) this.latestLoad = null;
    });
    this.latestLoad = load;
    return load;
  }

  /** The next newer page of a conversation opened around a message. */
  async loadNewer(): Promise<void> {
    const id = this.currentId();
    const last = this.list().at(-1);
    if (!id || !last || !this.hasNewerPages() || this.loadingNewer()) return;
    this.loadingNewer.set(true);
    try {
      const page = await this.api.get<MessagePage>(
        `${API_BASE}/conversations/${encodeURIComponent(id)}/messages?after=${last.position}&limit=${NEWER_PAGE_SIZE}`);
      if (id !== this.currentId() || !this.hasNewerPages()) return;
      const known = new Set(this.list().map((m) => m.id));
      this.list.update((list) => [...list, ...page.messages.filter((m) => !known.has(m.id))]);
      this.hasNewerPages.set(page.has_newer);
      const newest = page.messages.at(-1);
      if (!page.has_newer && newest?.role === 'assistant' && newest.status === 'streaming') this.reattach(newest);
    } catch (error: unknown) {
      this.toasts.error(friendlyMessage(error));
    } finally {
      this.loadingNewer.set(false);
    }
  }

  /**
   * Shows a conversation (null: a new, empty one), at its latest messages or, with `at`, at that message (a
   * search match: the page around it, the message marked). A running answer elsewhere keeps running on the server.
   */
  async open(id: string | null, at: string | null = null): Promise<void> {
    if (id !== null && id === this.currentId() && (this.list().length > 0 || this.loadingConversation())) {
      if (at === this.focus() || this.loadingConversation()) return;
      // Already open: a match on the page shown is scrolled to; anything else is fetched.
      if (at !== null && this.list().some((m) => m.id === at)) {
        this.focus.set(at);
        return;
      }
      if (at === null && !this.hasNewerPages()) {
        this.focus.set(null);
        return;
      }
    } else if (id === this.currentId() && (id === null || this.list().length > 0 || this.loadingConversation())) return;
    this.detach();
    const isRetry = id === this.currentId() && this.loadFailure() !== null;
    clearTimeout(this.loadRetry);
    if (!isRetry) {
      this.loadAttempts = 0;
      this.loadFailure.set(null);
    }
    this.currentId.set(id);
    this.list.set([]);
    this.openTitle.set(null);
    // The last answer's words leave the live region with their conversation (they stayed in the page for anyone to read).
    this.announcementText.set('');
    this.hasOlderPages.set(false);
    this.hasNewerPages.set(false);
    this.focus.set(at);
    this.missing.set(false);
    if (id === null) return;
    if (!SERVER_ID.test(id)) {
      // A mistyped or truncated link: no conversation can have this id (the API would answer 400).
      this.missing.set(true);
      return;
    }
    const generation = ++this.loadGeneration;
    this.loadingConversation.set(true);
    let opened!: () => void;
    const opening = new Promise<void>((resolve) => { opened = resolve; });
    this.opening = opening;
    try {
      const detail = await this.pageAt(id, at);
      if (generation !== this.loadGeneration) return;
      this.loadFailure.set(null);
      if (!detail.messages.some((m) => m.id === at)) this.focus.set(null);
      this.list.set(detail.messages);
      this.openTitle.set(detail.conversation?.title ?? null);
      this.hasOlderPages.set(detail.has_more);
      this.hasNewerPages.set(detail.has_newer === true);
      const last = detail.messages.at(-1);
      if (!detail.has_newer && last?.role === 'assistant' && last.status === 'streaming') this.reattach(last);
    } catch (error: unknown) {
      if (generation !== this.loadGeneration) return;
      this.loadFailure.set(null);
      if (error instanceof ApiError && error.status === 404) {
        this.missing.set(true);
        // Deleted elsewhere (another browser, an integrator through the API): its row in the list goes too.
        if (isConversationGone(error)) this.conversations.forget(id);
      } else this.failLoad(friendlyMessage(error));
    } finally {
      if (generation === this.loadGeneration) this.loadingConversation.set(false);
      if (this.opening === opening) this.opening = null;
      opened();
    }
  }

  /** Sends a message; resolves false when it was refused before any answer began (the caller keeps the draft). */
  async send(text: string, fileIds: string[] = [], attachments: Attachment[] = []): Promise<boolean> {
    if (this.isStreaming()) return false;
    if (this.opening) {
      const sentIn = this.currentId();
      await this.opening;
      // Another conversation was opened meanwhile: the question was not for it.
      if (this.currentId() !== sentIn) return false;
    }
    // Reading an earlier part: the question goes at the end, which is shown first (the view may have asked for it already).
    if (this.hasNewerPages() || this.latestLoad) await this.showLatest();
    if (this.isStreaming() || this.loadFailure() !== null) return false;
    const conversationId = this.currentId();
    const nextPosition = (this.list().at(-1)?.position ?? -1) + 1;
    const user: ChatMessage = { ...emptyMessage('user', conversationId ?? '', nextPosition), content: text, files: attachments };
    const assistant: ChatMessage = { ...emptyMessage('assistant', conversationId ?? '', nextPosition + 1), model_name: this.config.model() || null };
    this.list.update((list) => [...list, user, assistant]);
    const body = { message: text, ...(conversationId ? { conversation_id: conversationId } : {}), ...(fileIds.length ? { file_ids: fileIds } : {}) };
    return this.follow(this.chat.send(body, randomId()), {
      assistantId: assistant.id,
      userId: user.id,
      rollback: () => this.list.update((list) => list.filter((m) => m.id !== user.id && m.id !== assistant.id)),
    });
  }

  /**
   * A new answer to the last user message, first edited to `edit.text` when given; the old answer (and the
   * old text) are hidden meanwhile and come back if this fails at once.
   */
  regenerate(edit?: { text: string; messageId: string }): Promise<boolean> {
    const conversationId = this.currentId();
    if (!conversationId || this.isStreaming()) return Promise.resolve(false);
    const before = this.list();
    const last = before.at(-1);
    // Every answer to the last question goes: the one shown and any folded under it (withoutReplaced).
    let end = before.length;
    while (end > 0 && before[end - 1].role === 'assistant') end--;
    const kept = before.slice(0, end);
    const question = kept.at(-1);
    if (edit && question?.id === edit.messageId) kept[kept.length - 1] = { ...question, content: edit.text };
    const assistant: ChatMessage = {
      ...emptyMessage('assistant', conversationId, (last?.position ?? 0) + 1), model_name: this.config.model() || null,
    };
    this.list.set([...kept, assistant]);
    this.hiddenAnswers = { answers: before.slice(end) };
    return this.follow(this.chat.regenerate(conversationId, edit), {
      assistantId: assistant.id,
      rollback: () => {
        this.hiddenAnswers = null;
        this.list.set(before);
      },
    });
  }

  /** Stops the answer; the partial text stays (the server ends the stream with status `stopped`). */
  async stop(): Promise<void> {
    const messageId = this.streamMessageId;
    if (!this.isStreaming()) return;
    if (!messageId) {
      // Not started yet: stop as soon as the server names the answer.
      this.isStopRequested = true;
      return;
    }
    try {
      await this.chat.stop(messageId);
      // The stream normally ends with a `stopped` event; if it never comes, stop showing progress anyway.
      setTimeout(() => {
        if (this.streamMessageId === messageId) this.finishLocally(messageId, 'stopped');
      }, 5000);
    } catch (error: unknown) {
      // The answer may have just finished; anything else is worth saying.
      if (!(error instanceof ApiError && (error.status === 404 || error.status === 409))) this.toasts.error(friendlyMessage(error));
      this.finishLocally(messageId, 'stopped');
    }
  }

  async loadOlder(): Promise<void> {
    const id = this.currentId();
    const first = this.list()[0];
    if (!id || !first || !this.hasOlderPages() || this.loadingOlder()) return;
    this.loadingOlder.set(true);
    try {
      const page = await this.api.get<MessagePage>(
        `${API_BASE}/conversations/${encodeURIComponent(id)}/messages?before=${first.position}&limit=${PAGE_SIZE}`);
      if (id !== this.currentId()) return;
      const known = new Set(this.list().map((m) => m.id));
      this.list.update((list) => [...page.messages.filter((m) => !known.has(m.id)), ...list]);
      this.hasOlderPages.set(page.has_more);
    } catch (error: unknown) {
      this.toasts.error(friendlyMessage(error));
    } finally {
      this.loadingOlder.set(false);
    }
  }

  async setFeedback(messageId: string, feedback: Feedback, comment?: string): Promise<boolean> {
    const previous = this.list().find((m) => m.id === messageId);
    if (!previous) return false;
    this.patch(messageId, { feedback, feedback_comment: comment ?? previous.feedback_comment });
    try {
      const result = await this.chat.feedback(messageId, feedback, comment);
      this.patch(messageId, { feedback: result.feedback, feedback_comment: result.comment });
      return true;
    } catch (error: unknown) {
      this.patch(messageId, { feedback: previous.feedback, feedback_comment: previous.feedback_comment });
      this.toasts.error(friendlyMessage(error));
      return false;
    }
  }

  /**
   * The conversation could not be loaded: the view says so in place of the history (an empty thread looked
   * like lost history, and a message sent from it showed alone) and tries again by itself, 2 s after the
   * first failure, then twice as long each time up to 30 s, while the conversation stays open.
   */
  private failLoad(reason: string): void {
    this.loadFailure.set(reason);
    const delay = Math.min(LOAD_RETRY_MAX_MS, LOAD_RETRY_FIRST_MS * 2 ** this.loadAttempts++);
    this.loadRetry = setTimeout(() => void this.retryLoad(), delay);
  }

  /** Loads the open conversation again after a failure (the view's Retry, and the automatic retries). */
  retryLoad(): Promise<void> {
    if (this.loadFailure() === null) return Promise.resolve();
    clearTimeout(this.loadRetry);
    return this.open(this.currentId());
  }

  /** Re-attaches to an answer still being written (after a reload or a switch back). */
  private reattach(message: ChatMessage): void {
    const snapshot = takeStreamSnapshot(message.id);
    // Without a snapshot we cannot know which events the stored text already holds, so we replay them all.
    const content = snapshot ? snapshot.content : '';
    this.patch(message.id, { content });
    this.streamMessageId = message.id;
    this.lastEventId = snapshot?.lastEventId;
    void this.follow(this.chat.resume(message.id, snapshot?.lastEventId), { assistantId: message.id });
  }

  private follow(stream: Observable<StreamedEvent>, context: FollowContext): Promise<boolean> {
    this.subscription?.unsubscribe();
    // Sent or regenerated from this tab (a resumed answer was started elsewhere, whose tab tells the others).
    this.isOwnStream = context.rollback !== undefined;
    this.streamingId.set(context.assistantId);
    this.isStopRequested = false;
    let assistantId = context.assistantId;
    let hasStarted = assistantId === this.streamMessageId;
    const sentTo = this.currentId();
    return new Promise<boolean>((resolve) => {
      if (hasStarted) resolve(true);
      this.subscription = stream.subscribe({
        next: (event) => {
          if (event.eventId !== undefined) this.lastEventId = event.eventId;
          switch (event.type) {
            case 'start': {
              this.tokens.flush();
              const localId = assistantId;
              assistantId = event.message_id;
              this.streamMessageId = event.message_id;
              this.list.update((list) => this.hide(list, withoutReplaced(list, event.replaces_message_id, localId))
                .map((m) => {
                  if (m.id === localId) {
                    return {
                      ...m, id: event.message_id, conversation_id: event.conversation_id, model_name: event.model || m.model_name,
                      ...(event.context ? { context: event.context } : {}),
                    };
                  }
                  if (context.userId && m.id === context.userId) return { ...m, id: event.user_message_id, conversation_id: event.conversation_id };
                  return m;
                }));
              this.streamingId.set(event.message_id);
              if (this.isOwnStream) this.tellTabs(event.conversation_id);
              if (event.from_start) this.restartContent(event.message_id);
              if (!hasStarted) {
                hasStarted = true;
                resolve(true);
                this.onConversationStarted(event.conversation_id);
              }
              if (this.isStopRequested) void this.stop();
              break;
            }
            case 'token':
              this.tokens.append(assistantId, event.token);
              break;
            case 'done':
              this.patch(assistantId, { status: event.status, finish_reason: event.finish_reason });
              this.finish(assistantId);
              break;
            case 'error':
              this.patch(assistantId, {
                status: event.status, error_code: event.code, finish_reason: event.finish_reason ?? null,
                errorText: event.error || failureText(event.code, event.status, event.finish_reason), hasFailedLive: true,
              });
              this.finish(assistantId);
              break;
          }
        },
        error: (error: unknown) => {
          if (!hasStarted) {
            context.rollback?.();
            this.streamingId.set(null);
            this.subscription = null;
            if (sentTo !== null && isConversationGone(error) && this.currentId() === sentTo) {
              // Deleted elsewhere (another device, an integrator) while it stayed open here: it is shown as gone, and
              // its row leaves the list; the view keeps a question's words for a new chat.
              this.showMissing();
              this.conversations.forget(sentTo);
              this.toasts.error(context.userId
                ? 'This conversation was deleted elsewhere. Your message is kept: start a new chat to send it.'
                : 'This conversation was deleted elsewhere.');
            } else {
              this.reportSendError(error);
            }
            resolve(false);
            return;
          }
          if (error instanceof StreamCutError && this.streamMessageId === assistantId) {
            void this.reconnect(assistantId, 0);
            return;
          }
          this.patch(assistantId, { status: 'interrupted', errorText: friendlyMessage(error), hasFailedLive: true });
          this.finish(assistantId);
        },
      });
    });
  }

  /**
   * Follows a cut answer again after the last event it showed, with a growing pause (up to 3 s),
   * for RECONNECT_FOR_MS: long enough for a server to restart. The user is told while it lasts.
   * A refusal (the answer is gone, the session too) ends it at once.
   */
  private async reconnect(messageId: string, attempt: number, since = Date.now()): Promise<void> {
    if (Date.now() - since >= RECONNECT_FOR_MS) {
      this.patch(messageId, { status: 'interrupted', errorText: 'The connection to the answer was lost.', hasFailedLive: true });
      this.finish(messageId);
      return;
    }
    if (!this.network.isOnline()) this.toasts.error('You are offline. The answer will continue when the connection is back.', { key: 'offline' });
    else if (attempt === 0) this.toasts.show('The connection to the server was lost. Reconnecting…', { key: 'reconnect', durationMs: 0 });
    await this.network.whenOnline();
    await new Promise((resolve) => setTimeout(resolve, reconnectPause(attempt)));
    if (this.streamMessageId !== messageId) return;
    const stream = this.chat.resume(messageId, this.lastEventId);
    this.subscription = stream.subscribe({
      next: (event) => {
        this.toasts.dismissKey('reconnect');
        if (event.eventId !== undefined) this.lastEventId = event.eventId;
        if (event.type === 'token') this.tokens.append(messageId, event.token);
        else if (event.type === 'start') {
          if (event.context) this.patch(messageId, { context: event.context });
          if (event.from_start) this.restartContent(messageId);
        }
        else if (event.type === 'done') {
          this.patch(messageId, { status: event.status, finish_reason: event.finish_reason });
          this.finish(messageId);
        } else if (event.type === 'error') {
          this.patch(messageId, {
            status: event.status, error_code: event.code, finish_reason: event.finish_reason ?? null,
            errorText: event.error || failureText(event.code, event.status, event.finish_reason), hasFailedLive: true,
          });
          this.finish(messageId);
        }
      },
      error: (error: unknown) => {
        // Network failures (status 0), 5xx and 429 are worth another try; a 4xx will not change.
        const isRefused = error instanceof ApiError && error.status >= 400 && error.status < 500 && error.status !== 429;
        if (!isRefused) {
          void this.reconnect(messageId, attempt + 1, since);
          return;
        }
        this.patch(messageId, { status: 'interrupted', errorText: friendlyMessage(error), hasFailedLive: true });
        this.finish(messageId);
      },
    });
  }

  private onConversationStarted(conversationId: string): void {
    if (this.currentId() === null) {
      this.currentId.set(conversationId);
      void this.router.navigate(['/c', conversationId]);
      // A new conversation is not among the results of a search the sidebar shows: the search ends, and the
      // list shows it (highlighted, as the open one).
      if (this.conversations.query() !== '') {
        this.conversations.setQuery('').catch(() => undefined);
        return;
      }
    }
    this.conversations.refresh().catch(() => undefined);
  }

  private finish(messageId: string): void {
    this.toasts.dismissKey('reconnect');
    this.tokens.flush();
    this.noteLostText(messageId);
    this.subscription?.unsubscribe();
    this.subscription = null;
    this.streamingId.set(null);
    this.streamMessageId = null;
    this.lastEventId = undefined;
    this.isStopRequested = false;
    this.restoreHidden(messageId);
    if (this.list().find((m) => m.id === messageId)?.status === 'complete') this.list.update((list) => withoutEarlierAnswers(list, messageId));
    const message = this.list().find((m) => m.id === messageId);
    // A failed answer's notice is an alert of its own (message-item): announcing it here too said it twice.
    if (message && message.status !== 'failed' && message.status !== 'interrupted') {
      // One polite announcement of the whole answer, never token by token.
      const prefix = message.status === 'stopped' ? 'Answer stopped. ' : 'Answer: ';
      // As read on screen, not the Markdown source; its start only (bounded work at the end of a long answer).
      // A reasoning model's thinking (`<think>…</think>` at the start) is not the answer: it is not read out.
      const answer = splitThinking(message.content).answer;
      const text = message.errorText ?? this.markdown.plainText(answer.slice(0, ANNOUNCED_SOURCE_CHARS));
      // The answer's note (no text, cut off, filtered) is said too, after the words: "Answer: " alone said nothing.
      this.announcementText.set(prefix + [text.slice(0, 2000), answerNotice({ ...message, content: answer })].filter(Boolean).join(' '));
    }
    this.conversations.refresh().catch(() => undefined);
    if (this.isOwnStream) this.tellTabs(this.currentId());
    this.isOwnStream = false;
  }

  /**
   * A regeneration hides the earlier answers to its question while it runs; the server deletes them only when
   * it completes. Ended any other way (stopped, failed, interrupted), they are shown again before it, as a
   * reload shows them (folded behind "Show the earlier answer"), instead of vanishing until then.
   */
  private restoreHidden(messageId: string): void {
    const hidden = this.hiddenAnswers;
    this.hiddenAnswers = null;
    if (!hidden || hidden.answers.length === 0) return;
    const list = this.list();
    const at = list.findIndex((m) => m.id === messageId);
    if (at === -1 || list[at].status === 'complete') return;
    const present = new Set(list.map((m) => m.id));
    const back = hidden.answers.filter((m) => !present.has(m.id));
    this.list.set([...list.slice(0, at), ...back, ...list.slice(at)]);
  }

  /** `after`, with the answers `before` had and it has not remembered as hidden by the running regeneration. */
  private hide(before: ChatMessage[], after: ChatMessage[]): ChatMessage[] {
    if (after.length === before.length) return after;
    const kept = new Set(after.map((m) => m.id));
    const removed = before.filter((m) => !kept.has(m.id));
    const known = new Set(this.hiddenAnswers?.answers.map((m) => m.id));
    this.hiddenAnswers = { answers: [...(this.hiddenAnswers?.answers ?? []), ...removed.filter((m) => !known.has(m.id))] };
    return after;
  }

  private finishLocally(messageId: string, status: 'stopped' | 'interrupted'): void {
    this.patch(messageId, { status });
    this.finish(messageId);
  }

  /** Leaves the current stream to the server; remembers what was shown so coming back resumes in place. */
  private detach(): void {
    this.toasts.dismissKey('reconnect'); // the notice was about the answer left behind
    this.saveSnapshot(); // takes in the tokens not drawn yet first
    this.shownBeforeRestart = null;
    this.hiddenAnswers = null; // coming back reads the conversation (or the snapshot) again
    this.subscription?.unsubscribe();
    this.subscription = null;
    this.streamingId.set(null);
    this.streamMessageId = null;
    this.lastEventId = undefined;
    this.loadGeneration++;
    this.loadingConversation.set(false);
  }

  private reportSendError(error: unknown): void {
    const text = friendlyMessage(error, { isSend: true });
    if (error instanceof ApiError && error.code === 'RATE_LIMIT_EXCEEDED') this.toasts.error(text, { key: 'rate-limit', durationMs: Math.max(5000, (error.retryAfterSeconds ?? 5) * 1000) });
    else if (error instanceof ApiError && error.isNetwork) this.toasts.error(text, { key: 'offline' });
    else this.toasts.error(text);
  }

  private saveSnapshot(): void {
    this.tokens.flush();
    const messageId = this.streamMessageId;
    if (!messageId || this.lastEventId === undefined) return;
    const message = this.list().find((m) => m.id === messageId);
    if (message) saveStreamSnapshot({ messageId, lastEventId: this.lastEventId, content: message.content });
  }

  /**
   * The server could not continue after our last event (it no longer held the answer's events)
   * and restates the answer from its start: what was shown is replaced, not appended to.
   */
  private restartContent(messageId: string): void {
    this.tokens.flush();
    const shown = this.list().find((m) => m.id === messageId)?.content.length ?? 0;
    const earlier = this.shownBeforeRestart?.messageId === messageId ? this.shownBeforeRestart.length : 0;
    this.shownBeforeRestart = { messageId, length: Math.max(earlier, shown) };
    this.patch(messageId, { content: '' });
  }

  /**
   * The server's copy, restated after a lost connection, is the answer (a reload shows it), so it stays shown; when it
   * ends before the text shown before, the answer says so: those words vanished with nothing to tell why.
   */
  private noteLostText(messageId: string): void {
    const shownBefore = this.shownBeforeRestart;
    this.shownBeforeRestart = null;
    if (shownBefore?.messageId !== messageId) return;
    const message = this.list().find((m) => m.id === messageId);
    if (message && message.content.length < shownBefore.length) this.patch(messageId, { hasLostText: true });
  }

  private patch(id: string, change: Partial<ChatMessage>): void {
    this.tokens.flush();
    this.list.update((list) => list.map((m) => (m.id === id ? { ...m, ...change } : m)));
  }
}
