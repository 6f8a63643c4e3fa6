import { randomUUID } from 'node:crypto';
import { Injectable, Logger, Optional } from '@nestjs/common';
import { InjectDataSource, InjectRepository } from '@nestjs/typeorm';
import { And, DataSource, type EntityManager, In, LessThan, LessThanOrEqual, MoreThan, MoreThanOrEqual, type Repository } from 'typeorm';
import { AppException } from '../common/app.exception.js';
import { ErrorCode } from '../common/error-code.js';
import { RawSql, type SqlParts } from '../database/raw-sql.js';
import { SqliteCheckpointService } from '../database/sqlite-checkpointer.js';
import { SqliteReadService } from '../database/sqlite-reader.js';
import { inTransaction } from '../database/transaction.js';
import { FileUpload } from '../files/file-upload.entity.js';
import { Conversation } from './conversation.entity.js';
import { Message, type MessageRole, type MessageStatus } from './message.entity.js';
import { cleanTitle, foldForSearch, isVisibleTitle, TITLE_MAX, titleLength } from './title.js';
import { type SearchSnippet, searchableText, searchTextOf, snippetAround } from './search-snippet.js';

export interface MessageDraft {
  role: MessageRole;
  content: string;
  status: MessageStatus;
  tokenCount?: number | null;
  modelName?: string | null;
  idempotencyKey?: string | null;
  replacesId?: string | null;
  ownerInstance?: string | null;
  leaseExpiresAt?: Date | null;
  /** An answer's context notice (JSON of the start event's `context`), stored with its row so that every ending and every reader has it. */
  contextNotice?: string | null;
}

export interface MessagePage {
  messages: Message[];
  /** True when older messages exist before the first one returned. */
  hasMore: boolean;
  /** True when newer messages exist after the last one returned (never on the latest page). */
  hasNewer: boolean;
}

export type Attachment = Pick<FileUpload, 'id' | 'messageId' | 'filename' | 'fileType' | 'fileSize'>;

export interface AttachmentText {
  messageId: string;
  filename: string;
  extractedText: string;
  tokenCount: number;
  /** Too large to ever fit: the text was not read. */
  isOmitted: boolean;
}

/**
 * A message's files in the order its request listed them (files attached before that order was
 * kept have no position: in upload order, as before).
 */
const ATTACHMENT_ORDER = { attachPosition: 'ASC', createdAt: 'ASC' } as const;

// An append's statements (fixed SQL, RawSql): both counters moved by the turn's size (the
// conversation's write lock, taken first), returning the position after the turn; and a reply
// streaming under a lease still live at `now`.
const BUMP_COUNTERS = (q: SqlParts): string => `UPDATE ${q.table} SET ${q.col('nextPosition')} = ${q.col('nextPosition')} + ${q.param(0)}, `
  + `${q.col('messageCount')} = ${q.col('messageCount')} + ${q.param(1)}, ${q.col('updatedAt')} = ${q.param(2)} WHERE ${q.col('id')} = ${q.param(3)} `
  + `RETURNING ${q.col('nextPosition')}`;
// `'streaming'` is written in the SQL, not bound: a planner proves the partial lease index's
// condition (message.entity.ts) from the statement's text; with the status bound, SQLite read the
// conversation's messages one by one instead (partial-indexes.medium.spec.ts).
export const STREAMING_IN = (q: SqlParts): string => `SELECT ${q.col('id')} FROM ${q.table} WHERE ${q.col('conversationId')} = ${q.param(0)} `
  + `AND ${q.col('status')} = 'streaming' AND ${q.col('leaseExpiresAt')} > ${q.param(1)} LIMIT 1`;

/** The conversation's last question (p0: the conversation). */
const LAST_QUESTION = (q: SqlParts): string => `SELECT ${q.col('id')} FROM ${q.table} WHERE ${q.col('conversationId')} = ${q.param(0)} `
  + `AND ${q.col('role')} = 'user' ORDER BY ${q.col('position')} DESC LIMIT 1`;
/** An automatic title following its question's edit (p0: the new title), unless renamed meanwhile (p2: the old automatic title). */
const RETITLE = (q: SqlParts): string => `UPDATE ${q.table} SET ${q.col('title')} = ${q.param(0)} WHERE ${q.col('id')} = ${q.param(1)} `
  + `AND ${q.col('title')} = ${q.param(2)} RETURNING ${q.col('id')}`;

/**
 * The question a regeneration answers (ConversationsService.appendAnswer): it must still be the
 * conversation's last; `edit` is its new text, and the automatic title that follows it when it is the first.
 */
export interface AnsweredQuestion {
  id: string;
  edit?: { patch: MessagePatch; title?: { from: string; to: string } };
}

/** The lease sweep's rows: replies left `streaming` under a lease expired before p0, at most p1 (by the partial lease index). */
export const EXPIRED_STREAMING = (q: SqlParts): string => `SELECT ${q.columns} FROM ${q.table} `
  + `WHERE ${q.col('status')} = 'streaming' AND (${q.col('leaseExpiresAt')} < ${q.param(0)} OR ${q.col('leaseExpiresAt')} > ${q.param(1)}) `
  + `LIMIT ${q.param(2)}`;

/** What a prompt's history reads of a message (ConversationsService.historyOf). */
const HISTORY_COLUMNS = ['id', 'role', 'content', 'status', 'tokenCount', 'finishReason', 'position'] as const;
export type HistoryMessage = Pick<Message, (typeof HISTORY_COLUMNS)[number]>;

/** The fields of a message that may be set after it is stored. */
export type MessagePatch = Partial<Omit<Message, 'id' | 'conversationId' | 'position' | 'conversation' | 'searchText'>>;

/** The patch of a `role` message with the time of the update and, for final text (not `streaming`), its search form. */
function withSearchText(patch: MessagePatch, role: MessageRole): Partial<Message> {
  const isFinalText = patch.content !== undefined && patch.status !== 'streaming';
  return { ...patch, ...(isFinalText ? { searchText: searchTextOf(role, patch.content!) } : {}), updatedAt: new Date() };
}

/** 409 unless the question a regeneration answers is still the conversation's last (a later one came meanwhile). */
function assertLastQuestion(last: Message[], question: AnsweredQuestion): void {
  if (last[0]?.id !== question.id) throw new AppException(ErrorCode.Conflict, 'That message is no longer the last question of the conversation');
}

/**
 * A new row id. randomUUID() builds its string by concatenation, a tree of ~15 pieces (~510 B
 * on the heap); these ids are held by every stream, registry entry and cache, so they are made
 * flat (one 36-character string, ~66 B) once, here. The value is the same: UUIDs are lower case.
 */
function newId(): string {
  return randomUUID().toLowerCase();
}

interface QueuedProgress {
  content: string | undefined;
  leaseExpiresAt: Date | undefined;
  /** The row's owner_instance the write requires, if any (WhileStreaming). */
  owner: string | undefined;
  /**
   * Told whether the row is still the running reply's (false: its conversation was deleted
   * meanwhile, or the reply was ended by another instance's lease sweep).
   */
  waiters: { resolve: (found: boolean) => void; reject: (err: unknown) => void }[];
}

/**
 * A write of a running reply (its progress, its end) that must not land on a row that has ended: a
 * reply's final status, once written, never changes. Another instance's lease sweep ends a reply
 * whose owner stalled longer than its lease (paused, frozen, cut off), and tells its readers so;
 * the owner, back, must not store it as `streaming` or `complete` again. With `owner`, the row must
 * still be that instance's too.
 */
/** How a sweep ends a reply whose owner is gone (ConversationsService.markInterruptedIfExpired). */
export interface InterruptedEnding {
  now?: Date;
  /** The reply's text as the sweep found it (folded for search); stored only with `isNewContent`. */
  content?: string;
  isNewContent?: boolean;
  /** The tokens of that text, stored as the reply's token count. */
  tokenCount?: number;
  /** A lease further ahead than this was written by another clock and counts as expired. */
  leasedPast?: Date;
}

export interface WhileStreaming {
  owner?: string | null;
}

/** Progress saves per PostgreSQL statement (each row is 6 parameters; a statement takes at most 65,535). */
const PROGRESS_ROWS_PER_STATEMENT = 1_000;

/** The condition of a WhileStreaming write, checked in the UPDATE itself (RawSql's `onlyIf`). */
function streamingBy(owner: string | null | undefined): Partial<Message> {
  return owner ? { status: 'streaming', ownerInstance: owner } : { status: 'streaming' };
}

/** What a beforeRemove hook leaves to be done once the conversation is deleted. */
export type AfterRemove = () => Promise<void>;

/** Where a search found a conversation by one of its messages. */
export interface MessageMatch {
  messageId: string;
  role: MessageRole;
  snippet: SearchSnippet;
}

/** A lease end no row has: the default bound of the sweep's "too far ahead to be real" (none). */
const FAR_FUTURE = new Date(8.64e15);

/** Messages deleted per statement on SQLite when their conversation goes (deleteMessagesInChunks). */
export const DELETE_CHUNK = 200;

/**
 * The distinct words of a folded search text, longest first (the rarest, likely), at most SEARCH_WORDS_MAX: each is
 * one LIKE of every message's text. A word inside another ("bread", "breadcrumbs") is one condition, the longer.
 */
function searchWords(needle: string): string[] {
  const words = [...new Set(needle.split(/\s+/).filter((w) => w.length > 0))].sort((a, b) => b.length - a.length);
  return words.filter((w, i) => !words.slice(0, i).some((longer) => longer.includes(w))).slice(0, SEARCH_WORDS_MAX);
}

/** The most words a search matches each of (the rest of a longer text is not required). */
const SEARCH_WORDS_MAX = 8;

/** `column LIKE ? ESCAPE '\'` once per pattern, joined by AND (positional parameters: the read worker's SQL). */
function likeEach(column: string, count: number): string {
  return Array.from({ length: count }, () => `${column} LIKE ? ESCAPE '\\'`).join(' AND ');
}

/** The same with named parameters (:like0, :like1, …) for TypeORM, and their values. */
function likeEachNamed(column: string, patterns: string[]): { sql: string; params: Record<string, string> } {
  return {
    sql: patterns.map((_, i) => `${column} LIKE :like${i} ESCAPE '\\'`).join(' AND '),
    params: Object.fromEntries(patterns.map((p, i) => [`like${i}`, p])),
  };
}

/** A LIKE pattern for text containing `needle` ("%" and "_" in it taken literally; a backslash escapes). */
function likePattern(needle: string): string {
  return `%${needle.replace(/[\\%_]/g, '\\$&')}%`;
}

/** Owns conversations and their messages. Another session's rows are reported exactly like missing ones. */
@Injectable()
export class ConversationsService {
  private readonly logger = new Logger(ConversationsService.name);

  constructor(
    @InjectRepository(Conversation) private readonly conversations: Repository<Conversation>,
    @InjectRepository(Message) private readonly messages: Repository<Message>,
    @InjectRepository(FileUpload) private readonly files: Repository<FileUpload>,
    @InjectDataSource() private readonly dataSource: DataSource,
    @Optional() private readonly reads?: SqliteReadService,
    @Optional() private readonly checkpoints?: SqliteCheckpointService,
  ) {
    this.raw = new RawSql(dataSource);
  }

  /** The hot path's writes (a turn's rows, a reply's saves) as fixed SQL. */
  private readonly raw: RawSql;

  private readonly progressQueue = new Map<string, QueuedProgress>();

  /** Told before a conversation is deleted (the chat module stops an answer still generating in it). */
  private readonly beforeRemoveHooks: Array<(conversationId: string) => Promise<AfterRemove | void>> = [];

  /**
   * Registers what must happen before a conversation is deleted; registered by modules that depend on
   * this one. A hook may give back what is to be done once the delete succeeded (best effort: its
   * failure is logged, the delete stands).
   */
  beforeRemove(hook: (conversationId: string) => Promise<AfterRemove | void>): void {
    this.beforeRemoveHooks.push(hook);
  }

  /** Runs the hooks of the conversations about to be deleted; the steps they give back are for after. */
  private async runBeforeRemove(conversationIds: string[]): Promise<AfterRemove[]> {
    const after: AfterRemove[] = [];
    for (const id of conversationIds) {
      for (const hook of this.beforeRemoveHooks) {
        const step = await hook(id);
        if (step) after.push(step);
      }
    }
    return after;
  }

  private async runAfterRemove(steps: AfterRemove[]): Promise<void> {
    for (const step of steps) {
      await step().catch((err: unknown) => this.logger.warn({ err: err instanceof Error ? err.message : err }, 'a step after deleting a conversation failed'));
    }
  }

  /**
   * A page of the session's conversations, newest first; with `search`, only those whose title or one of
   * whose finished messages contains each of its words (in any order: "bread banana" finds "Banana bread"),
   * and for those found by a message, where (`matches`, by id).
   */
  async list(sessionId: string, limit: number, offset: number, search?: string): Promise<{ items: Conversation[]; total: number; matches: Map<string, MessageMatch> }> {
    const order = { updatedAt: 'DESC', id: 'DESC' } as const;
    const matches = new Map<string, MessageMatch>();
    if (search === undefined) {
      const [items, total] = await this.conversations.findAndCount({ where: { sessionId }, order, take: limit, skip: offset });
      return { items, total, matches };
    }
    // Titles are matched here, not by SQL: SQLite's LOWER folds ASCII only and PostgreSQL's differs from
    // JavaScript's, so "école" did not find "ÉCOLE". One session's titles are read (ids and titles; thousands at
    // most). Messages are matched by SQL on their folded copy (search_text), folded by the same function.
    const needle = foldForSearch(search);
    const words = searchWords(needle);
    const titles = await this.sessionTitles(sessionId);
    const hasAll = (title: string): boolean => { const folded = foldForSearch(title); return words.every((w) => folded.includes(w)); };
    const byTitle = new Set(titles.filter((c) => c.title !== null && hasAll(c.title)).map((c) => c.id));
    const byText = words.length > 0 && byTitle.size < titles.length ? await this.mentioning(sessionId, words) : new Set<string>();
    const matching = titles.filter((c) => byTitle.has(c.id) || byText.has(c.id)).map((c) => c.id);
    const pageIds = matching.slice(offset, offset + limit);
    const rows = pageIds.length > 0 ? await this.conversations.findBy({ id: In(pageIds) }) : [];
    const byId = new Map(rows.map((c) => [c.id, c]));
    for (const id of pageIds) {
      if (byTitle.has(id)) continue;
      const match = await this.latestMatch(id, needle, words);
      if (match) matches.set(id, match);
    }
    return { items: pageIds.flatMap((id) => byId.get(id) ?? []), total: matching.length, matches };
  }

  /*
   * A search's reads grow with what the session holds (every title, every message's text): on SQLite
   * they run on the read worker (SqliteReadService), off the event loop; on PostgreSQL, or without the
   * worker, as TypeORM queries of the same shape.
   */

  /** The session's conversations' ids and titles, in the list's order. */
  private async sessionTitles(sessionId: string): Promise<Pick<Conversation, 'id' | 'title'>[]> {
    return await this.reads?.all<Pick<Conversation, 'id' | 'title'>>(
      'SELECT id, title FROM conversations WHERE session_id = ? ORDER BY updated_at DESC, id DESC', [sessionId],
    ) ?? await this.conversations.find({ where: { sessionId }, order: { updatedAt: 'DESC', id: 'DESC' }, select: { id: true, title: true } });
  }

  /** The session's conversations with a finished message whose folded text contains every one of `words` (folded). */
  private async mentioning(sessionId: string, words: string[]): Promise<Set<string>> {
    const patterns = words.map(likePattern);
    const named = likeEachNamed('m.search_text', patterns);
    const rows = await this.reads?.all<{ id: string }>(
      'SELECT DISTINCT m.conversation_id AS id FROM messages m INNER JOIN conversations c ON c.id = m.conversation_id '
      + `WHERE c.session_id = ? AND ${likeEach('m.search_text', patterns.length)}`, [sessionId, ...patterns],
    ) ?? await this.messages.createQueryBuilder('m')
      .select('DISTINCT m.conversation_id', 'id')
      .innerJoin(Conversation, 'c', 'c.id = m.conversation_id')
      .where(`c.session_id = :sessionId AND ${named.sql}`, { sessionId, ...named.params })
      .getRawMany<{ id: string }>();
    return new Set(rows.map((r) => r.id));
  }

  /**
   * The newest message of the conversation that contains every one of `words` (folded), with a snippet around
   * the whole `needle` where the message has it as written, else around its longest word.
   */
  private async latestMatch(conversationId: string, needle: string, words: string[]): Promise<MessageMatch | undefined> {
    const patterns = words.map(likePattern);
    const offLoop = this.reads?.all<Pick<Message, 'id' | 'role' | 'content'>>(
      `SELECT id, role, content FROM messages WHERE conversation_id = ? AND ${likeEach('search_text', patterns.length)} `
      + 'ORDER BY position DESC LIMIT 1', [conversationId, ...patterns],
    );
    const named = likeEachNamed('m.search_text', patterns);
    const message = offLoop ? (await offLoop)[0] : await this.messages.createQueryBuilder('m')
      .select(['m.id', 'm.role', 'm.content'])
      .where(`m.conversation_id = :conversationId AND ${named.sql}`, { conversationId, ...named.params })
      .orderBy('m.position', 'DESC')
      .limit(1)
      .getOne();
    if (!message) return undefined;
    const text = searchableText(message.role, message.content);
    const snippet = snippetAround(text, needle) ?? snippetAround(text, words[0])
      // The copy and the text disagree (a message folded before a change of the fold): its start, unmarked.
      ?? { text: `${text.slice(0, 120).replace(/\s+/g, ' ')}${text.length > 120 ? '…' : ''}`, start: 0, length: 0 };
    return { messageId: message.id, role: message.role, snippet };
  }

  async create(sessionId: string, title: string | null = null): Promise<Conversation> {
    const now = new Date();
    const conversation = this.conversations.create({
      id: newId(), sessionId, title: title === null ? null : cleanTitle(title), createdAt: now, updatedAt: now,
      isActive: true, messageCount: 0, nextPosition: 0,
    });
    await this.conversations.insert(conversation);
    return conversation;
  }

  async findOwned(sessionId: string, id: string): Promise<Conversation> {
    const [conversation] = await this.raw.find(Conversation, 'owned', (q) => `SELECT ${q.columns} FROM ${q.table} WHERE ${q.col('id')} = ${q.param(0)} AND ${q.col('sessionId')} = ${q.param(1)}`, [id, sessionId]);
    if (!conversation) throw new AppException(ErrorCode.ConversationNotFound, 'Conversation not found');
    return conversation;
  }

  async rename(sessionId: string, id: string, title: string): Promise<Conversation> {
    // Checked before ownership, as the body's other checks are (a title of only invisible characters is blank).
    const clean = cleanTitle(title);
    // The schema's length check skips variation selectors (❤️ counted 1 of its 2): counted again here, as stored.
    const problem = !isVisibleTitle(clean) ? 'title must not be blank'
      : titleLength(title.trim()) > TITLE_MAX ? `title must be shorter than or equal to ${TITLE_MAX} characters` : undefined;
    if (problem) throw new AppException(ErrorCode.ValidationError, problem, { fields: [{ field: 'title', errors: [problem] }] });
    const conversation = await this.findOwned(sessionId, id);
    conversation.title = clean;
    conversation.updatedAt = new Date();
    await this.conversations.update({ id }, { title: conversation.title, updatedAt: conversation.updatedAt });
    return conversation;
  }

  async remove(sessionId: string, id: string): Promise<void> {
    // Ownership first: nothing of another session's conversation is touched (404 as if missing).
    await this.findOwned(sessionId, id);
    const after = await this.runBeforeRemove([id]);
    await this.deleteMessagesInChunks([id]);
    const result = await this.conversations.delete({ id, sessionId });
    if (!result.affected) throw new AppException(ErrorCode.ConversationNotFound, 'Conversation not found');
    await this.runAfterRemove(after);
    await this.checkpoints?.scrub();
  }

  /**
   * Deletes every conversation of a session (its data erased), each told to its hooks first as `remove` does.
   * The caller scrubs the SQLite WAL once it has erased everything else too.
   */
  async removeAllOf(sessionId: string): Promise<number> {
    const owned = await this.conversations.find({ where: { sessionId }, select: { id: true } });
    const after = await this.runBeforeRemove(owned.map((c) => c.id));
    await this.deleteMessagesInChunks(owned.map((c) => c.id));
    const result = await this.conversations.delete({ sessionId });
    await this.runAfterRemove(after);
    return result.affected ?? 0;
  }

  /**
   * On SQLite, deletes the messages of the conversations `ids` before their rows go, oldest first,
   * DELETE_CHUNK rows per statement with a turn of the event loop between: a statement runs on the
   * event loop there, and the one delete that took a conversation of 10,000 answers with it (by the
   * schema's cascade) stalled every stream for ~0.3 s, a session's erasure for ~0.7 s. Meanwhile the
   * conversation stays, losing its oldest pages first; its row's delete then takes what was added
   * since. PostgreSQL's cascade blocks no event loop and stays one statement.
   */
  private async deleteMessagesInChunks(ids: string[]): Promise<void> {
    if (this.dataSource.options.type !== 'better-sqlite3') return;
    for (const conversationId of ids) {
      for (;;) {
        const chunk = await this.messages.find({ where: { conversationId }, select: { id: true }, order: { position: 'ASC' }, take: DELETE_CHUNK });
        if (chunk.length === 0) break;
        await this.messages.delete({ id: In(chunk.map((m) => m.id)) });
        if (chunk.length < DELETE_CHUNK) break;
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
  }

  /** Sets the title only if none is set yet (the first message names the conversation). */
  async setTitleIfEmpty(id: string, title: string): Promise<void> {
    await this.conversations.createQueryBuilder().update().set({ title: cleanTitle(title) })
      .where('id = :id AND title IS NULL', { id }).execute();
  }

  /**
   * Appends messages in one transaction (every transaction goes through inTransaction(): SQLite needs
   * them queued). The counter update takes the row's write lock
   * (PostgreSQL row lock; SQLite's database lock), so concurrent appends get distinct positions.
   */
  async appendMessages(conversationId: string, drafts: MessageDraft[]): Promise<Message[]> {
    return this.append(conversationId, drafts, new Date(), false);
  }

  /**
   * A running reply's progress: its content so far and its lease, each when given. The hot write
   * of streaming (every flush interval per stream), so fixed SQL, no query building. Written only
   * while the row is still `streaming` (and `owner`'s, when given: WhileStreaming), in the same
   * UPDATE; resolves to false when it was not (the row gone, or ended elsewhere).
   */
  saveProgress(id: string, content: string | undefined, leaseExpiresAt: Date | undefined, owner?: string | null): Promise<boolean> {
    // Saves of one event-loop turn (all running replies flush on one timer) share one transaction:
    // one commit instead of one per reply.
    return new Promise((resolve, reject) => {
      const queued = this.progressQueue.get(id);
      if (queued) {
        if (content !== undefined) queued.content = content;
        if (leaseExpiresAt !== undefined) queued.leaseExpiresAt = leaseExpiresAt;
        if (owner) queued.owner = owner;
        queued.waiters.push({ resolve, reject });
      } else {
        this.progressQueue.set(id, { content, leaseExpiresAt, owner: owner ?? undefined, waiters: [{ resolve, reject }] });
      }
      if (this.progressQueue.size === 1 && !queued) setImmediate(() => { void this.writeProgress(); });
    });
  }

  private async writeProgress(): Promise<void> {
    const batch = [...this.progressQueue];
    this.progressQueue.clear();
    if (batch.length === 0) return;
    const updatedAt = new Date();
    try {
      const changed: boolean[] = [];
      if (this.savesSynchronously) {
        // SQLite: one transaction for the batch, RawSql's fixed SQL prepared once and run on the spot: a batch of
        // 150 replies in ~1 ms instead of ~7 ms of TypeORM queries, during which every other stream's next token waits.
        await inTransaction(this.dataSource, async (em) => {
          const counts = await Promise.all(batch.map(([id, p]) =>
            this.raw.update(Message, id, { content: p.content, leaseExpiresAt: p.leaseExpiresAt, updatedAt }, em, streamingBy(p.owner))));
          changed.push(...counts.map((n) => n > 0));
        });
      } else {
        // PostgreSQL: the batch in one statement (150 replies were 152 round trips: BEGIN, an UPDATE each, COMMIT).
        for (let at = 0; at < batch.length; at += PROGRESS_ROWS_PER_STATEMENT) {
          const part = batch.slice(at, at + PROGRESS_ROWS_PER_STATEMENT);
          const saved = await this.raw.updateMany(Message, ['content', 'leaseExpiresAt', 'updatedAt'], ['status', 'ownerInstance'],
            part.map(([id, p]) => ({ id, patch: { content: p.content, leaseExpiresAt: p.leaseExpiresAt, updatedAt }, onlyIf: streamingBy(p.owner) })));
          changed.push(...part.map(([id]) => saved.has(id)));
        }
      }
      batch.forEach(([, p], i) => { for (const w of p.waiters) w.resolve(changed[i]); });
    } catch (err) {
      if (batch.length > 1 && isLockTimeout(err)) {
        // One reply's row locked elsewhere (an operator's open transaction) failed the whole batch after the lock
        // timeout: each is saved on its own, so only that reply waits for its lock and the others are stored.
        await Promise.all(batch.map(async ([id, p]) => {
          try {
            const n = await this.raw.update(Message, id, { content: p.content, leaseExpiresAt: p.leaseExpiresAt, updatedAt }, undefined, streamingBy(p.owner));
            for (const w of p.waiters) w.resolve(n > 0);
          } catch (one) {
            for (const w of p.waiters) w.reject(one);
          }
        }));
        return;
      }
      for (const [, p] of batch) for (const w of p.waiters) w.reject(err);
    }
  }

  /**
   * Sets fields of an answer; its final text is also folded for search, without the model's thinking
   * (a question's edit is stored with the turn that answers it: `append`). With `whileStreaming` (a
   * reply's end), only while the reply still runs (WhileStreaming). False when nothing was written.
   */
  async updateMessage(id: string, patch: MessagePatch, whileStreaming?: WhileStreaming): Promise<boolean> {
    return (await this.raw.update(Message, id, withSearchText(patch, 'assistant'), undefined, whileStreaming && streamingBy(whileStreaming.owner))) > 0;
  }

  /**
   * True when `updateMessageNow` stores before it returns (SQLite: one connection, on this
   * thread): no request handled after the call can read the row as it was before it.
   */
  get savesSynchronously(): boolean {
    return this.raw.isSynchronous;
  }

  /** As `updateMessage`, stored when it returns (throws what the database throws); only where `savesSynchronously`. */
  updateMessageNow(id: string, patch: MessagePatch, whileStreaming?: WhileStreaming): boolean {
    return this.raw.updateNow(Message, id, withSearchText(patch, 'assistant'), whileStreaming && streamingBy(whileStreaming.owner)) > 0;
  }

  /**
   * Takes back a turn stored by a send that was then refused (a file it names deleted meanwhile, or its copy over
   * the quota): the send answers an error, so nothing of it may stay. The conversation goes too when the turn
   * created it (a new conversation holds nothing else yet).
   */
  async withdrawTurn(conversationId: string, messageIds: string[], createdByTurn: boolean): Promise<void> {
    if (createdByTurn) {
      await this.conversations.delete({ id: conversationId });
      return;
    }
    await inTransaction(this.dataSource, async (em) => {
      const deleted = (await em.delete(Message, { id: In(messageIds), conversationId })).affected ?? 0;
      if (deleted > 0) {
        await em.createQueryBuilder().update(Conversation).set({ messageCount: () => `message_count - ${deleted}` })
          .where('id = :id', { id: conversationId }).execute();
      }
    });
  }

  /** Deletes one message (e.g. an answer replaced by a completed regeneration). */
  async deleteMessage(id: string): Promise<void> {
    await inTransaction(this.dataSource, async (em) => {
      const msg = await em.findOneBy(Message, { id });
      if (!msg) return;
      await em.delete(Message, { id });
      await em.createQueryBuilder().update(Conversation).set({ messageCount: () => 'message_count - 1' })
        .where('id = :id', { id: msg.conversationId }).execute();
    });
  }

  /**
   * Deletes the earlier answers to the question `reply` answers (every assistant message between
   * that question and `reply`): a regeneration that completed replaces them all, including the
   * answers of regenerations stopped or failed before it, which it used to leave for good.
   */
  async deleteEarlierAnswers(reply: Pick<Message, 'conversationId' | 'position'>): Promise<number> {
    return inTransaction(this.dataSource, async (em) => {
      const from = (await this.questionBefore(reply, em))?.position ?? -1;
      const result = await em.createQueryBuilder().delete().from(Message)
        .where('conversation_id = :conversationId AND role = :role AND position > :from AND position < :to',
          { conversationId: reply.conversationId, role: 'assistant', from, to: reply.position })
        .execute();
      const deleted = result.affected ?? 0;
      if (deleted > 0) {
        await em.createQueryBuilder().update(Conversation).set({ messageCount: () => `message_count - ${deleted}` })
          .where('id = :id', { id: reply.conversationId }).execute();
      }
      return deleted;
    });
  }

  /** The answer the conversation shows to the question `user`: the last assistant message before the next question. */
  async latestAnswerTo(user: Pick<Message, 'conversationId' | 'position'>): Promise<Message | null> {
    const next = await this.messages.findOne({
      where: { conversationId: user.conversationId, role: 'user', position: MoreThan(user.position) }, order: { position: 'ASC' },
    });
    return this.messages.findOne({
      where: {
        conversationId: user.conversationId, role: 'assistant',
        position: next ? And(MoreThan(user.position), LessThan(next.position)) : MoreThan(user.position),
      },
      order: { position: 'DESC' },
    });
  }

  /** The user's message that the answer at `position` answers: the last one before it. */
  questionBefore(at: Pick<Message, 'conversationId' | 'position'>, em: EntityManager = this.dataSource.manager): Promise<Message | null> {
    return em.findOne(Message, {
      where: { conversationId: at.conversationId, role: 'user', position: LessThan(at.position) },
      order: { position: 'DESC' },
    });
  }

  /** A message of one's own conversation; another session's is 404 like a missing one. */
  async findOwnedMessage(sessionId: string, messageId: string): Promise<Message> {
    const message = await this.messages.createQueryBuilder('m')
      .innerJoin(Conversation, 'c', 'c.id = m.conversation_id')
      .where('m.id = :messageId AND c.session_id = :sessionId', { messageId, sessionId })
      .getOne();
    if (!message) throw new AppException(ErrorCode.MessageNotFound, 'Message not found');
    return message;
  }

  findMessage(id: string): Promise<Message | null> {
    return this.messages.findOneBy({ id });
  }

  findByIdempotencyKey(conversationId: string, key: string): Promise<Message | null> {
    return this.messages.findOneBy({ conversationId, idempotencyKey: key });
  }

  /** The newest `limit` messages before `before` (a position), oldest first. Uses the (conversation, position) index. */
  async page(conversationId: string, limit: number, before?: number): Promise<MessagePage> {
    // Fixed SQL (RawSql): behind every conversation opened (and a regeneration's history).
    const rows = before === undefined
      ? await this.raw.find(Message, 'latest', (q) => `SELECT ${q.columns} FROM ${q.table} WHERE ${q.col('conversationId')} = ${q.param(0)} `
        + `ORDER BY ${q.col('position')} DESC LIMIT ${q.param(1)}`, [conversationId, limit + 1])
      : await this.raw.find(Message, 'before', (q) => `SELECT ${q.columns} FROM ${q.table} WHERE ${q.col('conversationId')} = ${q.param(0)} `
        + `AND ${q.col('position')} < ${q.param(1)} ORDER BY ${q.col('position')} DESC LIMIT ${q.param(2)}`, [conversationId, before, limit + 1]);
    const hasMore = rows.length > limit;
    const hasNewer = before !== undefined && await this.messages.existsBy({ conversationId, position: MoreThanOrEqual(before) });
    return { messages: rows.slice(0, limit).reverse(), hasMore, hasNewer };
  }

  /** The oldest `limit` messages after `after` (a position), oldest first: reading on from a page opened around a message. */
  async pageAfter(conversationId: string, limit: number, after: number): Promise<MessagePage> {
    const rows = await this.messages.find({ where: { conversationId, position: MoreThan(after) }, order: { position: 'ASC' }, take: limit + 1 });
    const messages = rows.slice(0, limit);
    // Not `after + 1`: at the largest position a cursor may name, that overflowed PostgreSQL's integer (500).
    const hasMore = await this.messages.existsBy({ conversationId, position: messages[0] ? LessThan(messages[0].position) : LessThanOrEqual(after) });
    return { messages, hasMore, hasNewer: rows.length > limit };
  }

  /**
   * The page of `limit` messages holding message `messageId` of the conversation (a search match): up
   * to a quarter of the page after it, the rest before it, oldest first. Null when the conversation has
   * no such message.
   */
  async pageAround(conversationId: string, limit: number, messageId: string): Promise<MessagePage | null> {
    const target = await this.messages.findOne({ where: { id: messageId, conversationId }, select: { id: true, position: true } });
    if (!target) return null;
    // The message itself and up to a quarter of the page after it, read with one more to tell whether there are newer.
    const shown = Math.floor(limit / 4) + 1;
    const newer = await this.messages.find({
      where: { conversationId, position: MoreThanOrEqual(target.position) }, order: { position: 'ASC' }, take: shown + 1,
    });
    const from = newer.slice(0, shown);
    const older = await this.messages.find({
      where: { conversationId, position: LessThan(target.position) }, order: { position: 'DESC' }, take: limit - from.length + 1,
    });
    return {
      messages: [...older.slice(0, limit - from.length).reverse(), ...from],
      hasMore: older.length > limit - from.length,
      hasNewer: newer.length > from.length,
    };
  }

  /**
   * The newest `limit` messages, oldest first, with only what a prompt's history reads of them:
   * behind every follow-up question, where the whole rows (21 columns, converted one by one) of a
   * long conversation's 200 cost more than the statement.
   */
  async historyOf(conversationId: string, limit: number): Promise<HistoryMessage[]> {
    const rows = await this.raw.find(Message, 'history', (q) => `SELECT ${HISTORY_COLUMNS.map(q.col).join(', ')} FROM ${q.table} `
      + `WHERE ${q.col('conversationId')} = ${q.param(0)} ORDER BY ${q.col('position')} DESC LIMIT ${q.param(1)}`, [conversationId, limit]);
    return rows.reverse();
  }

  /** How many messages of the conversation come before `position`; all of them without one. */
  async countBefore(conversationId: string, position?: number): Promise<number> {
    return this.messages.countBy(position === undefined ? { conversationId } : { conversationId, position: LessThan(position) });
  }

  /** Files attached to the given messages, for display. */
  async attachments(messageIds: string[]): Promise<Attachment[]> {
    return this.filesOf(messageIds, ['id', 'messageId', 'filename', 'fileType', 'fileSize']);
  }

  /**
   * Appends one chat turn (the user message and the assistant row that streams the reply) in
   * one transaction, unless a reply is still streaming in this conversation under a live lease
   * (any instance): then GENERATION_IN_PROGRESS. The counter update takes the conversation's
   * write lock first, so two instances cannot both pass the check.
   */
  async appendTurn(conversationId: string, drafts: MessageDraft[], now = new Date()): Promise<Message[]> {
    return this.append(conversationId, drafts, now, true);
  }

  /**
   * Appends a regeneration's reply as appendTurn does, and only while `question` is still the
   * conversation's last (else 409 CONFLICT): its edit is written in the same transaction, after
   * both checks, so a refused regeneration changes nothing (the edit was written first, and a
   * 409 from another instance's running reply left the question and the title changed).
   */
  async appendAnswer(conversationId: string, question: AnsweredQuestion, drafts: MessageDraft[], now = new Date()): Promise<Message[]> {
    return this.append(conversationId, drafts, now, true, question);
  }

  /**
   * Both appends: counters first (the conversation's write lock; they return the position after
   * the turn), then the optional busy check (a statement of its own after the lock: on PostgreSQL
   * a statement's snapshot is taken at its start, and one that waited for the lock must see what
   * its holder committed), then the rows. Fixed SQL (RawSql), the same statements on both paths of
   * `transaction`.
   */
  private async append(
    conversationId: string, drafts: MessageDraft[], now: Date, refuseWhileStreaming: boolean, question?: AnsweredQuestion,
  ): Promise<Message[]> {
    const bump = [drafts.length, drafts.length, this.raw.param(Conversation, 'updatedAt', now), conversationId];
    const busy = [conversationId, this.raw.param(Message, 'leaseExpiresAt', now)];
    const edit = question?.edit;
    const retitle = edit?.title && [cleanTitle(edit.title.to), conversationId, cleanTitle(edit.title.from)];
    return this.transaction(() => {
      const counter = this.raw.findNow(Conversation, 'bump', BUMP_COUNTERS, bump);
      const streaming = refuseWhileStreaming ? this.raw.findNow(Message, 'streaming-in', STREAMING_IN, busy) : [];
      const rows = this.turnRows(conversationId, drafts, now, streaming, counter);
      if (question) {
        assertLastQuestion(this.raw.findNow(Message, 'last-question', LAST_QUESTION, [conversationId]), question);
        if (edit) this.raw.updateNow(Message, question.id, withSearchText(edit.patch, 'user'));
        if (retitle) this.raw.findNow(Conversation, 'retitle', RETITLE, retitle);
      }
      this.raw.insertNow(Message, rows);
      return rows;
    }, async (em) => {
      const counter = await this.raw.find(Conversation, 'bump', BUMP_COUNTERS, bump, em);
      const streaming = refuseWhileStreaming ? await this.raw.find(Message, 'streaming-in', STREAMING_IN, busy, em) : [];
      const rows = this.turnRows(conversationId, drafts, now, streaming, counter);
      if (question) {
        assertLastQuestion(await this.raw.find(Message, 'last-question', LAST_QUESTION, [conversationId], em), question);
        if (edit) await this.raw.update(Message, question.id, withSearchText(edit.patch, 'user'), em);
        if (retitle) await this.raw.find(Conversation, 'retitle', RETITLE, retitle, em);
      }
      await this.raw.insert(Message, rows, em);
      return rows;
    });
  }

  /**
   * The same writes two ways: `now` in a SQLite transaction run on the spot (RawSql.transactionNow:
   * no TypeORM query runner, events or promises around BEGIN and COMMIT), else `later` through
   * inTransaction() (PostgreSQL, or SQLite while another transaction is open on its connection).
   */
  private async transaction<T>(now: () => T, later: (em: EntityManager) => Promise<T>): Promise<T> {
    if (this.raw.isSynchronous) {
      let result: { value: T } | undefined;
      if (this.raw.transactionNow(() => { result = { value: now() }; }) && result) return result.value;
    }
    return inTransaction(this.dataSource, later);
  }

  /** An append's rows at the positions its counter gave, once its checks pass (a throw rolls the counter back). */
  private turnRows(conversationId: string, drafts: MessageDraft[], now: Date, streaming: Message[], counter: Conversation[]): Message[] {
    if (streaming[0]) throw new AppException(ErrorCode.GenerationInProgress, 'A reply is still being generated in this conversation', { message_id: streaming[0].id });
    // Deleted after the request found it (a delete racing the send): missing, as for any request.
    if (!counter[0]) throw new AppException(ErrorCode.ConversationNotFound, 'Conversation not found');
    return this.messageRows(conversationId, counter[0].nextPosition - drafts.length, drafts, now);
  }

  /**
   * Creates a conversation together with its first turn in one transaction (the hot path of a
   * first message: one commit, no counter read-back, nothing to be busy with yet).
   */
  async createWithTurn(sessionId: string, title: string, drafts: MessageDraft[], now = new Date()): Promise<{ conversation: Conversation; messages: Message[] }> {
    const conversation = this.conversations.create({
      id: newId(), sessionId, title: cleanTitle(title), createdAt: now, updatedAt: now,
      isActive: true, messageCount: drafts.length, nextPosition: drafts.length,
    });
    const rows = this.messageRows(conversation.id, 0, drafts, now);
    if (this.raw.isSynchronous) {
      await this.transaction(() => {
        this.raw.insertNow(Conversation, [conversation]);
        this.raw.insertNow(Message, rows);
      }, async (em) => {
        await this.raw.insert(Conversation, [conversation], em);
        await this.raw.insert(Message, rows, em);
      });
    } else {
      // PostgreSQL: one statement (stored whole or not at all), one round trip.
      await this.raw.insertTogether([{ target: Conversation, rows: [conversation] }, { target: Message, rows }]);
    }
    return { conversation, messages: rows };
  }

  /** New message rows at consecutive positions from `first`. */
  private messageRows(conversationId: string, first: number, drafts: MessageDraft[], now: Date): Message[] {
    return drafts.map((d, i) => this.messages.create({
      id: newId(), conversationId, position: first + i, role: d.role, content: d.content, status: d.status,
      createdAt: now, updatedAt: now, tokenCount: d.tokenCount ?? null, modelName: d.modelName ?? null,
      finishReason: null, errorCode: null, promptTokens: null, completionTokens: null,
      feedback: null, feedbackComment: null, feedbackAt: null,
      ownerInstance: d.ownerInstance ?? null, leaseExpiresAt: d.leaseExpiresAt ?? null,
      idempotencyKey: d.idempotencyKey ?? null, replacesId: d.replacesId ?? null, contextNotice: d.contextNotice ?? null,
      searchText: d.status === 'streaming' ? null : searchTextOf(d.role, d.content),
    }));
  }

  /** The messages a session stored under an Idempotency-Key (in any of its conversations). */
  findByIdempotencyKeyForSession(sessionId: string, key: string): Promise<Message[]> {
    return this.messages.createQueryBuilder('m')
      .innerJoin(Conversation, 'c', 'c.id = m.conversation_id')
      .where('c.session_id = :sessionId AND m.idempotency_key = :key', { sessionId, key })
      .orderBy('m.position', 'ASC')
      .getMany();
  }

  /**
   * Ends a reply still `streaming` as `interrupted`, only if its owner's lease expired before
   * `expiredBefore` (never a live reply); stamped `now` (the cutoff can be far in the future at
   * boot: it must never become the row's time). `content` is folded for search and its `tokenCount`
   * stored (a row ended by a sweep had none: its owner died before writing its end); with
   * `isNewContent` it is also stored, as the reply's text (ahead of the row's: GenerationService.sweepExpiredLeases).
   */
  async markInterruptedIfExpired(id: string, expiredBefore: Date, errorCode: string, ending: InterruptedEnding = {}): Promise<boolean> {
    const { now = new Date(), content, isNewContent = false, tokenCount, leasedPast = FAR_FUTURE } = ending;
    const text = content === undefined ? {} : { searchText: searchTextOf('assistant', content), ...(isNewContent ? { content } : {}) };
    const tokens = tokenCount === undefined ? {} : { tokenCount, completionTokens: tokenCount };
    const result = await this.messages.createQueryBuilder().update(Message)
      .set({ status: 'interrupted', errorCode, leaseExpiresAt: null, updatedAt: now, ...text, ...tokens })
      .where('id = :id AND status = :status AND (lease_expires_at < :expiredBefore OR lease_expires_at > :leasedPast)', { id, status: 'streaming', expiredBefore, leasedPast })
      .execute();
    return (result.affected ?? 0) > 0;
  }

  /**
   * Extracted text of the files attached to the given messages, for the model's context. Files
   * over `maxTokensEach` come without their text (they could never fit), so large texts are not
   * read on every turn.
   */
  async attachmentTexts(messageIds: string[], maxTokensEach: number): Promise<AttachmentText[]> {
    const meta = await this.filesOf(messageIds, ['id', 'messageId', 'filename', 'tokenCount', 'createdAt']);
    const small = meta.filter((f) => f.tokenCount <= maxTokensEach).map((f) => f.id);
    const texts = small.length === 0 ? [] : await this.files.find({ select: { id: true, extractedText: true }, where: { id: In(small) } });
    const byId = new Map(texts.map((t) => [t.id, t.extractedText]));
    return meta.map((f) => ({
      messageId: f.messageId ?? '', filename: f.filename, extractedText: byId.get(f.id) ?? '', tokenCount: f.tokenCount, isOmitted: !byId.has(f.id),
    }));
  }

  /**
   * The given columns of the files attached to these messages, in attachment order. Fixed SQL
   * (RawSql), one statement per number of messages (a page's or a history's questions, 200 at
   * most): read behind every follow-up question and every conversation opened, mostly finding none.
   */
  private async filesOf<K extends keyof FileUpload>(messageIds: string[], columns: K[]): Promise<Array<Pick<FileUpload, K>>> {
    if (messageIds.length === 0) return [];
    return this.raw.find(FileUpload, `${columns.join(',')}:of:${messageIds.length}`, (q) => `SELECT ${columns.map(q.col).join(', ')} `
      + `FROM ${q.table} WHERE ${q.col('messageId')} IN (${messageIds.map((_, i) => q.param(i)).join(', ')}) `
      + `ORDER BY ${Object.entries(ATTACHMENT_ORDER).map(([property, direction]) => `${q.col(property)} ${direction}`).join(', ')}`, messageIds);
  }

  /**
   * Replaces the automatic title of a conversation's first answer, unless the user renamed the conversation
   * meanwhile: a rename moves `updated_at` on from `created_at` (nothing else can before the first answer ends:
   * a message may not be added while it streams), even one that keeps the title shown as it was.
   */
  async replaceTitle(id: string, from: string, to: string): Promise<void> {
    await this.conversations.createQueryBuilder().update().set({ title: cleanTitle(to) })
      .where('id = :id AND title = :from AND updated_at = created_at', { id, from: cleanTitle(from) }).execute();
  }

  /** The session's conversations with a reply still streaming (by the partial index of streaming rows). */
  async streamingConversationsOf(sessionId: string): Promise<string[]> {
    const rows = await this.messages.createQueryBuilder('m')
      .select('DISTINCT m.conversation_id', 'conversationId')
      .innerJoin(Conversation, 'c', 'c.id = m.conversation_id')
      .where('m.status = :status AND c.session_id = :sessionId', { status: 'streaming', sessionId })
      .getRawMany<{ conversationId: string }>();
    return rows.map((r) => r.conversationId);
  }

  /**
   * Rows left `streaming` whose owner's lease has expired (the owner died), or runs out after
   * `leasedPast`: further ahead than any owner renews it, so written by a clock or a time zone not
   * this one (a release that stored local times, an instance whose clock is hours off), which held
   * its conversation for those hours.
   */
  findExpiredStreaming(now: Date, limit = 100, leasedPast: Date = FAR_FUTURE): Promise<Message[]> {
    return this.raw.find(Message, 'expired-streaming', EXPIRED_STREAMING, [
      this.raw.param(Message, 'leaseExpiresAt', now), this.raw.param(Message, 'leaseExpiresAt', leasedPast), limit,
    ]);
  }
}

/** PostgreSQL's 55P03: a lock not granted within lock_timeout (TypeORM keeps the driver's error). */
function isLockTimeout(err: unknown): boolean {
  const e = err as { code?: unknown; driverError?: { code?: unknown } } | null;
  return e?.code === '55P03' || e?.driverError?.code === '55P03';
}
