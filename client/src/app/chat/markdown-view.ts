import {
  ChangeDetectionStrategy, Component, DestroyRef, ElementRef, Injector, afterNextRender, computed, effect, inject, input, signal,
} from '@angular/core';
import { DomSanitizer, type SafeHtml } from '@angular/platform-browser';
import { copyText } from '../core/clipboard';
import { Announcer } from '../shell/announcer';
import type { MarkdownEngine } from './markdown-engine';
import { MarkdownRenderer, type MarkdownBlock, type StreamingMarkdown } from './markdown-renderer';

interface TrustedBlock {
  key: string;
  html: SafeHtml;
}

interface BlockChunk {
  key: number;
  blocks: TrustedBlock[];
}

/** Blocks per chunk: few enough that a chunk on screen is cheap to draw, enough that chunks stay few. */
export const BLOCKS_PER_CHUNK = 24;

/** The name of a table that scrolls sideways, said when the keyboard reaches it. */
export const WIDE_TABLE_NAME = 'Table, scrolls sideways';

/**
 * A table wider than the answer scrolls sideways in its own box (styles.css). Then, and only then, it is a Tab stop
 * with a name, so a keyboard can scroll it (WCAG 2.1.1): Chromium alone lets the keyboard into a scrolling box by
 * itself, and unnamed. A table that fits is no stop at all.
 */
function markWideTable(table: Element): void {
  const isWide = table.scrollWidth > table.clientWidth;
  if (isWide === table.hasAttribute('tabindex')) return;
  if (isWide) {
    table.setAttribute('tabindex', '0');
    table.setAttribute('aria-label', WIDE_TABLE_NAME);
  } else {
    table.removeAttribute('tabindex');
    table.removeAttribute('aria-label');
  }
}

/**
 * Shows Markdown already sanitized by the Markdown engine (DOMPurify), hence the bypass: Angular's own sanitizer
 * would strip the code blocks' copy buttons. Each top-level block is its own element, so while an answer
 * streams only the last one is rewritten.
 */
@Component({
  selector: 'app-markdown-view',
  changeDetection: ChangeDetectionStrategy.OnPush,
  host: { class: 'markdown', '[class.md-streamed]': 'hasStreamed()', '(click)': 'copyCode($event); followFootnote($event)' },
  // The streaming cursor hangs off the open block's class, not off the message's aria-busy: a rule keyed
  // on an ancestor's attribute with a bare `:last-child` at its right makes Blink restyle the whole
  // answer when the attribute flips (10.8 of the 20 ms task that ended a 10,000-token stream).
  //
  // Blocks come in fixed runs (chunks). Once the view has streamed, a chunk off screen skips style, layout
  // and paint at its remembered size (content-visibility in the stylesheet), so each redraw of a long answer
  // costs what is on screen; per block, the browser's visibility checks cost more than they saved.
  template: `@for (chunk of chunks(); track chunk.key; let lastChunk = $last) {<div class="md-chunk">@for (block of chunk.blocks; track block.key; let last = $last) {<div class="md-block" [class.md-live]="isStreaming() && lastChunk && last" [innerHTML]="block.html"></div>}</div>}`,
})
export class MarkdownView {
  readonly content = input.required<string>();
  readonly isStreaming = input(false);
  /** The answer ended before the model finished it (stopped, interrupted, failed): its last block's open marks are closed. */
  readonly isCutShort = input(false);
  /** Whether the browser draws this message now: its plain code blocks wait for it to be highlighted. */
  readonly isDrawn = input(true);

  private readonly renderer = inject(MarkdownRenderer);
  private readonly sanitizer = inject(DomSanitizer);
  private readonly announcer = inject(Announcer);
  private readonly host = inject<ElementRef<HTMLElement>>(ElementRef);
  private streamingMarkdown: StreamingMarkdown | null = null;
  /** The blocks of a finished message and the source they show. */
  private settled: { source: string; isCutShort: boolean; blocks: MarkdownBlock[] } | null = null;
  private trusted = new Map<string, SafeHtml>();
  private streamedOnce = false;
  private engineSeen: MarkdownEngine | null = null;
  private mathVersionSeen = 0;
  /**
   * Whether this view has shown its message streaming. Then every chunk it holds was laid out once (the open
   * one is at the bottom), so a chunk off screen can skip rendering at its remembered size, never a guessed one.
   */
  protected readonly hasStreamed = computed(() => (this.streamedOnce ||= this.isStreaming()));
  /** Bumps each time one of this view's blocks has been highlighted in the background. */
  private readonly highlighted = signal(0);
  private readonly onHighlighted = (): void => this.highlighted.update((v) => v + 1);
  /** Told when a table's box changes size (a new table, a narrower window): whether it scrolls may have changed. */
  private tableSizes: ResizeObserver | null = null;
  private readonly tables = new Set<Element>();

  /** The rendered (sanitized) blocks, before any background highlighting. */
  private readonly rendered = computed<MarkdownBlock[]>(() => {
    const content = this.content();
    const engine = this.renderer.engine();
    // Until the Markdown engine is here, the text as written.
    if (!engine) return this.renderer.plainBlocks(content);
    // The engine arrived, or math rendering did: what was rendered before (as text, formulas as TeX) is rendered
    // again, once.
    const mathVersion = engine.mathVersion();
    if (engine !== this.engineSeen || mathVersion !== this.mathVersionSeen) {
      this.engineSeen = engine;
      this.mathVersionSeen = mathVersion;
      this.streamingMarkdown = null;
      this.settled = null;
    }
    if (this.isStreaming()) {
      this.settled = null;
      this.streamingMarkdown ??= engine.streaming();
      return this.streamingMarkdown.update(content);
    }
    const isCutShort = this.isCutShort();
    if (this.settled?.source !== content || this.settled.isCutShort !== isCutShort) {
      // The stream just ended: finish its last block and keep the others, rather than render it all again.
      const blocks = this.streamingMarkdown
        ? this.streamingMarkdown.finish(content, isCutShort)
        : isCutShort ? engine.streaming().finish(content, true) : engine.render(content);
      this.settled = { source: content, isCutShort, blocks };
    }
    this.streamingMarkdown = null;
    return this.settled.blocks;
  });

  protected readonly blocks = computed<TrustedBlock[]>(() => {
    this.highlighted();
    const engine = this.renderer.engine();
    const blocks = engine ? this.rendered().map((block) => engine.current(block)) : this.rendered();
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

  /** The blocks in chunks, by position; tracked by key, a chunk whose blocks did not change keeps its DOM. */
  protected readonly chunks = computed<BlockChunk[]>(() => {
    const blocks = this.blocks();
    const chunks: BlockChunk[] = [];
    for (let start = 0; start < blocks.length; start += BLOCKS_PER_CHUNK) chunks.push({ key: start, blocks: blocks.slice(start, start + BLOCKS_PER_CHUNK) });
    return chunks;
  });

  constructor() {
    // Code blocks left plain (rendered before highlight.js arrived, or long) are highlighted in the
    // background, one per task, once final (every block but the open one while the message streams) and
    // once the message is drawn: a message off screen waits until the reader scrolls to it.
    effect(() => {
      const engine = this.renderer.engine();
      if (!engine || engine.version() === 0 || !(this.isDrawn() || this.isStreaming())) return;
      const blocks = this.rendered();
      const final = this.isStreaming() ? blocks.length - 1 : blocks.length;
      for (let i = 0; i < final; i++) engine.queueHighlight(blocks[i], this.onHighlighted);
    });
    // A block is a new element each time its source changes, its tables too: once drawn, new ones are watched and
    // gone ones dropped.
    const injector = inject(Injector);
    effect(() => {
      this.chunks();
      afterNextRender({ read: () => this.watchTables() }, { injector });
    });
    inject(DestroyRef).onDestroy(() => this.tableSizes?.disconnect());
  }

  private watchTables(): void {
    const tables = this.host.nativeElement.getElementsByTagName('table');
    if (tables.length === 0 && this.tables.size === 0) return;
    if (typeof ResizeObserver === 'undefined') return;
    const sizes = (this.tableSizes ??= new ResizeObserver((entries) => {
      for (const entry of entries) markWideTable(entry.target);
    }));
    for (const table of this.tables) {
      if (table.isConnected) continue;
      sizes.unobserve(table);
      this.tables.delete(table);
    }
    for (const table of tables) {
      if (this.tables.has(table)) continue;
      this.tables.add(table);
      sizes.observe(table); // reported once at first, then at each change of size
    }
  }

  /**
   * Goes from a footnote's number to its note and back (footnotes.ts), within this message only: there are no ids,
   * so several answers' notes never collide. The list scrolls to it and focus follows, for keyboards.
   */
  protected followFootnote(event: MouseEvent): void {
    const target = event.target;
    if (!(target instanceof Element)) return;
    const ref = target.closest('button[data-footnote-ref]')?.getAttribute('data-footnote-ref');
    const back = target.closest('button[data-footnote-back]')?.getAttribute('data-footnote-back');
    const n = ref ?? back;
    if (!n || !/^\d+$/.test(n)) return;
    const destination = ref
      ? this.host.nativeElement.querySelector<HTMLElement>(`li[data-footnote="${n}"]`)
      : this.host.nativeElement.querySelector<HTMLElement>(`button[data-footnote-ref="${n}"]`);
    if (!destination) return;
    if (destination.tagName === 'LI') destination.tabIndex = -1;
    destination.scrollIntoView({ block: 'center' });
    destination.focus({ preventScroll: true });
  }

  protected copyCode(event: MouseEvent): void {
    const target = event.target;
    if (!(target instanceof Element)) return;
    const button = target.closest('button.copy-code');
    const code = button?.closest('.code-block')?.querySelector('pre code');
    if (!button || !code) return;
    void copyText(code.textContent ?? '').then((isCopied) => {
      const result = isCopied ? 'Copied' : 'Copy failed';
      // The label is what a screen reader reads for the button; a change to it is not read out, hence the announcement.
      button.textContent = result;
      button.setAttribute('aria-label', result);
      this.announcer.announce(result);
      setTimeout(() => {
        button.textContent = 'Copy';
        button.setAttribute('aria-label', 'Copy code');
      }, 2000);
    });
  }
}
