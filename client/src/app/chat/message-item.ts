import { ChangeDetectionStrategy, Component, ElementRef, computed, effect, inject, input, output, signal, untracked } from '@angular/core';
import type { Feedback } from '../core/api-models';
import { copyText } from '../core/clipboard';
import { isComposing } from '../core/ime';
import { isTouchFirst } from '../core/touch';
import { formatBytes } from '../files/format-bytes';
import { Announcer } from '../shell/announcer';
import { Icon } from '../shell/icon';
import { ToastService } from '../shell/toast.service';
import { answerNotice, contextNoticeText } from './answer-notices';
import type { ChatMessage } from './chat-message';
import { failureText, isRefusedForItsWords } from './failure-texts';
import { MarkdownView } from './markdown-view';
import { isBlankMessage, tidyMessage } from './message-text';
import { splitThinking } from './think-block';

/** An edited question to be answered again; `onRefused` reopens the edit box with the draft. */
export interface EditRequest {
  messageId: string;
  text: string;
  onRefused: () => void;
}

export interface FeedbackChoice {
  messageId: string;
  feedback: Feedback;
  comment?: string;
}

let nextId = 0;

/**
 * Whether the browser reports which `content-visibility: auto` elements it skips. Where it does not,
 * an answer counts as drawn at all times.
 */
const canTellDrawn = typeof HTMLElement !== 'undefined' && 'oncontentvisibilityautostatechange' in HTMLElement.prototype;

/** Past these, a user's message is shown folded (about the height of its first 12 lines). */
const FOLD_LINES = 14;
const FOLD_CHARS = 1200;

function isLongText(text: string): boolean {
  if (text.length > FOLD_CHARS) return true;
  let lines = 1;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) if (++lines > FOLD_LINES) return true;
  return false;
}

/** One message: the user's as plain text, the assistant's as Markdown with its actions. */
@Component({
  selector: 'app-message-item',
  changeDetection: ChangeDetectionStrategy.OnPush,
  imports: [Icon, MarkdownView],
  templateUrl: './message-item.html',
})
export class MessageItem {
  readonly message = input.required<ChatMessage>();
  readonly isStreaming = input(false);
  /** This is the answer Regenerate and Retry replace (the store regenerates the conversation's last answer). */
  readonly canRegenerate = input(false);
  /** The conversation's latest answer: the only one that says the model no longer saw the conversation's start. */
  readonly isLatestAnswer = input(true);
  readonly regenerate = output();
  /** This is the question an edit changes (the conversation's last user message, no answer running). */
  readonly canEdit = input(false);
  /** The longest message the server takes (the edit box's limit). */
  readonly maxChars = input<number | null>(null);
  /** The edited text of this question, to be answered again. */
  readonly edit = output<EditRequest>();
  readonly retry = output();
  readonly feedback = output<FeedbackChoice>();

  private readonly host = inject<ElementRef<HTMLElement>>(ElementRef);
  private readonly announcer = inject(Announcer);
  private readonly toasts = inject(ToastService);
  protected readonly uid = `msg-${nextId++}`;
  protected readonly isUser = computed(() => this.message().role === 'user');
  protected readonly isFailed = computed(() => this.message().status === 'failed' || this.message().status === 'interrupted');
  /** Ended before the model finished it: a mark it had opened (`**`, a link) is shown closed, as while it streamed. */
  protected readonly isCutShort = computed(() => !this.isStreaming() && ['stopped', 'interrupted', 'failed'].includes(this.message().status));
  /** Live, the server's words or this tab's; from history, the same words rebuilt from the stored code. */
  protected readonly errorText = computed(() => this.message().errorText || failureText(this.message().error_code, this.message().status, this.message().finish_reason));
  /**
   * Retry sends the same question again: not offered when the model's server refused it for its length or its
   * words (the notice says to shorten or rephrase; editing the question regenerates).
   */
  protected readonly canRetry = computed(() => this.canRegenerate()
    && !(this.message().status === 'failed' && isRefusedForItsWords(this.message().finish_reason)));
  /**
   * An answer's thinking (a reasoning model's `<think>…</think>` at its start) apart from the answer itself; a user's
   * message is never split.
   */
  protected readonly parts = computed(() => (this.isUser() ? { thinking: null, isThinkingDone: true, answer: this.message().content } : splitThinking(this.message().content)));
  /** The answer's words: '' for one of only spaces or line breaks (nothing to draw, copy or rate; its notice says no text). */
  protected readonly answer = computed(() => {
    const { answer } = this.parts();
    return answer.trim() === '' ? '' : answer;
  });
  /** Words or thinking to rate (an answer of only thinking can be rated; one of nothing but spaces cannot). */
  protected readonly hasContent = computed(() => this.message().content.trim() !== '');
  /**
   * The thinking folded above the answer: shown while it streams, and once done if it says anything. Without the
   * line breaks around it (models write `<think>\n…\n</think>`): shown as written, they were empty lines in its box.
   */
  protected readonly thinking = computed(() => {
    const { thinking, isThinkingDone } = this.parts();
    if (thinking === null) return null;
    const text = thinking.trim();
    return !isThinkingDone || text !== '' ? text : null;
  });
  protected readonly isThinkingDone = computed(() => this.parts().isThinkingDone);
  /** Under an answer that ended: that it has no words, or was cut short by the model's limit or its provider's filter. */
  /** The question's files the model did not see whole: said over the answer, while it is written too. */
  protected readonly contextNote = computed(() => (this.isUser() ? null : contextNoticeText(this.message().context, undefined, this.isLatestAnswer())));
  protected readonly endNotice = computed(() => (this.isStreaming() ? null : answerNotice({ ...this.message(), content: this.answer() })));
  /**
   * A long message of the user's (a pasted log, a file's worth of code) shows its first lines until it is
   * opened: shown whole, it pushed the answer to it screens away.
   */
  protected readonly isLongUser = computed(() => this.isUser() && isLongText(this.message().content));
  protected readonly isUserExpanded = signal(false);
  protected readonly isCopied = signal(false);
  protected readonly isCommentOpen = signal(false);
  /** What the comment form opens with: the comment saved with the answer, if any. */
  protected readonly commentDraft = signal('');
  protected readonly isThanked = signal(false);
  protected readonly isEditing = signal(false);
  /** What the edit box holds when it opens: the message, or an edit the server refused. */
  protected readonly editDraft = signal('');
  /** The edit box holds only spaces and the question has no files to go alone: Send is off, as the composer's is. */
  protected readonly isEditBlank = signal(false);
  /** The edit box's length as typed: past `maxChars` Send is off and the count says by how much, as in the composer
   *  (a `maxlength` on the box cut a longer paste silently and sent the cut text). */
  protected readonly editLength = signal(0);
  protected readonly editOverLimit = computed(() => {
    const max = this.maxChars();
    return max === null ? 0 : Math.max(0, this.editLength() - max);
  });
  protected readonly isEditNearLimit = computed(() => {
    const max = this.maxChars();
    return max !== null && this.editLength() > max * 0.9;
  });
  /** The edit box's height: the draft's lines, 3 to 12. */
  protected readonly editRows = computed(() => Math.min(12, Math.max(3, this.editDraft().split('\n').length)));

  constructor() {
    // An answer started (here, in another tab) or a question asked since: this is no longer the question an
    // edit changes. The box closes for good (it came back by itself, its draft lost, once the answer ended), and
    // the keyboard, if it was in the box, goes to the composer rather than to the page's body.
    effect(() => {
      if (this.canEdit() || !untracked(this.isEditing)) return;
      const hadFocus = this.host.nativeElement.querySelector('.msg-edit')?.contains(document.activeElement) ?? false;
      this.isEditing.set(false);
      if (hadFocus && !isTouchFirst()) setTimeout(() => document.getElementById('message-input')?.focus());
    });
  }
  protected readonly formatBytes = formatBytes;
  /**
   * Whether the browser draws this answer (an answer off screen skips rendering: content-visibility in the
   * stylesheet). The browser tells each answer when it first decides and at every change after; its
   * long code blocks are highlighted only once it is drawn (a code-heavy conversation opened from history
   * highlighted all of them in the background, on screen or not).
   */
  protected readonly isDrawn = signal(!canTellDrawn);

  protected onDrawState(event: Event): void {
    // The answer's own state, not a streamed answer's chunks (they skip rendering too, and the event bubbles).
    if (event.target !== event.currentTarget || !('skipped' in event)) return;
    this.isDrawn.set(!event.skipped);
  }

  /**
   * Copies the message. The button's new name ("Copied") is not read out by itself, so it is announced, as a code
   * block's is; a copy the browser refused is said too (nothing at all showed it). An answer's thinking is not copied.
   */
  protected copy(): void {
    void copyText(this.answer()).then((isCopied) => {
      if (!isCopied) {
        this.toasts.error('The message could not be copied: the browser refused access to the clipboard.', { key: 'copy' });
        return;
      }
      this.announcer.announce('Copied');
      this.isCopied.set(true);
      setTimeout(() => this.isCopied.set(false), 2000);
    });
  }

  protected startEdit(): void {
    this.editDraft.set(this.message().content);
    this.openEditBox();
  }

  /** Blank, and no files to be the message without it. */
  private isRefusedBlank(text: string): boolean {
    return isBlankMessage(text) && this.message().files.length === 0;
  }

  private openEditBox(): void {
    this.isEditBlank.set(this.isRefusedBlank(this.editDraft()));
    this.editLength.set(this.editDraft().length);
    this.isEditing.set(true);
    setTimeout(() => {
      const box = this.host.nativeElement.querySelector<HTMLTextAreaElement>('.msg-edit-input');
      if (!box) return;
      box.focus({ preventScroll: true });
      box.setSelectionRange(box.value.length, box.value.length);
      // The box is shown from its top: a long question read to its end gives way to the box, the page stays scrolled
      // to its end, and the box's top was left above the screen (focus scrolls only a box wholly out of view).
      box.closest('form')?.scrollIntoView({ block: 'nearest' });
    });
  }

  protected onEditInput(text: string): void {
    this.isEditBlank.set(this.isRefusedBlank(text));
    this.editLength.set(text.length);
  }

  protected cancelEdit(): void {
    this.isEditing.set(false);
    setTimeout(() => this.host.nativeElement.querySelector<HTMLElement>('button[aria-label="Edit message"]')?.focus());
  }

  protected saveEdit(event: Event, text: string): void {
    event.preventDefault();
    // A blank question cannot be sent, unless its files go alone: the box stays open.
    // Over the limit, the box stays open with its count (Send is off; Enter comes here).
    if (this.isRefusedBlank(text) || this.editOverLimit() > 0) return;
    // Blank with files: the question goes, its files stay the message.
    text = isBlankMessage(text) ? '' : tidyMessage(text);
    this.editDraft.set(text);
    this.isEditing.set(false);
    // On a touch screen the keyboard stays shut (the page does not focus the composer): the reader's place is the
    // question just edited, not the page's body, where focus fell when the box went.
    if (isTouchFirst()) setTimeout(() => this.host.nativeElement.querySelector<HTMLElement>('article')?.focus({ preventScroll: true }));
    // Refused before an answer began, the box opens again with what was typed (it was lost).
    this.edit.emit({ messageId: this.message().id, text, onRefused: () => this.openEditBox() });
  }

  /**
   * Anywhere in the edit box, Esc cancels; in its text, as in the composer, Enter sends and Shift+Enter adds a
   * line (on a touch screen Enter adds a line).
   */
  protected onEditKey(event: KeyboardEvent, text: string): void {
    if (isComposing(event)) return;
    if (event.key === 'Escape') {
      event.preventDefault();
      event.stopPropagation();
      this.cancelEdit();
    } else if (event.key === 'Enter' && event.target instanceof HTMLTextAreaElement && !event.shiftKey && !isTouchFirst()) {
      this.saveEdit(event, text);
    }
  }

  protected rate(value: Feedback): void {
    this.isThanked.set(false);
    // The server stores a rating sent without a comment as having none: clicking the same thumb again sends the
    // saved comment with it, or it was deleted. A rating turned around drops it (an empty comment is sent as none):
    // "what went wrong" kept under a thumb up read as praise.
    const saved = this.message().feedback_comment ?? '';
    const kept = this.message().feedback === value ? saved : '';
    this.feedback.emit({ messageId: this.message().id, feedback: value, ...(saved ? { comment: kept } : {}) });
    this.commentDraft.set(kept);
    this.isCommentOpen.set(true);
  }

  protected sendComment(event: Event, comment: string): void {
    event.preventDefault();
    const feedback = this.message().feedback;
    const text = comment.trim();
    // The form opens with the saved comment: emptied, it is removed.
    if (feedback && (text || this.message().feedback_comment)) this.feedback.emit({ messageId: this.message().id, feedback, comment: text });
    this.isThanked.set(true);
    this.closeComment();
  }

  /** Closes the comment form; the keyboard goes back to the thumb that opened it (it fell to the page's body). */
  protected closeComment(): void {
    this.isCommentOpen.set(false);
    const feedback = this.message().feedback;
    const label = feedback === 'negative' ? 'Bad answer' : 'Good answer';
    setTimeout(() => this.host.nativeElement.querySelector<HTMLElement>(`button[aria-label="${label}"]`)?.focus());
  }
}
