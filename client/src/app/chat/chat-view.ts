import { ChangeDetectionStrategy, Component, computed, effect, inject, input, signal, untracked, viewChild } from '@angular/core';
import { Router, RouterLink } from '@angular/router';
import type { UploadedFile } from '../core/api-models';
import { isComposing } from '../core/ime';
import { isTouchFirst } from '../core/touch';
import { AttachmentsStore, NEW_CHAT_DRAFT, type PendingAttachment } from '../files/attachments.store';
import { FilePreviewDialog } from '../files/file-preview-dialog';
import { Icon } from '../shell/icon';
import { ChatConfigStore } from './chat-config.store';
import { ChatStore } from './chat.store';
import { Composer } from './composer';
import { DraftStore } from './draft-store';
import type { EditRequest, FeedbackChoice } from './message-item';
import { MessageList } from './message-list';

const SUGGESTIONS = [
  'Explain the difference between TCP and UDP',
  'Write a Python function that checks for palindromes',
  'Summarise the key ideas of clean architecture',
  'Plan a 3-day trip to Lisbon',
];

/** The page of one conversation (`/c/:id`) or of a new one (`/`). */
@Component({
  selector: 'app-chat-view',
  changeDetection: ChangeDetectionStrategy.OnPush,
  imports: [Composer, FilePreviewDialog, Icon, MessageList, RouterLink],
  host: {
    class: 'chat-view',
    '(document:keydown.escape)': 'stopOnEscape($event)',
    '(dragenter)': 'onDragEnter($event)',
    '(dragover)': 'onDragOver($event)',
    '(dragleave)': 'onDragLeave($event)',
    '(drop)': 'onDrop($event)',
  },
  templateUrl: './chat-view.html',
})
export class ChatView {
  /** The route's `:id` (component input binding); absent for a new chat. */
  readonly id = input<string | undefined>(undefined);
  /** The `?m=` query parameter: a message to open the conversation at (a search match). */
  readonly m = input<string | undefined>(undefined);

  protected readonly store = inject(ChatStore);
  private readonly router = inject(Router);
  protected readonly attachments = inject(AttachmentsStore);
  protected readonly config = inject(ChatConfigStore);
  protected readonly draft = signal('');
  protected readonly isDragging = signal(false);
  protected readonly previewFile = signal<UploadedFile | null>(null);
  protected readonly suggestions = SUGGESTIONS;
  protected readonly isWelcome = computed(() => !this.store.conversationId() && this.store.messages().length === 0);
  // Absent while the conversation is not found.
  private readonly composer = viewChild(Composer);
  private readonly list = viewChild(MessageList);
  private dragDepth = 0;
  /**
   * The unsent text of each conversation (and of a new chat), by id: what is typed in one stays with it, is never
   * sent in the next one opened, and is there again after a reload. So are its uploaded files (AttachmentsStore keeps
   * them here too).
   */
  private readonly drafts = inject(DraftStore);
  /** Whose draft the composer shows; null until the route has said. */
  private draftKey: string | null = null;

  constructor() {
    effect(() => {
      const id = this.id() ?? null;
      const at = id === null ? null : this.m() ?? null;
      untracked(() => {
        this.switchDraft(id ?? NEW_CHAT_DRAFT);
        void this.store.open(id, at);
      });
    });
    effect(() => {
      const text = this.draft();
      untracked(() => {
        if (this.draftKey !== null) this.drafts.set(this.draftKey, text);
      });
    });
    // The address names the message shown only while the page is opened at it: once the reader went on to the
    // latest messages (or it was gone), a reload or a click on the same match opens it again.
    effect(() => {
      const at = this.m();
      if (at === undefined || this.store.focusedId() !== null || this.store.conversationId() !== (this.id() ?? null)) return;
      untracked(() => void this.router.navigate([], { queryParams: { m: null }, queryParamsHandling: 'merge', replaceUrl: true }));
    });
  }

  private switchDraft(key: string): void {
    if (key === this.draftKey) return;
    if (this.draftKey !== null) this.drafts.set(this.draftKey, this.draft());
    this.draftKey = key;
    this.setDraft(this.drafts.get(key));
    this.attachments.show(key);
  }

  /**
   * Sets the draft here and in the composer at once. Through the two-way binding alone, a draft that goes back to
   * the value last written to the composer within one frame ('' → typed → '' when text is put in and sent in the
   * same task; or a refused send's text given back twice) is not written again, and the composer kept the sent text.
   */
  private setDraft(text: string): void {
    this.draft.set(text);
    this.composer()?.draft.set(text);
  }

  protected async send(text: string): Promise<void> {
    const fileIds = this.attachments.readyFiles().map((f) => f.file_id);
    const sent = this.attachments.sentAttachments();
    const pending = this.attachments.attachments();
    this.setDraft('');
    this.attachments.clear();
    this.list()?.scrollToBottom();
    const isAccepted = await this.store.send(text, fileIds, sent);
    if (!isAccepted && this.store.isMissing()) {
      // The conversation was deleted elsewhere: the words wait in the new chat's draft (its files went with it).
      if (this.drafts.get(NEW_CHAT_DRAFT) === '') this.drafts.set(NEW_CHAT_DRAFT, text);
    } else if (!isAccepted) {
      // Refused before an answer began (rate limit, offline…): give the text and files back.
      if (this.draft() === '') this.setDraft(text);
      if (this.attachments.attachments().length === 0) this.attachments.restore(pending);
    }
    this.composer()?.focus();
  }

  protected useSuggestion(text: string): void {
    this.setDraft(text);
    this.composer()?.focus();
  }

  protected stop(): void {
    void this.store.stop();
  }

  protected regenerate(): void {
    void this.store.regenerate();
    // Regenerate and Retry go with the answer they replace: the keyboard waits in the composer, not on the page's
    // body (not on a touch screen, where focusing the composer would open the on-screen keyboard).
    if (!isTouchFirst()) this.composer()?.focus();
  }

  /**
   * The last question, edited: answered again (the earlier answer goes once the new one completes). Refused
   * before any answer began (too long, asked meanwhile elsewhere), the edit box opens again with the draft.
   */
  protected edit(request: EditRequest): void {
    void this.store.regenerate({ text: request.text, messageId: request.messageId }).then((isAccepted) => {
      if (!isAccepted) request.onRefused();
    });
    if (!isTouchFirst()) this.composer()?.focus();
  }

  protected feedback(choice: FeedbackChoice): void {
    void this.store.setFeedback(choice.messageId, choice.feedback, choice.comment);
  }

  protected attach(files: File[]): void {
    this.attachments.add(files, this.store.conversationId() ?? undefined);
  }

  protected preview(item: PendingAttachment): void {
    if (item.uploaded) this.previewFile.set(item.uploaded);
  }

  protected stopOnEscape(event: Event): void {
    // Esc already used (closing the export choices, cancelling an edit), or in a dialog or the sidebar
    // (renaming), means "cancel that", not "stop the answer".
    if (!this.store.isStreaming() || event.defaultPrevented || isComposing(event)) return;
    if (event.target instanceof Element && event.target.closest('dialog, .sidebar, .export-menu, .msg-edit')) return;
    event.preventDefault();
    this.stop();
  }

  protected onDragEnter(event: DragEvent): void {
    if (!this.hasFiles(event)) return;
    event.preventDefault();
    this.dragDepth++;
    this.isDragging.set(true);
  }

  protected onDragOver(event: DragEvent): void {
    if (!this.hasFiles(event)) return;
    event.preventDefault();
    if (event.dataTransfer) event.dataTransfer.dropEffect = 'copy';
  }

  protected onDragLeave(event: DragEvent): void {
    if (!this.hasFiles(event)) return;
    this.dragDepth = Math.max(0, this.dragDepth - 1);
    if (this.dragDepth === 0) this.isDragging.set(false);
  }

  protected onDrop(event: DragEvent): void {
    if (!this.hasFiles(event)) return;
    event.preventDefault();
    this.dragDepth = 0;
    this.isDragging.set(false);
    const files = Array.from(event.dataTransfer?.files ?? []);
    if (files.length > 0) this.attach(files);
  }

  private hasFiles(event: DragEvent): boolean {
    return Array.from(event.dataTransfer?.types ?? []).includes('Files');
  }
}
