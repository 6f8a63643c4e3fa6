import { Injectable, inject } from '@angular/core';
import type { Token, Tokens } from 'marked';
import { BoundedLexer } from './bounded-lexer';
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

const STATUS_NOTES: Partial<Record<Message['status'], string>> = {
  streaming: 'still being written when exported',
  stopped: 'stopped',
  interrupted: 'interrupted',
  failed: 'failed',
};

/** A Markdown document of the conversation: its title, then each message under who wrote it. */
export function toMarkdown(conversation: Conversation, messages: readonly Message[], exportedAt: Date): string {
  const title = conversation.title?.trim() || 'Conversation';
  const parts = [`# ${escapeHeading(title)}`, `_Exported from Parley on ${exportedAt.toISOString()}._`];
  for (const m of shownMessages(messages)) {
    const who = m.role === 'user' ? 'You' : m.role === 'assistant' ? `Assistant${m.model_name ? ` (${m.model_name})` : ''}` : 'System';
    const note = STATUS_NOTES[m.status];
    parts.push(`## ${escapeHeading(who)}${note ? ` _(${note})_` : ''}`);
    if (m.files.length > 0) parts.push(`Attached: ${m.files.map((f) => `\`${f.filename.replace(/`/g, "'")}\``).join(', ')}`);
    const body = m.content.trim();
    // The user's words as typed (the app shows them as text, not Markdown); an answer's Markdown kept from
    // leaking into what follows (a stopped answer ends inside its code block).
    if (body) parts.push(m.role === 'user' ? asTyped(m.content) : closeOpenFence(demoteHeadings(body)));
    else if (m.role === 'assistant') parts.push('_(no text)_');
  }
  return `${parts.join('\n\n')}\n`;
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

/** A fence no run of backticks in `text` can close. */
function fenceFor(text: string): string {
  let longest = 0;
  for (const run of text.match(/`+/g) ?? []) longest = Math.max(longest, run.length);
  return '`'.repeat(Math.max(3, longest + 1));
}

/** Text as typed, in a code block of its own: headings, lists or fences in it stay text. */
function asTyped(text: string): string {
  const fence = fenceFor(text);
  // Not /\n+$/: tried from every newline of a run that text follows, it is quadratic in the run.
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === 10) end--;
  return `${fence}text\n${text.slice(0, end)}\n${fence}`;
}

/**
 * An answer's headings two levels down (at most h6), Markdown and HTML alike: the document's
 * level-2 headings are its messages, and an answer's own `## You` (a model can be made to write
 * one, by a prompt hidden in an attached file, say) cannot pass for the next question. Only the
 * answer's top level: headings in code, quotes or lists stay as written.
 */
export function demoteHeadings(markdown: string): string {
  let tokens: Token[];
  try {
    // Bounded as for display (bounded-lexer.ts): marked alone overflowed the stack on deep nesting and read some
    // link-like text in cubic time. Text it still cannot read goes in as typed, so no heading of it passes.
    tokens = new BoundedLexer({ gfm: true }).lex(markdown);
  } catch {
    return asTyped(markdown);
  }
  return tokens.map((token) => {
    if (token.type === 'heading') {
      const { depth, text, raw } = token as Tokens.Heading;
      return `${'#'.repeat(Math.min(6, depth + 2))} ${text.replace(/\s*\n\s*/g, ' ')}${/\n*$/.exec(raw)?.[0] ?? ''}`;
    }
    if (token.type === 'html') {
      return token.raw.replace(/<(\/?)h([1-6])(?=[\s/>])/gi, (_tag, slash: string, level: string) => `<${slash}h${Math.min(6, Number(level) + 2)}`);
    }
    return token.raw;
  }).join('');
}

/** Markdown whose last code block is left open (CommonMark fences) gets its closing fence. */
export function closeOpenFence(markdown: string): string {
  let open: string | null = null;
  for (const line of markdown.split('\n')) {
    const fence = /^ {0,3}(`{3,}|~{3,})(.*)$/.exec(line);
    if (!fence) continue;
    const [, marks, rest] = fence;
    if (open === null) {
      // A backtick fence's info string cannot hold a backtick (that line is inline code, not a fence).
      if (!(marks[0] === '`' && rest.includes('`'))) open = marks;
    } else if (marks[0] === open[0] && marks.length >= open.length && rest.trim() === '') {
      open = null;
    }
  }
  return open === null ? markdown : `${markdown}\n${open}`;
}

/** A heading's text kept on one line, its leading marks not read as Markdown. */
function escapeHeading(text: string): string {
  return text.replace(/\s+/g, ' ').replace(/^([#>*+-])/, '\\$1');
}

/** Reads a whole conversation (every page of its messages) and turns it into a file. */
@Injectable({ providedIn: 'root' })
export class ConversationExporter {
  private readonly api = inject(ApiClient);

  async export(conversationId: string, format: ExportFormat, now = new Date()): Promise<ExportFile> {
    const { conversation, messages } = await this.readAll(conversationId);
    return format === 'markdown'
      ? { name: exportFileName(conversation.title, 'md'), type: 'text/markdown;charset=utf-8', text: toMarkdown(conversation, messages, now) }
      : { name: exportFileName(conversation.title, 'json'), type: 'application/json;charset=utf-8', text: toJson(conversation, messages, now) };
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
