import { ChangeDetectionStrategy, Component, input, output } from '@angular/core';
import { Icon } from '../shell/icon';
import type { PendingAttachment } from './attachments.store';
import { formatBytes } from './format-bytes';

/** The chips of the files attached to the message being written. */
@Component({
  selector: 'app-attachment-tray',
  changeDetection: ChangeDetectionStrategy.OnPush,
  imports: [Icon],
  template: `
    <ul class="tray" aria-label="Files to send">
      @for (item of attachments(); track item.localId) {
        <li class="chip" [class.chip-failed]="item.state === 'failed'" [class.chip-uploading]="item.state === 'uploading'">
          <app-icon [name]="item.state === 'failed' ? 'alert' : 'file'" />
          <span class="chip-text">
            <span class="chip-name" [title]="item.name">{{ item.name }}</span>
            @if (item.error) {
              <!-- A chip, not a full-width card (cards squeezed the conversation at 200% zoom), with the whole reason in
                   it, wrapped (a tooltip cannot be read on a touch screen); read out when it appears and with the chip's
                   Remove. -->
              <span class="chip-error" [id]="'chip-error-' + item.localId" role="alert"><span class="visually-hidden">{{ item.name }}: </span>{{ item.error }}</span>
            } @else {
              <span class="chip-size">{{ formatBytes(item.size) }}@if (item.state === 'uploading') {@if (isSent(item)) { · reading its text…} @else { · uploading {{ percent(item) }}%}}</span>
            }
          </span>
          @if (item.state === 'uploading') {
            @if (isSent(item)) {
              <!-- Every byte is sent; the server is extracting the text (no measure of how far: indeterminate). -->
              <progress class="chip-progress" [attr.aria-label]="'Reading the text of ' + item.name"></progress>
            } @else {
              <progress class="chip-progress" max="100" [value]="percent(item)" [attr.aria-label]="'Uploading ' + item.name"></progress>
            }
          }
          @if (item.state === 'ready') {
            <button type="button" class="chip-btn" [attr.aria-label]="'Show text of ' + item.name" title="Show extracted text"
              (click)="preview.emit(item)"><app-icon name="eye" /></button>
          }
          <button type="button" class="chip-btn chip-remove" [attr.aria-label]="'Remove ' + item.name" title="Remove"
            [attr.aria-describedby]="item.error ? 'chip-error-' + item.localId : null" (click)="remove.emit(item.localId)"><app-icon name="x" /></button>
        </li>
      }
    </ul>`,
})
export class AttachmentTray {
  readonly attachments = input.required<readonly PendingAttachment[]>();
  readonly remove = output<string>();
  readonly preview = output<PendingAttachment>();
  protected readonly formatBytes = formatBytes;

  /** All its bytes reached the server, which has not answered yet. */
  protected isSent(item: PendingAttachment): boolean {
    return item.progress >= 1;
  }

  protected percent(item: PendingAttachment): number {
    return Math.round(item.progress * 100);
  }
}
