import { DestroyRef, Injectable, inject } from '@angular/core';
import { type Observable, Subject } from 'rxjs';

const CHANNEL_NAME = 'parley-conversations';

/**
 * What a tab tells this browser's other tabs about a conversation: ids and titles, never message text. With no
 * `change` (all that earlier versions send), its messages changed there: an answer started (the first one makes a
 * new conversation) or ended.
 */
export type TabNews =
  | { conversationId: string; change?: undefined }
  | { conversationId: string; change: 'deleted' }
  | { conversationId: string; change: 'renamed'; title: string; updatedAt: string };

/** The news in a message on the channel, or null for anything else. */
function tabNewsOf(data: unknown): TabNews | null {
  if (typeof data !== 'object' || data === null) return null;
  const fields = data as Record<string, unknown>;
  const { conversationId, change, title, updatedAt } = fields;
  if (typeof conversationId !== 'string') return null;
  if (change === undefined) return { conversationId };
  if (change === 'deleted') return { conversationId, change };
  if (change === 'renamed' && typeof title === 'string' && typeof updatedAt === 'string') return { conversationId, change, title, updatedAt };
  return null;
}

/**
 * The tabs of this browser share the session cookie, so they list the same conversations: each tells the others
 * what it changed, over one BroadcastChannel per tab (the sidebar and the open conversation both listen). Without
 * BroadcastChannel nothing is told, and a tab catches up when it is shown again or focused (ChatStore.catchUp).
 */
@Injectable({ providedIn: 'root' })
export class TabsChannel {
  private readonly channel = typeof BroadcastChannel === 'undefined' ? null : new BroadcastChannel(CHANNEL_NAME);
  private readonly heard = new Subject<TabNews>();
  /** What the other tabs said (never what this one told). */
  readonly news: Observable<TabNews> = this.heard.asObservable();

  constructor() {
    const channel = this.channel;
    if (!channel) return;
    channel.onmessage = (event: MessageEvent<unknown>) => {
      const news = tabNewsOf(event.data);
      if (news) this.heard.next(news);
    };
    inject(DestroyRef).onDestroy(() => channel.close());
  }

  tell(news: TabNews): void {
    this.channel?.postMessage(news);
  }
}
