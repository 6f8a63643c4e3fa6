import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { concat, defer, EMPTY, from, type Observable, of, timer } from 'rxjs';
import { concatMap, map, takeWhile } from 'rxjs/operators';
import { EntityNotFoundError } from 'typeorm';
import { AppException } from '../common/app.exception.js';
import { ErrorCode } from '../common/error-code.js';
import { HTTP_STATUS } from '../common/error-status.js';
import { ChatRateLimit } from '../common/rate-limit.js';
import type { AuthContext } from '../common/request-context.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { DistributedLock } from '../redis/redis-lock.js';
import type { Conversation } from '../conversations/conversation.entity.js';
import { type AnsweredQuestion, ConversationsService, type HistoryMessage, type MessageDraft } from '../conversations/conversations.service.js';
import type { Message } from '../conversations/message.entity.js';
import { showsAnything } from '../conversations/title.js';
import { autoTitle } from './auto-title.js';
import { type AttachedFile, CHAT_ATTACHMENTS, type ChatAttachments, NoChatAttachments } from './chat-attachments.js';
import { type ChatEvent, type ContextNotice, contextNotice, type SequencedEvent } from './chat-events.js';
import type { ChatConfigDto, FeedbackDto, FeedbackResultDto, RegenerateDto, SendMessageDto, StopResultDto } from './chat.dto.js';
import { failureFields } from './fallback-texts.js';
import { historyContext } from './history-context.js';
import { GenerationRegistry } from './generation-registry.js';
import { type GenerationSpec, GenerationService } from './generation.service.js';
import { CHAT_PROVIDER, type ChatProvider, type CompletionRequest } from './providers/chat-provider.js';
import { type BuiltPrompt, buildPrompt, type FileText, type HistoryTurn } from './token-budget.js';
import { countTokens } from './token-count.js';

/** How many of the latest messages are read to build the context (then trimmed to the token budget). */
const HISTORY_MESSAGES = 200;
/** What an Idempotency-Key may be (the OpenAPI document shows the same pattern). */
export const IDEMPOTENCY_KEY = /^[A-Za-z0-9._:-]{1,128}$/;
const POLL_MIN_MS = 250;

/**
 * The id a resuming client last received: the event ids Parley sends are integers from 0, so
 * anything else is a 400 (it used to be read as "no id": the whole stream again, appended by a
 * client that had part of it). Absent or empty (what a browser sends before its first id): -1.
 * An id past the end is kept as it is (nothing after it yet), up to Number.MAX_SAFE_INTEGER.
 */
function parseLastEventId(raw: string | undefined): number {
  const value = raw?.trim() ?? '';
  if (value === '') return -1;
  // At most 16 digits, as the OpenAPI document's pattern says (2^53 − 1 has 16): a longer run, zeros in front or not, is refused alike.
  const id = /^\d{1,16}$/.test(value) ? Number(value) : NaN;
  // Beyond 2^53 it is no id Parley sent, and not an integer once read (1e+23): Redis refused the range, and a resume on
  // another instance than the answer's waited for ever.
  if (!Number.isSafeInteger(id)) {
    throw validation('Last-Event-ID', `Last-Event-ID must be the id of an event of this stream (an integer from 0 to ${Number.MAX_SAFE_INTEGER})`);
  }
  return id;
}

/** An error that refuses a request (4xx: its conversation or file gone, a reply running elsewhere), not a failure. */
function isRefusal(err: unknown): boolean {
  return (err instanceof AppException && Number(HTTP_STATUS[err.code]) < 500) || err instanceof EntityNotFoundError;
}

/** How long a request refused while another reply starts waits for that reply's id (a turn is stored in milliseconds). */
const CLAIM_WAIT_MS = 2_000;

/** What `promise` resolves to within `ms`, else undefined. */
function firstOf<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), ms); });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

function validation(field: string, message: string): AppException {
  return new AppException(ErrorCode.ValidationError, message, { fields: [{ field, errors: [message] }] });
}

function blankMessage(): AppException {
  return validation('message', 'message must not be blank (it may be empty only when files are attached)');
}

/**
 * The chat use cases: every check (ownership, limits, one generation per conversation) happens
 * here before anything is streamed, so failures are ordinary JSON errors; then the messages are
 * stored and the generation starts, and the caller gets its events as an Observable.
 */
@Injectable()
export class ChatService implements OnModuleInit {
  private readonly logger = new Logger(ChatService.name);
  private attachments: ChatAttachments = new NoChatAttachments();
  /**
   * Conversations between their 409 check and the generation's start (closes the race on this
   * instance), each with the id its reply will have once stored: a request refused meanwhile waits
   * for it briefly, so its 409 names the reply to follow, as it does once the reply runs.
   */
  private readonly starting = new Map<string, Promise<string | undefined>>();

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(CHAT_PROVIDER) private readonly provider: ChatProvider,
    private readonly conversations: ConversationsService,
    private readonly generations: GenerationService,
    private readonly registry: GenerationRegistry,
    private readonly moduleRef: ModuleRef,
    private readonly lock: DistributedLock,
    private readonly rateLimit: ChatRateLimit,
  ) {}

  onModuleInit(): void {
    // The files module provides the seam when it is there; no import cycle, no edit here when it lands.
    try {
      this.attachments = this.moduleRef.get<ChatAttachments>(CHAT_ATTACHMENTS, { strict: false });
    } catch {
      this.logger.log('No CHAT_ATTACHMENTS provider: messages cannot carry files');
    }
    // The tokenizer loads its tables lazily; not on the first user's request.
    countTokens('warm up');
  }

  chatConfig(): ChatConfigDto {
    return {
      provider: this.provider.name, model: this.provider.model, is_demo: this.provider.isDemo,
      max_message_chars: this.config.limits.maxMessageChars, max_upload_bytes: this.config.limits.maxUploadBytes,
      allowed_extensions: this.config.limits.allowedExtensions,
    };
  }

  checkIdempotencyKey(raw: string | undefined): string | undefined {
    if (raw === undefined) return undefined;
    if (!IDEMPOTENCY_KEY.test(raw)) throw validation('Idempotency-Key', 'Idempotency-Key must be 1-128 characters of A-Z a-z 0-9 . _ : -');
    return raw;
  }

  async send(caller: AuthContext, dto: SendMessageDto, idempotencyKey?: string): Promise<Observable<SequencedEvent>> {
    const sessionId = caller.sessionId;
    if (dto.session_id !== undefined && dto.session_id !== sessionId) throw new AppException(ErrorCode.SessionNotFound, 'Session not found');
    const text = this.checkText(dto.message, (dto.file_ids?.length ?? 0) > 0);
    if (!idempotencyKey) return this.store(sessionId, dto, text);
    // A retry may arrive while the first request is still storing its turn (a client that timed
    // out, two tabs, a proxy's retry): one at a time per key, on every instance, so the second
    // finds the first's answer and follows it instead of starting another one.
    return this.lock.run(`idempotency:${sessionId}:${idempotencyKey}`, async () => {
      const replay = await this.replayIdempotent(sessionId, idempotencyKey, dto, text);
      return replay ?? this.store(sessionId, dto, text, idempotencyKey);
    });
  }

  /** Stores the user's message and the reply's row, then starts the generation. */
  private async store(sessionId: string, dto: SendMessageDto, text: string, idempotencyKey?: string): Promise<Observable<SequencedEvent>> {
    const fileIds = [...new Set(dto.file_ids ?? [])];
    const existing = dto.conversation_id ? await this.conversations.findOwned(sessionId, dto.conversation_id) : undefined;
    const claimed = existing ? await this.claim(existing.id) : undefined;
    let replyId: string | undefined;
    try {
      // The files' text is read here, so the whole prompt, and what the model will not see of it, is known before the
      // turn is stored: the reply's row holds its notice from the start (a tab following the answer reads it with
      // the first event), and the provider may build the request meanwhile.
      const files = fileIds.length > 0 ? await this.attachments.validate(sessionId, fileIds) : [];
      const fileNames = files.map((f) => f.filename);
      const textTokens = countTokens(text);
      const { turns: history, ...earlier } = existing ? await this.history(existing.id) : { turns: [], usable: [], isWhole: true };
      // Rejects a message that cannot fit the model's context before anything is stored (files are cut to fit).
      const built = this.prompt(history, text, textTokens, files);
      const request = this.completion(built, files);
      const context = contextNotice(built, existing ? await this.earlierOmitted(existing.id, earlier, built) : 0);
      // Every check has passed: this send counts against the session's chat limits.
      await this.rateLimit.take(sessionId);

      const title = autoTitle(text, fileNames);
      const turn: MessageDraft[] = [
        { role: 'user', content: text, status: 'complete', tokenCount: textTokens, modelName: this.provider.model, idempotencyKey: idempotencyKey ?? null },
        {
          role: 'assistant', content: '', status: 'streaming', modelName: this.provider.model, idempotencyKey: idempotencyKey ?? null,
          ownerInstance: this.config.instanceId, leaseExpiresAt: this.generations.leaseUntil(),
          contextNotice: context ? JSON.stringify(context) : null,
        },
      ];
      return await this.storeThenStart(sessionId, request, async () => {
        let conversation: Conversation;
        let stored: Message[];
        if (existing) {
          conversation = existing;
          stored = await this.conversations.appendTurn(existing.id, turn);
        } else {
          ({ conversation, messages: stored } = await this.conversations.createWithTurn(sessionId, title, turn));
        }
        const [user, reply] = stored as [Message, Message];
        replyId = reply.id;
        if (fileIds.length > 0) await this.attach(sessionId, fileIds, { conversationId: conversation.id, isNew: !existing }, user, reply);
        if (existing && existing.title === null) await this.conversations.setTitleIfEmpty(existing.id, title);
        return {
          conversationId: conversation.id, userMessageId: user.id, reply, replacesId: null,
          request, promptTokens: built.promptTokens, context,
          title: existing ? undefined : { autoTitle: title, userText: text || `(no question; sent the files ${fileNames.join(', ')})` },
        };
      });
    } finally {
      claimed?.(replyId);
    }
  }

  /**
   * Stores a turn (`store`), then starts its generation. The model's request is known before, so
   * the provider builds it meanwhile (on the upstream worker: ChatProvider.prepare); it is sent
   * only once the turn is stored, and never if storing it fails. The session's send, counted
   * already, is given back when the store refuses it (a 409 or 404 found in its transaction).
   */
  private async storeThenStart(
    sessionId: string, request: CompletionRequest, store: () => Promise<Omit<GenerationSpec, 'prepared'>>,
  ): Promise<Observable<SequencedEvent>> {
    const prepared = this.generations.prepare(request);
    try {
      const spec = await store();
      return this.generations.start({ ...spec, prepared });
    } catch (err) {
      // Not started: never sent (a no-op once the generation has taken it).
      prepared?.cancel();
      if (isRefusal(err)) await this.rateLimit.giveBack(sessionId);
      throw err;
    }
  }

  /**
   * A new answer to the conversation's last user message, which `dto.message` first edits (the
   * earlier answers go once the new one completes, as for any regeneration). Every check, the
   * edited text's fit in the model's context included, passes before anything is written.
   */
  async regenerate(caller: AuthContext, dto: RegenerateDto): Promise<Observable<SequencedEvent>> {
    // Blank only for a question with files: known below, before anything is written.
    const edited = dto.message === undefined ? undefined : this.checkText(dto.message, true);
    const conversation = await this.conversations.findOwned(caller.sessionId, dto.conversation_id);
    const claimed = await this.claim(conversation.id);
    let replyId: string | undefined;
    try {
      const { messages, hasMore } = await this.conversations.page(conversation.id, HISTORY_MESSAGES);
      const lastUserIndex = messages.map((m) => m.role).lastIndexOf('user');
      if (lastUserIndex === -1) throw new AppException(ErrorCode.MessageNotFound, 'Nothing to regenerate: the conversation has no message');
      const user = messages[lastUserIndex];
      if (dto.message_id !== undefined && dto.message_id !== user.id) {
        // A question of this conversation, edited from a view that had not seen a later one: editing the
        // later one instead would overwrite it (409). Any other id (missing, another conversation's or
        // session's, an answer) names no question here: 404, as for any message that is not one's own.
        const named = await this.conversations.findMessage(dto.message_id);
        if (named?.conversationId !== conversation.id || named.role !== 'user') throw new AppException(ErrorCode.MessageNotFound, 'Message not found');
        throw new AppException(ErrorCode.Conflict, 'That message is no longer the last question of the conversation');
      }
      const previous = messages.slice(lastUserIndex + 1).reverse().find((m) => m.role === 'assistant');
      const isEdit = edited !== undefined && edited !== user.content;
      const content = isEdit ? edited : user.content;
      const tokenCount = isEdit ? countTokens(edited) : user.tokenCount ?? undefined;
      const { turns: before, usable } = await this.turnsOf(messages.slice(0, lastUserIndex));
      // The question's own files whole, as a send gives them: buildPrompt cuts one to fit (history's over the context are omitted).
      const currentFiles = await this.filesOf([user.id], Number.MAX_SAFE_INTEGER);
      const fileNames = (currentFiles.get(user.id) ?? []).map((f) => f.filename);
      if (content === '' && fileNames.length === 0) {
        // A question of files only whose files were all deleted since: nothing is left to answer, edited or not.
        if (!isEdit) throw validation('message', 'this question has no text and its files were deleted: there is nothing to answer (edit it to ask something)');
        throw blankMessage();
      }
      const built = buildPrompt({
        systemPrompt: this.config.llm.systemPrompt, history: before,
        current: { content, tokenCount, files: currentFiles.get(user.id) ?? [] },
        contextTokens: this.config.llm.contextTokens, maxOutputTokens: this.config.llm.maxOutputTokens,
      });
      await this.rateLimit.take(caller.sessionId);
      const request = this.completion(built, currentFiles.get(user.id) ?? []);
      const question: AnsweredQuestion = {
        id: user.id,
        // The first question named the conversation: an automatic title follows the edit (a renamed one stays).
        edit: isEdit ? {
          patch: { content, tokenCount: tokenCount ?? null },
          title: user.position === 0 ? { from: autoTitle(user.content, fileNames), to: autoTitle(content, fileNames) } : undefined,
        } : undefined,
      };
      const context = contextNotice(built, await this.earlierOmitted(conversation.id, { usable, isWhole: !hasMore }, built, user.position));
      return await this.storeThenStart(caller.sessionId, request, async () => {
        const [reply] = await this.conversations.appendAnswer(conversation.id, question, [{
          role: 'assistant', content: '', status: 'streaming', modelName: this.provider.model, replacesId: previous?.id ?? null,
          ownerInstance: this.config.instanceId, leaseExpiresAt: this.generations.leaseUntil(),
          contextNotice: context ? JSON.stringify(context) : null,
        }]) as [Message];
        replyId = reply.id;
        return {
          conversationId: conversation.id, userMessageId: user.id, reply, replacesId: previous?.id ?? null, request, promptTokens: built.promptTokens,
          context,
        };
      });
    } finally {
      claimed(replyId);
    }
  }

  /** The events of an assistant message after `lastEventId`: live when it runs here, else rebuilt from its row. */
  async follow(caller: AuthContext, messageId: string, lastEventId: string | undefined): Promise<Observable<SequencedEvent>> {
    const message = await this.followable(caller, messageId, lastEventId);
    return this.eventsOf(message, parseLastEventId(lastEventId));
  }

  /** The answer `follow` would stream, after the same checks (a HEAD's answer: the same status, no events). */
  async followable(caller: AuthContext, messageId: string, lastEventId: string | undefined): Promise<Message> {
    const message = await this.conversations.findOwnedMessage(caller.sessionId, messageId);
    if (message.role !== 'assistant') throw new AppException(ErrorCode.MessageNotFound, 'Message not found');
    parseLastEventId(lastEventId);
    return message;
  }

  async stop(caller: AuthContext, messageId: string): Promise<StopResultDto> {
    const message = await this.conversations.findOwnedMessage(caller.sessionId, messageId);
    if (message.role !== 'assistant') throw new AppException(ErrorCode.MessageNotFound, 'Message not found');
    const status = await this.generations.stop(messageId);
    if (status) return { message_id: messageId, status };
    // Not running here: it has ended (or its owner instance is gone and the lease sweep will end it).
    const current = await this.conversations.findMessage(messageId);
    return { message_id: messageId, status: current?.status ?? message.status };
  }

  async feedback(caller: AuthContext, dto: FeedbackDto): Promise<FeedbackResultDto> {
    const message = await this.conversations.findOwnedMessage(caller.sessionId, dto.message_id);
    if (message.role !== 'assistant') throw validation('message_id', 'Feedback is for assistant messages only');
    const comment = dto.comment?.trim() ? dto.comment.trim() : null;
    await this.conversations.updateMessage(message.id, { feedback: dto.feedback, feedbackComment: comment, feedbackAt: new Date() });
    return { message_id: message.id, feedback: dto.feedback, comment };
  }

  /**
   * A message's text as sent or edited: at most MAX_MESSAGE_CHARS characters, and not blank unless files come with
   * it (`mayBeBlank`): then blank is empty, and the files are the message.
   */
  private checkText(text: string, mayBeBlank = false): string {
    if (!showsAnything(text)) {
      if (mayBeBlank) return '';
      throw blankMessage();
    }
    if (text.length > this.config.limits.maxMessageChars) {
      throw validation('message', `message must be shorter than or equal to ${this.config.limits.maxMessageChars} characters`);
    }
    return text;
  }

  /**
   * Claims the conversation for one reply starting (409 while another starts or runs); returns the
   * release, told the reply's id once it is stored (undefined when nothing was). The check and the
   * claim happen in the call's first synchronous step; a refusal may then wait, briefly, for the
   * id of the reply that is starting.
   */
  private async claim(conversationId: string): Promise<(replyId: string | undefined) => void> {
    const running = this.registry.activeIn(conversationId);
    const pending = this.starting.get(conversationId);
    if (pending === undefined && running === undefined) {
      let settle!: (replyId: string | undefined) => void;
      const replyId = new Promise<string | undefined>((resolve) => { settle = resolve; });
      this.starting.set(conversationId, replyId);
      return (id) => {
        if (this.starting.get(conversationId) === replyId) this.starting.delete(conversationId);
        settle(id);
      };
    }
    // The running reply's id, or the starting one's once stored: a client can follow it.
    const id = running ?? await firstOf(pending!, CLAIM_WAIT_MS);
    throw new AppException(ErrorCode.GenerationInProgress, 'A reply is still being generated in this conversation', id === undefined ? undefined : { message_id: id });
  }

  private prompt(history: HistoryTurn[], text: string, textTokens: number, files: FileText[]): ReturnType<typeof buildPrompt> {
    return buildPrompt({
      systemPrompt: this.config.llm.systemPrompt, history,
      current: { content: text, tokenCount: textTokens, files },
      contextTokens: this.config.llm.contextTokens, maxOutputTokens: this.config.llm.maxOutputTokens,
    });
  }

  /** The model's request for a prompt built with these files in its last turn. */
  private completion(built: ReturnType<typeof buildPrompt>, files: Array<{ filename: string }>): CompletionRequest {
    return { messages: built.messages, maxOutputTokens: this.config.llm.maxOutputTokens, fileNames: files.map((f) => f.filename) };
  }

  /**
   * Links the files to the stored question. A file deleted since `validate` read it, or a copy no longer fitting the
   * quota, refuses the send (404, 413) as if found before anything was stored: the turn is taken back (attach gives
   * back what it took), never left as a question without its files and a failed answer.
   */
  private async attach(
    sessionId: string, fileIds: string[], into: { conversationId: string; isNew: boolean }, user: Message, reply: Message,
  ): Promise<AttachedFile[]> {
    try {
      return await this.attachments.attach(sessionId, fileIds, into.conversationId, user.id);
    } catch (err) {
      if (isRefusal(err)) {
        await this.conversations.withdrawTurn(into.conversationId, [user.id, reply.id], into.isNew);
      } else {
        // Not the request's fault (the database failing): the turn stays, and its reply must not stay `streaming`.
        await this.conversations.updateMessage(reply.id, {
          status: 'failed', errorCode: err instanceof AppException ? err.code : ErrorCode.FileProcessingError, leaseExpiresAt: null,
        });
      }
      throw err;
    }
  }

  /**
   * The conversation's earlier turns that can be context (history-context.ts), the messages they are, and whether
   * those are read from the conversation's first (its last HISTORY_MESSAGES are).
   */
  private async history(conversationId: string): Promise<{ turns: HistoryTurn[]; usable: HistoryMessage[]; isWhole: boolean }> {
    const stored = await this.conversations.historyOf(conversationId, HISTORY_MESSAGES);
    return { ...await this.turnsOf(stored), isWhole: stored.length < HISTORY_MESSAGES };
  }

  /** Turns of the messages that can be context, one for each of `usable`. */
  private async turnsOf(stored: HistoryMessage[]): Promise<{ turns: HistoryTurn[]; usable: HistoryMessage[] }> {
    const usable = historyContext(stored);
    const userIds = usable.filter((m) => m.role === 'user').map((m) => m.id);
    const files = await this.filesOf(userIds);
    const turns = usable.map((m): HistoryTurn => ({
      role: m.role === 'user' ? 'user' : 'assistant', content: m.content, tokenCount: m.tokenCount, files: files.get(m.id) ?? [],
    }));
    return { turns, usable };
  }

  /**
   * How many of the conversation's messages come before the first one a prompt keeps: the model does not see them
   * (they no longer fit in its context, or are older than the HISTORY_MESSAGES read). 0 when it sees from the
   * first message read of a whole history (a failed answer before it was never context). `question`: the position
   * of the question asked, when it is stored (else all the conversation's messages come before it).
   */
  private async earlierOmitted(
    conversationId: string, history: { usable: HistoryMessage[]; isWhole: boolean }, built: BuiltPrompt, question?: number,
  ): Promise<number> {
    if (built.droppedHistory === 0 && history.isWhole) return 0;
    const first = history.usable[built.droppedHistory];
    return this.conversations.countBefore(conversationId, first?.position ?? question);
  }

  private async filesOf(messageIds: string[], maxTokensEach = this.config.llm.contextTokens): Promise<Map<string, FileText[]>> {
    const byMessage = new Map<string, FileText[]>();
    for (const f of await this.conversations.attachmentTexts(messageIds, maxTokensEach)) {
      const text: FileText = f.isOmitted
        ? { filename: f.filename, extractedText: '[omitted: the file does not fit in the model\'s context]', tokenCount: 16 }
        : { filename: f.filename, extractedText: f.extractedText, tokenCount: f.tokenCount };
      byMessage.set(f.messageId, [...(byMessage.get(f.messageId) ?? []), text]);
    }
    return byMessage;
  }

  /**
   * The answer already sent under this Idempotency-Key, when the same request comes again (a
   * retry). The key reused for another request (another message, conversation or files) is a 409:
   * it used to replay the first answer and drop the new message (or files) without a word.
   */
  private async replayIdempotent(
    sessionId: string, key: string, dto: SendMessageDto, text: string,
  ): Promise<Observable<SequencedEvent> | undefined> {
    const rows = await this.conversations.findByIdempotencyKeyForSession(sessionId, key);
    const user = rows.find((m) => m.role === 'user');
    if (!user) return undefined;
    // A question since edited counts as another request, whatever text is retried: the edit's own text matched the
    // row and replayed an answer to a request the key was never used for (only an edit writes a question's row again).
    if (user.updatedAt.getTime() > user.createdAt.getTime()) {
      throw new AppException(ErrorCode.Conflict, 'This Idempotency-Key was already used for a question that has since been edited');
    }
    // Without a conversation_id the request started a conversation: it is the same request only if the
    // first did too (its question opened its conversation); a follow-up's key retried without its
    // conversation replayed that conversation's answer to a request meant to start a new one.
    const isSameConversation = dto.conversation_id === undefined ? user.position === 0 : dto.conversation_id === user.conversationId;
    // The text as stored (`text`: a blank one beside files is stored empty), not as sent: a retried files-only send
    // with " " was a "different request".
    const isSameRequest = user.content === text && isSameConversation
      && await this.attachments.holdsFiles(sessionId, [...new Set(dto.file_ids ?? [])], user.id);
    if (!isSameRequest) throw new AppException(ErrorCode.Conflict, 'This Idempotency-Key was already used for a different request');
    // The answer sent under the key, or the one that replaced it since (a completed regeneration deletes it):
    // storing the turn again made a second conversation.
    const reply = rows.find((m) => m.role === 'assistant') ?? await this.conversations.latestAnswerTo(user);
    if (!reply) throw new AppException(ErrorCode.Conflict, 'The answer to this Idempotency-Key\'s request no longer exists');
    return this.eventsOf(reply, -1);
  }

  private async eventsOf(message: Message, after: number): Promise<Observable<SequencedEvent>> {
    const live = this.registry.follow(message.id, after);
    if (live) return live;
    return this.rebuild(message, after);
  }

  /**
   * The events of a message nobody publishes here, rebuilt from its row: start, its content as
   * one token, and its end. A row still `streaming` (its owner is another instance, or died and
   * the lease sweep will end it) is polled until it ends.
   *
   * The rebuilt events are numbered afresh (0: start, 1: the stored text, …), so an id the client
   * got from the live stream means nothing here: continuing "after" it would skip text the
   * client never had, or send nothing at all. A client that resumes after an id is sent the
   * whole rebuilt stream instead, its start marked `from_start`, and replaces what it had.
   */
  private async rebuild(message: Message, after: number): Promise<Observable<SequencedEvent>> {
    const user = await this.conversations.questionBefore(message);
    let seq = 0;
    let sent = '';
    const next = (event: ChatEvent): SequencedEvent => ({ id: seq++, event });
    const tokenFor = (row: Message): SequencedEvent[] => {
      if (row.content.length <= sent.length) return [];
      const token = row.content.slice(sent.length);
      sent = row.content;
      return [next({ type: 'token', token, finished: false, timestamp: row.updatedAt.toISOString() })];
    };
    const finalFor = (row: Message): SequencedEvent[] => {
      switch (row.status) {
        case 'streaming':
          return [];
        case 'complete':
        case 'stopped':
          return [next({
            type: 'done', finished: true, message_id: row.id, status: row.status, finish_reason: row.finishReason,
            usage: {
              prompt_tokens: row.promptTokens ?? 0, completion_tokens: row.completionTokens ?? 0,
              total_tokens: (row.promptTokens ?? 0) + (row.completionTokens ?? 0),
            },
          })];
        case 'failed':
        case 'interrupted':
          return [next({
            type: 'error', finished: true, message_id: row.id, status: row.status,
            code: (row.errorCode as ErrorCode | null) ?? ErrorCode.InternalError, ...failureFields(row.errorCode, row.status, row.finishReason),
          })];
      }
    };
    const first: SequencedEvent[] = [
      next({
        type: 'start', conversation_id: message.conversationId, user_message_id: user?.id ?? '', message_id: message.id,
        provider: this.provider.name, model: message.modelName ?? this.provider.model,
        ...(message.replacesId ? { replaces_message_id: message.replacesId } : {}),
        ...(message.contextNotice ? { context: JSON.parse(message.contextNotice) as ContextNotice } : {}),
        ...(after >= 0 ? { from_start: true as const } : {}), finished: false,
      }),
      ...tokenFor(message),
      ...finalFor(message),
    ];
    const isDone = message.status !== 'streaming';
    const poll: Observable<SequencedEvent> = isDone ? EMPTY : timer(0, Math.max(POLL_MIN_MS, this.config.stream.flushIntervalMs)).pipe(
      concatMap(() => defer(() => this.conversations.findMessage(message.id))),
      map((row) => row ?? { ...message, status: 'interrupted' as const, errorCode: ErrorCode.InternalError }),
      concatMap((row) => of([...tokenFor(row), ...finalFor(row)])),
      takeWhile((batch) => !batch.some((e) => e.event.finished), true),
      concatMap((batch) => from(batch)),
    );
    return concat(from(first), poll);
  }
}
