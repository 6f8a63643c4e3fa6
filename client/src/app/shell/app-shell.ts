import { ChangeDetectionStrategy, Component, type ElementRef, computed, effect, inject, signal, viewChild } from '@angular/core';
import { Title } from '@angular/platform-browser';
import { Router, RouterOutlet } from '@angular/router';
import { ChatConfigStore } from '../chat/chat-config.store';
import { ChatStore } from '../chat/chat.store';
import { ConversationList } from '../conversations/conversation-list';
import { ConversationsStore } from '../conversations/conversations.store';
import { Icon } from './icon';
import { NetworkStatus } from './network-status';
import { ThemeService } from './theme.service';
import { ToastList } from './toast-list';

/** The frame: sidebar of conversations, the open chat, banners and toasts. */
@Component({
  selector: 'app-root',
  changeDetection: ChangeDetectionStrategy.OnPush,
  imports: [ConversationList, Icon, RouterOutlet, ToastList],
  host: { '(document:keydown.escape)': 'closeSidebar()' },
  templateUrl: './app-shell.html',
})
export class AppShell {
  protected readonly theme = inject(ThemeService);
  protected readonly network = inject(NetworkStatus);
  protected readonly config = inject(ChatConfigStore);
  protected readonly chat = inject(ChatStore);
  private readonly conversations = inject(ConversationsStore);
  private readonly router = inject(Router);
  protected readonly isSidebarOpen = signal(false);
  protected readonly title = computed(() => {
    const id = this.chat.conversationId();
    if (!id) return 'New chat';
    return this.conversations.conversations().find((c) => c.id === id)?.title?.trim() || 'New conversation';
  });

  private readonly menuButton = viewChild.required<ElementRef<HTMLButtonElement>>('menuButton');

  constructor() {
    const title = inject(Title);
    effect(() => title.setTitle(this.chat.conversationId() ? `${this.title()} · Parley` : 'Parley'));
  }

  protected toggleSidebar(): void {
    this.isSidebarOpen.update((open) => !open);
    // On a phone the drawer covers the page: move focus into it, as a dialog would.
    if (this.isSidebarOpen()) setTimeout(() => document.querySelector<HTMLElement>('.sidebar .new-chat')?.focus());
  }

  protected closeSidebar(): void {
    if (!this.isSidebarOpen()) return;
    this.isSidebarOpen.set(false);
    if (getComputedStyle(this.menuButton().nativeElement).display !== 'none') this.menuButton().nativeElement.focus();
  }

  protected newChat(): void {
    this.closeSidebar();
    void this.router.navigate(['/']);
  }

  protected skipToInput(): void {
    document.getElementById('message-input')?.focus();
  }
}
