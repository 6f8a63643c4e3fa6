import { Injectable, inject } from '@angular/core';
import { Observable } from 'rxjs';
import { API_BASE, ApiClient } from '../core/api-client';
import { ApiError } from '../core/api-error';
import type { ChatConfig, Feedback, FeedbackResult } from '../core/api-models';
import { type StreamedEvent, parseChatEvent } from './chat-events';
import { SseParser, readSse } from './sse-parser';

export interface SendMessage {
  message: string;
  conversation_id?: string;
  file_ids?: string[];
}

/** The body ended before a final event: the connection dropped, the answer may still be running. */
export class StreamCutError extends ApiError {
  constructor(readonly lastEventId: string | undefined) {
    super(0, 'STREAM_CUT', 'The connection to the answer was lost.');
  }
}

/**
 * The chat endpoints. Streams are cold Observables over the fetch body: subscribing opens the request,
 * unsubscribing aborts it, which only detaches this tab: the answer goes on on the server (Stop is `stop()`).
 */
@Injectable({ providedIn: 'root' })
export class ChatApi {
  private readonly api = inject(ApiClient);

  config(): Promise<ChatConfig> {
    return this.api.get<ChatConfig>(`${API_BASE}/chat/config`);
  }

  send(body: SendMessage, idempotencyKey: string): Observable<StreamedEvent> {
    return this.stream(`${API_BASE}/chat`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream', 'Idempotency-Key': idempotencyKey },
      body: JSON.stringify(body),
    });
  }

  /** A new answer to the last user message; with `edit`, that message (named, so a stale view cannot edit another) is first edited. */
  regenerate(conversationId: string, edit?: { text: string; messageId: string }): Observable<StreamedEvent> {
    return this.stream(`${API_BASE}/chat/regenerate`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream' },
      body: JSON.stringify({ conversation_id: conversationId, ...(edit ? { message: edit.text, message_id: edit.messageId } : {}) }),
    });
  }

  /** Re-attaches to a running (or finished) answer; events after `lastEventId` only. */
  resume(messageId: string, lastEventId?: string): Observable<StreamedEvent> {
    const headers: Record<string, string> = { Accept: 'text/event-stream' };
    if (lastEventId !== undefined) headers['Last-Event-ID'] = lastEventId;
    return this.stream(`${API_BASE}/chat/streams/${encodeURIComponent(messageId)}`, { method: 'GET', headers }, lastEventId);
  }

  stop(messageId: string): Promise<{ message_id: string; status: string }> {
    return this.api.post(`${API_BASE}/chat/streams/${encodeURIComponent(messageId)}/stop`, {});
  }

  feedback(messageId: string, feedback: Feedback, comment?: string): Promise<FeedbackResult> {
    const body: Record<string, unknown> = { message_id: messageId, feedback };
    if (comment) body['comment'] = comment;
    return this.api.post<FeedbackResult>(`${API_BASE}/chat/feedback`, body);
  }

  private stream(url: string, init: RequestInit, lastEventId?: string): Observable<StreamedEvent> {
    return new Observable<StreamedEvent>((subscriber) => {
      const abort = new AbortController();
      const parser = new SseParser(lastEventId);
      let isFinished = false;
      const run = async (): Promise<void> => {
        const res = await this.api.request(url, { ...init, signal: abort.signal });
        if (!res.body) throw new StreamCutError(lastEventId);
        await readSse(res.body, (message) => {
          const event = parseChatEvent(message.data);
          if (!event || subscriber.closed) return;
          if (event.finished) isFinished = true;
          subscriber.next({ ...event, eventId: message.id });
        }, parser);
      };
      run().then(
        () => (isFinished ? subscriber.complete() : subscriber.error(new StreamCutError(parser.lastId))),
        (error: unknown) => {
          if (abort.signal.aborted) return;
          if (error instanceof ApiError) subscriber.error(error);
          else if (isFinished) subscriber.complete();
          // A body read that fails mid-way (network drop) can be resumed from the last id.
          else subscriber.error(new StreamCutError(parser.lastId));
        },
      );
      return () => abort.abort();
    });
  }
}
