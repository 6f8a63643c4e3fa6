import { Injectable, inject } from '@angular/core';
import { API_BASE, ApiClient } from '../core/api-client';
import type { Conversation, ConversationDetail, Message, MessagePage } from '../core/api-models';

export type ExportFormat = 'markdown' | 'json';

/** Messages read per request while exporting (the API's largest page). */
const EXPORT_PAGE = 200;
/** At most this many pages (40,000 messages): a conversation that never ends is a bug, not a reason to loop. */
const MAX_PAGES = 200;

/** What a finished export hands to the browser. */
export interface ExportFile {
  name: string;
  type: string;
  text: string;
}

/**
 * The messages as the conversation shows them: of two answers in a row to one question (a
 * regeneration stopped before it replaced the first), only the later one, as in the thread and in
 * the model's context.
 */
export function shownMessages(messages: readonly Message[]): Message[] {
  return messages.filter((m, i) => !(m.role === 'assistant' && messages[i + 1]?.role === 'assistant'));
}

/** The conversation and its messages as the API gives them, under a format name a reader can check. */
export function toJson(conversation: Conversation, messages: readonly Message[], exportedAt: Date): string {
  return `${JSON.stringify({ format: 'parley.conversation.v1', exported_at: exportedAt.toISOString(), conversation, messages }, null, 2)}\n`;
}

/**
 * A file name from the title: letters (any script), digits, spaces, dots, dashes and underscores
 * only, so no path, device name or control character reaches the browser's save dialog.
 */
export function exportFileName(title: string | null, extension: string): string {
  const base = (title ?? '').normalize('NFC').replace(/[^\p{L}\p{N} ._-]+/gu, ' ').replace(/\s+/g, ' ').trim()
    .replace(/^[.\s]+|[.\s]+$/g, '');
  const cut = Array.from(base).slice(0, 80).join('').trim();
  return `${cut || 'conversation'}.${extension}`;
}

/** Reads a whole conversation (every page of its messages) and turns it into a file. */
@Injectable({ providedIn: 'root' })
export class ConversationExporter {
  private readonly api = inject(ApiClient);

  async export(conversationId: string, format: ExportFormat, now = new Date()): Promise<ExportFile> {
    const { conversation, messages } = await this.readAll(conversationId);
    if (format === 'json') return { name: exportFileName(conversation.title, 'json'), type: 'application/json;charset=utf-8', text: toJson(conversation, messages, now) };
    // The Markdown writer (and the rewriting of answers it needs) is its own chunk, fetched on the first export.
    const { toMarkdown } = await import('./markdown-export');
    return { name: exportFileName(conversation.title, 'md'), type: 'text/markdown;charset=utf-8', text: toMarkdown(conversation, messages, now) };
  }

  private async readAll(id: string): Promise<{ conversation: Conversation; messages: Message[] }> {
    const path = `${API_BASE}/conversations/${encodeURIComponent(id)}`;
    const detail = await this.api.get<ConversationDetail>(`${path}?limit=${EXPORT_PAGE}`);
    let messages = detail.messages;
    let hasMore = detail.has_more;
    for (let page = 1; hasMore && messages.length > 0 && page < MAX_PAGES; page++) {
      const older = await this.api.get<MessagePage>(`${path}/messages?before=${messages[0].position}&limit=${EXPORT_PAGE}`);
      const known = new Set(messages.map((m) => m.id));
      messages = [...older.messages.filter((m) => !known.has(m.id)), ...messages];
      hasMore = older.has_more && older.messages.length > 0;
    }
    return { conversation: detail.conversation, messages };
  }
}

/** Hands a file to the browser as a download. */
export function saveFile(file: ExportFile, doc: Document = document): void {
  const url = URL.createObjectURL(new Blob([file.text], { type: file.type }));
  const link = doc.createElement('a');
  link.href = url;
  link.download = file.name;
  link.rel = 'noopener';
  link.style.display = 'none';
  doc.body.append(link);
  link.click();
  link.remove();
  // Revoked after the click has been handled: some browsers read the URL asynchronously.
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
