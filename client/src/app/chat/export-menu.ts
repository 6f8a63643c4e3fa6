import { ChangeDetectionStrategy, Component, ElementRef, inject, input, signal, viewChild } from '@angular/core';
import { friendlyMessage } from '../core/api-error';
import { Announcer } from '../shell/announcer';
import { Icon } from '../shell/icon';
import { ToastService } from '../shell/toast.service';
import { ConversationExporter, type ExportFormat, saveFile } from './conversation-export';

/**
 * The top bar's Export button: a disclosure (a button that shows two more) rather than an ARIA
 * menu, so it needs no roving focus and reads the same in every screen reader. Closes on Escape,
 * on a click elsewhere, and once a format is chosen.
 */
@Component({
  selector: 'app-export-menu',
  changeDetection: ChangeDetectionStrategy.OnPush,
  imports: [Icon],
  host: {
    class: 'export-menu',
    '(document:click)': 'onDocumentClick($event)',
    '(keydown.escape)': 'onEscape($event)',
  },
  template: `
    <button #toggle type="button" class="icon-btn export-toggle" aria-label="Export conversation" title="Export conversation"
      aria-controls="export-choices" [attr.aria-expanded]="isOpen()" [attr.aria-busy]="isBusy() || null"
      (click)="isBusy() || isOpen.set(!isOpen())">
      <app-icon name="download" /></button>
    @if (isOpen()) {
      <div id="export-choices" class="export-choices" role="group" aria-label="Export as">
        <button type="button" class="export-choice" (click)="exportAs('markdown')">Markdown (.md)</button>
        <button type="button" class="export-choice" (click)="exportAs('json')">JSON (.json)</button>
      </div>
    }`,
})
export class ExportMenu {
  readonly conversationId = input.required<string>();

  private readonly exporter = inject(ConversationExporter);
  private readonly toasts = inject(ToastService);
  private readonly announcer = inject(Announcer);
  private readonly host = inject<ElementRef<HTMLElement>>(ElementRef);
  private readonly toggle = viewChild.required<ElementRef<HTMLButtonElement>>('toggle');
  protected readonly isOpen = signal(false);
  protected readonly isBusy = signal(false);

  protected onDocumentClick(event: MouseEvent): void {
    if (this.isOpen() && !this.host.nativeElement.contains(event.target as Node)) this.close(false);
  }

  /** Esc closes the choices, and only that: it also stopped the answer being written (the page's own Esc). */
  protected onEscape(event: Event): void {
    if (!this.isOpen()) return;
    event.preventDefault();
    event.stopPropagation();
    this.close(true);
  }

  protected close(restoresFocus: boolean): void {
    if (!this.isOpen()) return;
    this.isOpen.set(false);
    if (restoresFocus) this.toggle().nativeElement.focus();
  }

  protected async exportAs(format: ExportFormat): Promise<void> {
    this.isOpen.set(false);
    // Not disabled while it works: a disabled button cannot take the focus back at the end.
    if (this.isBusy()) return;
    this.isBusy.set(true);
    try {
      const file = await this.exporter.export(this.conversationId(), format);
      saveFile(file);
      this.announcer.announce(`Conversation exported as ${file.name}`);
    } catch (error: unknown) {
      this.toasts.error(friendlyMessage(error));
    } finally {
      this.isBusy.set(false);
      this.toggle().nativeElement.focus();
    }
  }
}
