import { Readable } from 'node:stream';
import { StreamableFile } from '@nestjs/common';
import type { Response } from 'express';
import type { Observable, Subscription } from 'rxjs';
import type { ChatEvent, SequencedEvent } from './chat-events.js';

export interface SseOptions {
  heartbeatMs: number;
  onOpen?: () => void;
  onClose?: () => void;
}

/** One event as written: explicit per-message id, JSON on one data line. */
export function formatSseEvent(e: SequencedEvent): string {
  return e instanceof SerializedEvent ? e.sse : `id: ${e.id}\ndata: ${JSON.stringify(e.event)}\n\n`;
}

/**
 * A sequenced event that serializes itself once, on first use, for all its listeners (several
 * tabs on one answer). Short-lived: the registry keeps the compact form, not these.
 */
export class SerializedEvent implements SequencedEvent {
  #sse?: string;

  constructor(readonly id: number, readonly event: ChatEvent) {}

  get sse(): string {
    this.#sse ??= `id: ${this.id}\ndata: ${JSON.stringify(this.event)}\n\n`;
    return this.#sse;
  }
}

/** A comment line: keeps proxies from closing an idle stream and does not move the client's Last-Event-ID. */
export const SSE_HEARTBEAT = ': ping\n\n';

/**
 * Turns a generation's events into an SSE response body. The route returns it as a value (a
 * StreamableFile, which Nest pipes to the response and destroys when the client goes away), so
 * validation, guards and the error filter all run before the first byte: an error before the
 * stream opens is an ordinary JSON envelope. The body only subscribes: its end (client gone)
 * unsubscribes and never touches the generation.
 *
 * Nest's own @Sse() writer was not used: it forces its own Cache-Control and adds a Transform
 * stream per connection; this writes each event once, directly.
 */
export function sseBody(res: Response, events: Observable<SequencedEvent>, options: SseOptions): StreamableFile {
  res.setHeader('Cache-Control', 'no-cache');
  res.setHeader('X-Accel-Buffering', 'no');
  res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
  // Each event goes out at once (no Nagle delay) and the socket never idles out mid-answer.
  res.socket?.setNoDelay(true);
  res.socket?.setTimeout(0);
  const live: { subscription?: Subscription; heartbeat?: NodeJS.Timeout } = {};
  const body = new Readable({
    // Events are pushed as they come: the generation's pace bounds them, and the replay buffer
    // holds them anyway, so there is nothing to pull.
    read() { /* push-driven */ },
    destroy(err, callback) {
      clearInterval(live.heartbeat);
      live.subscription?.unsubscribe();
      options.onClose?.();
      callback(err);
    },
  });
  options.onOpen?.();
  live.heartbeat = setInterval(() => body.push(SSE_HEARTBEAT), options.heartbeatMs);
  live.heartbeat.unref();
  // Events of one turn of the event loop (a replay, or tokens that came in one upstream read)
  // leave in one write: one syscall instead of one per event. Tokens that arrive apart still
  // go out one by one, at once.
  let pending = '';
  let isScheduled = false;
  const flush = (): void => {
    isScheduled = false;
    if (pending.length === 0) return;
    body.push(pending);
    pending = '';
  };
  live.subscription = events.subscribe({
    next: (e) => {
      pending += formatSseEvent(e);
      if (!isScheduled) {
        isScheduled = true;
        setImmediate(flush);
      }
    },
    error: () => {
      flush();
      body.push(null);
    },
    complete: () => {
      clearInterval(live.heartbeat);
      flush();
      body.push(null);
    },
  });
  return new StreamableFile(body, { type: 'text/event-stream; charset=utf-8' }).setErrorLogger(() => undefined);
}
