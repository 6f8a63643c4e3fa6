import { Injectable, PendingTasks, inject, signal } from '@angular/core';
import { plainParagraphs } from './escape-html';
import type { MarkdownBlock, MarkdownEngine } from './markdown-engine';

export type { MarkdownBlock, StreamingMarkdown } from './markdown-engine';

/**
 * The app's way to Markdown. The engine (markdown-engine.ts: marked, DOMPurify, our renderer) is a chunk of its own,
 * fetched while the app boots, alongside the session's first calls (app.config.ts waits for both), instead of being
 * read before them as part of the initial bundle: 86 KB of the 481 that had left 19 KB below Angular's error budget.
 * Until it is here (or when it could not be fetched) a message shows as its text, escaped, in paragraphs, and
 * views render again once it arrives (`engine` is a signal). In tests, `whenStable` waits for it (a pending task).
 */
@Injectable({ providedIn: 'root' })
export class MarkdownRenderer {
  private readonly pendingTasks = inject(PendingTasks);
  private readonly loaded = signal<MarkdownEngine | null>(null);
  private loading: Promise<void> | null = null;
  /** The engine, once loaded. */
  readonly engine = this.loaded.asReadonly();

  constructor() {
    this.whenReady().catch(() => undefined);
  }

  /** Resolves once the engine is loaded; after a failed fetch, the next call tries again. */
  whenReady(): Promise<void> {
    if (this.loading) return this.loading;
    const done = this.pendingTasks.add();
    this.loading = import('./markdown-engine').then(
      (m) => {
        this.loaded.set(new m.MarkdownEngine());
      },
      (error: unknown) => {
        this.loading = null;
        throw error;
      },
    ).finally(done);
    return this.loading;
  }

  /** A message as its text (escaped paragraphs): what is shown until the engine is here. */
  plainBlocks(source: string): MarkdownBlock[] {
    // After a failed fetch, try again (later: this runs inside views' computeds, where nothing may be started).
    if (!this.loading) queueMicrotask(() => void this.whenReady().catch(() => undefined));
    return plainParagraphs(source).map((html, i) => ({ key: 'b' + i, html }));
  }

  /** The text a reader sees, without Markdown's marks (the source as written until the engine is here). */
  plainText(source: string): string {
    return this.loaded()?.plainText(source) ?? source.trim();
  }
}
