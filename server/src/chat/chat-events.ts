import type { ErrorCode } from '../common/error-code.js';
import type { LlmProviderName } from '../config/app-config.js';
import type { Observable } from 'rxjs';

/**
 * The events of one assistant message's stream, exactly as docs/api-contract.md describes them.
 * Each is sent as `id: <seq>\ndata: <json>\n\n`, seq counting from 0 per assistant message.
 */
export interface StartEvent {
  type: 'start';
  conversation_id: string;
  user_message_id: string;
  message_id: string;
  provider: LlmProviderName;
  model: string;
  replaces_message_id?: string;
  /**
   * Resume only: the server no longer holds this answer's events (its instance restarted, or the
   * replay window passed), so it cannot continue after the client's Last-Event-ID. The events
   * that follow restate the answer from its start: the client replaces what it has.
   */
  from_start?: true;
  /** Present when the question's files did not all fit in the model's context (ContextNotice). */
  context?: ContextNotice;
  finished: false;
}

/**
 * What of the question's files the model did not see whole, told to the user with the answer (the model is told
 * too, by a marker in the file's block), and how many of the conversation's first messages it did not see. Each
 * field is there only when not empty.
 */
export interface ContextNotice {
  /** Cut short: the model saw their beginning. */
  truncated_files?: string[];
  /** Left out: not even their beginning fit. */
  omitted_files?: string[];
  /** Messages at the conversation's start the model did not see: they no longer fit in its context. */
  earlier_messages_omitted?: number;
}

/** The notice for a prompt's cut and left-out files and earlier messages; undefined when the model sees them all. */
export function contextNotice(files: { truncatedFiles: string[]; omittedFiles: string[] }, earlierOmitted = 0): ContextNotice | undefined {
  if (files.truncatedFiles.length === 0 && files.omittedFiles.length === 0 && earlierOmitted === 0) return undefined;
  return {
    ...(files.truncatedFiles.length > 0 ? { truncated_files: files.truncatedFiles } : {}),
    ...(files.omittedFiles.length > 0 ? { omitted_files: files.omittedFiles } : {}),
    ...(earlierOmitted > 0 ? { earlier_messages_omitted: earlierOmitted } : {}),
  };
}

export interface TokenEvent {
  type: 'token';
  token: string;
  finished: false;
  timestamp: string;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface DoneEvent {
  type: 'done';
  finished: true;
  message_id: string;
  status: 'complete' | 'stopped';
  finish_reason: string | null;
  usage: Usage;
}

export interface ErrorEvent {
  type: 'error';
  finished: true;
  message_id: string;
  status: 'failed' | 'interrupted';
  code: ErrorCode;
  /** A friendly text (design document 13.2); never stored as the message's content. */
  error: string;
  /** Only when the model's server refused the request outright (UpstreamRefusal); stored as the message's finish_reason. */
  finish_reason?: string;
}

export type ChatEvent = StartEvent | TokenEvent | DoneEvent | ErrorEvent;
export type FinalEvent = DoneEvent | ErrorEvent;

/** An event with its per-message sequence number (the SSE `id`). */
export interface SequencedEvent {
  id: number;
  event: ChatEvent;
}

/**
 * A generation's events as the registry gives them to follow. `after(id)` is the same stream from the
 * event after `id` on, without going through those before it: the SSE writer takes a paused reader
 * up again with it (a replay resubscribed from its start was skipped event by event, quadratic in
 * a long answer's length).
 */
export type FollowedEvents = Observable<SequencedEvent> & { after?: (afterId: number) => Observable<SequencedEvent> };

export function isFinal(event: ChatEvent): event is FinalEvent {
  return event.finished;
}
