import { ChangeDetectionStrategy, Component, input } from '@angular/core';
import { type ComponentFixture, TestBed } from '@angular/core/testing';
import { Router, provideRouter, withComponentInputBinding } from '@angular/router';
import { chatMatcher } from '../app.routes';
import { ChatConfigStore } from '../chat/chat-config.store';
import { ChatStore } from '../chat/chat.store';
import { DraftStore } from '../chat/draft-store';
import { ApiClient } from '../core/api-client';
import { NEW_CHAT_DRAFT } from '../files/attachments.store';
import { ConversationsStore } from '../conversations/conversations.store';
import { AppShell } from './app-shell';
import { ToastService } from './toast.service';

/** The chat page as far as focus goes: its composer, absent on a "not found" page. */
@Component({
  selector: 'app-fake-chat',
  changeDetection: ChangeDetectionStrategy.OnPush,
  template: `@if (id() !== 'gone') { <textarea id="message-input" aria-label="Message"></textarea> }`,
})
class FakeChat {
  readonly id = input<string | undefined>(undefined);
}

function json(body: unknown): Response {
  return new Response(JSON.stringify(body), { status: 200, headers: { 'Content-Type': 'application/json' } });
}

describe('AppShell', () => {
  let fixture: ComponentFixture<AppShell>;
  let el: HTMLElement;
  let router: Router;
  const now = new Date().toISOString();

  beforeEach(async () => {
    vi.stubGlobal('fetch', vi.fn((url: string) => {
      if (url === '/api/v1/chat/config') {
        return Promise.resolve(json({ provider: 'offline', model: 'demo', is_demo: true, max_message_chars: 32000, max_upload_bytes: 1, allowed_extensions: [] }));
      }
      if (url.startsWith('/api/v1/conversations?')) {
        const conversation = { id: 'a', session_id: 's', title: 'Trip', created_at: now, updated_at: now, is_active: true, message_count: 2 };
        return Promise.resolve(json({ conversations: [conversation], total: 1, limit: 20, offset: 0 }));
      }
      return Promise.resolve(json({}));
    }));
    TestBed.configureTestingModule({ providers: [provideRouter([{ matcher: chatMatcher, component: FakeChat }], withComponentInputBinding())] });
    router = TestBed.inject(Router);
    fixture = TestBed.createComponent(AppShell);
    el = fixture.nativeElement as HTMLElement;
    document.body.append(el);
    await router.navigateByUrl('/');
    await vi.waitFor(async () => {
      await fixture.whenStable();
      expect(el.querySelector('a.conv-link')).not.toBeNull();
    });
  });

  afterEach(() => {
    el.remove();
    vi.unstubAllGlobals();
    sessionStorage.clear();
    localStorage.clear();
  });

  const composer = (): Element | null => el.querySelector('#message-input');
  const newChat = (): HTMLButtonElement => el.querySelector('.sidebar .new-chat') as HTMLButtonElement;

  async function settle(): Promise<void> {
    await fixture.whenStable();
    await new Promise((resolve) => setTimeout(resolve));
    await fixture.whenStable();
  }

  it('keeps the open conversation\'s title in the header while a search filters it out of the sidebar', async () => {
    const id = '5b0f3a3e-8c1e-4d7a-9a53-2f4c1e0b9d11';
    const conversation = { id, session_id: 's', title: 'Trip', created_at: now, updated_at: now, is_active: true, message_count: 2 };
    vi.stubGlobal('fetch', vi.fn((url: string) => {
      if (url.startsWith('/api/v1/conversations?')) {
        const listed = url.includes('&q=') ? [] : [conversation];
        return Promise.resolve(json({ conversations: listed, total: listed.length, limit: 20, offset: 0 }));
      }
      // Started on this page: its row was read before its title was written.
      if (url.startsWith(`/api/v1/conversations/${id}`)) return Promise.resolve(json({ conversation: { ...conversation, title: null }, messages: [], has_more: false }));
      return Promise.resolve(json({}));
    }));
    const conversations = TestBed.inject(ConversationsStore);
    await conversations.refresh();
    await TestBed.inject(ChatStore).open(id);
    await settle();
    const header = (): string | undefined => el.querySelector('h1.topbar-title')?.textContent?.trim();
    expect(header()).toBe('Trip');
    await conversations.setQuery('Beta');
    await settle();
    expect(conversations.conversations()).toEqual([]);
    expect(header()).toBe('Trip');
  });

  it('leaves the focus alone when the page loads on what may be a phone (its keyboard would open over the page)', () => {
    expect(composer()).not.toBeNull();
    expect(document.activeElement).not.toBe(composer());
  });

  it('gives the composer the keyboard when the demo note is hidden (its button goes with it)', async () => {
    await TestBed.inject(ChatConfigStore).load();
    await settle();
    const hide = el.querySelector('button[aria-label="Hide the demo note"]') as HTMLButtonElement;
    hide.focus();
    hide.click();
    await settle();
    expect(el.querySelector('.banner-demo')).toBeNull();
    expect(document.activeElement).toBe(composer());
  });

  it('gives the page\'s title the keyboard when the demo note is hidden on a page without a composer', async () => {
    await TestBed.inject(ChatConfigStore).load();
    await router.navigateByUrl('/c/gone');
    await settle();
    const hide = el.querySelector('button[aria-label="Hide the demo note"]') as HTMLButtonElement;
    hide.focus();
    hide.click();
    await settle();
    expect(document.activeElement).toBe(el.querySelector('h1'));
  });

  it('gives the composer the keyboard once a conversation is opened from the list, or the same one chosen again', async () => {
    const link = el.querySelector('a.conv-link') as HTMLAnchorElement;
    link.focus();
    link.click();
    await settle();
    expect(router.url).toBe('/c/a');
    expect(document.activeElement).toBe(composer());
    link.focus();
    link.click(); // the page already shown: no navigation at all
    await settle();
    expect(document.activeElement).toBe(composer());
  });

  it('gives the composer the keyboard after New chat, also from a page without one', async () => {
    await router.navigateByUrl('/c/gone');
    await settle();
    expect(composer()).toBeNull();
    newChat().focus();
    newChat().click();
    await settle();
    expect(router.url).toBe('/');
    expect(document.activeElement).toBe(composer());
    // A conversation chosen from a page without a composer: focus waits for the page that has one.
    await router.navigateByUrl('/c/gone');
    await settle();
    (el.querySelector('a.conv-link') as HTMLAnchorElement).click();
    await settle();
    expect(router.url).toBe('/c/a');
    expect(document.activeElement).toBe(composer());
  });

  it('takes back a toast that said the browser was offline once it is online again', async () => {
    const toasts = TestBed.inject(ToastService);
    const setOnline = (isOnline: boolean): void => {
      vi.spyOn(navigator, 'onLine', 'get').mockReturnValue(isOnline);
      window.dispatchEvent(new Event(isOnline ? 'online' : 'offline'));
    };
    try {
      setOnline(false);
      await settle();
      toasts.error('You appear to be offline. Check your connection and try again.', { key: 'offline' });
      toasts.error('Something else went wrong.');
      await settle();
      expect(el.querySelectorAll('.toast')).toHaveLength(2);
      setOnline(true);
      await settle();
      expect(Array.from(el.querySelectorAll('.toast-text')).map((t) => t.textContent)).toEqual(['Something else went wrong.']);
    } finally {
      vi.restoreAllMocks();
    }
  });

  it('does not close the page for a link opened in a new tab', async () => {
    const link = el.querySelector('a.conv-link') as HTMLAnchorElement;
    link.focus();
    link.addEventListener('click', (event) => event.preventDefault()); // the browser's new tab, which jsdom cannot open
    link.dispatchEvent(new MouseEvent('click', { bubbles: true, cancelable: true, ctrlKey: true }));
    await settle();
    expect(router.url).toBe('/');
    expect(document.activeElement).toBe(link);
  });
});

describe('AppShell when the session ended under the page', () => {
  let fixture: ComponentFixture<AppShell> | undefined;
  const NO_SESSION = { error: { code: 'UNAUTHORIZED', message: 'Invalid or expired session' } };

  function start(fetchImpl: (url: string, init?: RequestInit) => Response): void {
    vi.stubGlobal('fetch', vi.fn((url: string, init?: RequestInit) => Promise.resolve(fetchImpl(url, init))));
    TestBed.configureTestingModule({ providers: [provideRouter([{ matcher: chatMatcher, component: FakeChat }], withComponentInputBinding())] });
    fixture = TestBed.createComponent(AppShell);
  }

  afterEach(() => {
    fixture?.destroy();
    vi.unstubAllGlobals();
    vi.restoreAllMocks();
    sessionStorage.clear();
    localStorage.clear();
  });

  it('starts the app again when a request finds the session ended, noting the open conversation for the restart', async () => {
    // The real one navigates the page, which jsdom cannot.
    const shell: { startOver: () => void } = AppShell.prototype as unknown as { startOver: () => void };
    const startOver = vi.spyOn(shell, 'startOver').mockImplementation(() => undefined);
    localStorage.setItem('parley.session', '1');
    start((url, init) => {
      const route = `${init?.method ?? 'GET'} ${url}`;
      if (route === 'POST /api/v1/sessions') return new Response('{}', { status: 201 });
      if (route === 'GET /api/v1/sessions/current') return json({ session: { id: 'new' } });
      return new Response(JSON.stringify(NO_SESSION), { status: 401 });
    });
    const api = TestBed.inject(ApiClient);
    await api.bootstrap();
    await expect(api.get('/api/v1/conversations/old-1')).rejects.toMatchObject({ code: 'SESSION_ENDED' });
    await vi.waitFor(async () => {
      await fixture?.whenStable();
      expect(startOver).toHaveBeenCalledTimes(1);
    });
    expect(sessionStorage.getItem('parley.sessionEnded')).toBe('');
  });

  it('after the restart, says why the conversations are gone and keeps only the text being written, as the new chat\'s draft', async () => {
    sessionStorage.setItem('parley.sessionEnded', 'old-1');
    sessionStorage.setItem('parley.drafts', JSON.stringify([['old-1', 'half a thought'], ['old-2', 'another'], [NEW_CHAT_DRAFT, 'older']]));
    start(() => json({}));
    fixture?.detectChanges();
    await fixture?.whenStable();
    const el = fixture?.nativeElement as HTMLElement;
    expect(el.querySelector('.toast[role="status"] .toast-text')?.textContent).toContain('Your earlier session ended');
    expect(sessionStorage.getItem('parley.sessionEnded')).toBeNull();
    expect(JSON.parse(sessionStorage.getItem('parley.drafts') ?? '[]')).toEqual([[NEW_CHAT_DRAFT, 'half a thought']]);
    expect(TestBed.inject(DraftStore).get(NEW_CHAT_DRAFT)).toBe('half a thought');
  });
});

describe('AppShell on a computer', () => {
  /** A fine pointer and a screen wider than a phone's; no phone layout. */
  const media = (query: string): object => ({
    matches: query === '(pointer: fine) and (min-width: 768px)', media: query, addEventListener: () => undefined,
  });

  beforeEach(() => {
    vi.stubGlobal('matchMedia', vi.fn(media));
    vi.stubGlobal('fetch', vi.fn(() => Promise.resolve(json({ conversations: [], total: 0, limit: 20, offset: 0 }))));
    TestBed.configureTestingModule({ providers: [provideRouter([{ matcher: chatMatcher, component: FakeChat }], withComponentInputBinding())] });
  });

  afterEach(() => { vi.unstubAllGlobals(); });

  async function load(url: string): Promise<HTMLElement> {
    const fixture = TestBed.createComponent(AppShell);
    const el = fixture.nativeElement as HTMLElement;
    document.body.append(el);
    await TestBed.inject(Router).navigateByUrl(url);
    await fixture.whenStable();
    await new Promise((resolve) => setTimeout(resolve));
    return el;
  }

  it('gives the composer the keyboard when the page loads, at a conversation\'s address too', async () => {
    for (const url of ['/', '/c/a']) {
      (document.activeElement as HTMLElement | null)?.blur();
      const el = await load(url);
      try {
        expect(document.activeElement, url).toBe(el.querySelector('#message-input'));
      } finally {
        el.remove();
      }
      TestBed.resetTestingModule();
      TestBed.configureTestingModule({ providers: [provideRouter([{ matcher: chatMatcher, component: FakeChat }], withComponentInputBinding())] });
    }
  });

  it('leaves the keyboard where the person put it before the page was ready', async () => {
    const search = document.createElement('input');
    document.body.append(search);
    search.focus();
    const el = await load('/');
    try {
      expect(document.activeElement).toBe(search);
    } finally {
      el.remove();
      search.remove();
    }
  });
});

describe('AppShell on a phone', () => {
  /** The phone breakpoint's media query, its matching set by the test. */
  const phone = Object.assign(new EventTarget(), { matches: true, media: '(max-width: 767px)' });
  const widen = (matches: boolean): void => {
    phone.matches = matches;
    phone.dispatchEvent(Object.assign(new Event('change'), { matches }));
  };

  beforeEach(() => {
    phone.matches = true;
    vi.stubGlobal('matchMedia', vi.fn(() => phone));
    vi.stubGlobal('fetch', vi.fn(() => Promise.resolve(json({ conversations: [], total: 0, limit: 20, offset: 0 }))));
    TestBed.configureTestingModule({ providers: [provideRouter([{ matcher: chatMatcher, component: FakeChat }], withComponentInputBinding())] });
  });

  afterEach(() => { vi.unstubAllGlobals(); });

  async function openDrawer(): Promise<{ fixture: ComponentFixture<AppShell>; el: HTMLElement }> {
    const fixture = TestBed.createComponent(AppShell);
    const el = fixture.nativeElement as HTMLElement;
    document.body.append(el);
    await TestBed.inject(Router).navigateByUrl('/');
    await fixture.whenStable();
    (el.querySelector('.menu-btn') as HTMLButtonElement).click();
    await fixture.whenStable();
    return { fixture, el };
  }
  const escape = (target: Element): void => {
    target.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true, cancelable: true }));
  };

  it('closes the drawer on Esc, but not on the Esc that closes a dialog opened from it (as the dialog\'s Cancel does not)', async () => {
    const { fixture, el } = await openDrawer();
    try {
      const isOpen = (): boolean => el.querySelector('.layout')?.classList.contains('sidebar-open') ?? false;
      escape(el.querySelector('dialog .btn-ghost') as HTMLButtonElement);
      await fixture.whenStable();
      expect(isOpen()).toBe(true);
      escape(el.querySelector('.sidebar .new-chat') as HTMLButtonElement);
      await fixture.whenStable();
      expect(isOpen()).toBe(false);
    } finally {
      el.remove();
    }
  });

  it('gives the page\'s title the keyboard once a conversation is chosen in the drawer (it fell to the page\'s body as the drawer closed)', async () => {
    const now = new Date().toISOString();
    const conversation = { id: 'a', session_id: 's', title: 'Trip', created_at: now, updated_at: now, is_active: true, message_count: 2 };
    vi.stubGlobal('fetch', vi.fn((url: string) => Promise.resolve(json(url.startsWith('/api/v1/conversations?')
      ? { conversations: [conversation], total: 1, limit: 20, offset: 0 } : {}))));
    const { fixture, el } = await openDrawer();
    try {
      await vi.waitFor(async () => {
        await fixture.whenStable();
        expect(el.querySelector('a.conv-link')).not.toBeNull();
      });
      const link = el.querySelector('a.conv-link') as HTMLAnchorElement;
      link.focus();
      link.click();
      await vi.waitFor(async () => {
        await fixture.whenStable();
        expect(document.activeElement).toBe(el.querySelector('h1'));
      });
      expect(TestBed.inject(Router).url).toBe('/c/a');
      // Not the composer: on a touch screen it would open the on-screen keyboard over the conversation.
      expect(el.querySelector('.layout')?.classList.contains('sidebar-open')).toBe(false);
    } finally {
      el.remove();
    }
  });

  it('closes the drawer when the screen leaves the phone layout, so it does not come back over the page', async () => {
    const fixture = TestBed.createComponent(AppShell);
    const el = fixture.nativeElement as HTMLElement;
    await fixture.whenStable();
    (el.querySelector('.menu-btn') as HTMLButtonElement).click();
    await fixture.whenStable();
    expect(el.querySelector('.layout')?.classList.contains('sidebar-open')).toBe(true);
    widen(false);
    await fixture.whenStable();
    widen(true);
    await fixture.whenStable();
    expect(el.querySelector('.layout')?.classList.contains('sidebar-open')).toBe(false);
    expect(el.querySelector('.menu-btn')?.getAttribute('aria-expanded')).toBe('false');
  });
});
