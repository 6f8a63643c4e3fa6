import { type ComponentFixture, TestBed } from '@angular/core/testing';
import { MarkdownRenderer } from './markdown-renderer';
import { FIRST_BATCH_CHARS, MessageList, OPEN_BATCH } from './message-list';

/** A scroller whose geometry the test sets (jsdom lays nothing out). */
function fakeGeometry(el: HTMLElement, geometry: { scrollHeight: number; clientHeight: number; scrollTop: number }): void {
  Object.defineProperty(el, 'scrollHeight', { configurable: true, get: () => geometry.scrollHeight });
  Object.defineProperty(el, 'clientHeight', { configurable: true, get: () => geometry.clientHeight });
  Object.defineProperty(el, 'scrollTop', {
    configurable: true,
    get: () => geometry.scrollTop,
    set: (v: number) => { geometry.scrollTop = Math.max(0, Math.min(v, geometry.scrollHeight - geometry.clientHeight)); },
  });
}

/** ResizeObserver for a test that says which element changed size (jsdom has none). */
class FakeResizeObserver {
  static readonly all: FakeResizeObserver[] = [];
  readonly targets = new Set<Element>();
  constructor(private readonly callback: ResizeObserverCallback) {
    FakeResizeObserver.all.push(this);
  }
  static resize(target: Element): void {
    for (const observer of FakeResizeObserver.all) {
      if (observer.targets.has(target)) observer.callback([{ target } as ResizeObserverEntry], observer);
    }
  }
  observe(target: Element): void { this.targets.add(target); }
  unobserve(target: Element): void { this.targets.delete(target); }
  disconnect(): void { this.targets.clear(); }
}

describe('MessageList', () => {
  let fixture: ComponentFixture<MessageList>;
  let el: HTMLElement;
  let scroller: HTMLElement;
  const geometry = { scrollHeight: 1000, clientHeight: 500, scrollTop: 500 };

  afterEach(() => {
    vi.unstubAllGlobals();
    FakeResizeObserver.all.length = 0;
  });

  beforeEach(async () => {
    vi.stubGlobal('ResizeObserver', FakeResizeObserver);
    // Loaded before the app shows anything (app.config.ts), so a batch's messages are rendered in its own task.
    await TestBed.inject(MarkdownRenderer).whenReady();
    fixture = TestBed.createComponent(MessageList);
    fixture.componentRef.setInput('messages', []);
    el = fixture.nativeElement as HTMLElement;
    await fixture.whenStable();
    scroller = el.querySelector('.scroller') as HTMLElement;
    Object.assign(geometry, { scrollHeight: 1000, clientHeight: 500, scrollTop: 500 });
    fakeGeometry(scroller, geometry);
  });

  async function scrollEvent(): Promise<void> {
    scroller.dispatchEvent(new Event('scroll'));
    await fixture.whenStable();
  }
  const jumpButton = (): Element | null => el.querySelector('button[aria-label="Scroll to the latest message"]');

  it('folds away an answer followed by another to the same question (a regeneration stopped before it replaced it), behind a button', async () => {
    const row = (id: string, position: number, role: 'user' | 'assistant', content: string, status = 'complete') => ({
      id, conversation_id: 'c', position, role, content, status, created_at: '', updated_at: '', token_count: null, model_name: null,
      finish_reason: null, error_code: null, feedback: null, feedback_comment: null, files: [],
    });
    fixture.componentRef.setInput('messages', [row('u1', 0, 'user', 'Q'), row('a1', 1, 'assistant', 'First answer'), row('a2', 2, 'assistant', 'Second, stopped', 'stopped')]);
    await fixture.whenStable();
    const text = (): string => el.querySelector('.thread')?.textContent ?? '';
    expect(text()).toContain('Second, stopped');
    expect(text()).not.toContain('First answer');
    const toggle = el.querySelector('button.earlier-answer') as HTMLButtonElement;
    expect(toggle.textContent).toBe('Show the earlier answer');
    expect(toggle.getAttribute('aria-expanded')).toBe('false');
    toggle.click();
    await fixture.whenStable();
    expect(text()).toContain('First answer');
    expect(toggle.getAttribute('aria-expanded')).toBe('true');
    // A conversation without such a pair has no button.
    fixture.componentRef.setInput('messages', [row('u1', 0, 'user', 'Q'), row('a1', 1, 'assistant', 'First answer')]);
    await fixture.whenStable();
    expect(el.querySelector('button.earlier-answer')).toBeNull();
  });

  it('offers Retry on the last answer only (Retry regenerates the last answer, whichever was clicked)', async () => {
    const row = (id: string, position: number, role: 'user' | 'assistant', status = 'complete') => ({
      id, conversation_id: 'c', position, role, content: `${id} text`, status, created_at: '', updated_at: '', token_count: null,
      model_name: null, finish_reason: null, error_code: null, feedback: null, feedback_comment: null, files: [],
    });
    const retries = (): string[] => Array.from(el.querySelectorAll('app-message-item'))
      .filter((item) => Array.from(item.querySelectorAll('button')).some((b) => b.textContent?.trim() === 'Retry'))
      .map((item) => item.querySelector('.markdown')?.textContent?.trim() ?? '');
    fixture.componentRef.setInput('messages', [row('u1', 0, 'user'), row('a1', 1, 'assistant', 'failed'), row('u2', 2, 'user'), row('a2', 3, 'assistant', 'failed')]);
    fixture.componentRef.setInput('regenerableId', 'a2');
    await fixture.whenStable();
    expect(el.querySelectorAll('.notice-error')).toHaveLength(2);
    expect(retries()).toEqual(['a2 text']);
  });

  it('says over the latest answer only that the model no longer saw the conversation\'s start; files not read stay with each answer', async () => {
    const row = (id: string, position: number, role: 'user' | 'assistant', context: object | null = null) => ({
      id, conversation_id: 'c', position, role, content: `${id} text`, status: 'complete', created_at: '', updated_at: '', token_count: null,
      model_name: null, finish_reason: null, error_code: null, feedback: null, feedback_comment: null, files: [], context,
    });
    const notes = (): string[] => Array.from(el.querySelectorAll('.msg-context-note')).map((n) => n.textContent?.trim() ?? '');
    fixture.componentRef.setInput('messages', [
      row('u1', 0, 'user'), row('a1', 1, 'assistant', { earlier_messages_omitted: 2, omitted_files: ['big.log'] }),
      row('u2', 2, 'user'), row('a2', 3, 'assistant', { earlier_messages_omitted: 4 }),
    ]);
    await fixture.whenStable();
    expect(notes()).toEqual([
      'big.log did not fit in the model\'s context: it did not see it.',
      'The model did not see the first 4 messages of this conversation: they no longer fit in its context.',
    ]);
    // A page from the middle of the conversation (a search match): none of its answers is the latest.
    fixture.componentRef.setInput('hasNewer', true);
    await fixture.whenStable();
    expect(notes()).toEqual(['big.log did not fit in the model\'s context: it did not see it.']);
  });

  it('stays pinned when its own scroll event arrives after more of the answer was laid out', async () => {
    await scrollEvent();
    expect(jumpButton()).toBeNull();
    // Two more lines rendered before the scroll event of the last stick-to-bottom is dispatched.
    geometry.scrollHeight = 1200;
    await scrollEvent();
    expect(jumpButton()).toBeNull();
  });

  it('unpins when the reader scrolls up, and pins again at the bottom', async () => {
    await scrollEvent();
    geometry.scrollTop = 300;
    await scrollEvent();
    expect(jumpButton()).not.toBeNull();
    // More content below does not move a reader who scrolled up.
    geometry.scrollHeight = 1400;
    await scrollEvent();
    expect(jumpButton()).not.toBeNull();
    geometry.scrollTop = 900;
    await scrollEvent();
    expect(jumpButton()).toBeNull();
  });

  it('keeps the latest message in view when the view itself gets shorter (the composer grows, a keyboard opens)', async () => {
    await scrollEvent();
    geometry.clientHeight = 300; // the browser keeps scrollTop: the bottom 200 px are now below the view
    FakeResizeObserver.resize(scroller);
    await fixture.whenStable();
    expect(geometry.scrollTop).toBe(geometry.scrollHeight - geometry.clientHeight);
    expect(jumpButton()).toBeNull();
  });

  it('leaves a reader who scrolled up where they are when the view gets shorter, and counts them at the bottom once it is in view', async () => {
    await scrollEvent();
    geometry.scrollTop = 200;
    await scrollEvent();
    geometry.clientHeight = 300;
    FakeResizeObserver.resize(scroller);
    await fixture.whenStable();
    expect(geometry.scrollTop).toBe(200);
    expect(jumpButton()).not.toBeNull();
    // The keyboard closes and the view grows to show the end without a scroll of the reader's.
    geometry.clientHeight = 790;
    FakeResizeObserver.resize(scroller);
    await fixture.whenStable();
    expect(jumpButton()).toBeNull();
  });

  it('jumps back to the latest message and pins', async () => {
    await scrollEvent();
    geometry.scrollTop = 100;
    await scrollEvent();
    (jumpButton() as HTMLButtonElement).click();
    await fixture.whenStable();
    expect(jumpButton()).toBeNull();
    expect(geometry.scrollTop).toBe(geometry.scrollHeight - geometry.clientHeight);
  });

  it('gives the composer the keyboard when the "latest" button it was on goes (it fell to the page\'s body)', async () => {
    const composer = document.createElement('textarea');
    composer.id = 'message-input';
    document.body.append(el, composer);
    try {
      await scrollEvent();
      geometry.scrollTop = 100;
      await scrollEvent();
      const button = jumpButton() as HTMLButtonElement;
      button.focus();
      button.click();
      await fixture.whenStable();
      expect(jumpButton()).toBeNull();
      expect(document.activeElement).toBe(composer);
    } finally {
      el.remove();
      composer.remove();
    }
  });

  describe('opening a conversation', () => {
    const row = (position: number, content = `Message ${position}`) => ({
      id: `m${position}`, conversation_id: 'c', position, role: position % 2 === 0 ? 'user' as const : 'assistant' as const, content,
      status: 'complete', created_at: '', updated_at: '', token_count: null, model_name: null, finish_reason: null, error_code: null,
      feedback: null, feedback_comment: null, files: [],
    });
    const page = (n: number, content?: (p: number) => string) => Array.from({ length: n }, (_, p) => row(p, content?.(p)));
    const renderedIds = (): string[] => Array.from(el.querySelectorAll('article.msg')).map((a) => a.textContent?.match(/Message (\d+)/)?.[1] ?? '?');
    /** Lets the next batch's task run and renders it. */
    async function nextTask(): Promise<void> {
      await new Promise((resolve) => setTimeout(resolve));
      await fixture.whenStable();
    }

    it('renders the newest messages first, then older ones a batch per task, in order', async () => {
      fixture.componentRef.setInput('messages', page(50));
      fixture.componentRef.setInput('hasOlder', true);
      await fixture.whenStable();
      const expected = (from: number) => Array.from({ length: 50 - from }, (_, i) => String(from + i));
      expect(renderedIds()).toEqual(expected(50 - OPEN_BATCH.messages));
      // Older pages cannot be asked for until the page is all there.
      const loadOlder = (): HTMLButtonElement => el.querySelector('button.load-older') as HTMLButtonElement;
      expect(loadOlder().getAttribute('aria-disabled')).toBe('true');
      for (let from = 50 - 2 * OPEN_BATCH.messages; from > 0; from -= OPEN_BATCH.messages) {
        await nextTask();
        expect(renderedIds()).toEqual(expected(Math.max(0, from)));
      }
      await nextTask();
      expect(renderedIds()).toEqual(expected(0));
      expect(loadOlder().hasAttribute('aria-disabled')).toBe(false);
      expect(loadOlder().textContent?.trim()).toBe('Load earlier messages');
    });

    it('renders an older page from its newest message up, keeping the reader where they were', async () => {
      let asked = 0;
      fixture.componentInstance.loadOlder.subscribe(() => asked++);
      const all = page(100);
      fixture.componentRef.setInput('messages', all.slice(50));
      fixture.componentRef.setInput('hasOlder', true);
      await fixture.whenStable();
      while (renderedIds().length < 50) await nextTask();
      // The first message, where the reader is: its place on screen follows the content above it and the scroll.
      let above = 140;
      const anchor = el.querySelector('app-message-item') as HTMLElement;
      anchor.getBoundingClientRect = () => ({ top: above - geometry.scrollTop }) as DOMRect;
      // The reader scrolls to the top: the older page is asked for, and arrives.
      Object.assign(geometry, { scrollHeight: 5000, clientHeight: 500, scrollTop: 100 });
      await scrollEvent();
      expect(asked).toBe(1);
      fixture.componentRef.setInput('isLoadingOlder', true);
      await fixture.whenStable();
      fixture.componentRef.setInput('messages', all);
      fixture.componentRef.setInput('isLoadingOlder', false);
      await fixture.whenStable();
      expect(renderedIds()).toEqual(Array.from({ length: 50 + OPEN_BATCH.messages }, (_, i) => String(50 - OPEN_BATCH.messages + i)));
      // Each batch grows the content above the reader; they are moved back by as much, batch after batch.
      const thread = el.querySelector('.thread') as HTMLElement;
      Object.assign(geometry, { scrollHeight: 5600 });
      above += 600;
      FakeResizeObserver.resize(thread);
      expect(geometry.scrollTop).toBe(700);
      expect(anchor.getBoundingClientRect().top).toBe(40);
      // The next batch is put in above them: they are moved back as soon as it is rendered, before the browser
      // draws the frame (no resize observed yet).
      Object.assign(geometry, { scrollHeight: 6200 });
      above += 600;
      await nextTask();
      expect(geometry.scrollTop).toBe(1300);
      expect(anchor.getBoundingClientRect().top).toBe(40);
      expect(renderedIds()[0]).toBe(String(50 - 2 * OPEN_BATCH.messages));
      while (renderedIds().length < 100) await nextTask();
      expect(renderedIds()).toEqual(all.map((m) => String(m.position)));
      // Not asked again meanwhile, though the reader was near the top.
      expect(asked).toBe(1);
    });

    it('does not ask for older pages while the page is still being rendered', async () => {
      let asked = 0;
      fixture.componentInstance.loadOlder.subscribe(() => asked++);
      fixture.componentRef.setInput('messages', page(50));
      fixture.componentRef.setInput('hasOlder', true);
      await fixture.whenStable();
      geometry.scrollTop = 0;
      await scrollEvent();
      expect(asked).toBe(0);
      while (renderedIds().length < 50) await nextTask();
      await scrollEvent();
      expect(asked).toBe(1);
    });

    it('holds a batch to its characters, but always renders at least one message', async () => {
      const long = 'x'.repeat(OPEN_BATCH.chars);
      fixture.componentRef.setInput('messages', page(6, (p) => `Message ${p} ${long}`));
      await fixture.whenStable();
      expect(renderedIds()).toEqual(['5']);
      await nextTask();
      expect(renderedIds()).toEqual(['4', '5']);
    });

    it('renders first only what fills the view, then full batches above it', async () => {
      // Long answers: a full batch would hold OPEN_BATCH.chars / 3,000 of them, the first task only what fills the view.
      const long = 'x'.repeat(3000 - 20);
      fixture.componentRef.setInput('messages', page(12, (p) => `Message ${p} ${long}`));
      await fixture.whenStable();
      const firstCount = Math.floor(FIRST_BATCH_CHARS / 3000);
      const expected = (from: number) => Array.from({ length: 12 - from }, (_, i) => String(from + i));
      expect(renderedIds()).toEqual(expected(12 - firstCount));
      await nextTask();
      expect(renderedIds()).toEqual(expected(12 - firstCount - Math.floor(OPEN_BATCH.chars / 3000)));
      while (renderedIds().length < 12) await nextTask();
      expect(renderedIds()).toEqual(expected(0));
    });

    it('forgets where the reader was once another conversation is opened while an older page loads', async () => {
      fixture.componentRef.setInput('conversationId', 'a');
      fixture.componentRef.setInput('messages', page(50));
      fixture.componentRef.setInput('hasOlder', true);
      await fixture.whenStable();
      while (renderedIds().length < 50) await nextTask();
      const anchor = el.querySelector('app-message-item') as HTMLElement;
      anchor.getBoundingClientRect = () => ({ top: 40 }) as DOMRect;
      Object.assign(geometry, { scrollHeight: 5000, clientHeight: 500, scrollTop: 100 });
      await scrollEvent();
      fixture.componentRef.setInput('isLoadingOlder', true);
      await fixture.whenStable();
      // Another conversation: the first one's messages go, the page it asked for is dropped.
      fixture.componentRef.setInput('conversationId', 'b');
      fixture.componentRef.setInput('messages', []);
      await fixture.whenStable();
      fixture.componentRef.setInput('messages', page(4, (p) => `Message ${p} of B`));
      fixture.componentRef.setInput('isLoadingOlder', false);
      await fixture.whenStable();
      Object.assign(geometry, { scrollHeight: 3000, scrollTop: 0 });
      FakeResizeObserver.resize(el.querySelector('.thread') as HTMLElement);
      // Taken to its end, as any conversation opened; not moved by where the first one's message had gone.
      expect(geometry.scrollTop).toBe(2500);
    });

    it('opened at a message (a search match): renders it first with the batch below it, scrolls it near the top, marks it, and reads on below', async () => {
      // Message n is laid out at n × 100 px in the thread; the scroller's own top is at 0.
      vi.spyOn(Element.prototype, 'getBoundingClientRect').mockImplementation(function (this: Element) {
        const id = this.getAttribute('data-message-id');
        return { top: id ? Number(id.slice(1)) * 100 - geometry.scrollTop : 0 } as DOMRect;
      });
      Object.assign(geometry, { scrollHeight: 5000, clientHeight: 500, scrollTop: 0 });
      const newer = vi.fn();
      const latest = vi.fn();
      fixture.componentInstance.loadNewer.subscribe(newer);
      fixture.componentInstance.jumpToLatest.subscribe(latest);
      fixture.componentRef.setInput('focusId', 'm30');
      fixture.componentRef.setInput('hasNewer', true);
      fixture.componentRef.setInput('messages', page(50));
      await fixture.whenStable();
      // The match and the batch below it come first (not the page's newest messages, which would be drawn on
      // screen for a frame before the view moved), and the view is put there, not at the list's end.
      expect(renderedIds()).toEqual(Array.from({ length: OPEN_BATCH.messages }, (_, i) => String(30 + i)));
      expect(el.querySelector('.is-focused')?.getAttribute('data-message-id')).toBe('m30');
      expect(geometry.scrollTop).toBe(3000 - 96);
      // Kept there while the older batches render above it and the later ones below (each laid out, as the
      // browser reports).
      for (let task = 0; task < 10 && renderedIds().length < 50; task++) {
        await nextTask();
        FakeResizeObserver.resize(el.querySelector('.thread') as HTMLElement);
      }
      expect(geometry.scrollTop).toBe(3000 - 96);
      // The conversation goes on below: a button for it, and the next page asked for near the bottom.
      expect(Array.from(el.querySelectorAll('button.load-older')).map((b) => b.textContent?.trim())).toContain('Load later messages');
      geometry.scrollTop = 4450;
      await scrollEvent();
      expect(newer).toHaveBeenCalledTimes(1);
      // "Latest" asks for the conversation's end instead of scrolling to this page's.
      (jumpButton() as HTMLButtonElement).click();
      await fixture.whenStable();
      expect(latest).toHaveBeenCalledTimes(1);
      expect(geometry.scrollTop).toBe(4450);
    });

    it('renders a newer page below a match from its oldest message down, a batch per task, and asks for the next once it is all there', async () => {
      const newer = vi.fn();
      fixture.componentInstance.loadNewer.subscribe(newer);
      const all = page(70);
      fixture.componentRef.setInput('hasNewer', true);
      fixture.componentRef.setInput('messages', all.slice(0, 40));
      await fixture.whenStable();
      while (renderedIds().length < 40) await nextTask();
      const loadLater = (): HTMLButtonElement => Array.from(el.querySelectorAll<HTMLButtonElement>('button.load-older')).find((b) => b.textContent?.includes('later')) as HTMLButtonElement;
      expect(loadLater().hasAttribute('aria-disabled')).toBe(false);
      // The next 30 arrive: the first batch at once, below what was there; the rest one batch per task.
      fixture.componentRef.setInput('messages', all);
      await fixture.whenStable();
      const upTo = (n: number) => Array.from({ length: n }, (_, i) => String(i));
      expect(renderedIds()).toEqual(upTo(40 + OPEN_BATCH.messages));
      expect(loadLater().getAttribute('aria-disabled')).toBe('true');
      expect(loadLater().textContent?.trim()).toBe('Loading later messages…');
      // Near the bottom meanwhile: the page after it is not asked for yet (the scroll is handled synchronously).
      Object.assign(geometry, { scrollHeight: 5000, clientHeight: 500, scrollTop: 4450 });
      scroller.dispatchEvent(new Event('scroll'));
      expect(newer).not.toHaveBeenCalled();
      while (renderedIds().length < 70) await nextTask();
      expect(renderedIds()).toEqual(upTo(70));
      expect(loadLater().hasAttribute('aria-disabled')).toBe(false);
      await scrollEvent();
      expect(newer).toHaveBeenCalledTimes(1);
      // A send appended after it (its question and answer) renders at once.
      fixture.componentRef.setInput('hasNewer', false);
      fixture.componentRef.setInput('messages', page(72));
      await fixture.whenStable();
      expect(renderedIds()).toEqual(upTo(72));
    });

    it('renders a message sent while older ones are still to come, and a conversation opened next from its own end', async () => {
      fixture.componentRef.setInput('messages', page(50));
      await fixture.whenStable();
      fixture.componentRef.setInput('messages', page(51));
      await fixture.whenStable();
      expect(renderedIds().at(-1)).toBe('50');
      expect(renderedIds().length).toBeLessThan(51);
      while (renderedIds().length < 51) await nextTask();
      expect(renderedIds()).toEqual(Array.from({ length: 51 }, (_, i) => String(i)));
      // Another conversation (the list empties while it loads): its own newest batch, the first one's timer gone.
      fixture.componentRef.setInput('messages', []);
      await fixture.whenStable();
      fixture.componentRef.setInput('messages', page(30, (p) => `Message ${p} of B`));
      await fixture.whenStable();
      expect(renderedIds()).toEqual(Array.from({ length: OPEN_BATCH.messages }, (_, i) => String(30 - OPEN_BATCH.messages + i)));
      while (renderedIds().length < 30) await nextTask();
      expect(el.querySelector('.thread')?.textContent).not.toContain('Message 49');
    });

    it('keeps the keyboard on Load earlier messages while a page loads, and hands it to the thread once the first message is in', async () => {
      let asked = 0;
      fixture.componentInstance.loadOlder.subscribe(() => asked++);
      document.body.append(el);
      try {
        const all = page(60);
        fixture.componentRef.setInput('messages', all.slice(30));
        fixture.componentRef.setInput('hasOlder', true);
        await fixture.whenStable();
        while (renderedIds().length < 30) await nextTask();
        const button = el.querySelector('button.load-older') as HTMLButtonElement;
        // Reached with Tab: the view goes to the top, which asks for the older page at once.
        button.focus();
        geometry.scrollTop = 0;
        await scrollEvent();
        expect(asked).toBe(1);
        fixture.componentRef.setInput('isLoadingOlder', true);
        await fixture.whenStable();
        // Busy, it keeps the keyboard (disabled, it dropped it to the page's body) and takes no second click.
        expect(button.getAttribute('aria-disabled')).toBe('true');
        expect(button.textContent?.trim()).toBe('Loading earlier messages…');
        expect(document.activeElement).toBe(button);
        button.click();
        expect(asked).toBe(1);
        // The conversation's first page: the button goes, and the keyboard goes on into the thread, not to the body.
        fixture.componentRef.setInput('messages', all);
        fixture.componentRef.setInput('hasOlder', false);
        fixture.componentRef.setInput('isLoadingOlder', false);
        await fixture.whenStable();
        expect(el.querySelector('button.load-older')).toBeNull();
        const thread = el.querySelector('.thread') as HTMLElement;
        expect(document.activeElement).toBe(thread);
        // Focusable only while it has the focus (a click on a message's text must not take it later).
        (document.activeElement as HTMLElement).blur();
        expect(thread.hasAttribute('tabindex')).toBe(false);
      } finally {
        el.remove();
      }
    });

    it('puts a match with nothing below it in view without a "latest" button (nothing to scroll to)', async () => {
      // A two-message conversation opened at its answer: it all fits, the view cannot move.
      Object.assign(geometry, { scrollHeight: 500, clientHeight: 500, scrollTop: 0 });
      fixture.componentRef.setInput('focusId', 'm1');
      fixture.componentRef.setInput('messages', page(2));
      await fixture.whenStable();
      await nextTask();
      expect(el.querySelector('.is-focused')?.getAttribute('data-message-id')).toBe('m1');
      expect(jumpButton()).toBeNull();
    });

    it('opened at a match while the answer below it streams: held there until the reader scrolls, wherever the view is moved meanwhile', async () => {
      // Message n is laid out at n × 100 px in the thread (100 px tall); the scroller's own top is at 0.
      vi.spyOn(Element.prototype, 'getBoundingClientRect').mockImplementation(function (this: Element) {
        const id = this.getAttribute('data-message-id');
        const top = id ? Number(id.slice(1)) * 100 - geometry.scrollTop : 0;
        return { top, bottom: id ? top + 100 : 0 } as DOMRect;
      });
      const thread = (): HTMLElement => el.querySelector('.thread') as HTMLElement;
      Object.assign(geometry, { scrollHeight: 600, clientHeight: 500, scrollTop: 0 });
      fixture.componentRef.setInput('focusId', 'm2');
      fixture.componentRef.setInput('streamingId', 'm5');
      fixture.componentRef.setInput('messages', page(6));
      await fixture.whenStable();
      for (let task = 0; task < 3; task++) {
        await nextTask();
        FakeResizeObserver.resize(thread());
      }
      expect(jumpButton()).not.toBeNull();
      // Put near the top as far as the short page lets the view move (its bottom).
      expect(geometry.scrollTop).toBe(100);
      // Moved past the match, to the bottom, by no reader (on a loaded machine the older messages put in above and the
      // replayed answer laid out below landed in one frame, and the browser's scroll anchoring went on with the answer):
      // the answer that goes on is not followed, and the match is put back where it was.
      geometry.scrollHeight = 800;
      geometry.scrollTop = 300;
      await scrollEvent();
      geometry.scrollHeight = 1200;
      FakeResizeObserver.resize(thread());
      await fixture.whenStable();
      expect(geometry.scrollTop).toBe(100);
      expect(jumpButton()).not.toBeNull();
      // The reader scrolls on to the end: from there the answer is followed.
      scroller.dispatchEvent(new WheelEvent('wheel', { deltaY: 400 }));
      geometry.scrollTop = 700;
      await scrollEvent();
      geometry.scrollHeight = 1500;
      FakeResizeObserver.resize(thread());
      await fixture.whenStable();
      expect(geometry.scrollTop).toBe(1000);
      expect(jumpButton()).toBeNull();
    });
  });
});
