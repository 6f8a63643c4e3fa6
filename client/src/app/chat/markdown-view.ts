import { ChangeDetectionStrategy, Component, computed, effect, inject, input, signal, untracked } from '@angular/core';
import { DomSanitizer, type SafeHtml } from '@angular/platform-browser';
import { copyText } from '../core/clipboard';
import { MarkdownRenderer, type MarkdownBlock, type StreamingMarkdown } from './markdown-renderer';

interface TrustedBlock {
  key: string;
  html: SafeHtml;
}

/**
 * Shows Markdown already sanitized by MarkdownRenderer (DOMPurify), hence the bypass: Angular's own sanitizer
 * would strip the code blocks' copy buttons. Each top-level block is its own element, so while an answer
 * streams only the last one is rewritten.
 */
@Component({
  selector: 'app-markdown-view',
  changeDetection: ChangeDetectionStrategy.OnPush,
  host: { class: 'markdown', '(click)': 'copyCode($event)' },
  // The streaming cursor hangs off the open block's class, not off the message's aria-busy: a rule keyed
  // on an ancestor's attribute with a bare `:last-child` at its right makes Blink restyle the whole
  // answer when the attribute flips (10.8 of the 20 ms task that ended a 10,000-token stream).
  template: `@for (block of blocks(); track block.key; let last = $last) {<div class="md-block" [class.md-live]="isStreaming() && last" [innerHTML]="block.html"></div>}`,
})
export class MarkdownView {
  readonly content = input.required<string>();
  readonly isStreaming = input(false);

  private readonly renderer = inject(MarkdownRenderer);
  private readonly sanitizer = inject(DomSanitizer);
  private streamingMarkdown: StreamingMarkdown | null = null;
  /** The blocks of a finished message and the source they show. */
  private settled: { source: string; blocks: MarkdownBlock[] } | null = null;
  private trusted = new Map<string, SafeHtml>();
  /** Bumps each time one of this view's blocks has been highlighted in the background. */
  private readonly highlighted = signal(0);
  private readonly onHighlighted = (): void => this.highlighted.update((v) => v + 1);

  /** The rendered (sanitized) blocks, before any background highlighting. */
  private readonly rendered = computed<MarkdownBlock[]>(() => {
    const content = this.content();
    if (this.isStreaming()) {
      this.settled = null;
      this.streamingMarkdown ??= this.renderer.streaming();
      return this.streamingMarkdown.update(content);
    }
    if (this.settled?.source !== content) {
      // The stream just ended: finish its last block and keep the others, rather than render it all again.
      const blocks = this.streamingMarkdown ? this.streamingMarkdown.finish(content) : this.renderer.render(content);
      this.settled = { source: content, blocks };
    }
    this.streamingMarkdown = null;
    return this.settled.blocks;
  });

  protected readonly blocks = computed<TrustedBlock[]>(() => {
    this.highlighted();
    const blocks = this.rendered().map((block) => this.renderer.current(block));
    // Reuse the same SafeHtml object for unchanged blocks, so Angular leaves their DOM alone.
    const next = new Map<string, SafeHtml>();
    const result = blocks.map((block) => {
      const html = this.trusted.get(block.html) ?? next.get(block.html) ?? this.sanitizer.bypassSecurityTrustHtml(block.html);
      next.set(block.html, html);
      return { key: block.key, html };
    });
    this.trusted = next;
    return result;
  });

  constructor() {
    // Highlighting just became available: code blocks rendered before it are highlighted one per task.
    effect(() => {
      if (this.renderer.version() === 0) return;
      const blocks = untracked(this.rendered);
      for (const block of blocks) this.renderer.queueHighlight(block, this.onHighlighted);
    });
  }

  protected copyCode(event: MouseEvent): void {
    const target = event.target;
    if (!(target instanceof Element)) return;
    const button = target.closest('button.copy-code');
    const code = button?.closest('.code-block')?.querySelector('pre code');
    if (!button || !code) return;
    void copyText(code.textContent ?? '').then((isCopied) => {
      button.textContent = isCopied ? 'Copied' : 'Copy failed';
      setTimeout(() => (button.textContent = 'Copy'), 2000);
    });
  }
}
