import {
  ChangeDetectionStrategy, Component, ElementRef, Injector, afterNextRender, computed, effect, inject, input, model, output, viewChild,
} from '@angular/core';
import { isComposing } from '../core/ime';
import { isTouchFirst } from '../core/touch';
import { AttachmentTray } from '../files/attachment-tray';
import type { PendingAttachment } from '../files/attachments.store';
import { Icon } from '../shell/icon';
import { isBlankMessage, tidyMessage } from './message-text';

/**
 * Where a message is written: Enter sends, Shift+Enter adds a line (on a touch screen Enter adds a line);
 * files come by button, paste or drop.
 */
@Component({
  selector: 'app-composer',
  changeDetection: ChangeDetectionStrategy.OnPush,
  imports: [AttachmentTray, Icon],
  templateUrl: './composer.html',
})
export class Composer {
  readonly draft = model('');
  readonly isStreaming = input(false);
  readonly isUploading = input(false);
  readonly attachments = input<readonly PendingAttachment[]>([]);
  readonly acceptedExtensions = input<readonly string[]>([]);
  readonly maxChars = input(32_000);
  readonly model = input('');
  readonly send = output<string>();
  readonly stop = output();
  readonly attach = output<File[]>();
  readonly removeAttachment = output<string>();
  readonly previewAttachment = output<PendingAttachment>();

  private readonly textarea = viewChild.required<ElementRef<HTMLTextAreaElement>>('input');
  private readonly host = inject<ElementRef<HTMLElement>>(ElementRef);
  private readonly injector = inject(Injector);
  protected readonly accept = computed(() => this.acceptedExtensions().join(','));
  protected readonly isBlank = computed(() => isBlankMessage(this.draft()));
  /** Files are attached and nothing is asked about them: they can go as they are, the files are the message. */
  protected readonly isFilesOnly = computed(() => this.isBlank() && this.attachments().some((a) => a.state !== 'failed'));
  private readonly hasReadyFiles = computed(() => this.attachments().some((a) => a.state === 'ready'));
  protected readonly canSend = computed(() =>
    !this.isStreaming() && !this.isUploading() && (!this.isBlank() || this.hasReadyFiles()) && this.draft().length <= this.maxChars());
  protected readonly isNearLimit = computed(() => this.draft().length > this.maxChars() * 0.9);
  /** Characters past the limit: Send is off, and the count says why (a grey count alone was easy to miss). */
  protected readonly overLimit = computed(() => Math.max(0, this.draft().length - this.maxChars()));

  constructor() {
    // The textbox shows the draft, also when it is set from outside (cleared after a send), and
    // grows with it up to the CSS max-height. Written here rather than bound with [value]: a
    // binding skips a write when the draft returns to the value it last wrote ('' → typed → ''
    // within one frame, as when text is pasted and sent at once), which left the sent text in the
    // box; and the height must be measured after the new value is in, or an emptied box stays tall.
    effect(() => {
      const value = this.draft();
      const el = this.textarea().nativeElement;
      if (el.value !== value) el.value = value;
      el.style.height = 'auto';
      el.style.height = `${el.scrollHeight}px`;
    });
  }

  focus(): void {
    this.textarea().nativeElement.focus();
  }

  /** Stop becomes Send once the answer ends: the keyboard waits in the textbox rather than falling to the page's body. */
  protected stopAnswer(): void {
    this.stop.emit();
    this.focus();
  }

  /** The removed chip's button goes with it: the keyboard moves to the next chip's Remove, or to the textbox. */
  protected removeFile(localId: string): void {
    const at = this.attachments().findIndex((a) => a.localId === localId);
    this.removeAttachment.emit(localId);
    afterNextRender(() => {
      const next = this.host.nativeElement.querySelectorAll<HTMLElement>('.chip-remove')[at];
      if (next) next.focus();
      else this.focus();
    }, { injector: this.injector });
  }

  protected onInput(event: Event): void {
    this.draft.set((event.target as HTMLTextAreaElement).value);
  }

  protected onKeydown(event: KeyboardEvent): void {
    if (event.key !== 'Enter' || event.shiftKey || isComposing(event) || isTouchFirst()) return;
    event.preventDefault();
    this.submit();
  }

  protected submit(event?: Event): void {
    event?.preventDefault();
    if (!this.canSend()) return;
    this.send.emit(this.isBlank() ? '' : tidyMessage(this.draft()));
  }

  protected onFilesChosen(event: Event): void {
    const input = event.target as HTMLInputElement;
    if (input.files && input.files.length > 0) this.attach.emit(Array.from(input.files));
    input.value = '';
  }

  protected onPaste(event: ClipboardEvent): void {
    const files = Array.from(event.clipboardData?.files ?? []);
    if (files.length === 0) return;
    event.preventDefault();
    this.attach.emit(files);
  }
}
