import { Injectable, signal } from '@angular/core';

export type ToastKind = 'info' | 'error';

export interface Toast {
  id: number;
  kind: ToastKind;
  text: string;
  actionLabel?: string;
  action?: () => void;
}

export interface ToastOptions {
  kind?: ToastKind;
  actionLabel?: string;
  action?: () => void;
  /** Milliseconds; errors with an action stay until dismissed. */
  durationMs?: number;
  /** A toast with the same key replaces the previous one instead of stacking. */
  key?: string;
}

@Injectable({ providedIn: 'root' })
export class ToastService {
  private readonly items = signal<Toast[]>([]);
  private readonly keys = new Map<string, number>();
  private nextId = 1;
  readonly toasts = this.items.asReadonly();

  show(text: string, options: ToastOptions = {}): number {
    const kind = options.kind ?? 'info';
    if (options.key) {
      const previous = this.keys.get(options.key);
      if (previous !== undefined) this.dismiss(previous);
    }
    const id = this.nextId++;
    if (options.key) this.keys.set(options.key, id);
    this.items.update((list) => [...list.slice(-3), { id, kind, text, actionLabel: options.actionLabel, action: options.action }]);
    const duration = options.durationMs ?? (options.action ? 0 : kind === 'error' ? 8000 : 4000);
    if (duration > 0) setTimeout(() => this.dismiss(id), duration);
    return id;
  }

  error(text: string, options: Omit<ToastOptions, 'kind'> = {}): number {
    return this.show(text, { ...options, kind: 'error' });
  }

  dismiss(id: number): void {
    this.items.update((list) => list.filter((t) => t.id !== id));
    for (const [key, value] of this.keys) if (value === id) this.keys.delete(key);
  }

  clear(): void {
    this.items.set([]);
    this.keys.clear();
  }

  dismissKey(key: string): void {
    const id = this.keys.get(key);
    if (id !== undefined) this.dismiss(id);
  }
}
