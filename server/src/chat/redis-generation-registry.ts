import { Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { type ChainableCommander, type Redis, ReplyError } from 'ioredis';
import { Observable } from 'rxjs';
import { ErrorCode } from '../common/error-code.js';
import type { RedisConnection } from '../redis/redis-connection.js';
import { type ChatEvent, type FollowedEvents, isFinal, type SequencedEvent } from './chat-events.js';
import { fallbackTextFor } from './fallback-texts.js';
import { InMemoryGenerationRegistry, type RemoteGeneration, REPLAY_MAX_ANSWERS } from './generation-registry.js';
import { TokenSse } from './sse-writer.js';

/** Keys of a running generation live this long without renewal (renewed every lease/3). */
const LIVE_TTL_MS = 3_600_000;

/**
 * Events per Redis command (RPUSH arguments, one pub/sub message) and per LRANGE page. An owner that
 * wrote its whole list again in one RPUSH spread every event into one call: past ~125,000 events
 * that threw RangeError, the write was retried at every heartbeat, and the owner spun at 100% CPU. A
 * follower that read the rest of the list at each (re)subscription read a long answer again and
 * again: 482 MB of replies for one 150,000-event replay by a slow reader.
 */
export const REDIS_BATCH_EVENTS = 1_000;
/**
 * The most events one transaction writes; the rest go in the next. A transaction is one command to
 * Redis, and the owner's liveness renewals on the same connection wait behind it: one of 60,000
 * events took longer than a lease on a busy machine, the liveness key lapsed meanwhile, and a
 * follower ended a finished answer as interrupted.
 */
export const REDIS_EVENTS_PER_WRITE = 5 * REDIS_BATCH_EVENTS;
/**
 * How long a running generation's new events wait to be written to Redis together with the next
 * ones (and with every other generation's). Written as they came (one transaction per token when
 * the previous one had returned), 150 streams at 50 tokens/s were some 7,500 transactions a second:
 * the main thread was a third busy with Redis alone, and the time to first token grew by 34 ms. The
 * owner's own readers get every event at once (memory); only followers on other instances wait.
 * A final event is written at once.
 */
export const REDIS_SYNC_INTERVAL_MS = 50;

export interface RedisRegistryOptions {
  instanceId: string;
  /** How long an owner's liveness key lives without renewal (STREAM_LEASE_MS). */
  leaseMs: number;
  /** Finished generations stay replayable this long. */
  retentionMs?: number;
  /**
   * Finished answers this instance keeps in memory at most (STREAM_REPLAY_MAX_ANSWERS), oldest
   * first: its exact replay copy and the events it would write again to a Redis that lost them.
   */
  maxRetained?: number;
  /** See REDIS_SYNC_INTERVAL_MS. */
  syncIntervalMs?: number;
}

/** Drops the entries of a map kept oldest first (id → when) past `ttlMs` or beyond `max`, calling `drop` for each. */
function dropOldest(entries: Map<string, number>, max: number, ttlMs: number, now: number, drop: (id: string) => void): void {
  for (const [id, at] of entries) {
    if (entries.size <= max && now - at < ttlMs) break;
    entries.delete(id);
    drop(id);
  }
}

/** What every instance knows about a generation running (or recently finished) anywhere. */
interface Known {
  owner: string;
  conversationId: string;
  isFinished: boolean;
}

interface Announcement {
  /** 'forget': the conversation was deleted (id is empty). */
  op: 'open' | 'final' | 'forget';
  id: string;
  owner: string;
  conversationId: string;
}

/** The owner's write-through state of one of its own generations. */
interface Owned {
  conversationId: string;
  events: string[];
  /** How many of `events` Redis has (written in order, in batches). */
  written: number;
  /** A write of the events not yet written is queued on `writes` (it takes all there are when it runs). */
  isSyncQueued: boolean;
  /** Redis writes of one generation, in order. */
  writes: Promise<void>;
  /** Writes on `writes` not settled yet: none, and the generation can join a shared sync transaction. */
  pendingWrites: number;
  /** A write failed (Redis away): the whole list is rewritten at the next chance. */
  isDirty: boolean;
  /** A failed write was logged since Redis last took all of it (one warning per outage, not per event). */
  isWarned?: boolean;
  isFinished: boolean;
  isRetiring?: boolean;
  /** Its conversation was deleted while it ran: its keys go once its end is written. */
  isForgotten?: boolean;
  /** Its keys are deleted (or about to be): nothing of it is written again. */
  isScrubbed?: boolean;
}

/**
 * The GenerationRegistry shared by several instances (REDIS_URL). The owner instance keeps the
 * in-memory behaviour for its own generations (exact, synchronous) and writes every event
 * through to Redis: a list per message (index = event id, so replay by LRANGE is exact) and a
 * pub/sub channel per message for live delivery. Any other instance follows a generation by
 * subscribing first, then replaying the list after Last-Event-ID, deduplicating by id and
 * refilling any gap from the list, so a resumed stream has no gap and no duplicate.
 *
 * The contract is synchronous, so every instance mirrors which generations exist (open/final
 * announcements on a pub/sub channel, plus a Redis hash read at start and after a reconnect).
 * Stop requests travel by pub/sub to the owner's own channel. An owner renews a liveness key;
 * a follower that sees it vanish (the owner died) ends its stream as `interrupted`, which is
 * what the lease sweep stores for that reply.
 */
export class RedisGenerationRegistry extends InMemoryGenerationRegistry implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('RedisGenerationRegistry');
  private readonly redis: Redis;
  private readonly sub: Redis;
  private readonly prefix: string;
  private readonly owned = new Map<string, Owned>();
  /** This instance's finished generations still in `owned`, oldest first, with when they were all in Redis. */
  private readonly retired = new Map<string, number>();
  /** Finished generations kept at most, in `retired` and in `finishedKnown` each (STREAM_REPLAY_MAX_ANSWERS). */
  private readonly maxFinished: number;
  private readonly known = new Map<string, Known>();
  /**
   * The finished generations in `known`, oldest first, with when they finished: forgotten after
   * the retention (by the heartbeat), or sooner beyond maxRetained (a follower's replay of one
   * forgotten is rebuilt from its row). No timer per answer: at 100 answers a second that was
   * 30,000 timers.
   */
  private readonly finishedKnown = new Map<string, number>();
  /** Per message channel: the handlers of this instance's followers. */
  private readonly listeners = new Map<string, Set<(e: SequencedEvent) => void>>();
  private heartbeat?: NodeJS.Timeout;
  /** Running generations with events Redis does not have yet, written at the next sync tick. */
  private readonly unsynced = new Set<string>();
  private syncTimer?: NodeJS.Timeout;
  private readonly syncIntervalMs: number;

  constructor(connection: RedisConnection, private readonly options: RedisRegistryOptions) {
    super(options.retentionMs, options.maxRetained);
    this.maxFinished = options.maxRetained ?? REPLAY_MAX_ANSWERS;
    this.syncIntervalMs = options.syncIntervalMs ?? REDIS_SYNC_INTERVAL_MS;
    if (!connection.client) throw new Error('RedisGenerationRegistry needs REDIS_URL');
    this.redis = connection.client;
    this.sub = connection.createSubscriber();
    // The deployment's REDIS_PREFIX: instances of another deployment on the same Redis neither see
    // these generations nor receive their events or stop requests (instance ids may well repeat).
    this.prefix = `${connection.prefix}gen:`;
    connection.beforeQuit(() => this.flush());
  }

  private eventsKey(id: string): string { return `${this.prefix}{${id}}:events`; }
  private aliveKey(id: string): string { return `${this.prefix}{${id}}:alive`; }
  private eventsChannel(id: string): string { return `${this.prefix}ev:${id}`; }
  private metaKey(id: string): string { return `${this.prefix}{${id}}:meta`; }
  /** The ids of a conversation's generations, so that deleting the conversation finds their keys. */
  private conversationKey(conversationId: string): string { return `${this.prefix}conv:${conversationId}`; }
  /** A sorted set of message ids scored by when their entry expires: enumerable, and pruned as it goes. */
  private get indexKey(): string { return `${this.prefix}index`; }
  private get announceChannel(): string { return `${this.prefix}announce`; }
  private stopChannel(owner: string): string { return `${this.prefix}stop:${owner}`; }

  async onModuleInit(): Promise<void> {
    this.sub.on('message', (channel: string, message: string) => this.onMessage(channel, message));
    // After a reconnect the subscriber re-subscribes by itself; what was announced meanwhile is reloaded.
    this.sub.on('ready', () => { this.loadIndex().catch((err: unknown) => this.logger.warn({ err }, 'could not reload the generation index')); });
    // A Redis that restarted empty (or missed writes) gets this instance's generations written again.
    this.redis.on('ready', () => {
      for (const [id, owned] of this.owned) {
        owned.isDirty = true;
        this.write(id, owned, (m) => m);
      }
    });
    // Not awaited: with Redis down at boot the subscription waits for it, and boot must not.
    this.sub.subscribe(this.announceChannel, this.stopChannel(this.options.instanceId))
      .catch((err: unknown) => this.logger.warn({ err }, 'could not subscribe'));
    await this.loadIndex().catch((err: unknown) => this.logger.warn({ err }, 'could not load the generation index'));
    const every = Math.max(50, Math.floor(this.options.leaseMs / 3));
    this.heartbeat = setInterval(() => this.renew(), every);
    this.heartbeat.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.heartbeat);
    clearTimeout(this.syncTimer);
    await this.flush();
  }

  // ---- the owner's side ----

  override open(messageId: string, conversationId: string): void {
    super.open(messageId, conversationId);
    const owned: Owned = { conversationId, events: [], written: 0, isSyncQueued: false, writes: Promise.resolve(), pendingWrites: 0, isDirty: false, isFinished: false };
    this.owned.set(messageId, owned);
    this.known.set(messageId, { owner: this.options.instanceId, conversationId, isFinished: false });
    const announcement: Announcement = { op: 'open', id: messageId, owner: this.options.instanceId, conversationId };
    this.write(messageId, owned, (m) => this.describe(m.del(this.eventsKey(messageId)), messageId, conversationId, false)
      .set(this.aliveKey(messageId), this.options.instanceId, 'PX', this.options.leaseMs)
      .publish(this.announceChannel, JSON.stringify(announcement)));
  }

  /**
   * The in-memory fast path (no event object, no date parsing), mirrored by hand: the general way
   * (tokenEventAt, its timestamp parsed back, JSON.stringify) cost the main thread 3-4 % at 150 streams.
   */
  override publishToken(messageId: string, token: string, atMs: number): SequencedEvent {
    const owned = this.owned.get(messageId);
    const mirrored = owned?.events.length;
    const sequenced = super.publishToken(messageId, token, atMs);
    // The in-memory part falls back to publish() for a time it cannot keep compactly: mirrored there already.
    if (owned && owned.events.length === mirrored) {
      owned.events.push(sequenced instanceof TokenSse ? sequenced.json : JSON.stringify(sequenced));
      this.syncSoon(messageId);
    }
    return sequenced;
  }

  override publish(messageId: string, event: ChatEvent): SequencedEvent {
    const sequenced = super.publish(messageId, event);
    const owned = this.owned.get(messageId);
    if (!owned) return sequenced;
    owned.events.push(JSON.stringify(sequenced));
    const final = isFinal(event);
    if (final) {
      owned.isFinished = true;
      this.unsynced.delete(messageId);
      this.sync(messageId, owned);
      this.finishKnown(messageId);
    } else {
      this.syncSoon(messageId);
    }
    return sequenced;
  }

  /** The generation's new events go to Redis at the next sync tick, with every other generation's. */
  private syncSoon(messageId: string): void {
    this.unsynced.add(messageId);
    if (this.syncTimer) return;
    this.syncTimer = setTimeout(() => this.syncAll(), this.syncIntervalMs);
    this.syncTimer.unref();
  }

  /**
   * Writes what every generation waiting for the sync tick has new. Those with no write of their
   * own under way share transactions (up to REDIS_EVENTS_PER_WRITE events each): one command to
   * Redis for all of them instead of one per generation, in the order their writes were issued;
   * the others queue theirs behind the write under way, as any event does.
   */
  private syncAll(): void {
    clearTimeout(this.syncTimer);
    this.syncTimer = undefined;
    let members: Array<{ id: string; owned: Owned; from: number; to: number }> = [];
    let events = 0;
    const send = (): void => {
      if (members.length === 0) return;
      const done = this.sharedWrite(members);
      for (const { id, owned, to } of members) {
        this.chain(id, owned, async () => {
          await done;
          owned.written = Math.max(owned.written, to);
          // More than a transaction's worth was waiting: the rest at the next tick.
          if (owned.written < owned.events.length && !owned.isFinished) this.syncSoon(id);
        });
      }
      members = [];
      events = 0;
    };
    for (const id of this.unsynced) {
      const owned = this.owned.get(id);
      if (!owned) continue;
      if (owned.pendingWrites > 0 || owned.isDirty || owned.isSyncQueued) {
        this.sync(id, owned);
        continue;
      }
      const from = owned.written;
      const to = Math.min(owned.events.length, from + REDIS_EVENTS_PER_WRITE);
      if (from === to) continue;
      members.push({ id, owned, from, to });
      events += to - from;
      if (events >= REDIS_EVENTS_PER_WRITE) send();
    }
    send();
    this.unsynced.clear();
  }

  /** One transaction of several generations' new events; its failure is each one's (they resync). */
  private sharedWrite(members: ReadonlyArray<{ id: string; owned: Owned; from: number; to: number }>): Promise<unknown> {
    let done: Promise<unknown>;
    try {
      const m = this.redis.multi();
      for (const { id, owned, from, to } of members) {
        this.appendEvents(m, id, owned, from, to);
        // Its first events create the list: it lives as long as a running generation's (renewed with its liveness).
        if (from === 0) m.pexpire(this.eventsKey(id), LIVE_TTL_MS);
      }
      done = m.exec();
    } catch (err) {
      done = Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    done.catch(() => undefined); // each member's write handles it
    return done;
  }

  /** RPUSH and PUBLISH of the generation's events from..to (exclusive), REDIS_BATCH_EVENTS a command. */
  private appendEvents(m: ChainableCommander, messageId: string, owned: Owned, from: number, to: number): void {
    const key = this.eventsKey(messageId);
    for (let at = from; at < to; at += REDIS_BATCH_EVENTS) {
      const batch = owned.events.slice(at, Math.min(to, at + REDIS_BATCH_EVENTS));
      m.rpush(key, ...batch).publish(this.eventsChannel(messageId), batch.length === 1 ? batch[0] : `[${batch.join(',')}]`);
    }
  }

  /**
   * Writes the events Redis does not have yet, in one transaction when it is this generation's turn:
   * while one is under way, the events published meanwhile wait and go together in the next (one
   * MULTI per event was 50 a second per stream at 50 tokens/s, and an owner that fell behind fell
   * further behind). The batch that holds the final event marks the generation finished too.
   */
  private sync(messageId: string, owned: Owned): void {
    if (owned.isSyncQueued) return;
    owned.isSyncQueued = true;
    let to = 0;
    this.write(messageId, owned, (m) => {
      owned.isSyncQueued = false;
      const from = owned.written;
      to = Math.min(owned.events.length, from + REDIS_EVENTS_PER_WRITE);
      if (from === to) return undefined;
      const key = this.eventsKey(messageId);
      this.appendEvents(m, messageId, owned, from, to);
      const isEnd = owned.isFinished && to === owned.events.length;
      m.pexpire(key, isEnd ? this.retentionMs : LIVE_TTL_MS);
      if (isEnd) {
        const announcement: Announcement = { op: 'final', id: messageId, owner: this.options.instanceId, conversationId: owned.conversationId };
        this.describe(m, messageId, owned.conversationId, true)
          .del(this.aliveKey(messageId))
          .publish(this.announceChannel, JSON.stringify(announcement));
      }
      return m;
    }, () => {
      owned.written = Math.max(owned.written, to);
      // More than one transaction's worth was waiting: the rest next, after what queued meanwhile.
      if (owned.written < owned.events.length) this.sync(messageId, owned);
    });
  }

  /**
   * What other instances need to know about a generation, kept as long as its events: while it
   * runs (renewed), then for the replay retention.
   */
  private describe(m: ChainableCommander, messageId: string, conversationId: string, isFinished: boolean): ChainableCommander {
    const ttl = isFinished ? this.retentionMs : LIVE_TTL_MS;
    const entry: Known = { owner: this.options.instanceId, conversationId, isFinished };
    return m.set(this.metaKey(messageId), JSON.stringify(entry), 'PX', ttl)
      .sadd(this.conversationKey(conversationId), messageId)
      .pexpire(this.conversationKey(conversationId), Math.max(LIVE_TTL_MS, this.retentionMs))
      .zadd(this.indexKey, Date.now() + ttl, messageId)
      .zremrangebyscore(this.indexKey, '-inf', Date.now());
  }

  /**
   * Redis writes of one generation run one after another; a failed one makes the next rewrite the
   * whole list. `build` fills the transaction when it is its turn (or gives nothing: nothing to
   * write); `written` runs once Redis has it.
   */
  private write(
    messageId: string,
    owned: Owned,
    build: (m: ChainableCommander) => ChainableCommander | undefined,
    written?: () => void,
  ): void {
    this.chain(messageId, owned, async () => {
      if (owned.isScrubbed) return;
      if (owned.isDirty) await this.resync(messageId, owned);
      const multi = build(this.redis.multi());
      if (!multi) return;
      await multi.exec();
      written?.();
    });
  }

  /** Runs `step` after the generation's earlier writes; a failure marks it for a resync. */
  private chain(messageId: string, owned: Owned, step: () => Promise<void>): void {
    owned.pendingWrites++;
    owned.writes = owned.writes.then(step).catch((err: unknown) => {
      // Told once per generation and outage (until a resync succeeds): each of its events failed alike,
      // one warning per token per stream while Redis was away.
      if (!owned.isWarned) this.logger.warn({ err: err instanceof Error ? err.message : err, messageId }, 'Redis write failed; will resync');
      owned.isWarned = true;
      owned.isDirty = true;
      // A write of the rest may have been the one that failed: the resync writes it, and later events queue one again.
      owned.isSyncQueued = false;
    }).then(() => {
      owned.pendingWrites--;
      if (owned.isForgotten && !owned.isScrubbed && this.isAllWritten(owned)) {
        this.scrubOwned(messageId, owned);
      } else if (this.isAllWritten(owned) && !owned.isRetiring) {
        // Everything is in Redis; the owner's own replay copy is kept by the in-memory part. The
        // events stay here for the retention, to be written again if Redis loses them, but for
        // the newest maxRetained answers only: at a high answer rate they would fill the heap.
        owned.isRetiring = true;
        this.retired.set(messageId, Date.now());
        this.forgetFinished();
      }
    });
  }

  /**
   * The conversation was deleted: this instance's copies of its generations go, and their Redis keys
   * (those of generations still running anywhere go as their owners finish them). Every other
   * instance is told to drop its own copies too.
   */
  override async forgetConversation(conversationId: string): Promise<void> {
    this.forgetLocally(conversationId);
    const key = this.conversationKey(conversationId);
    const ids = (await this.redis.smembers(key)).filter((id) => {
      const owned = this.owned.get(id);
      return !(owned && !owned.isFinished) && this.known.get(id)?.isFinished !== false;
    });
    const m = this.redis.multi();
    for (let at = 0; at < ids.length; at += REDIS_BATCH_EVENTS) {
      const batch = ids.slice(at, at + REDIS_BATCH_EVENTS);
      m.del(...batch.flatMap((id) => [this.eventsKey(id), this.metaKey(id), this.aliveKey(id)]))
        .zrem(this.indexKey, ...batch)
        .srem(key, ...batch);
    }
    const announcement: Announcement = { op: 'forget', id: '', owner: this.options.instanceId, conversationId };
    await m.publish(this.announceChannel, JSON.stringify(announcement)).exec();
  }

  /** Drops what this instance holds of the conversation's generations; its own finished ones' keys go too. */
  protected override forgetLocally(conversationId: string): void {
    super.forgetLocally(conversationId);
    for (const [id, owned] of this.owned) {
      if (owned.conversationId !== conversationId) continue;
      if (owned.isFinished) this.scrubOwned(id, owned);
      else owned.isForgotten = true;
    }
    for (const [id, k] of this.known) {
      if (k.conversationId !== conversationId || !k.isFinished || this.owned.has(id)) continue;
      this.known.delete(id);
      this.finishedKnown.delete(id);
    }
  }

  /** Deletes one of this instance's generations' keys after its writes under way, and forgets it. */
  private scrubOwned(messageId: string, owned: Owned): void {
    owned.isScrubbed = true;
    owned.isRetiring = true;
    this.owned.delete(messageId);
    this.retired.delete(messageId);
    this.unsynced.delete(messageId);
    this.known.delete(messageId);
    this.finishedKnown.delete(messageId);
    this.chain(messageId, owned, async () => {
      await this.redis.multi()
        .del(this.eventsKey(messageId), this.metaKey(messageId), this.aliveKey(messageId))
        .zrem(this.indexKey, messageId)
        .srem(this.conversationKey(owned.conversationId), messageId)
        .exec();
    });
  }

  /** Finished, and all of it is in Redis. */
  private isAllWritten(owned: Owned): boolean {
    return owned.isFinished && !owned.isDirty && owned.written === owned.events.length;
  }

  private async resync(messageId: string, owned: Owned): Promise<void> {
    const key = this.eventsKey(messageId);
    const to = owned.events.length;
    const m = this.redis.multi().del(key);
    for (let at = 0; at < to; at += REDIS_BATCH_EVENTS) m.rpush(key, ...owned.events.slice(at, Math.min(to, at + REDIS_BATCH_EVENTS)));
    if (to > 0) m.pexpire(key, owned.isFinished ? this.retentionMs : LIVE_TTL_MS);
    this.describe(m, messageId, owned.conversationId, owned.isFinished);
    if (owned.isFinished) m.del(this.aliveKey(messageId));
    else m.set(this.aliveKey(messageId), this.options.instanceId, 'PX', this.options.leaseMs);
    await m.exec();
    owned.written = to;
    owned.isDirty = false;
    owned.isWarned = false;
    // Followers elsewhere may have missed events while Redis was away: the last one tells them to refill.
    const last = owned.events.at(-1);
    if (last) await this.redis.publish(this.eventsChannel(messageId), last);
  }

  /**
   * Renews the liveness of running generations and repairs those whose writes failed. One that
   * finished here but whose last events are not in Redis yet stays alive too: followers would
   * otherwise find the owner gone and end the answer as interrupted. Its renewal only extends a key
   * that exists (XX): the final write, which may be on its way, deletes it for good.
   */
  private renew(): void {
    for (const [id, owned] of this.owned) {
      if (owned.isDirty) this.write(id, owned, (m) => m);
      else if (!owned.isFinished) {
        this.describe(this.redis.multi(), id, owned.conversationId, false)
          .set(this.aliveKey(id), this.options.instanceId, 'PX', this.options.leaseMs)
          .pexpire(this.eventsKey(id), LIVE_TTL_MS)
          .exec()
          .catch(() => { owned.isDirty = true; });
      } else if (owned.written < owned.events.length) {
        this.redis.set(this.aliveKey(id), this.options.instanceId, 'PX', this.options.leaseMs, 'XX').catch(() => { owned.isDirty = true; });
      }
    }
    this.forgetFinished();
    this.pruneDeadOwners().catch(() => undefined);
  }

  /** Waits for every pending write (shutdown: before the Redis connection quits). */
  async flush(): Promise<void> {
    this.syncAll();
    // A write that leaves events for the next (REDIS_EVENTS_PER_WRITE) queues it as it ends: waited for too.
    for (let round = 0; round < 1_000; round++) {
      const pending = [...this.owned.values()].map((o) => o.writes);
      await Promise.allSettled(pending);
      if ([...this.owned.values()].every((o) => pending.includes(o.writes))) return;
    }
  }

  override requestStop(messageId: string): boolean {
    if (super.requestStop(messageId)) return true;
    if (this.owned.has(messageId)) return false; // ours, and already finished
    const known = this.known.get(messageId);
    if (!known || known.isFinished) return false;
    this.redis.publish(this.stopChannel(known.owner), messageId)
      .catch((err: unknown) => this.logger.warn({ err, messageId }, 'could not forward the stop request'));
    return true;
  }

  override activeIn(conversationId: string): string | undefined {
    const local = super.activeIn(conversationId);
    if (local) return local;
    for (const [id, k] of this.known) if (!k.isFinished && k.conversationId === conversationId) return id;
    return undefined;
  }

  // ---- everybody's side ----

  /**
   * The owner's liveness key, and otherwise the text of the events it wrote: a crashed owner's
   * readers were sent every token written here, while its row holds what its last flush saved.
   */
  override async remoteState(messageId: string): Promise<RemoteGeneration> {
    if ((await this.redis.exists(this.aliveKey(messageId))) === 1) return { isOwnerAlive: true };
    const key = this.eventsKey(messageId);
    let text: string | undefined;
    for (let from = 0; ; from += REDIS_BATCH_EVENTS) {
      const rows = await this.redis.lrange(key, from, from + REDIS_BATCH_EVENTS - 1);
      for (const row of rows) {
        const { event } = JSON.parse(row) as SequencedEvent;
        if (event.type === 'token') text = (text ?? '') + event.token;
      }
      if (rows.length < REDIS_BATCH_EVENTS) return { isOwnerAlive: false, ...(text === undefined ? {} : { text }) };
    }
  }

  override follow(messageId: string, afterId: number): FollowedEvents | undefined {
    const local = super.follow(messageId, afterId);
    if (local) return local;
    return this.known.has(messageId) ? this.resumable(messageId, this.followRemote(messageId, afterId)) : undefined;
  }

  /** Follows a generation another instance owns (or owned): subscribe, replay, then live; by id, without gaps or duplicates. */
  private followRemote(messageId: string, afterId: number): Observable<SequencedEvent> {
    return new Observable<SequencedEvent>((subscriber) => {
      let lastId = afterId;
      let isDone = false;
      let chain = Promise.resolve();
      const emit = (e: SequencedEvent): void => {
        if (isDone) return;
        const isLast = isFinal(e.event);
        if (e.id === lastId + 1) {
          lastId = e.id;
          subscriber.next(e);
        } else if (!isLast || e.id > lastId) {
          return;
        }
        // A final event at or before lastId: the client's Last-Event-ID is at or past the end of
        // the answer, so it ends here with nothing more, as the owner's stream does.
        if (isLast) {
          isDone = true;
          subscriber.complete();
        }
      };
      /**
       * Everything after lastId that the list holds, in order, a page at a time while the stream is
       * followed (a paused reader unsubscribes, and takes up again from where it is). When there is
       * nothing, the last event too: a final one at or before lastId (a Last-Event-ID past the end)
       * ends the stream.
       */
      const refill = async (): Promise<void> => {
        const key = this.eventsKey(messageId);
        for (let page = 0; !isDone; page++) {
          const from = lastId;
          const rows = await this.redis.lrange(key, from + 1, from + REDIS_BATCH_EVENTS);
          for (const row of rows) emit(JSON.parse(row) as SequencedEvent);
          if (page > 0 || rows.length > 0) {
            // A short page is the end; so is one that did not move on (a list written anew meanwhile).
            if (rows.length < REDIS_BATCH_EVENTS || lastId === from) return;
            continue;
          }
          const tail = await this.redis.lindex(key, -1);
          if (tail) emit(JSON.parse(tail) as SequencedEvent);
          return;
        }
      };
      const enqueue = (step: () => Promise<void> | void): void => {
        chain = chain.then(() => (isDone ? undefined : step())).catch((err: unknown) => {
          if (isDone) return;
          if (isLastingRefusal(err)) {
            // Asked again, Redis answers the same (a key of another type, a command its ACL denies, a row that is
            // not ours): the stream ends without its final event, as a cut one, rather than staying open for ever
            // with nothing to say. The client resumes (the SPA does), or reads the answer as stored.
            this.logger.error({ err: err instanceof Error ? err.message : err, messageId }, 'Redis refuses to give the answer\'s events: the follower\'s stream ends');
            subscriber.error(err);
            return;
          }
          // Redis is away (or busy loading): the liveness check retries; the stream stays open meanwhile.
          this.logger.warn({ err: err instanceof Error ? err.message : err, messageId }, 'follow step failed');
        });
      };
      const onEvent = (e: SequencedEvent): void => enqueue(async () => {
        if (e.id > lastId + 1) await refill(); // a gap: events published while we were (re)subscribing
        emit(e); // one at or before lastId is dropped, unless it is the final event: that ends the stream
      });
      const check = setInterval(() => enqueue(async () => {
        if (isDone) return;
        await refill();
        if (isDone || (await this.redis.exists(this.aliveKey(messageId))) === 1) return;
        await refill();
        if (isDone) return;
        // The owner is gone without a final event: the lease sweep stores the reply as interrupted.
        emit({ id: lastId + 1, event: {
          type: 'error', finished: true, message_id: messageId, status: 'interrupted',
          code: ErrorCode.ServiceUnavailable, error: fallbackTextFor(ErrorCode.ServiceUnavailable, 'interrupted'),
        } });
      }), Math.max(100, Math.floor(this.options.leaseMs / 2)));
      const off = this.listen(messageId, onEvent);
      enqueue(async () => {
        await off.subscribed;
        await refill();
      });
      return () => {
        isDone = true;
        clearInterval(check);
        off.unsubscribe();
      };
    });
  }

  private listen(messageId: string, handler: (e: SequencedEvent) => void): { subscribed: Promise<unknown>; unsubscribe: () => void } {
    const channel = this.eventsChannel(messageId);
    let handlers = this.listeners.get(channel);
    let subscribed: Promise<unknown> = Promise.resolve();
    if (!handlers) {
      handlers = new Set();
      this.listeners.set(channel, handlers);
      subscribed = this.sub.subscribe(channel);
    }
    handlers.add(handler);
    return {
      subscribed,
      unsubscribe: () => {
        handlers.delete(handler);
        if (handlers.size === 0 && this.listeners.get(channel) === handlers) {
          this.listeners.delete(channel);
          this.sub.unsubscribe(channel).catch(() => undefined);
        }
      },
    };
  }

  private onMessage(channel: string, message: string): void {
    if (channel === this.announceChannel) {
      const a = JSON.parse(message) as Announcement;
      if (a.op === 'open') this.known.set(a.id, { owner: a.owner, conversationId: a.conversationId, isFinished: false });
      else if (a.op === 'forget') { if (a.owner !== this.options.instanceId) this.forgetLocally(a.conversationId); }
      else this.finishKnown(a.id, a);
      return;
    }
    if (channel === this.stopChannel(this.options.instanceId)) {
      super.requestStop(message);
      return;
    }
    const handlers = this.listeners.get(channel);
    if (!handlers) return;
    // One event, or the events of one write in order (an array).
    const parsed = JSON.parse(message) as SequencedEvent | SequencedEvent[];
    for (const event of Array.isArray(parsed) ? parsed : [parsed]) for (const h of handlers) h(event);
  }

  private finishKnown(id: string, a?: Announcement): void {
    const k = this.known.get(id) ?? (a ? { owner: a.owner, conversationId: a.conversationId, isFinished: true } : undefined);
    if (!k) return;
    k.isFinished = true;
    this.known.set(id, k);
    this.finishedKnown.delete(id);
    this.finishedKnown.set(id, Date.now());
    this.forgetFinished();
  }

  /**
   * Forgets finished generations past the retention, and the oldest beyond maxRetained: this
   * instance's own copies (`owned`) and what it knows of everybody's (`known`). Called as they
   * finish and by the heartbeat.
   */
  private forgetFinished(now = Date.now()): void {
    dropOldest(this.retired, this.maxFinished, this.retentionMs, now, (id) => {
      if (this.owned.get(id)?.isRetiring) this.owned.delete(id);
    });
    dropOldest(this.finishedKnown, this.maxFinished, this.retentionMs, now, (id) => {
      if (this.known.get(id)?.isFinished) this.known.delete(id);
    });
  }

  /** What other instances run or ran recently (at start, and after Redis comes back). */
  private async loadIndex(): Promise<void> {
    const ids = (await this.redis.zrangebyscore(this.indexKey, Date.now(), '+inf')).filter((id) => !this.owned.has(id) && !this.known.has(id));
    if (ids.length === 0) return;
    const entries = await this.redis.mget(ids.map((id) => this.metaKey(id)));
    ids.forEach((id, i) => {
      const raw = entries[i];
      if (!raw) return;
      const entry = JSON.parse(raw) as Known;
      this.known.set(id, { owner: entry.owner, conversationId: entry.conversationId, isFinished: entry.isFinished });
      if (entry.isFinished) this.finishKnown(id);
    });
  }

  /** Running generations of instances that died: no longer block their conversation. */
  private async pruneDeadOwners(): Promise<void> {
    const running = [...this.known].filter(([id, k]) => !k.isFinished && !this.owned.has(id));
    if (running.length === 0) return;
    const alive = await this.redis.pipeline(running.map(([id]) => ['exists', this.aliveKey(id)])).exec();
    running.forEach(([id], i) => {
      const [err, exists] = alive?.[i] ?? [null, 1];
      if (!err && exists === 0) this.finishKnown(id);
    });
  }
}

/**
 * A follow step's failure that trying again cannot mend: Redis refused the command (other than for a passing state:
 * loading its data, busy with a script, a replica or cluster not ready), or an event row is not JSON.
 */
function isLastingRefusal(err: unknown): boolean {
  if (err instanceof SyntaxError) return true;
  return err instanceof ReplyError && !/^(LOADING|BUSY|TRYAGAIN|MASTERDOWN|CLUSTERDOWN|READONLY)\b/.test((err as Error).message);
}
