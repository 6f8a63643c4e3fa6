import { DestroyRef, Injectable, inject, signal } from '@angular/core';

/** navigator.onLine as a signal; the browser's own signal, so no polling. */
@Injectable({ providedIn: 'root' })
export class NetworkStatus {
  private readonly online = signal(typeof navigator === 'undefined' ? true : navigator.onLine);
  readonly isOnline = this.online.asReadonly();

  constructor() {
    const update = (): void => this.online.set(navigator.onLine);
    window.addEventListener('online', update);
    window.addEventListener('offline', update);
    inject(DestroyRef).onDestroy(() => {
      window.removeEventListener('online', update);
      window.removeEventListener('offline', update);
    });
  }

  /** Resolves when the browser is back online (at once if it is). */
  whenOnline(): Promise<void> {
    if (navigator.onLine) return Promise.resolve();
    return new Promise((resolve) => window.addEventListener('online', () => resolve(), { once: true }));
  }
}
