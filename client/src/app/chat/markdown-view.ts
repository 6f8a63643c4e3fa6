import { ChangeDetectionStrategy, Component, computed, inject, input } from '@angular/core';
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
  template: `@for (block of blocks(); track block.key) {<div class="md-block" [innerHTML]="block.html"></div>}`,
})
export class MarkdownView {
  readonly content = input.required<string>();
  readonly isStreaming = input(false);

  private readonly renderer = inject(MarkdownRenderer);
  private readonly sanitizer = inject(DomSanitizer);
  private streamingMarkdown: StreamingMarkdown | null = null;
  private trusted = new Map<string, SafeHtml>();
  private renderedVersion = 0;

  protected readonly blocks = computed<TrustedBlock[]>(() => {
    let blocks: MarkdownBlock[];
    const version = this.renderer.version();
    if (version !== this.renderedVersion) {
      // Highlighting just became available: frozen blocks must be rendered again.
      this.renderedVersion = version;
      this.streamingMarkdown = null;
    }
    if (this.isStreaming()) {
      this.streamingMarkdown ??= this.renderer.streaming();
      blocks = this.streamingMarkdown.update(this.content());
    } else {
      this.streamingMarkdown = null;
      blocks = this.renderer.render(this.content());
    }
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
