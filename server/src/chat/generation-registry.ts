import { Injectable } from '@nestjs/common';
import { Observable, Subject } from 'rxjs';
import { type ChatEvent, isFinal, type SequencedEvent, type TokenEvent } from './chat-events.js';
import { SerializedEvent } from './sse-writer.js';

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

/**
 * One generation's events, held compactly: a token event is only its text and its timestamp (as
 * ms after `base`), every other event (start, final) is kept as it was. Events are rebuilt on
 * demand for a resuming client, with the same ids and the same JSON as when they were published.
 * While live, token texts are kept one string each; once finished, they are joined into the
 * answer's text plus an Int32Array of where each event's text ends (4 + 4 bytes per token).
 */
interface Channel {
  conversationId: string;
  /** Live delivery; dropped once the final event is out. */
  live?: Subject<SequencedEvent>;
  /** Events published so far (= the next id). */
  count: number;
  base: number;
  /** Live: each event's token text by id ('' for a non-token event). Dropped when finished. */
  parts?: string[];
  /** Each event's timestamp in ms after `base`, by id (0 for a non-token event). */
  times: number[] | Int32Array;
  /** Finished: the answer's text and where each event's text ends in it, by id. */
  text?: string;
  ends?: Int32Array;
  /** The events that are not plain tokens (start, final, anything unusual), by id. */
  others: Map<number, ChatEvent>;
  /** The last token timestamp seen and its offset: tokens of one millisecond share it. */
  lastTimestamp?: string;
  lastOffset: number;
  isFinished: boolean;
  onStop?: () => void;
}

/** How long a finished generation's events stay for exact replay (a client reconnecting with Last-Event-ID). */
export const REPLAY_RETENTION_MS = 5 * 60_000;

const INT32_MAX = 2 ** 31 - 1;

@Injectable()
export class InMemoryGenerationRegistry extends GenerationRegistry {
  private readonly channels = new Map<string, Channel>();
  private readonly active = new Map<string, string>();

  open(messageId: string, conversationId: string): void {
    this.channels.set(messageId, {
      conversationId, live: new Subject(), count: 0, base: Date.now(), parts: [], times: [], others: new Map(),
      lastOffset: 0, isFinished: false,
    });
    this.active.set(conversationId, messageId);
  }

  publish(messageId: string, event: ChatEvent): SequencedEvent {
    const channel = this.channels.get(messageId);
    if (!channel || channel.isFinished || !channel.parts) throw new Error(`No open generation ${messageId}`);
    const id = channel.count++;
    const offset = event.type === 'token' ? this.offsetOf(channel, event) : undefined;
    if (offset === undefined) {
      channel.parts.push('');
      (channel.times as number[]).push(0);
      channel.others.set(id, event);
    } else {
      channel.parts.push((event as TokenEvent).token);
      (channel.times as number[]).push(offset);
    }
    const sequenced = new SerializedEvent(id, event);
    channel.live?.next(sequenced);
    if (isFinal(event)) this.finish(messageId, channel);
    return sequenced;
  }

  follow(messageId: string, afterId: number): Observable<SequencedEvent> | undefined {
    const channel = this.channels.get(messageId);
    if (!channel) return undefined;
    return new Observable<SequencedEvent>((subscriber) => {
      // Replay and subscription happen in one synchronous step, so nothing is missed or sent twice.
      for (let i = Math.max(0, afterId + 1); i < channel.count && !subscriber.closed; i++) subscriber.next(this.eventAt(channel, i));
      const live = channel.live;
      if (!live || channel.isFinished) {
        subscriber.complete();
        return undefined;
      }
      const subscription = live.subscribe(subscriber);
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

  /** A token's timestamp as ms after the channel's base, or undefined when it cannot be rebuilt exactly. */
  private offsetOf(channel: Channel, event: TokenEvent): number | undefined {
    const timestamp = event.timestamp;
    if (timestamp === channel.lastTimestamp) return channel.lastOffset;
    if (typeof timestamp !== 'string' || typeof event.token !== 'string' || event.finished !== false) return undefined;
    const ms = Date.parse(timestamp);
    const offset = ms - channel.base;
    if (!Number.isFinite(ms) || Math.abs(offset) > INT32_MAX || new Date(ms).toISOString() !== timestamp) return undefined;
    channel.lastTimestamp = timestamp;
    channel.lastOffset = offset;
    return offset;
  }

  /** The final event is out: keep the compact form only, for REPLAY_RETENTION_MS. */
  private finish(messageId: string, channel: Channel): void {
    const parts = channel.parts ?? [];
    const ends = new Int32Array(parts.length);
    let end = 0;
    for (let i = 0; i < parts.length; i++) {
      end += parts[i].length;
      ends[i] = end;
    }
    channel.text = parts.join('');
    channel.ends = ends;
    channel.times = Int32Array.from(channel.times);
    channel.parts = undefined;
    channel.lastTimestamp = undefined;
    channel.isFinished = true;
    channel.onStop = undefined;
    const live = channel.live;
    channel.live = undefined;
    live?.complete();
    if (this.active.get(channel.conversationId) === messageId) this.active.delete(channel.conversationId);
    setTimeout(() => this.channels.delete(messageId), REPLAY_RETENTION_MS).unref();
  }

  /** Event `id` as it was published. */
  private eventAt(channel: Channel, id: number): SequencedEvent {
    const other = channel.others.get(id);
    if (other) return new SerializedEvent(id, other);
    let token: string;
    if (channel.parts) {
      token = channel.parts[id];
    } else {
      const ends = channel.ends!;
      token = channel.text!.slice(id === 0 ? 0 : ends[id - 1], ends[id]);
    }
    const timestamp = new Date(channel.base + channel.times[id]).toISOString();
    const event: TokenEvent = { type: 'token', token, finished: false, timestamp };
    return new SerializedEvent(id, event);
  }
}
