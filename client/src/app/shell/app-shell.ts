import {
  ChangeDetectionStrategy, Component, type ElementRef, Injector, afterNextRender, computed, effect, inject, linkedSignal, signal, untracked, viewChild,
} from '@angular/core';
import { Title } from '@angular/platform-browser';
import { type Event as RouterEvent, NavigationCancel, NavigationEnd, NavigationError, NavigationSkipped, Router, RouterOutlet } from '@angular/router';
import { filter, take } from 'rxjs';
import { ChatConfigStore } from '../chat/chat-config.store';
import { ChatStore } from '../chat/chat.store';
import { DraftStore } from '../chat/draft-store';
import { ExportMenu } from '../chat/export-menu';
import { ConversationList } from '../conversations/conversation-list';
import { ConversationsStore } from '../conversations/conversations.store';
import { NEW_CHAT_DRAFT } from '../files/attachments.store';
import { ApiClient } from '../core/api-client';
import { friendlyMessage } from '../core/api-error';
import { isComposing } from '../core/ime';
import { isDesktopLike, isTouchFirst } from '../core/touch';
import { AccessGateForm } from './access-gate-form';
import { Announcer } from './announcer';
import { Icon } from './icon';
import { NetworkStatus } from './network-status';
import { ThemeService } from './theme.service';
import { ToastList } from './toast-list';
import { ToastService } from './toast.service';

/** Keep in step with the `@media (max-width: 767px)` block of styles.css. */
const PHONE_QUERY = '(max-width: 767px)';

/** The frame: sidebar of conversations, the open chat, banners and toasts; or the access gate's form until a session exists. */
const DEMO_NOTE_KEY = 'parley.demoNote';

/** The end of a navigation, whichever: done, cancelled, failed, or skipped (the page asked for is the one shown). */
function isNavigationOver(event: RouterEvent): boolean {
  return event instanceof NavigationEnd || event instanceof NavigationCancel || event instanceof NavigationError
    || event instanceof NavigationSkipped;
}

/** Set (to the conversation then open, or '') when the app starts again because the session ended. */
const SESSION_ENDED_KEY = 'parley.sessionEnded';

function readSession(key: string): string | null {
  try {
    return sessionStorage.getItem(key);
  } catch {
    return null;
  }
}

function writeSession(key: string, value: string | null): void {
  try {
    if (value === null) sessionStorage.removeItem(key);
    else sessionStorage.setItem(key, value);
  } catch {
    // Storage refused (private mode): the note after the restart is not shown.
  }
}

@Component({
  selector: 'app-root',
  changeDetection: ChangeDetectionStrategy.OnPush,
  imports: [AccessGateForm, ConversationList, ExportMenu, Icon, RouterOutlet, ToastList],
  host: { '(document:keydown.escape)': 'closeSidebarOnEscape($event)' },
  templateUrl: './app-shell.html',
})
export class AppShell {
  protected readonly theme = inject(ThemeService);
  protected readonly network = inject(NetworkStatus);
  protected readonly config = inject(ChatConfigStore);
  protected readonly chat = inject(ChatStore);
  protected readonly api = inject(ApiClient);
  protected readonly announcer = inject(Announcer);
  private readonly toasts = inject(ToastService);
  private readonly injector = inject(Injector);
  private readonly conversations = inject(ConversationsStore);
  private readonly router = inject(Router);
  private readonly drafts = inject(DraftStore);
  protected readonly isSidebarOpen = signal(false);
  /** The demo note, hidden by the reader for this tab's session (on a phone it took ~100 px of the screen). */
  protected readonly isDemoNoteHidden = signal(readSession(DEMO_NOTE_KEY) === 'hidden');
  /** The layout where the sidebar is a drawer over the page (the stylesheet's phone breakpoint). */
  private readonly isPhone = signal(false);
  /**
   * An open drawer is modal: the rest of the page is inert (out of the tab order and of the
   * accessibility tree), so focus stays in the drawer until it closes, as in a dialog.
   */
  protected readonly isDrawerModal = computed(() => this.isSidebarOpen() && this.isPhone());
  /**
   * The open conversation's title as last seen in the sidebar's list: a search that filters it out of the list
   * (or a page of the list without it) keeps it, where the header read "New conversation" for one started here.
   */
  private readonly listedTitle = linkedSignal<{ id: string | null; listed: string | null | undefined }, string | null | undefined>({
    source: () => {
      const id = this.chat.conversationId();
      return { id, listed: id ? this.conversations.conversations().find((c) => c.id === id)?.title : undefined };
    },
    computation: (now, before) => (now.listed !== undefined || before?.source.id !== now.id ? now.listed : before.value),
  });
  protected readonly title = computed(() => {
    const id = this.chat.conversationId();
    if (!id) return 'New chat';
    if (this.chat.isMissing()) return 'Conversation not found';
    // Read at every change of the list (a linked signal remembers only what was read).
    const remembered = this.listedTitle();
    const listed = this.conversations.conversations().find((c) => c.id === id);
    const title = listed ? listed.title : this.chat.conversationTitle() ?? remembered;
    return title?.trim() || 'New conversation';
  });

  // Not required: the gate form replaces the layout, menu button included.
  private readonly menuButton = viewChild<ElementRef<HTMLButtonElement>>('menuButton');
  private readonly pageTitle = viewChild<ElementRef<HTMLElement>>('pageTitle');
  private readonly eraseDialog = viewChild<ElementRef<HTMLDialogElement>>('eraseDialog');
  protected readonly isErasing = signal(false);

  constructor() {
    const title = inject(Title);
    effect(() => title.setTitle(this.chat.conversationId() ? `${this.title()} · Parley` : 'Parley'));
    const phone = typeof window.matchMedia === 'function' ? window.matchMedia(PHONE_QUERY) : undefined;
    this.isPhone.set(phone?.matches ?? false);
    phone?.addEventListener('change', (e) => {
      this.isPhone.set(e.matches);
      // The drawer belongs to the phone layout: left open when the screen widened (a rotation), it came
      // back over the page, the page inert, once the screen narrowed again.
      if (!e.matches) this.isSidebarOpen.set(false);
    });
    // The page loaded (the app, or a conversation's link opened): on a computer the keyboard starts in the composer,
    // where the person writes, as it does after choosing a conversation (onNavigated). Not on a phone or a touch
    // screen, where it would open the on-screen keyboard; and not when the person has already gone elsewhere.
    const focusOnLoad = (): void => {
      afterNextRender(() => {
        const active = document.activeElement;
        if (isDesktopLike() && (active === null || active === document.body)) this.skipToInput();
      }, { injector: this.injector });
    };
    if (this.router.navigated) focusOnLoad();
    else this.router.events.pipe(filter(isNavigationOver), take(1)).subscribe(focusOnLoad);
    this.followSessionEnd();
    // Back online: a toast that said the browser was offline is stale (the banner above the chat has gone already).
    let wasOnline = this.network.isOnline();
    effect(() => {
      const isOnline = this.network.isOnline();
      if (isOnline && !wasOnline) untracked(() => this.toasts.dismissKey('offline'));
      wasOnline = isOnline;
    });
  }

  protected hideDemoNote(): void {
    this.isDemoNoteHidden.set(true);
    try {
      sessionStorage.setItem(DEMO_NOTE_KEY, 'hidden');
    } catch {
      // Storage refused (private mode): hidden for this page only.
    }
    // Its button goes with the note: the keyboard goes to the composer rather than falling to the page's body; to the
    // page's title on a touch screen (the composer would open the on-screen keyboard) or a page without a composer.
    const composer = isTouchFirst() ? null : document.getElementById('message-input');
    (composer ?? this.pageTitle()?.nativeElement)?.focus();
  }

  /** Erasing leads to the access form on this deployment (ACCESS_TOKEN): told in the dialog. */
  protected readonly eraseAsksToken = signal(false);

  protected askErase(): void {
    this.eraseDialog()?.nativeElement.showModal();
    // On a gated deployment the new session needs the access token again: the dialog says so before anything is erased.
    this.api.isAccessTokenRequired().then((required) => this.eraseAsksToken.set(required), () => undefined);
  }

  protected cancelErase(): void {
    this.eraseDialog()?.nativeElement.close();
  }

  /** Erases the session with everything in it, then starts the app again on a new one (nothing of the old is left in memory). */
  protected async confirmErase(): Promise<void> {
    this.isErasing.set(true);
    try {
      await this.api.eraseSession();
      // Unsent text is the session's data too (kept in this tab's storage).
      this.drafts.forgetAll();
      this.startOver();
    } catch (error: unknown) {
      this.toasts.error(friendlyMessage(error));
    } finally {
      this.eraseDialog()?.nativeElement.close();
      this.isErasing.set(false);
    }
  }

  /**
   * The session ended under this page (expired, erased in another tab, another sign-in) and a new one
   * was created: the app starts again on it, as after an erase, so nothing of the old session stays on
   * screen or in memory; the text being written goes on as the new chat's draft, and a note says why
   * the conversations are gone.
   */
  private followSessionEnd(): void {
    const endedIn = readSession(SESSION_ENDED_KEY);
    if (endedIn !== null) {
      writeSession(SESSION_ENDED_KEY, null);
      this.drafts.keepOnly(endedIn || NEW_CHAT_DRAFT, NEW_CHAT_DRAFT);
      this.toasts.show('Your earlier session ended (it expired, was erased, or the sign-in changed), so its conversations '
        + 'are no longer shown here. This is a new, empty session.', { key: 'session-ended', durationMs: 0 });
    }
    effect(() => {
      if (!this.api.sessionEnded()) return;
      // After this render: the failed send has put its text back in the composer's draft by then.
      afterNextRender(() => {
        writeSession(SESSION_ENDED_KEY, untracked(() => this.chat.conversationId()) ?? '');
        this.drafts.flush();
        this.startOver();
      }, { injector: this.injector });
    });
  }

  /** A fresh start at the app's root: nothing of the erased session stays in memory. */
  private startOver(): void {
    window.location.assign('/');
  }

  protected toggleSidebar(): void {
    this.isSidebarOpen.update((open) => !open);
    // On a phone the drawer covers the page: move focus into it, as a dialog would.
    if (this.isSidebarOpen()) setTimeout(() => document.querySelector<HTMLElement>('.sidebar .new-chat')?.focus());
  }

  /**
   * Esc closes the drawer, unless it was used for something else first: a dialog opened from the drawer (delete,
   * erase) closes alone, as its Cancel does (the drawer went with it, and the keyboard to the menu button).
   */
  protected closeSidebarOnEscape(event: Event): void {
    if (event.defaultPrevented || isComposing(event) || (event.target instanceof Element && event.target.closest('dialog'))) return;
    this.closeSidebar();
  }

  protected closeSidebar(restoresFocus = true): void {
    if (!this.isSidebarOpen()) return;
    this.isSidebarOpen.set(false);
    if (!restoresFocus) return;
    // Once the page is no longer inert (next render), focus goes back to the button that opened the drawer.
    afterNextRender(() => {
      const menuButton = this.menuButton()?.nativeElement;
      if (menuButton && getComputedStyle(menuButton).display !== 'none') menuButton.focus();
    }, { injector: this.injector });
  }

  protected onUnlocked(): void {
    // Whatever failed while the gate was shut ("needs an access token") is stale now.
    this.toasts.clear();
    this.config.load().catch((error: unknown) => this.toasts.error(friendlyMessage(error), { key: 'config' }));
    // The focused Continue button is gone with the form: start where the person will type.
    afterNextRender(() => this.skipToInput(), { injector: this.injector });
  }

  /**
   * A conversation or New chat was chosen (in the sidebar, or the phone's top bar): the keyboard goes to the
   * composer, where the person goes on, rather than staying in the list (or falling to the page's body from
   * the closed drawer). Only then: a page loaded or a conversation opened by URL keeps the browser's focus.
   */
  protected onNavigated(): void {
    const wasDrawerOpen = this.isDrawerModal();
    this.closeSidebar(false);
    // On a touch screen focusing the composer would open the on-screen keyboard over the conversation just opened.
    // Chosen in the phone's drawer, the focus fell to the page's body as the drawer closed (a screen reader started
    // again from the page's top): the page's title takes it. Elsewhere it stays on the link in the sidebar.
    const isTouch = isTouchFirst();
    if (isTouch && !wasDrawerOpen) return;
    const focusPage = (): void => {
      afterNextRender(() => {
        if (isTouch) this.pageTitle()?.nativeElement.focus({ preventScroll: true });
        else this.skipToInput();
      }, { injector: this.injector });
    };
    // The composer is absent from a "not found" page until the navigation away from it ends (and the title names
    // the page only then).
    if (this.router.currentNavigation() === null) focusPage();
    else this.router.events.pipe(filter(isNavigationOver), take(1)).subscribe(focusPage);
  }

  protected newChat(): void {
    void this.router.navigate(['/']);
    this.onNavigated();
  }

  protected reload(): void {
    location.reload();
  }

  protected skipToInput(): void {
    document.getElementById('message-input')?.focus();
  }
}
