import {
  type BeforeApplicationShutdown, Inject, Injectable, Logger, type OnApplicationBootstrap,
} from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { lastValueFrom, type Observable } from 'rxjs';
import { filter } from 'rxjs/operators';
import { setTimeout as sleep } from 'node:timers/promises';
import { isDependencyOutage } from '../common/dependency-outage.js';
import { ErrorCode } from '../common/error-code.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { ConversationsService, type MessagePatch } from '../conversations/conversations.service.js';
import { ShutdownService } from '../health/shutdown.service.js';
import { SessionsService } from '../sessions/sessions.service.js';
import type { Message, MessageStatus } from '../conversations/message.entity.js';
import { cleanModelTitle } from './auto-title.js';
import { withoutThinking } from '../conversations/think-block.js';
import { type ContextNotice, type FinalEvent, isFinal, type SequencedEvent } from './chat-events.js';
import { ChatMetrics } from './chat-metrics.js';
import { failureFields, fallbackTextFor } from './fallback-texts.js';
import { GenerationRegistry } from './generation-registry.js';
import { ModelText } from './model-text.js';
import {
  CHAT_PROVIDER, type ChatProvider, type CompletionRequest, isRefusedForItsWords, type PreparedCompletion, type ProviderChunk, ProviderError, refusalOf,
} from './providers/chat-provider.js';
import { ReplyLimit } from './reply-limit.js';
import { countTokens } from './token-count.js';

export type FinalStatus = Exclude<MessageStatus, 'streaming'>;

export interface GenerationSpec {
  conversationId: string;
  userMessageId: string;
  /** The assistant row, already stored with status `streaming` and this instance's lease. */
  reply: Message;
  request: CompletionRequest;
  /** The request as the provider began to build it while the turn was stored (`prepare`). */
  prepared?: PreparedCompletion;
  promptTokens: number;
  /** A regenerated answer replaces this one once it completes. */
  replacesId: string | null;
  /** The question's files the model does not see whole (told in the start event). */
  context?: ContextNotice;
  /** For a model-written title (llm.modelTitles): the first exchange of a conversation and its automatic title. */
  title?: { autoTitle: string; userText: string };
}

interface Running {
  abort: AbortController;
  /**
   * Why we aborted, if we did: asked to, shutting down, the reply reached a limit (ReplyLimit), or
   * its row is gone (its conversation or session deleted by a request that raced the send, another
   * instance or the purge: nothing is left to store it in, and the model is not paid to go on), or
   * its row was ended elsewhere (`endedAs`).
   */
  reason?: 'stop' | 'shutdown' | 'limit' | 'gone' | 'ended';
  /**
   * The row as found once a save of it changed nothing though it is still there: ended by another
   * instance's lease sweep while this one stalled longer than its lease (paused, frozen, cut off
   * from the database or Redis). Its readers elsewhere were told that ending; it stays, and this
   * instance's own readers are told it too.
   */
  endedAs?: Message;
  finished: Promise<FinalStatus>;
  /** Saves the progress when there is some, or renews the lease when due; called by the shared ticker. */
  tick?: (now: number) => void;
}

interface Outcome {
  status: FinalStatus;
  errorCode: ErrorCode | null;
  /** Instead of the model's (a reply cut at a limit ends as at its max_tokens). */
  finishReason?: string | null;
  /** For logs only. */
  cause?: string;
}

const TITLE_TIMEOUT_MS = 10_000;
/**
 * A reply's final row is written again while the database is out of reach (a restart, a failover),
 * at most this long (FINAL_SAVE_RETRY_* apart): the reply stays in memory, and its final event
 * waits for the write, so a client told `complete` finds it stored.
 */
const FINAL_SAVE_PATIENCE_MS = 5 * 60_000;
const FINAL_SAVE_RETRY_FIRST_MS = 250;
const FINAL_SAVE_RETRY_MAX_MS = 2_000;
const TITLE_PROMPT = 'Write a short title (at most 6 words) for the conversation below. Reply with the title only, no quotes.';

/**
 * Runs generations, independent of any HTTP connection: a generation publishes its events to
 * the registry and persists itself (content flushed in batches, lease renewed, final status),
 * whoever listens or not. Also ends rows orphaned by a dead instance once their lease expired.
 */
@Injectable()
export class GenerationService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(GenerationService.name);
  private readonly running = new Map<string, Running>();
  private sweepTimer?: NodeJS.Timeout;
  /** One timer flushes every running generation (no timers per generation); on while any runs. */
  private progressTimer?: NodeJS.Timeout;
  /** Aborted when the instance stops: a final row still waiting for the database gets one last try. */
  private readonly closing = new AbortController();

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(CHAT_PROVIDER) private readonly provider: ChatProvider,
    private readonly registry: GenerationRegistry,
    private readonly conversations: ConversationsService,
    private readonly metrics: ChatMetrics,
    private readonly moduleRef: ModuleRef,
  ) {}

  /** A fresh lease for rows this instance generates. */
  leaseUntil(now = Date.now()): Date {
    return new Date(now + this.config.stream.leaseMs);
  }

  /**
   * Lets the provider begin building a completion's request (where it can, beside this thread)
   * while the caller stores the turn; hand the result to `start` in the spec, or cancel it.
   * Nothing is sent before `start`.
   */
  prepare(request: CompletionRequest): PreparedCompletion | undefined {
    return this.provider.prepare?.(request);
  }

  /** Starts the generation and returns its events from the first one (start) on. */
  start(spec: GenerationSpec): Observable<SequencedEvent> {
    const id = spec.reply.id;
    this.registry.open(id, spec.conversationId);
    this.registry.publish(id, {
      type: 'start', conversation_id: spec.conversationId, user_message_id: spec.userMessageId, message_id: id,
      provider: this.provider.name, model: this.provider.model,
      ...(spec.replacesId ? { replaces_message_id: spec.replacesId } : {}), ...(spec.context ? { context: spec.context } : {}), finished: false,
    });
    const run: Running = { abort: new AbortController(), finished: Promise.resolve('complete') };
    this.running.set(id, run);
    this.registry.onStopRequest(id, () => this.abort(id, 'stop'));
    this.metrics.generationStarted();
    run.finished = this.run(spec, run).finally(() => {
      this.running.delete(id);
      if (this.running.size === 0) {
        clearInterval(this.progressTimer);
        this.progressTimer = undefined;
      }
    });
    if (!this.progressTimer) {
      // Often enough for both the content flushes and the lease renewals.
      const every = Math.min(this.config.stream.flushIntervalMs, this.leaseRenewalMs());
      this.progressTimer = setInterval(() => this.tick(), every);
      this.progressTimer.unref();
    }
    return this.registry.follow(id, -1)!;
  }

  /**
   * Asks a generation to stop; resolves with its final status once it is saved, or undefined
   * when it does not run here.
   */
  async stop(messageId: string): Promise<FinalStatus | undefined> {
    if (!this.registry.requestStop(messageId)) return undefined;
    const local = this.running.get(messageId);
    if (local) return local.finished;
    // It runs on another instance (shared registry): its final event tells how it ended.
    const events = this.registry.follow(messageId, -1);
    const final = events ? await lastValueFrom(events.pipe(filter((e) => isFinal(e.event))), { defaultValue: undefined }) : undefined;
    return final && isFinal(final.event) ? final.event.status : undefined;
  }

  isRunning(messageId: string): boolean {
    return this.running.has(messageId);
  }

  /** Lets running generations finish for up to `graceMs`, then ends the rest as `interrupted`. */
  async drain(graceMs: number): Promise<void> {
    const pending = (): Promise<unknown>[] => [...this.running.values()].map((r) => r.finished);
    if (this.running.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled(pending()),
        new Promise((resolve) => { timer = setTimeout(resolve, graceMs); }),
      ]);
      clearTimeout(timer);
    }
    for (const id of this.running.keys()) this.abort(id, 'shutdown');
    this.closing.abort();
    await Promise.allSettled(pending());
  }

  /**
   * Stops the answer still generating in a conversation that is being deleted, and waits until it
   * is saved: the model would otherwise go on (and be paid for) to the end of an answer nobody can
   * read, and the stop route can no longer find it.
   */
  private async stopIn(conversationId: string): Promise<void> {
    const messageId = this.registry.activeIn(conversationId);
    if (messageId !== undefined) await this.stop(messageId);
  }

  /** Stops the answers a logged-out session still generates, wherever they run: nobody can read them any more. */
  private async stopAllOf(sessionId: string): Promise<void> {
    for (const conversationId of await this.conversations.streamingConversationsOf(sessionId)) await this.stopIn(conversationId);
  }

  async onApplicationBootstrap(): Promise<void> {
    // Stopped (and saved) before the delete; once it is done, the answers' events kept for replay go too.
    this.conversations.beforeRemove(async (conversationId) => {
      await this.stopIn(conversationId);
      return () => this.registry.forgetConversation(conversationId);
    });
    // Looked up rather than imported, as the ShutdownService below.
    try {
      this.moduleRef.get(SessionsService, { strict: false }).onRevoked((sessionId) => this.stopAllOf(sessionId));
    } catch {
      this.logger.debug('no SessionsService: a logout leaves its answers to run to their end');
    }
    // SIGTERM (ShutdownService, health module) drains running generations first; looked up
    // rather than imported, so the chat module does not depend on the health module.
    try {
      this.moduleRef.get(ShutdownService, { strict: false }).register('chat-generations', (graceMs) => this.drain(graceMs));
    } catch {
      this.logger.debug('no ShutdownService: generations are drained on application shutdown only');
    }
    // Not a reason to refuse to start (a row an operator's transaction holds on PostgreSQL: 55P03 after 5 s): the
    // periodic sweep below ends those replies later.
    await this.sweepAtBoot().catch((err: unknown) => this.logger.warn({ err: err instanceof Error ? err.message : err }, 'lease sweep at start failed; it runs again shortly'));
    this.sweepTimer = setInterval(() => {
      this.sweepExpiredLeases().catch((err: unknown) => this.logger.warn({ err }, 'lease sweep failed'));
    }, this.config.stream.leaseCheckIntervalMs);
    this.sweepTimer.unref();
  }

  /**
   * Runs before the database closes (onApplicationShutdown hooks close it), so the last
   * partial answers can still be saved.
   */
  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.sweepTimer);
    await this.drain(this.config.shutdownGraceMs);
  }

  /**
   * At boot: on SQLite, which one instance serves alone, every row still `streaming` was left by
   * this server's previous run (it stopped mid-answer), so it ends as `interrupted` at once: a
   * reader resuming it after a restart got its final event only when the old lease ran out (30 s
   * by default). On PostgreSQL another instance may own a live reply: only expired leases end.
   */
  sweepAtBoot(): Promise<number> {
    return this.sweepExpiredLeases(this.config.database.type === 'sqlite' ? new Date(8.64e15) : new Date());
  }

  /**
   * Rows left `streaming` by an instance that died end as `interrupted`, once that instance's lease
   * expired. With a shared registry (Redis): not while the owner still renews its liveness there (it
   * lost only the database, and saves the reply when it is back: its readers were told `interrupted`
   * for the length of the outage); and with the text of the events it wrote when that is longer than
   * the row's (a crash lost up to a flush interval of words its readers had been sent).
   */
  async sweepExpiredLeases(expiredBefore = new Date()): Promise<number> {
    let count = 0;
    // No live owner renews a lease further ahead than leaseMs: one past three leases from now was written by another
    // clock or time zone (an older release on PostgreSQL stored local times) and would hold its conversation for hours.
    const leasedPast = new Date(Date.now() + 3 * this.config.stream.leaseMs);
    for (const row of await this.conversations.findExpiredStreaming(expiredBefore, 100, leasedPast)) {
      if (this.running.has(row.id)) continue;
      // Redis away: the row's own text, as without a shared registry.
      const remote = await this.registry.remoteState(row.id).catch(() => ({ isOwnerAlive: false, text: undefined }));
      if (remote.isOwnerAlive) continue;
      const isAhead = remote.text !== undefined && remote.text.length > row.content.length && remote.text.startsWith(row.content);
      const content = isAhead ? remote.text! : row.content;
      const ending = { content, isNewContent: isAhead, tokenCount: countTokens(content), leasedPast };
      if (await this.conversations.markInterruptedIfExpired(row.id, expiredBefore, ErrorCode.ServiceUnavailable, ending)) count++;
    }
    if (count > 0) {
      this.logger.warn({ count }, 'replies of a dead instance marked interrupted');
      this.metrics.generationsSwept(count);
    }
    return count;
  }

  private leaseRenewalMs(): number {
    return Math.max(50, Math.floor(this.config.stream.leaseMs / 3));
  }

  /** All running generations save at once: their writes share one transaction (ConversationsService.saveProgress). */
  private tick(): void {
    const now = Date.now();
    for (const run of this.running.values()) run.tick?.(now);
  }

  private abort(messageId: string, reason: NonNullable<Running['reason']>): void {
    const run = this.running.get(messageId);
    if (!run || run.abort.signal.aborted) return;
    run.reason = reason;
    run.abort.abort();
  }

  private async run(spec: GenerationSpec, run: Running): Promise<FinalStatus> {
    const id = spec.reply.id;
    const startedAt = Date.now();
    let content = '';
    let flushedLength = 0;
    let finishReason: string | null = null;
    let usage: { promptTokens: number; completionTokens: number } | undefined;
    let tokenCount = 0;
    const text = new ModelText();
    const limit = new ReplyLimit(this.config.llm.maxReplyChars, this.config.llm.upstreamMaxDurationMs, startedAt);

    // Writes of one row go one after another, so an old flush never lands after the final one.
    let writes = Promise.resolve();
    let pendingWrites = 0;
    // Told once per outage (until a save succeeds), not at every flush interval of every stream.
    let isSaveFailing = false;
    const enqueue = (save: () => Promise<void>): void => {
      pendingWrites++;
      writes = writes.then(save)
        .then(() => { isSaveFailing = false; }, (err: unknown) => {
          if (!isSaveFailing) this.logger.warn({ err: err instanceof Error ? err.message : err, messageId: id }, 'could not save the reply yet; retrying at the next flush');
          isSaveFailing = true;
        })
        .then(() => { pendingWrites--; });
    };
    // Content flushes and lease renewals: fixed SQL, batched with the other generations'. A flush
    // carries the lease only when its renewal is due (every leaseMs / 3): rewriting the lease, an
    // indexed column, on every flush cost a third of each batch for nothing.
    const owner = spec.reply.ownerInstance;
    const saveProgress = (text: string | undefined, leaseFrom: number | undefined): void => {
      if (run.endedAs || run.reason === 'gone') return;
      const leaseExpiresAt = leaseFrom === undefined ? undefined : this.leaseUntil(leaseFrom);
      enqueue(async () => {
        if (run.endedAs || run.reason === 'gone') return;
        // Changed nothing: the row is gone, or no longer this generation's (WhileStreaming).
        if (!await this.conversations.saveProgress(id, text, leaseExpiresAt, owner)) await this.rowLost(id, run);
      });
    };
    const flushMs = this.config.stream.flushIntervalMs;
    const renewMs = this.leaseRenewalMs();
    let flushedAt = startedAt;
    let leasedAt = startedAt;
    run.tick = (now) => {
      if (limit.isOverTime(now, content.length)) this.abort(id, 'limit');
      // Renewed also while the model is silent (e.g. waiting for its first token).
      const isLeaseDue = now - leasedAt >= renewMs - 1;
      if (isLeaseDue) leasedAt = now;
      if (content.length !== flushedLength && now - flushedAt >= flushMs - 1) {
        flushedLength = content.length;
        flushedAt = now;
        saveProgress(content, isLeaseDue ? now : undefined);
      } else if (isLeaseDue) {
        saveProgress(undefined, now);
      }
    };

    let outcome: Outcome;
    try {
      const onChunk = (chunk: ProviderChunk): void => {
        switch (chunk.type) {
          case 'token': {
            // Once cut, the rest of the upstream read that brought the limit is dropped; so is what
            // comes after the row was found ended elsewhere.
            if (limit.cut || run.endedAs) break;
            let token = text.push(chunk.text);
            if (content.length + token.length > limit.maxChars) {
              token = limit.fit(content.length, token);
              this.abort(id, 'limit');
            }
            if (token === '') break;
            const now = Date.now();
            if (tokenCount === 0) this.metrics.firstToken(now - startedAt);
            tokenCount++;
            content += token;
            this.registry.publishToken(id, token, now);
            break;
          }
          case 'finish':
            finishReason = chunk.reason;
            break;
          case 'usage':
            usage = { promptTokens: chunk.promptTokens, completionTokens: chunk.completionTokens };
            break;
        }
      };
      await this.provider.stream(spec.request, run.abort.signal, onChunk, spec.prepared);
      outcome = { status: 'complete', errorCode: null };
      this.metrics.modelAnswered(true);
    } catch (err) {
      outcome = run.reason === 'limit' && limit.cut ? limit.cut : this.outcomeOf(err, run);
      if (run.reason === 'limit') this.metrics.modelAnswered(true);
      // Refused for its words (over the context, the content filter): the model's server answered; that is the prompt's
      // doing, not an outage, and any visitor could otherwise turn health to degraded with three long prompts.
      else if (run.reason === undefined && err instanceof ProviderError) this.metrics.modelAnswered(isRefusedForItsWords(err));
    } finally {
      run.tick = undefined;
    }
    const rest = run.endedAs ? '' : limit.fit(content.length, text.end());
    if (rest) {
      content += rest;
      this.registry.publishToken(id, rest, Date.now());
    }
    // Also when the upstream ended anyway after the cut (its [DONE] in the same read), or the text's end did not fit.
    if (limit.cut && outcome.status === 'complete') outcome = limit.cut;
    this.metrics.tokens(tokenCount);
    if (limit.cut && outcome === limit.cut) {
      this.logger.warn({ messageId: id, status: outcome.status, cause: outcome.cause, chars: content.length }, 'reply cut at its limit');
      if (outcome.status === 'failed') this.metrics.upstreamFailed('max-duration');
    } else if (outcome.status !== 'complete' && run.reason !== 'ended') {
      this.logger.warn({ messageId: id, status: outcome.status, cause: outcome.cause }, 'generation did not complete');
    }

    if (outcome.status === 'complete' && !run.endedAs && spec.title && this.config.llm.modelTitles && !this.provider.isDemo) {
      // Before the final event: no model call happens after a reply has finished.
      await this.writeModelTitle(spec.conversationId, spec.title, withoutThinking(content));
    }

    const completionTokens = usage?.completionTokens ?? countTokens(content);
    const promptTokens = usage?.promptTokens ?? spec.promptTokens;
    const endReason = outcome.status === 'stopped' ? 'stop_requested' : outcome.finishReason ?? finishReason;
    const row: MessagePatch = {
      content, status: outcome.status, errorCode: outcome.errorCode,
      finishReason: endReason,
      tokenCount: completionTokens, promptTokens, completionTokens, leaseExpiresAt: null,
    };
    let final: FinalEvent = outcome.status === 'complete' || outcome.status === 'stopped'
      ? {
        type: 'done', finished: true, message_id: id, status: outcome.status,
        finish_reason: endReason,
        usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens },
      }
      : {
        type: 'error', finished: true, message_id: id, status: outcome.status,
        code: outcome.errorCode ?? ErrorCode.InternalError, ...failureFields(outcome.errorCode, outcome.status, endReason),
      };
    if (this.conversations.savesSynchronously && pendingWrites === 0 && !spec.replacesId && !run.endedAs) {
      // SQLite: the final event leaves, then the row is stored in the same synchronous run. Every
      // request is handled on this thread in a later run, so one sent after the event (a reload,
      // the conversation's messages) finds the answer stored all the same; the event does not
      // wait for the write (0.35 ms median at 50 streams on a slow machine: docs/performance.md).
      // A failed write (a busy or full disk) is tried again below, the event being out. Written
      // even if publishing throws. Written only while the row still runs, as every save of it
      // (WhileStreaming); SQLite is served by this instance alone and its lease sweep skips the
      // replies running here, so a write that changes nothing found the row gone.
      let failed: unknown;
      let isStored = true;
      try {
        this.registry.publish(id, final);
      } finally {
        try {
          isStored = this.conversations.updateMessageNow(id, row, { owner });
        } catch (err) {
          failed = err;
        }
      }
      if (!isStored) this.logger.warn({ messageId: id, status: outcome.status }, 'the end of the reply was not stored: its row is gone or was ended elsewhere');
      if (failed !== undefined) {
        const saved = await this.saveFinal(id, row, owner, failed);
        if (saved === 'unsaved') outcome = { status: 'interrupted', errorCode: ErrorCode.ServiceUnavailable };
        else if (typeof saved === 'object') outcome = this.endedElsewhere(id, saved.endedAs).outcome;
      }
    } else {
      // Stored before the event: on PostgreSQL the write is not done when the call returns, and
      // a regeneration's client must not see the answers it replaced. While the database is out
      // of reach the event waits for it (saveFinal): a client is never told of an ending that
      // was not stored, and the reply is not cut to its last flush.
      await writes;
      const saved = run.endedAs ? { endedAs: run.endedAs } : await this.saveFinal(id, row, owner);
      if (typeof saved === 'object') {
        // Ended elsewhere meanwhile: that ending stays, and is this instance's readers' too.
        ({ outcome, final } = this.endedElsewhere(id, saved.endedAs));
      } else if (saved === 'unsaved') {
        outcome = { status: 'interrupted', errorCode: ErrorCode.ServiceUnavailable };
        final = {
          type: 'error', finished: true, message_id: id, status: 'interrupted',
          code: ErrorCode.ServiceUnavailable, error: fallbackTextFor(ErrorCode.ServiceUnavailable, 'interrupted'),
        };
      } else if (saved === 'gone') {
        // Deleted before its end was stored: the client is not told of an answer that was kept.
        outcome = { status: 'failed', errorCode: ErrorCode.ConversationNotFound };
        final = {
          type: 'error', finished: true, message_id: id, status: 'failed',
          code: ErrorCode.ConversationNotFound, error: fallbackTextFor(ErrorCode.ConversationNotFound),
        };
      } else if (outcome.status === 'complete' && spec.replacesId) {
        await this.conversations.deleteEarlierAnswers(spec.reply)
          .catch((err: unknown) => this.logger.warn({ err, messageId: spec.replacesId }, 'could not delete the replaced answers'));
      }
      this.registry.publish(id, final);
    }
    this.metrics.generationEnded(outcome.status);
    return outcome.status;
  }

  /**
   * Stores a reply's final row, trying again while the database is out of reach (FINAL_SAVE_*;
   * the generation stays running meanwhile, so this instance's lease sweep leaves its row alone).
   * 'unsaved' when it could not be stored: the row is left `streaming` with the text last flushed,
   * and a lease sweep ends it as `interrupted`; 'gone' when the row no longer exists (its
   * conversation deleted); `endedAs` when it was ended elsewhere first (WhileStreaming: another
   * instance's lease sweep), left as it is. `failed` is the error of a first try made already.
   */
  private async saveFinal(id: string, row: MessagePatch, owner: string | null, failed?: unknown): Promise<'stored' | 'gone' | 'unsaved' | { endedAs: Message }> {
    const giveUpAt = Date.now() + FINAL_SAVE_PATIENCE_MS;
    let delay = FINAL_SAVE_RETRY_FIRST_MS;
    let err = failed;
    let isLastTry = false;
    for (let attempt = failed === undefined ? 0 : 1; ; attempt++) {
      if (attempt > 0) {
        if (!isTransientStoreError(err) || isLastTry) {
          this.logger.error({ err, messageId: id, attempts: attempt }, 'the reply could not be stored');
          return 'unsaved';
        }
        if (attempt === 1) this.logger.warn({ err, messageId: id }, 'could not store the end of the reply yet: trying again');
        await sleep(delay, undefined, { signal: this.closing.signal }).catch(() => undefined);
        delay = Math.min(delay * 2, FINAL_SAVE_RETRY_MAX_MS);
        isLastTry = this.closing.signal.aborted || Date.now() >= giveUpAt;
      }
      try {
        if (!await this.conversations.updateMessage(id, row, { owner })) {
          const current = await this.conversations.findMessage(id);
          if (!current) return 'gone';
          // A try that was stored though its answer was lost (the connection cut meanwhile): stored.
          if (attempt > 0 && current.status === row.status && current.content === row.content) return 'stored';
          return { endedAs: current };
        }
        if (attempt > 0) this.logger.log({ messageId: id, attempts: attempt + 1 }, 'the end of the reply is stored');
        return 'stored';
      } catch (e) {
        err = e;
      }
    }
  }

  /**
   * A save of a running reply changed nothing: its row is gone (as if deleted: 'gone'), or was
   * ended elsewhere (`endedAs`). Either way the model is not paid to go on.
   */
  private async rowLost(id: string, run: Running): Promise<void> {
    const current = await this.conversations.findMessage(id);
    if (!current) {
      this.abort(id, 'gone');
      return;
    }
    run.endedAs = current;
    this.abort(id, 'ended');
  }

  /** The outcome and final event of a reply whose row was ended elsewhere: the row's, told once at warn. */
  private endedElsewhere(id: string, row: Message): { outcome: Outcome; final: FinalEvent } {
    // A row still `streaming` here is another instance's now: to this one's readers it ended.
    const status: FinalStatus = row.status === 'streaming' ? 'interrupted' : row.status;
    const errorCode = row.status === 'streaming' ? ErrorCode.ServiceUnavailable : row.errorCode as ErrorCode | null;
    this.logger.warn({ messageId: id, status, owner: row.ownerInstance }, 'the reply was ended elsewhere while this instance generated it (its lease expired): stopped, and ended as stored');
    const final: FinalEvent = status === 'complete' || status === 'stopped'
      ? {
        type: 'done', finished: true, message_id: id, status, finish_reason: row.finishReason,
        usage: {
          prompt_tokens: row.promptTokens ?? 0, completion_tokens: row.completionTokens ?? 0,
          total_tokens: (row.promptTokens ?? 0) + (row.completionTokens ?? 0),
        },
      }
      : { type: 'error', finished: true, message_id: id, status, code: errorCode ?? ErrorCode.InternalError, ...failureFields(errorCode, status, row.finishReason) };
    return { outcome: { status, errorCode }, final };
  }

  private outcomeOf(err: unknown, run: Running): Outcome {
    if (run.reason === 'stop') return { status: 'stopped', errorCode: null };
    // Replaced by the row's ending (endedElsewhere) before anything is stored or told.
    if (run.reason === 'ended') return { status: 'interrupted', errorCode: ErrorCode.ServiceUnavailable, cause: 'its row was ended elsewhere' };
    if (run.reason === 'shutdown') return { status: 'interrupted', errorCode: ErrorCode.ServiceUnavailable, cause: 'shutdown' };
    if (run.reason === 'gone') return { status: 'failed', errorCode: ErrorCode.ConversationNotFound, cause: 'its conversation was deleted' };
    if (err instanceof ProviderError) this.metrics.upstreamFailed(upstreamErrorCode(err));
    if (err instanceof ProviderError) {
      const refusal = refusalOf(err);
      return { status: err.messageStatus, errorCode: ErrorCode.OpenAiError, cause: `${err.kind}: ${err.message}`, ...(refusal ? { finishReason: refusal } : {}) };
    }
    this.logger.error({ err }, 'generation failed');
    return { status: 'failed', errorCode: ErrorCode.InternalError, cause: err instanceof Error ? err.message : 'unknown' };
  }

  private async writeModelTitle(conversationId: string, title: { autoTitle: string; userText: string }, reply: string): Promise<void> {
    try {
      let raw = '';
      const request: CompletionRequest = {
        messages: [
          { role: 'system', content: TITLE_PROMPT },
          { role: 'user', content: `User: ${title.userText.slice(0, 2000)}\n\nAssistant: ${reply.slice(0, 2000)}` },
        ],
        maxOutputTokens: 24,
        fileNames: [],
      };
      await this.provider.stream(request, AbortSignal.timeout(TITLE_TIMEOUT_MS), (chunk) => {
        if (chunk.type === 'token') raw += chunk.text;
      });
      // A reasoning model thinks before its title too: a title still thinking at the limit is no title.
      const clean = cleanModelTitle(withoutThinking(raw));
      if (clean) await this.conversations.replaceTitle(conversationId, title.autoTitle, clean);
    } catch (err) {
      if (err instanceof ProviderError) this.metrics.upstreamFailed(upstreamErrorCode(err));
      // The automatic title stays; a title is not worth failing a reply for.
      this.logger.warn({ err }, 'model title failed');
    }
  }
}

/** A write that may succeed if tried again: the database out of reach, or SQLite's file busy or its disk full. */
function isTransientStoreError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return isDependencyOutage(err) || (typeof code === 'string' && /^SQLITE_(BUSY|LOCKED|FULL|IOERR)/.test(code));
}

/** The label of a failed upstream call in metrics: its kind, with the HTTP status when there is one. */
function upstreamErrorCode(err: ProviderError): string {
  return err.httpStatus ? `${err.kind}_${err.httpStatus}` : err.kind;
}
