import type { Routes, UrlMatchResult, UrlSegment } from '@angular/router';
import { ChatView } from './chat/chat-view';

/**
 * `/` and `/c/:id` are one route, so Angular keeps the same ChatView (and the focus in the composer)
 * when a new chat gets its URL, instead of destroying and recreating it.
 */
export function chatMatcher(segments: UrlSegment[]): UrlMatchResult | null {
  if (segments.length === 0) return { consumed: [] };
  const [first, second] = segments;
  if (segments.length === 2 && first?.path === 'c' && second) return { consumed: segments, posParams: { id: second } };
  return null;
}

export const routes: Routes = [
  { matcher: chatMatcher, component: ChatView, title: 'Parley' },
  { path: '**', redirectTo: '' },
];
