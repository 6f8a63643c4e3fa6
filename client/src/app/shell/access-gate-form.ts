import { ChangeDetectionStrategy, Component, type ElementRef, afterNextRender, inject, output, signal, viewChild } from '@angular/core';
import { ApiClient } from '../core/api-client';
import { friendlyMessage, isAccessTokenRefusal } from '../core/api-error';
import { Icon } from './icon';

/**
 * Shown instead of the chat when the deployment is gated (ACCESS_TOKEN) and this browser has no session yet.
 * The token lives only in the input and the one session request; the session cookie carries on after that.
 */
@Component({
  selector: 'app-access-gate-form',
  changeDetection: ChangeDetectionStrategy.OnPush,
  imports: [Icon],
  templateUrl: './access-gate-form.html',
})
export class AccessGateForm {
  /** A session exists now: the shell shows the chat again. */
  readonly unlocked = output();

  private readonly api = inject(ApiClient);
  protected readonly submitting = signal(false);
  protected readonly error = signal<string | null>(null);
  private readonly input = viewChild.required<ElementRef<HTMLInputElement>>('tokenInput');

  constructor() {
    afterNextRender(() => this.input().nativeElement.focus());
  }

  protected clearError(): void {
    if (this.error()) this.error.set(null);
  }

  protected async submit(event: Event): Promise<void> {
    event.preventDefault();
    if (this.submitting()) return;
    const field = this.input().nativeElement;
    const token = field.value.trim();
    if (!token) {
      this.error.set('Enter the access token.');
      field.focus();
      return;
    }
    this.submitting.set(true);
    this.error.set(null);
    try {
      await this.api.unlock(token);
      field.value = '';
      this.unlocked.emit();
    } catch (e: unknown) {
      this.error.set(isAccessTokenRefusal(e) ? 'That access token is not valid. Check it and try again.' : friendlyMessage(e));
      field.focus();
      field.select();
    } finally {
      this.submitting.set(false);
    }
  }
}
