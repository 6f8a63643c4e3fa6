import { type ComponentFixture, TestBed } from '@angular/core/testing';
import { Announcer } from '../shell/announcer';
import type { MarkdownEngine } from './markdown-engine';
import { type MarkdownBlock, MarkdownRenderer } from './markdown-renderer';
import { BLOCKS_PER_CHUNK, MarkdownView } from './markdown-view';

describe('MarkdownView', () => {
  let fixture: ComponentFixture<MarkdownView>;
  let el: HTMLElement;

  beforeEach(() => {
    fixture = TestBed.createComponent(MarkdownView);
    el = fixture.nativeElement as HTMLElement;
  });

  /** The Markdown engine the views use, once loaded. */
  async function engine(): Promise<MarkdownEngine> {
    const markdown = TestBed.inject(MarkdownRenderer);
    await markdown.whenReady();
    const loaded = markdown.engine();
    if (!loaded) throw new Error('the Markdown engine did not load');
    return loaded;
  }

  async function show(content: string, isStreaming: boolean): Promise<void> {
    fixture.componentRef.setInput('content', content);
    fixture.componentRef.setInput('isStreaming', isStreaming);
    await fixture.whenStable();
  }

  it('shows the text as written (escaped) until the Markdown engine has loaded, then renders it', async () => {
    fixture.componentRef.setInput('content', 'Some **bold** <img src=x onerror=alert(1)>\nnext line\n\nSecond paragraph.');
    fixture.detectChanges();
    expect(TestBed.inject(MarkdownRenderer).engine()).toBeNull();
    expect(Array.from(el.querySelectorAll('.md-block')).map((b) => b.innerHTML)).toEqual([
      '<p>Some **bold** &lt;img src=x onerror=alert(1)&gt;<br>next line</p>', '<p>Second paragraph.</p>',
    ]);
    expect(el.querySelector('img')).toBeNull();
    // whenStable waits for the engine (a pending task), and the view renders again when it is here.
    await fixture.whenStable();
    expect(el.querySelector('.md-block strong')?.textContent).toBe('bold');
    expect(el.querySelector('img')).toBeNull();
  });

  it('while streaming, rewrites only the growing last block', async () => {
    await show('First paragraph.\n\nSecond', true);
    const first = el.querySelector('.md-block > p');
    await show('First paragraph.\n\nSecond grows', true);
    expect(el.querySelector('.md-block > p')).toBe(first);
    expect(el.querySelectorAll('.md-block')[1]?.textContent?.trim()).toBe('Second grows');
    // And when it ends, the same DOM stays (same blocks as the full render).
    await show('First paragraph.\n\nSecond grows', false);
    expect(el.querySelector('.md-block > p')).toBe(first);
  });

  it('marks only the open (last) block for the cursor while streaming, and none once finished', async () => {
    const live = (): number[] => Array.from(el.querySelectorAll('.md-block')).flatMap((b, i) => (b.classList.contains('md-live') ? [i] : []));
    await show('One.\n\nTwo', true);
    expect(live()).toEqual([1]);
    await show('One.\n\nTwo.\n\nThree', true);
    expect(live()).toEqual([2]);
    await show('One.\n\nTwo.\n\nThree.', false);
    expect(live()).toEqual([]);
    expect(el.querySelectorAll('.md-block')).toHaveLength(3);
  });

  it('groups blocks in fixed chunks and leaves the DOM of chunks that did not change', async () => {
    const paragraphs = (n: number): string => Array.from({ length: n }, (_, i) => `Paragraph ${i + 1}.`).join('\n\n');
    const total = BLOCKS_PER_CHUNK * 2 + 5;
    await show(paragraphs(total), true);
    const chunks = Array.from(el.querySelectorAll(':scope > .md-chunk'));
    expect(chunks.map((c) => c.querySelectorAll(':scope > .md-block').length)).toEqual([BLOCKS_PER_CHUNK, BLOCKS_PER_CHUNK, 5]);
    expect(chunks[1].querySelector('.md-block')?.textContent?.trim()).toBe(`Paragraph ${BLOCKS_PER_CHUNK + 1}.`);
    const firstBlocks = Array.from(chunks[0].querySelectorAll('.md-block > p'));
    await show(`${paragraphs(total)}\n\nOne more`, true);
    const after = Array.from(el.querySelectorAll(':scope > .md-chunk'));
    expect(after[0]).toBe(chunks[0]);
    expect(after[1]).toBe(chunks[1]);
    expect(Array.from(after[0].querySelectorAll('.md-block > p')).every((p, i) => p === firstBlocks[i])).toBe(true);
    expect(after[2].querySelectorAll('.md-block')).toHaveLength(6);
    expect(Array.from(el.querySelectorAll('.md-live')).map((b) => b.textContent?.trim())).toEqual(['One more']);
  });

  it('lets chunks skip rendering only in a view that streamed (every chunk laid out once), before and after the end', async () => {
    await show('From history.\n\nNever streamed here.', false);
    expect(el.classList.contains('md-streamed')).toBe(false);
    const streamed = TestBed.createComponent(MarkdownView);
    const host = streamed.nativeElement as HTMLElement;
    streamed.componentRef.setInput('content', 'Streaming');
    streamed.componentRef.setInput('isStreaming', true);
    await streamed.whenStable();
    expect(host.classList.contains('md-streamed')).toBe(true);
    streamed.componentRef.setInput('content', 'Streaming ended.');
    streamed.componentRef.setInput('isStreaming', false);
    await streamed.whenStable();
    expect(host.classList.contains('md-streamed')).toBe(true);
  });

  it('when the stream ends, finishes only the last block instead of rendering the answer again', async () => {
    const renderer = await engine();
    const answer = 'Intro.\n\n```\nnpm test\n```\n\nMiddle paragraph.\n\nLast words';
    await show(answer.slice(0, -3), true);
    await show(answer, true);
    const before = Array.from(el.querySelectorAll('.md-block > *'));
    const render = vi.spyOn(renderer, 'render');
    const toSafeHtml = vi.spyOn(renderer, 'toSafeHtml');
    await show(answer, false);
    expect(render).not.toHaveBeenCalled();
    expect(toSafeHtml.mock.calls.length).toBeLessThanOrEqual(1);
    expect(Array.from(el.querySelectorAll('.md-block > *')).every((node, i) => node === before[i])).toBe(true);
    // Opening it again (history) reuses the same sanitized blocks.
    expect(renderer.render(answer).map((b) => b.html.trim())).toEqual(before.map((node) => node.outerHTML));
  });

  it('highlights code blocks rendered before highlight.js arrived in the background, keeping the other blocks', async () => {
    const renderer = await engine();
    await show('Intro.\n\n```ts\nconst a = 1;\n```\n\n```ts\nconst b = 2;\n```', false);
    const intro = el.querySelector('.md-block > p');
    expect(el.querySelector('.hljs-keyword')).toBeNull();
    await renderer.whenHighlighterReady();
    await vi.waitFor(async () => {
      await fixture.whenStable();
      expect(el.querySelectorAll('.hljs-keyword')).toHaveLength(2);
    });
    expect(el.querySelector('.md-block > p')).toBe(intro);
  });

  it('highlights a long streamed code block in the background once it is final, not while it grows', async () => {
    const renderer = await engine();
    await renderer.whenHighlighterReady();
    const code = '```ts\n' + 'const value = 1;\n'.repeat(200);
    await show(code, true);
    expect(el.querySelector('.hljs-keyword')).toBeNull();
    // Still open: nothing is queued for it.
    await new Promise((resolve) => setTimeout(resolve, 50));
    await fixture.whenStable();
    expect(el.querySelector('.hljs-keyword')).toBeNull();
    await show(code + '```', false);
    await vi.waitFor(async () => {
      await fixture.whenStable();
      expect(el.querySelectorAll('.hljs-keyword')).toHaveLength(200);
    });
  });

  it('highlights a long code block of a message opened from history in the background', async () => {
    const renderer = await engine();
    await renderer.whenHighlighterReady();
    const render = vi.spyOn(renderer, 'render');
    await show('Intro.\n\n```ts\n' + 'const value = 1;\n'.repeat(200) + '```', false);
    // Rendered plain (not highlighted in the same task), then highlighted in the background.
    const [, code] = render.mock.results[0]?.value as MarkdownBlock[];
    expect(code.html).toContain('const value = 1;');
    expect(code.html).not.toContain('hljs-keyword');
    await vi.waitFor(async () => {
      await fixture.whenStable();
      expect(el.querySelectorAll('.hljs-keyword')).toHaveLength(200);
    });
  });

  it('leaves the long code of a message the browser does not draw plain until it is drawn', async () => {
    const renderer = await engine();
    await renderer.whenHighlighterReady();
    fixture.componentRef.setInput('isDrawn', false);
    await show('```ts\n' + 'const value = 1;\n'.repeat(200) + '```', false);
    // Long enough for the background queue to have run (it did in the test above).
    await new Promise((resolve) => setTimeout(resolve, 300));
    await fixture.whenStable();
    expect(el.querySelector('.hljs-keyword')).toBeNull();
    expect(el.textContent).toContain('const value = 1;');
    fixture.componentRef.setInput('isDrawn', true);
    await vi.waitFor(async () => {
      await fixture.whenStable();
      expect(el.querySelectorAll('.hljs-keyword')).toHaveLength(200);
    });
  });

  it('keeps the code copy button working without inline handlers', async () => {
    const writeText = vi.fn(() => Promise.resolve());
    Object.defineProperty(navigator, 'clipboard', { value: { writeText }, configurable: true });
    Object.defineProperty(window, 'isSecureContext', { value: true, configurable: true });
    await show('```\nnpm test\n```', false);
    const button = el.querySelector('button.copy-code') as HTMLButtonElement;
    expect(button.getAttribute('onclick')).toBeNull();
    button.click();
    await vi.waitFor(() => expect(button.textContent).toBe('Copied'));
    expect(writeText).toHaveBeenCalledWith('npm test');
  });

  it('says "Copied" in the code copy button\'s name too, and announces it', async () => {
    Object.defineProperty(navigator, 'clipboard', { value: { writeText: () => Promise.resolve() }, configurable: true });
    Object.defineProperty(window, 'isSecureContext', { value: true, configurable: true });
    await show('```\nnpm test\n```', false);
    const button = el.querySelector('button.copy-code') as HTMLButtonElement;
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      button.click();
      await vi.waitFor(() => expect(button.getAttribute('aria-label')).toBe('Copied'));
      vi.advanceTimersByTime(100);
      expect(TestBed.inject(Announcer).message()).toBe('Copied');
      vi.advanceTimersByTime(2000);
      expect(button.getAttribute('aria-label')).toBe('Copy code');
      expect(button.textContent).toBe('Copy');
    } finally {
      vi.useRealTimers();
    }
  });

  it('makes a table that scrolls sideways a named Tab stop, only while it does, as a keyboard cannot scroll it otherwise', async () => {
    // jsdom lays nothing out: the browser's reports of a table's size, and its widths, are played here.
    const observed = new Set<Element>();
    let report: (targets: Element[]) => void = () => undefined;
    vi.stubGlobal('ResizeObserver', class {
      constructor(callback: ResizeObserverCallback) {
        report = (targets) => callback(targets.map((target) => ({ target }) as ResizeObserverEntry), this);
      }
      observe(target: Element): void { observed.add(target); }
      unobserve(target: Element): void { observed.delete(target); }
      disconnect(): void { observed.clear(); }
    });
    const lay = (table: Element, box: number, content: number): void => {
      Object.defineProperty(table, 'clientWidth', { value: box, configurable: true });
      Object.defineProperty(table, 'scrollWidth', { value: content, configurable: true });
    };
    try {
      await show('| a | b |\n|---|---|\n| 1 | 2 |\n\nText.\n\n| c |\n|---|\n| 3 |', false);
      const [wide, narrow] = Array.from(el.querySelectorAll('table'));
      expect([...observed]).toEqual([wide, narrow]);
      lay(wide, 300, 900);
      lay(narrow, 300, 300);
      report([wide, narrow]);
      expect([wide.getAttribute('tabindex'), wide.getAttribute('aria-label')]).toEqual(['0', 'Table, scrolls sideways']);
      expect([narrow.getAttribute('tabindex'), narrow.getAttribute('aria-label')]).toEqual([null, null]);
      // A wider window: it fits now, and is no stop.
      lay(wide, 900, 900);
      report([wide]);
      expect([wide.getAttribute('tabindex'), wide.getAttribute('aria-label')]).toEqual([null, null]);

      // Streamed, the open block's table is a new one at each draw: the new one is watched, the old one let go.
      await show('| a |\n|---|\n| 1 |', true);
      const first = el.querySelector('table')!;
      await show('| a |\n|---|\n| 1 |\n| 2 |', true);
      const second = el.querySelector('table')!;
      expect(second).not.toBe(first);
      expect([...observed]).toEqual([second]);
      lay(second, 300, 600);
      report([second]);
      expect(second.getAttribute('tabindex')).toBe('0');
    } finally {
      vi.unstubAllGlobals();
    }
  });

  it('follows a footnote to its note and back within its own message, with two answers of the same notes on the page', async () => {
    const scrolled: Element[] = [];
    // jsdom lays nothing out and has no scrollIntoView.
    Element.prototype.scrollIntoView = function (this: Element) { scrolled.push(this); };
    const answer = 'Claim[^1] and another[^2].\n\n[^1]: First note.\n[^2]: Second note.';
    await show(answer, false);
    const other = TestBed.createComponent(MarkdownView);
    other.componentRef.setInput('content', answer);
    await other.whenStable();
    document.body.append(other.nativeElement as HTMLElement, el);
    try {
      (el.querySelector('button[data-footnote-ref="2"]') as HTMLButtonElement).click();
      const note = el.querySelector('li[data-footnote="2"]');
      expect(scrolled).toEqual([note]);
      expect(document.activeElement).toBe(note);
      (note?.querySelector('button.footnote-back') as HTMLButtonElement).click();
      expect(document.activeElement).toBe(el.querySelector('button[data-footnote-ref="2"]'));
      expect(scrolled).toHaveLength(2);
    } finally {
      (other.nativeElement as HTMLElement).remove();
      el.remove();
      Reflect.deleteProperty(Element.prototype, 'scrollIntoView');
    }
  });

  it('shows an answer nested thousands deep, streamed and final (marked overflowed its stack and the view stopped)', async () => {
    const answer = `Intro.\n\n${'- '.repeat(5_000)}deep\n\n${'>'.repeat(5_000)} quoted\n\nOutro.`;
    await show(answer.slice(0, answer.length / 2), true);
    expect(el.textContent).toContain('Intro.');
    await show(answer, true);
    await show(answer, false);
    for (const text of ['Intro.', 'deep', 'quoted', 'Outro.']) expect(el.textContent).toContain(text);
  });
});
