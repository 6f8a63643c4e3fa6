import { Injectable } from '@nestjs/common';
import { Observable, Subject } from 'rxjs';
import { type ChatEvent, isFinal, type SequencedEvent } from './chat-events.js';

/**
 * Where running generations publish their events and where HTTP streams attach.
 *
 * The contract, for the in-memory implementation below and for a shared one (Redis) later:
 * - `open(messageId, conversationId)`: the generation of `messageId` starts on this instance.
 * - `publish(messageId, event)`: appends the event with the next sequence number (0, 1, 2, … per
 *   message) and delivers it to every follower; a final event (`finished: true`) ends the channel.
 * - `follow(messageId, afterId)`: the events with id > afterId (-1 for all), exactly once and in
 *   order, then the live ones until the final event, then completes. `undefined` when the message
 *   is not known (never opened here, or forgotten after its retention).
 * - `activeIn(conversationId)`: the message still generating in that conversation, if any.
 * - `requestStop(messageId)` / `onStopRequest(messageId, fn)`: whoever serves the stop route asks,
 *   the owner of the generation is told (in Redis: a pub/sub message to the owner instance).
 *
 * A Redis version maps a channel to a stream key (XADD with the seq as id; XRANGE then XREAD to
 * follow), `activeIn` to a key per conversation with the lease's expiry, and stop requests to pub/sub.
 */
export abstract class GenerationRegistry {
  abstract open(messageId: string, conversationId: string): void;
  abstract publish(messageId: string, event: ChatEvent): SequencedEvent;
  abstract follow(messageId: string, afterId: number): Observable<SequencedEvent> | undefined;
  abstract activeIn(conversationId: string): string | undefined;
  abstract requestStop(messageId: string): boolean;
  abstract onStopRequest(messageId: string, handler: () => void): void;
}

interface Channel {
  conversationId: string;
  events: SequencedEvent[];
  live: Subject<SequencedEvent>;
  isFinished: boolean;
  onStop?: () => void;
}

/** How long a finished generation's events stay for exact replay (a client reconnecting with Last-Event-ID). */
export const REPLAY_RETENTION_MS = 5 * 60_000;

@Injectable()
export class InMemoryGenerationRegistry extends GenerationRegistry {
  private readonly channels = new Map<string, Channel>();
  private readonly active = new Map<string, string>();

  open(messageId: string, conversationId: string): void {
    this.channels.set(messageId, { conversationId, events: [], live: new Subject(), isFinished: false });
    this.active.set(conversationId, messageId);
  }

  publish(messageId: string, event: ChatEvent): SequencedEvent {
    const channel = this.channels.get(messageId);
    if (!channel || channel.isFinished) throw new Error(`No open generation ${messageId}`);
    const sequenced: SequencedEvent = { id: channel.events.length, event };
    channel.events.push(sequenced);
    channel.live.next(sequenced);
    if (isFinal(event)) {
      channel.isFinished = true;
      channel.onStop = undefined;
      channel.live.complete();
      if (this.active.get(channel.conversationId) === messageId) this.active.delete(channel.conversationId);
      setTimeout(() => this.channels.delete(messageId), REPLAY_RETENTION_MS).unref();
    }
    return sequenced;
  }

  follow(messageId: string, afterId: number): Observable<SequencedEvent> | undefined {
    const channel = this.channels.get(messageId);
    if (!channel) return undefined;
    return new Observable<SequencedEvent>((subscriber) => {
      // Replay and subscription happen in one synchronous step, so nothing is missed or sent twice.
      for (let i = Math.max(0, afterId + 1); i < channel.events.length; i++) subscriber.next(channel.events[i]);
      if (channel.isFinished) {
        subscriber.complete();
        return undefined;
      }
      const subscription = channel.live.subscribe(subscriber);
      return () => subscription.unsubscribe();
    });
  }

  activeIn(conversationId: string): string | undefined {
    return this.active.get(conversationId);
  }

  requestStop(messageId: string): boolean {
    const handler = this.channels.get(messageId)?.onStop;
    if (!handler) return false;
    handler();
    return true;
  }

  onStopRequest(messageId: string, handler: () => void): void {
    const channel = this.channels.get(messageId);
    if (channel && !channel.isFinished) channel.onStop = handler;
  }
}
