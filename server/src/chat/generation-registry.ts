import { Injectable } from '@nestjs/common';
import { EMPTY, Observable, type Subscriber } from 'rxjs';
import { type ChatEvent, type FollowedEvents, isFinal, type SequencedEvent, type TokenEvent } from './chat-events.js';
import { isoAt, SerializedEvent, TokenSse } from './sse-writer.js';

/** The token event publishToken(…, token, atMs) stands for. */
export function tokenEventAt(token: string, atMs: number): TokenEvent {
  return { type: 'token', token, finished: false, timestamp: isoAt(atMs) };
}

/** See GenerationRegistry.remoteState. */
export interface RemoteGeneration {
  isOwnerAlive: boolean;
  /** The text the generation's token events hold, when the registry has them. */
  text?: string;
}

/**
 * Where running generations publish their events and where HTTP streams attach.
 *
 * The contract, for the in-memory implementation below and for a shared one (Redis) later:
 * - `open(messageId, conversationId)`: the generation of `messageId` starts on this instance.
 * - `publish(messageId, event)`: appends the event with the next sequence number (0, 1, 2, … per
 *   message) and delivers it to every follower; a final event (`finished: true`) ends the channel.
 *   `publishToken(messageId, token, atMs)` is `publish` of a token event, the hot path's shortcut.
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
  /** A token event with the time `atMs` (ms since the epoch) as its timestamp. */
  publishToken(messageId: string, token: string, atMs: number): SequencedEvent {
    return this.publish(messageId, tokenEventAt(token, atMs));
  }
  abstract follow(messageId: string, afterId: number): FollowedEvents | undefined;
  abstract activeIn(conversationId: string): string | undefined;
  abstract requestStop(messageId: string): boolean;
  abstract onStopRequest(messageId: string, handler: () => void): void;

  /**
   * What the registry knows of a generation another instance owned, for the lease sweep: whether
   * its owner still renews it (an instance that lost only the database is not dead), and the text
   * of its token events (ahead of the row, whose last save may be a flush interval behind). Nothing
   * here: an instance's own registry knows only its own generations.
   */
  remoteState(_messageId: string): Promise<RemoteGeneration> {
    return Promise.resolve({ isOwnerAlive: false });
  }

  /**
   * The conversation was deleted: its finished generations' events (the answers' text, kept for
   * exact replay) go now rather than at the end of their retention, wherever they are kept. A
   * generation still running there is stopped first by the caller; its events go as well.
   */
  abstract forgetConversation(conversationId: string): Promise<void>;

  /** `events` with their `after` (FollowedEvents): the same message followed again from an id; nothing once it is forgotten. */
  protected resumable(messageId: string, events: Observable<SequencedEvent>): FollowedEvents {
    return Object.assign(events, { after: (afterId: number) => this.follow(messageId, afterId) ?? EMPTY });
  }
}

/**
 * One generation's events, held compactly: a token event is only its text and its timestamp (as
 * ms after `base`), every other event (start, final) is kept as it was. Events are rebuilt on
 * demand for a resuming client, with the same ids and the same JSON as when they were published.
 * While live, token texts are kept one string each; once finished, they are joined into the
 * answer's text plus one Int32Array holding, per event, where its text ends and its timestamp
 * (8 bytes per token).
 */
interface Channel {
  conversationId: string;
  /**
   * Live followers, called directly (no Subject: it copies its observer list and wraps each
   * subscriber again on every event); dropped once the final event is out.
   */
  followers?: Set<Pick<Subscriber<SequencedEvent>, 'next' | 'complete'>>;
  /** Events published so far (= the next id). */
  count: number;
  base: number;
  /** Live: each event's token text by id ('' for a non-token event). Dropped when finished. */
  parts?: string[];
  /** Live: each event's timestamp in ms after `base`, by id (0 for a non-token event). Dropped when finished. */
  times?: number[];
  /** Finished: the answer's text, and per event id [end of its text in `text`, timestamp offset]. */
  text?: string;
  marks?: Int32Array;
  /** Event 0 (start) and the final event when they are not plain tokens (always, in practice). */
  first?: ChatEvent;
  last?: ChatEvent;
  /** Any other event that is not a plain token, by id (none in practice: created on demand). */
  others?: Map<number, ChatEvent>;
  /** The last token timestamp seen and its offset: tokens of one millisecond share it. */
  lastTimestamp?: string;
  lastOffset: number;
  isFinished: boolean;
  /** Its conversation was deleted while it ran: forgotten as it finishes, not kept for replay. */
  isForgotten?: boolean;
  onStop?: () => void;
}

/**
 * How long a finished generation's events stay for exact replay (a client reconnecting with
 * Last-Event-ID), by default; STREAM_REPLAY_RETENTION_MS sets it. Afterwards a resume is
 * rebuilt from the stored row (the whole text again, under new event ids).
 */
export const REPLAY_RETENTION_MS = 5 * 60_000;

/**
 * How many finished answers are kept for exact replay at most, by default (the oldest go first);
 * STREAM_REPLAY_MAX_ANSWERS sets it. Without a cap the memory held grows with the answer rate times
 * the retention: at 75 answers a second, five minutes held ~22,500 answers (~1.5 KB each for 100
 * tokens) in the old generation, which every full GC marks again (bench scenario 1).
 */
export const REPLAY_MAX_ANSWERS = 2_000;

const INT32_MAX = 2 ** 31 - 1;

@Injectable()
export class InMemoryGenerationRegistry extends GenerationRegistry {
  private readonly channels = new Map<string, Channel>();
  private readonly active = new Map<string, string>();
  /** Finished channels in the order they finished, with when each is forgotten; one timer for all. */
  private readonly expiring: { id: string; at: number }[] = [];
  private expiringHead = 0;
  private expiryTimer?: NodeJS.Timeout;

  constructor(
    protected readonly retentionMs: number = REPLAY_RETENTION_MS,
    private readonly maxRetained: number = REPLAY_MAX_ANSWERS,
  ) {
    super();
  }

  open(messageId: string, conversationId: string): void {
    this.channels.set(messageId, {
      conversationId, followers: new Set(), count: 0, base: Date.now(), parts: [], times: [], lastOffset: 0, isFinished: false,
    });
    this.active.set(conversationId, messageId);
  }

  publish(messageId: string, event: ChatEvent): SequencedEvent {
    const channel = this.liveChannel(messageId);
    const id = channel.count++;
    const offset = event.type === 'token' ? this.offsetOf(channel, event) : undefined;
    if (offset === undefined) {
      channel.parts.push('');
      channel.times.push(0);
      if (id === 0) channel.first = event;
      else if (isFinal(event)) channel.last = event;
      else (channel.others ??= new Map()).set(id, event);
    } else {
      channel.parts.push((event as TokenEvent).token);
      channel.times.push(offset);
    }
    const sequenced = offset === undefined ? new SerializedEvent(id, event) : new TokenSse(id, (event as TokenEvent).token, (event as TokenEvent).timestamp);
    this.deliver(channel, sequenced);
    if (isFinal(event)) this.finish(messageId, channel);
    return sequenced;
  }

  /** The hot path: no event object, no timestamp to parse back; the same events as `publish`. */
  override publishToken(messageId: string, token: string, atMs: number): SequencedEvent {
    const channel = this.liveChannel(messageId);
    const offset = atMs - channel.base;
    if (!Number.isInteger(offset) || Math.abs(offset) > INT32_MAX) return super.publishToken(messageId, token, atMs);
    const id = channel.count++;
    channel.parts.push(token);
    channel.times.push(offset);
    const sequenced = new TokenSse(id, token, isoAt(atMs));
    this.deliver(channel, sequenced);
    return sequenced;
  }

  follow(messageId: string, afterId: number): FollowedEvents | undefined {
    const channel = this.channels.get(messageId);
    if (!channel) return undefined;
    return this.resumable(messageId, new Observable<SequencedEvent>((subscriber) => {
      // Replay and subscription happen in one synchronous step, so nothing is missed or sent twice.
      for (let i = Math.max(0, afterId + 1); i < channel.count && !subscriber.closed; i++) subscriber.next(this.eventAt(channel, i));
      const followers = channel.followers;
      if (!followers || channel.isFinished) {
        subscriber.complete();
        return undefined;
      }
      // A client that claims events not published yet (a Last-Event-ID past the last one) gets
      // only those after it, as it would from a finished answer: never events it says it has.
      const follower = afterId < channel.count ? subscriber : {
        next: (e: SequencedEvent) => { if (e.id > afterId) subscriber.next(e); },
        complete: () => subscriber.complete(),
      };
      followers.add(follower);
      return () => { followers.delete(follower); };
    }));
  }

  private liveChannel(messageId: string): Channel & { parts: string[]; times: number[] } {
    const channel = this.channels.get(messageId);
    if (!channel?.parts || !channel.times || channel.isFinished) throw new Error(`No open generation ${messageId}`);
    return channel as Channel & { parts: string[]; times: number[] };
  }

  private deliver(channel: Channel, sequenced: SequencedEvent): void {
    const followers = channel.followers;
    if (followers?.size === 1) {
      for (const follower of followers) {
        follower.next(sequenced);
        break;
      }
    } else if (followers && followers.size > 1) {
      // A copy: a follower added while this event is delivered has had it in its replay already.
      for (const follower of [...followers]) follower.next(sequenced);
    }
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

  forgetConversation(conversationId: string): Promise<void> {
    this.forgetLocally(conversationId);
    return Promise.resolve();
  }

  /**
   * Drops this instance's copies of the conversation's finished generations (their `expiring`
   * entries then find nothing); one still running goes as soon as it finishes.
   */
  protected forgetLocally(conversationId: string): void {
    for (const [id, channel] of this.channels) {
      if (channel.conversationId !== conversationId) continue;
      if (channel.isFinished) this.channels.delete(id);
      else channel.isForgotten = true;
    }
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

  /** The final event is out: keep the compact form only, for the replay retention. */
  private finish(messageId: string, channel: Channel): void {
    const parts = channel.parts ?? [];
    const times = channel.times ?? [];
    const marks = new Int32Array(parts.length * 2);
    let end = 0;
    for (let i = 0; i < parts.length; i++) {
      end += parts[i].length;
      marks[2 * i] = end;
      marks[2 * i + 1] = times[i];
    }
    channel.text = parts.join('');
    channel.marks = marks;
    channel.parts = undefined;
    channel.times = undefined;
    channel.lastTimestamp = undefined;
    channel.isFinished = true;
    channel.onStop = undefined;
    const followers = channel.followers;
    channel.followers = undefined;
    followers?.forEach((follower) => follower.complete());
    if (this.active.get(channel.conversationId) === messageId) this.active.delete(channel.conversationId);
    if (channel.isForgotten) {
      this.channels.delete(messageId);
      return;
    }
    this.expiring.push({ id: messageId, at: Date.now() + this.retentionMs });
    // Over the cap, the oldest finished answers go now rather than at the end of their retention.
    while (this.expiring.length - this.expiringHead > this.maxRetained) {
      this.channels.delete(this.expiring[this.expiringHead].id);
      this.expiringHead++;
    }
    this.compactExpiring();
    this.expiryTimer ??= this.scheduleExpiry(this.retentionMs);
  }

  private scheduleExpiry(ms: number): NodeJS.Timeout {
    const timer = setTimeout(() => this.expire(), ms);
    timer.unref();
    return timer;
  }

  /** Forgets the channels whose retention ended (they finished in order, so they are at the head). */
  private expire(): void {
    this.expiryTimer = undefined;
    const now = Date.now();
    while (this.expiringHead < this.expiring.length && this.expiring[this.expiringHead].at <= now) {
      this.channels.delete(this.expiring[this.expiringHead].id);
      this.expiringHead++;
    }
    this.compactExpiring();
    if (this.expiringHead < this.expiring.length) {
      this.expiryTimer = this.scheduleExpiry(Math.max(1, this.expiring[this.expiringHead].at - now));
    }
  }

  /** Drops the forgotten entries at the head of `expiring` once they are most of it. */
  private compactExpiring(): void {
    if (this.expiringHead > 1024 && this.expiringHead * 2 > this.expiring.length) {
      this.expiring.splice(0, this.expiringHead);
      this.expiringHead = 0;
    }
  }

  /** Event `id` as it was published. */
  private eventAt(channel: Channel, id: number): SequencedEvent {
    const other = id === 0 && channel.first ? channel.first
      : id === channel.count - 1 && channel.last ? channel.last
        : channel.others?.get(id);
    if (other) return new SerializedEvent(id, other);
    let token: string;
    let offset: number;
    if (channel.parts && channel.times) {
      token = channel.parts[id];
      offset = channel.times[id];
    } else {
      const marks = channel.marks!;
      token = channel.text!.slice(id === 0 ? 0 : marks[2 * id - 2], marks[2 * id]);
      offset = marks[2 * id + 1];
    }
    return new TokenSse(id, token, isoAt(channel.base + offset));
  }
}
