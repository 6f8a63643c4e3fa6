import { type ComponentFixture, TestBed } from '@angular/core/testing';
import { provideRouter } from '@angular/router';
import type { Conversation } from '../core/api-models';
import { ToastService } from '../shell/toast.service';
import { ConversationList } from './conversation-list';

function conversation(id: string, title: string, updatedAt: string): Conversation {
  return { id, session_id: 's', title, created_at: updatedAt, updated_at: updatedAt, is_active: true, message_count: 2 };
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

describe('ConversationList', () => {
  let fixture: ComponentFixture<ConversationList>;
  let el: HTMLElement;
  let fetchMock: ReturnType<typeof vi.fn>;
  const now = new Date().toISOString();
  const old = new Date(Date.now() - 40 * 86_400_000).toISOString();

  beforeEach(async () => {
    // jsdom has no modal dialogs.
    HTMLDialogElement.prototype.showModal ??= function (this: HTMLDialogElement) { this.open = true; };
    HTMLDialogElement.prototype.close ??= function (this: HTMLDialogElement) { this.open = false; };
    fetchMock = vi.fn((url: string, init?: RequestInit) => {
      if (url.startsWith('/api/v1/conversations?')) {
        return Promise.resolve(json({ conversations: [conversation('a', 'Newest', now), conversation('b', 'Oldest', old)], total: 2, limit: 20, offset: 0 }));
      }
      if (init?.method === 'PATCH') {
        const { title } = JSON.parse(init.body as string) as { title: string };
        return Promise.resolve(json({ conversation: conversation('a', title, now) }));
      }
      if (init?.method === 'DELETE') return Promise.resolve(new Response(null, { status: 204 }));
      return Promise.resolve(json({ error: { code: 'NOT_FOUND', message: 'no' } }, 404));
    });
    vi.stubGlobal('fetch', fetchMock);
    TestBed.configureTestingModule({ providers: [provideRouter([])] });
    fixture = TestBed.createComponent(ConversationList);
    el = fixture.nativeElement as HTMLElement;
    fixture.componentRef.setInput('activeId', 'a');
    await vi.waitFor(() => expect(fetchMock).toHaveBeenCalled());
    await fixture.whenStable();
  });

  afterEach(() => vi.unstubAllGlobals());

  /** Opens the inline rename of "Newest", types `value` and presses Enter. */
  async function renameNewest(value: string): Promise<void> {
    (el.querySelector('button[aria-label="Rename Newest"]') as HTMLButtonElement).click();
    await fixture.whenStable();
    const input = el.querySelector('input[aria-label="Conversation title"]') as HTMLInputElement;
    input.value = value;
    input.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter' }));
  }

  it('is a navigation landmark listing conversations newest first, grouped by day', () => {
    const nav = el.querySelector('nav[aria-label="Conversations"]');
    expect(nav).not.toBeNull();
    expect(Array.from(nav?.querySelectorAll('a.conv-link') ?? []).map((a) => a.textContent?.trim())).toEqual(['Newest', 'Oldest']);
    expect(Array.from(el.querySelectorAll('.conv-group')).map((h) => h.textContent)).toEqual(['Today', 'Older']);
    expect(el.querySelector('a[aria-current="page"]')?.textContent?.trim()).toBe('Newest');
    expect(Array.from(el.querySelectorAll('button')).some((b) => b.textContent?.trim() === 'New chat')).toBe(true);
  });

  it('lets each title, and what is typed in the list, go the way of its own script (a Hebrew title is cut at its end)', async () => {
    expect(Array.from(el.querySelectorAll('.conv-title')).map((t) => t.getAttribute('dir'))).toEqual(['auto', 'auto']);
    expect(el.querySelector('input[aria-label="Search conversations"]')?.getAttribute('dir')).toBe('auto');
    (el.querySelector('button[aria-label="Rename Newest"]') as HTMLButtonElement).click();
    await fixture.whenStable();
    expect(el.querySelector('input[aria-label="Conversation title"]')?.getAttribute('dir')).toBe('auto');
  });

  it('renames inline: Enter saves', async () => {
    await renameNewest('Trip to Lisbon');
    await vi.waitFor(() => expect(fetchMock.mock.calls.some(([, init]) => (init as RequestInit | undefined)?.method === 'PATCH')).toBe(true));
    await fixture.whenStable();
    expect(el.querySelector('a.conv-link')?.textContent?.trim()).toBe('Trip to Lisbon');
  });

  it('keeps the name and says why when a rename is blank', async () => {
    await renameNewest('   ');
    await fixture.whenStable();
    expect(fetchMock.mock.calls.some(([, init]) => (init as RequestInit | undefined)?.method === 'PATCH')).toBe(false);
    expect(el.querySelector('a.conv-link')?.textContent?.trim()).toBe('Newest');
    expect(TestBed.inject(ToastService).toasts().map((t) => t.text)).toEqual(['A title cannot be empty; the conversation keeps its name.']);
  });

  it('asks before deleting', async () => {
    (el.querySelector('button[aria-label="Delete Oldest"]') as HTMLButtonElement).click();
    await fixture.whenStable();
    const dialog = el.querySelector('dialog') as HTMLDialogElement;
    expect(dialog.open).toBe(true);
    expect(dialog.textContent).toContain('“Oldest” and all its messages will be deleted');
    expect(fetchMock.mock.calls.some(([, init]) => (init as RequestInit | undefined)?.method === 'DELETE')).toBe(false);
    (Array.from(dialog.querySelectorAll('button')).find((b) => b.textContent?.trim() === 'Delete') as HTMLButtonElement).click();
    await vi.waitFor(() => expect(el.querySelectorAll('a.conv-link')).toHaveLength(1));
  });

  /** Types `text` into the search box and lets the typing pause pass (fake timers on). */
  async function searchFor(text: string): Promise<void> {
    const box = el.querySelector('input[type="search"]') as HTMLInputElement;
    box.value = text;
    box.dispatchEvent(new Event('input'));
    await vi.advanceTimersByTimeAsync(300);
  }

  it('shows, under a conversation found by a message, that message\'s line with the match marked', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      fetchMock.mockImplementation((url: string) => {
        if (url.includes('q=belem')) {
          return Promise.resolve(json({
            conversations: [
              { ...conversation('b', 'Oldest', old), match: { message_id: 'm', role: 'assistant', snippet: { text: '…try the PASTÉIS de Belém near', start: 9, length: 16 } } },
              conversation('c', 'Belém trip', old),
            ],
            total: 2, limit: 20, offset: 0,
          }));
        }
        return Promise.resolve(json({ conversations: [], total: 0, limit: 20, offset: 0 }));
      });
      await searchFor('belem');
    } finally {
      vi.useRealTimers();
    }
    await fixture.whenStable();
    const links = Array.from(el.querySelectorAll<HTMLAnchorElement>('a.conv-link'));
    expect(links.map((a) => a.querySelector('.conv-title')?.textContent)).toEqual(['Oldest', 'Belém trip']);
    const snippet = links[0].querySelector('.conv-snippet')!;
    expect(snippet.querySelector('mark')?.textContent).toBe('PASTÉIS de Belém');
    expect(snippet.textContent).toBe('Answer: …try the PASTÉIS de Belém near');
    // Found by its title: nothing under it.
    expect(links[1].querySelector('.conv-snippet')).toBeNull();
    // The match's text is data, never markup.
    expect(snippet.innerHTML).not.toContain('<script');
  });

  it('keeps the match of a snippet in its two lines: the text before it is cut to a few words, a long word too', async () => {
    const token = 'Averyveryverylongtokenwithoutanyspaces';
    const snippets = [
      // The server's 40 characters of context: one word, and words.
      { text: `…${token}zebracorn in the forest`, start: 1 + token.length, length: 9 },
      { text: '…the lazy dog and then finds a hidden zebracorn in the forest', start: 38, length: 9 },
      { text: 'Short lead: zebracorn', start: 12, length: 9 },
    ];
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      fetchMock.mockImplementation((url: string) => Promise.resolve(json(url.includes('q=zebracorn')
        ? { conversations: snippets.map((snippet, i) => ({ ...conversation(`z${i}`, `Found ${i}`, old), match: { message_id: `m${i}`, role: 'assistant', snippet } })), total: 3, limit: 20, offset: 0 }
        : { conversations: [], total: 0, limit: 20, offset: 0 })));
      await searchFor('zebracorn');
    } finally {
      vi.useRealTimers();
    }
    await fixture.whenStable();
    const shown = Array.from(el.querySelectorAll('.conv-snippet')).map((snippet) => {
      const mark = snippet.querySelector('mark')!;
      const before = Array.from(snippet.childNodes).filter((n) => n.nodeType === Node.TEXT_NODE && n.compareDocumentPosition(mark) & Node.DOCUMENT_POSITION_FOLLOWING)
        .map((n) => n.textContent).join('');
      return { before, hit: mark.textContent };
    });
    // An ellipsis held to what follows (a word joiner), then at most 16 characters, from a word's start where one is near.
    expect(shown).toEqual([
      { before: `…\u2060${token.slice(-16)}`, hit: 'zebracorn' },
      { before: '…\u2060finds a hidden ', hit: 'zebracorn' },
      { before: 'Short lead: ', hit: 'zebracorn' },
    ]);
  });

  it('keeps a key typed while the search it paused for is applied (the box is the reader\'s)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const box = el.querySelector('input[type="search"]') as HTMLInputElement;
    try {
      fetchMock.mockImplementation(() => Promise.resolve(json({ conversations: [], total: 0, limit: 20, offset: 0 })));
      box.value = 'lisbon';
      box.dispatchEvent(new Event('input'));
      vi.advanceTimersByTime(300);
      // A key pressed before the list reacts to the search it asked for.
      box.value = 'lisbon t';
    } finally {
      vi.useRealTimers();
    }
    await fixture.whenStable();
    expect(box.value).toBe('lisbon t');
  });

  it('says so when no conversation contains the search', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      fetchMock.mockImplementation(() => Promise.resolve(json({ conversations: [], total: 0, limit: 20, offset: 0 })));
      await searchFor('zebra');
    } finally {
      vi.useRealTimers();
    }
    await fixture.whenStable();
    await vi.waitFor(() => expect(el.querySelector('.conv-empty')?.textContent).toBe('No conversation contains “zebra”.'));
  });

  describe('from the keyboard', () => {
    const key = (target: Element, k: string, init: KeyboardEventInit = {}): KeyboardEvent => {
      const event = new KeyboardEvent('keydown', { key: k, bubbles: true, cancelable: true, ...init });
      target.dispatchEvent(event);
      return event;
    };
    const link = (title: string): HTMLAnchorElement => Array.from(el.querySelectorAll<HTMLAnchorElement>('a.conv-link')).find((a) => a.textContent?.trim() === title)!;

    it('is one Tab stop per conversation: the buttons are out of the Tab order but named and clickable', () => {
      const buttons = Array.from(el.querySelectorAll<HTMLButtonElement>('.conv-actions button'));
      expect(buttons.map((b) => b.getAttribute('aria-label'))).toEqual(['Rename Newest', 'Delete Newest', 'Rename Oldest', 'Delete Oldest']);
      expect(buttons.every((b) => b.tabIndex === -1)).toBe(true);
      expect(link('Newest').tabIndex).toBe(0);
      expect(link('Newest').getAttribute('aria-keyshortcuts')).toBe('F2 Delete');
      expect(el.querySelector('nav')?.getAttribute('aria-describedby')).toBe('conv-keys');
      expect(el.querySelector('#conv-keys')?.textContent).toContain('arrows');
    });

    it('moves between conversations with Up, Down, Home and End, and not past either end', () => {
      link('Newest').focus();
      expect(key(link('Newest'), 'ArrowDown').defaultPrevented).toBe(true);
      expect(document.activeElement).toBe(link('Oldest'));
      key(link('Oldest'), 'ArrowDown');
      expect(document.activeElement).toBe(link('Oldest'));
      key(link('Oldest'), 'Home');
      expect(document.activeElement).toBe(link('Newest'));
      key(link('Newest'), 'ArrowUp');
      expect(document.activeElement).toBe(link('Newest'));
      key(link('Newest'), 'End');
      expect(document.activeElement).toBe(link('Oldest'));
      // A modified arrow is the browser's (or the reader's), not ours.
      expect(key(link('Oldest'), 'ArrowUp', { altKey: true }).defaultPrevented).toBe(false);
      expect(document.activeElement).toBe(link('Oldest'));
    });

    it('reaches the row\'s buttons with Right and Left; Esc goes back to the link; Down from a button goes to the next row', () => {
      link('Newest').focus();
      key(link('Newest'), 'ArrowRight');
      expect(document.activeElement?.getAttribute('aria-label')).toBe('Rename Newest');
      key(document.activeElement!, 'ArrowRight');
      expect(document.activeElement?.getAttribute('aria-label')).toBe('Delete Newest');
      key(document.activeElement!, 'ArrowRight');
      expect(document.activeElement?.getAttribute('aria-label')).toBe('Delete Newest');
      key(document.activeElement!, 'ArrowLeft');
      expect(document.activeElement?.getAttribute('aria-label')).toBe('Rename Newest');
      const escape = key(document.activeElement!, 'Escape');
      expect(escape.defaultPrevented).toBe(true);
      expect(document.activeElement).toBe(link('Newest'));
      // Esc on the link itself is left alone (the drawer closes on it).
      expect(key(link('Newest'), 'Escape').defaultPrevented).toBe(false);
      key(link('Newest'), 'ArrowRight');
      key(document.activeElement!, 'ArrowDown');
      expect(document.activeElement).toBe(link('Oldest'));
    });

    it('leaves Enter and Esc to an input method while it composes: the rename stays open, the search keeps its text', async () => {
      key(link('Newest'), 'F2');
      await fixture.whenStable();
      await vi.waitFor(() => expect(document.activeElement?.getAttribute('aria-label')).toBe('Conversation title'));
      const title = document.activeElement as HTMLInputElement;
      title.value = 'ひらがな';
      for (const init of [{ isComposing: true }, { keyCode: 229 }]) {
        expect(key(title, 'Enter', init).defaultPrevented).toBe(false);
        key(title, 'Escape', init);
      }
      await fixture.whenStable();
      expect(el.querySelector('input[aria-label="Conversation title"]')).toBe(title);
      expect(fetchMock.mock.calls.some(([, init]) => (init as RequestInit | undefined)?.method === 'PATCH')).toBe(false);
      key(title, 'Escape');
      await fixture.whenStable();
      expect(el.querySelector('input[aria-label="Conversation title"]')).toBeNull();
      const search = el.querySelector('input[aria-label="Search conversations"]') as HTMLInputElement;
      search.value = 'にほん';
      key(search, 'Escape', { isComposing: true });
      expect(search.value).toBe('にほん');
    });

    it('Esc ends a rename or empties the search, and only that: the phone\'s drawer around the list stays open', async () => {
      const reachedPage: Event[] = [];
      const onPage = (event: KeyboardEvent): void => {
        if (event.key === 'Escape') reachedPage.push(event);
      };
      document.addEventListener('keydown', onPage);
      try {
        key(link('Newest'), 'F2');
        await fixture.whenStable();
        await vi.waitFor(() => expect(document.activeElement?.getAttribute('aria-label')).toBe('Conversation title'));
        key(document.activeElement!, 'Escape');
        await fixture.whenStable();
        expect(el.querySelector('input[aria-label="Conversation title"]')).toBeNull();
        expect(reachedPage).toHaveLength(0);
        await vi.waitFor(() => expect(document.activeElement).toBe(link('Newest')));
        const search = el.querySelector('input[aria-label="Search conversations"]') as HTMLInputElement;
        search.value = 'zeb';
        key(search, 'Escape');
        expect(search.value).toBe('');
        expect(reachedPage).toHaveLength(0);
        // In an empty box Esc is the page's again (it closes the drawer).
        key(search, 'Escape');
        expect(reachedPage).toHaveLength(1);
      } finally {
        document.removeEventListener('keydown', onPage);
      }
    });

    it('F2 renames and Delete asks before deleting', async () => {
      key(link('Newest'), 'F2');
      await fixture.whenStable();
      await vi.waitFor(() => expect(document.activeElement?.getAttribute('aria-label')).toBe('Conversation title'));
      key(document.activeElement!, 'Escape');
      await fixture.whenStable();
      key(link('Oldest'), 'Delete');
      await fixture.whenStable();
      expect((el.querySelector('dialog') as HTMLDialogElement).open).toBe(true);
      expect(el.querySelector('#confirm-text')?.textContent).toContain('“Oldest”');
      expect(fetchMock.mock.calls.some(([, init]) => (init as RequestInit | undefined)?.method === 'DELETE')).toBe(false);
      // On a button, F2 and Delete do nothing of their own.
      (el.querySelector('dialog') as HTMLDialogElement).close();
      const rename = el.querySelector<HTMLButtonElement>('button[aria-label="Rename Newest"]')!;
      expect(key(rename, 'Delete').defaultPrevented).toBe(false);
    });
  });
});

describe('ConversationList when the list cannot be loaded', () => {
  let fetchMock: ReturnType<typeof vi.fn>;

  beforeEach(() => {
    fetchMock = vi.fn(() => Promise.resolve(new Response(
      JSON.stringify({ error: { code: 'SERVICE_UNAVAILABLE', message: 'The service is temporarily unavailable; please retry shortly.' } }),
      { status: 503, headers: { 'Content-Type': 'application/json', 'Retry-After': '5' } })));
    vi.stubGlobal('fetch', fetchMock);
    TestBed.configureTestingModule({ providers: [provideRouter([])] });
  });

  afterEach(() => vi.unstubAllGlobals());

  it('says so in the list with a Retry button (no toast), and shows the conversations once a retry loads them', async () => {
    const fixture = TestBed.createComponent(ConversationList);
    const el = fixture.nativeElement as HTMLElement;
    await vi.waitFor(() => expect(fetchMock).toHaveBeenCalledTimes(1));
    await fixture.whenStable();
    const alert = el.querySelector('.conv-error[role="alert"]');
    expect(alert?.textContent).toContain('Conversations could not be loaded. Parley\'s server is briefly unavailable. Try again in 5 s.');
    expect(alert?.textContent).not.toContain('model');
    expect(el.querySelector('.conv-empty')).toBeNull();
    expect(TestBed.inject(ToastService).toasts()).toEqual([]);
    fetchMock.mockResolvedValueOnce(new Response(JSON.stringify({ conversations: [conversation('a', 'Back', new Date().toISOString())], total: 1, limit: 20, offset: 0 }),
      { status: 200, headers: { 'Content-Type': 'application/json' } }));
    const retry = el.querySelector('button[aria-label="Retry loading conversations"]') as HTMLButtonElement;
    expect(retry.textContent?.trim()).toBe('Retry');
    retry.click();
    await vi.waitFor(() => expect(fetchMock).toHaveBeenCalledTimes(2));
    await fixture.whenStable();
    expect(el.querySelector('.conv-error')).toBeNull();
    expect(el.querySelector('a.conv-link')?.textContent?.trim()).toBe('Back');
    fixture.destroy();
  });
});

describe('ConversationList paging', () => {
  /** Like the browser's: observing reports the target's state at once (asynchronously), then only its changes. */
  class FakeIntersectionObserver {
    constructor(private readonly callback: IntersectionObserverCallback) {}
    observe(target: Element): void {
      setTimeout(() => this.callback([{ target, isIntersecting: true } as IntersectionObserverEntry], this as unknown as IntersectionObserver));
    }
    unobserve(): void { /* nothing pending to cancel */ }
    disconnect(): void { /* idem */ }
  }

  const now = new Date().toISOString();
  let offsets: number[];

  function serve(total: number, failAt?: number): void {
    offsets = [];
    vi.stubGlobal('fetch', vi.fn((url: string) => {
      const params = new URL(url, 'http://x').searchParams;
      const offset = Number(params.get('offset'));
      const limit = Number(params.get('limit'));
      offsets.push(offset);
      if (offset === failAt) return Promise.resolve(json({ error: { code: 'INTERNAL_ERROR', message: 'down' } }, 500));
      const page = Array.from({ length: Math.max(0, Math.min(limit, total - offset)) }, (_, i) => conversation(`c${offset + i}`, `Chat ${offset + i}`, now));
      return Promise.resolve(json({ conversations: page, total, limit, offset }));
    }));
  }

  async function showList(): Promise<HTMLElement> {
    vi.stubGlobal('IntersectionObserver', FakeIntersectionObserver);
    TestBed.configureTestingModule({ providers: [provideRouter([])] });
    const fixture = TestBed.createComponent(ConversationList);
    await fixture.whenStable();
    return fixture.nativeElement as HTMLElement;
  }

  afterEach(() => vi.unstubAllGlobals());

  it('goes on loading pages while the end of the list stays in view, and stops at the last', async () => {
    serve(45);
    const el = await showList();
    await vi.waitFor(() => expect(el.querySelectorAll('a.conv-link')).toHaveLength(45));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(offsets).toEqual([0, 20, 40]);
  });

  it('does not ask again and again for a page that failed (Load more is there for that)', async () => {
    serve(45, 20);
    const el = await showList();
    await vi.waitFor(() => expect(offsets).toContain(20));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const asked = offsets.length;
    await new Promise((resolve) => setTimeout(resolve, 200));
    // The first report of the observer and the check after the first page may each ask once.
    expect(offsets.length).toBe(asked);
    expect(offsets.filter((offset) => offset === 20).length).toBeLessThanOrEqual(2);
    expect(el.querySelector('button.load-more')).not.toBeNull();
  });
});
