import { ChangeDetectionStrategy, Component, inject } from '@angular/core';
import { Icon } from './icon';
import { type Toast, ToastService } from './toast.service';

/** Errors are alerts (announced at once); information is a polite status. */
@Component({
  selector: 'app-toast-list',
  changeDetection: ChangeDetectionStrategy.OnPush,
  imports: [Icon],
  template: `
    <section class="toasts" aria-label="Notifications">
      @for (toast of service.toasts(); track toast.id) {
        <div class="toast" [class.toast-error]="toast.kind === 'error'" [attr.role]="toast.kind === 'error' ? 'alert' : 'status'">
          @if (toast.kind === 'error') { <app-icon name="alert" /> }
          <span class="toast-text">{{ toast.text }}</span>
          @if (toast.actionLabel) {
            <button type="button" class="btn btn-small" (click)="act(toast)">{{ toast.actionLabel }}</button>
          }
          <button type="button" class="icon-btn icon-btn-small" aria-label="Dismiss notification" (click)="service.dismiss(toast.id)">
            <app-icon name="x" /></button>
        </div>
      }
    </section>`,
})
export class ToastList {
  protected readonly service = inject(ToastService);

  protected act(toast: Toast): void {
    this.service.dismiss(toast.id);
    toast.action?.();
  }
}
