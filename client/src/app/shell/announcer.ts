import { Injectable, signal } from '@angular/core';

/**
 * The page's polite live region (in the shell), for a short confirmation whose only other sign is visual,
 * such as a code block's "Copied".
 */
@Injectable({ providedIn: 'root' })
export class Announcer {
  private readonly text = signal('');
  private timer?: ReturnType<typeof setTimeout>;
  readonly message = this.text.asReadonly();

  announce(text: string): void {
    // Emptied first and filled a moment later: the same words twice in a row are announced twice.
    this.text.set('');
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.text.set(text), 100);
  }
}
