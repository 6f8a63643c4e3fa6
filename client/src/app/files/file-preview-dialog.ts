import { ChangeDetectionStrategy, Component, type ElementRef, computed, effect, input, output, viewChild } from '@angular/core';
import type { UploadedFile } from '../core/api-models';
import { Icon } from '../shell/icon';
import { formatBytes } from './format-bytes';

/** Shows the text the server extracted from a file, so the user knows what the model will read. */
@Component({
  selector: 'app-file-preview-dialog',
  changeDetection: ChangeDetectionStrategy.OnPush,
  imports: [Icon],
  template: `
    <dialog #dialog class="dialog dialog-wide" aria-labelledby="file-preview-title" (close)="closed.emit()">
      @if (file(); as f) {
        <div class="dialog-head">
          <h2 id="file-preview-title">{{ f.filename }}</h2>
          <button type="button" class="icon-btn" aria-label="Close" (click)="dialog.close()"><app-icon name="x" /></button>
        </div>
        <p class="dialog-meta">{{ meta() }}</p>
        @if (f.extracted_text) {
          <pre class="extracted" tabindex="0" aria-label="Extracted text">{{ f.extracted_text }}</pre>
          @if (isTruncated()) {
            <p class="dialog-meta">Showing the beginning of {{ f.extracted_chars.toLocaleString() }} characters. The model reads as much as fits in its context; a longer file is cut there.</p>
          }
        } @else {
          <p>No text could be extracted from this file.</p>
        }
      }
    </dialog>`,
})
export class FilePreviewDialog {
  readonly file = input<UploadedFile | null>(null);
  readonly closed = output();
  private readonly dialog = viewChild.required<ElementRef<HTMLDialogElement>>('dialog');

  protected readonly meta = computed(() => {
    const f = this.file();
    if (!f) return '';
    const parts = [formatBytes(f.file_size), `${f.extracted_chars.toLocaleString()} characters`, `about ${f.token_count.toLocaleString()} tokens`];
    if (f.pages) parts.push(`${f.pages} page${f.pages === 1 ? '' : 's'}`);
    return parts.join(' · ');
  });
  protected readonly isTruncated = computed(() => {
    const f = this.file();
    return f !== null && f.extracted_chars > f.extracted_text.length;
  });

  constructor() {
    effect(() => {
      const dialog = this.dialog().nativeElement;
      if (this.file() && !dialog.open) dialog.showModal();
      else if (!this.file() && dialog.open) dialog.close();
    });
  }
}
