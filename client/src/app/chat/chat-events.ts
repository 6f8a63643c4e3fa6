import type { ContextNotice, MessageStatus } from '../core/api-models';

/** The events of a chat stream (docs/api-contract.md, "Chat"). */
export interface StartEvent {
  type: 'start';
  conversation_id: string;
  user_message_id: string;
  message_id: string;
  provider: string;
  model: string;
  replaces_message_id?: string;
  /** Resume only: the events that follow restate the answer from its start (the server no longer held the ones after our Last-Event-ID). */
  from_start?: true;
  /** The question's files the model did not see whole (too big for its context). */
  context?: ContextNotice;
  finished: false;
}

export interface TokenEvent {
  type: 'token';
  token: string;
  finished: false;
  timestamp?: string;
}

export interface DoneEvent {
  type: 'done';
  finished: true;
  message_id: string;
  status: Extract<MessageStatus, 'complete' | 'stopped'>;
  finish_reason: string | null;
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

export interface ErrorEvent {
  type: 'error';
  finished: true;
  message_id: string;
  status: Extract<MessageStatus, 'failed' | 'interrupted'>;
  code: string;
  error: string;
  /** With OPENAI_ERROR when the model's server refused the request outright: `context_length_exceeded`, `content_filter` or `upstream_refused`. */
  finish_reason?: string;
}

export type ChatEvent = StartEvent | TokenEvent | DoneEvent | ErrorEvent;

/** A chat event with the SSE id it arrived with, so a reader can resume after it. */
export type StreamedEvent = ChatEvent & { eventId?: string };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/** Narrows one `data:` payload to a ChatEvent; anything unknown or malformed yields undefined. */
export function parseChatEvent(data: string): ChatEvent | undefined {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return undefined;
  }
  if (!isRecord(value)) return undefined;
  switch (value['type']) {
    case 'start':
      return typeof value['message_id'] === 'string' && typeof value['conversation_id'] === 'string'
        ? (value as unknown as StartEvent) : undefined;
    case 'token':
      return typeof value['token'] === 'string' ? (value as unknown as TokenEvent) : undefined;
    case 'done':
      return typeof value['message_id'] === 'string' ? (value as unknown as DoneEvent) : undefined;
    case 'error':
      return typeof value['message_id'] === 'string'
        ? ({ code: 'INTERNAL_ERROR', error: 'The answer failed.', ...value } as unknown as ErrorEvent) : undefined;
    default:
      return undefined;
  }
}
