import { randomUUID } from 'node:crypto';
import { open, rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { Inject, Injectable, Logger, type OnApplicationBootstrap, Optional } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { In, IsNull, LessThan, type Repository } from 'typeorm';
import type { AttachedFile, ChatAttachments } from '../chat/chat-attachments.js';
import type { FileText } from '../chat/token-budget.js';
import { AppException } from '../common/app.exception.js';
import { ErrorCode } from '../common/error-code.js';
import { STORAGE_FULL_DETAILS } from '../common/dependency-outage.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { ConversationsService } from '../conversations/conversations.service.js';
import { FileScanner } from './file-scanner.js';
import { FileStorage, StoredObjectMissing, storageKeyFor } from './file-storage.js';
import { FileUpload } from './file-upload.entity.js';
import type { ListFilesQueryDto, UploadFileDto } from './file.dto.js';
import { fileExtension, sanitizeFilename } from './filename-sanitizer.js';
import { SessionUploads } from './session-uploads.js';
import type { ReceivedUpload } from './temp-upload-storage.js';
import { TextExtractor } from './text-extractor.js';
import { DistributedLock } from '../redis/redis-lock.js';
import { SqliteCheckpointService } from '../database/sqlite-checkpointer.js';
import { isForeignKeyViolation } from '../common/foreign-key.js';
import { formatSize } from './file-size.js';

/** The PDF header may follow a little junk (the PDF reference allows it within the first KiB). */
function looksLikePdf(head: Buffer): boolean {
  return head.subarray(0, 1024).includes('%PDF-');
}

const notFound = (): AppException => new AppException(ErrorCode.FileNotFound, 'File not found');

/** What a row's extracted text takes in the database, as OCTET_LENGTH counts it in `usage`: UTF-8 bytes. */
const textBytes = (text: string): number => Buffer.byteLength(text, 'utf8');

/** Who sent an upload (the client's address, as the rate limits see it), and when its request is over. */
export interface UploadClient {
  address: string;
  /** Aborts once the client is gone before its answer: a waiting file leaves the line, one being read is stopped. */
  signal?: AbortSignal;
}

/**
 * Uploaded files: validation, quota, scanning, extraction, storage and their rows.
 * Bytes are stored once per (session, content, type) and shared by every row that refers to
 * them; they are deleted when the last such row goes (or by the orphan sweep). Each row holds its
 * own copy of the extracted text, so the quota counts both (`usage`).
 */
@Injectable()
export class FilesService implements ChatAttachments, OnApplicationBootstrap {
  private readonly logger = new Logger(FilesService.name);

  constructor(
    @InjectRepository(FileUpload) private readonly repo: Repository<FileUpload>,
    private readonly conversations: ConversationsService,
    private readonly storage: FileStorage,
    private readonly extractor: TextExtractor,
    private readonly scanner: FileScanner,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    /**
     * Per storage key, "add a reference, then store the bytes" and "drop a reference, then delete
     * the bytes if none is left" never interleave for the same object: in this process, and across
     * instances sharing the uploads volume when REDIS_URL is set.
     */
    private readonly locks: DistributedLock,
    private readonly uploads: SessionUploads,
    @Optional() private readonly checkpoints?: SqliteCheckpointService,
  ) {}

  /**
   * A conversation's files leave with it, bytes included: the schema cascades to their rows, but the
   * bytes then waited for the orphan sweep (up to twenty minutes), and a session erased meanwhile found
   * no row left to delete them by. Their storage keys are read before the delete, the bytes no row
   * refers to any more deleted after it (under each key's lock): a failure there (Redis away for the
   * lock) leaves them to the sweep and does not hold up the delete, and a file attached elsewhere
   * meanwhile keeps its bytes.
   */
  onApplicationBootstrap(): void {
    this.conversations.beforeRemove(async (conversationId) => {
      const keys = await this.storageKeysIn(conversationId);
      return keys.length === 0 ? undefined : () => this.deleteUnreferenced(keys);
    });
  }

  private async storageKeysIn(conversationId: string): Promise<string[]> {
    const rows = await this.repo.find({ where: { conversationId }, select: { id: true, storageKey: true } });
    return [...new Set(rows.map((r) => r.storageKey))];
  }

  private async deleteUnreferenced(keys: string[]): Promise<void> {
    for (const key of keys) await this.locks.run(key, () => this.deleteIfUnreferenced(key));
  }

  /** Whether an upload of this (sanitized) name's type is accepted at all: checked before any byte is stored. */
  assertAllowedType(originalName: string): string {
    const ext = fileExtension(sanitizeFilename(originalName));
    if (!ext || !this.config.limits.allowedExtensions.includes(ext)) {
      throw new AppException(ErrorCode.UnsupportedFileType,
        `Files of type ${ext || '(none)'} are not accepted; allowed: ${this.config.limits.allowedExtensions.join(' ')}`,
        { allowed_extensions: this.config.limits.allowedExtensions });
    }
    return ext;
  }

  /**
   * Refuses early when the session's quota is already used up, or the disk has no room for one
   * more upload above STORAGE_MIN_FREE_BYTES, before the upload is received.
   */
  async assertQuotaLeft(sessionId: string): Promise<void> {
    const used = await this.usage(sessionId);
    if (used >= this.config.limits.sessionQuotaBytes) throw this.quotaExceeded(used);
    await this.assertDiskRoom(this.config.limits.maxUploadBytes);
  }

  /**
   * Sessions are free and each has its own quota, so the quotas alone do not bound the disk: the
   * uploads (and the SQLite database, usually on the same disk) must leave this much free.
   */
  private async assertDiskRoom(needed: number): Promise<void> {
    const free = await this.storage.freeBytes();
    if (free !== undefined && free - needed < this.config.limits.storageMinFreeBytes) {
      this.logger.warn({ freeBytes: free, minFreeBytes: this.config.limits.storageMinFreeBytes }, 'upload refused: the uploads disk is nearly full');
      throw new AppException(ErrorCode.ServiceUnavailable, 'Uploads are paused: the server is low on storage. Try again later.', STORAGE_FULL_DETAILS);
    }
  }

  /**
   * Validates, scans, extracts and stores a received upload. The temp file is gone afterwards
   * whatever happens (moved into storage, or removed).
   */
  async upload(sessionId: string, file: ReceivedUpload | undefined, body: UploadFileDto, client: UploadClient = { address: '' }): Promise<FileUpload> {
    if (!file) {
      throw new AppException(ErrorCode.ValidationError, 'file is required (a multipart/form-data part named "file")',
        { fields: [{ field: 'file', errors: ['file is required'] }] });
    }
    try {
      if (body.session_id !== undefined && body.session_id !== sessionId) {
        throw new AppException(ErrorCode.SessionNotFound, 'Session not found');
      }
      if (body.conversation_id) await this.conversations.findOwned(sessionId, body.conversation_id);
      const filename = sanitizeFilename(file.originalname);
      const fileType = this.assertAllowedType(filename);
      if (file.size === 0) throw new AppException(ErrorCode.ValidationError, 'The file is empty');
      const storageKey = storageKeyFor(sessionId, file.sha256, fileType);
      // Early, so a full quota costs no scan or extraction; checked again, with the text, when the row is written.
      await this.assertFitsQuota(sessionId, storageKey, file.size, 0);

      if (fileType === '.pdf' && !looksLikePdf(await this.readTemp(file.path, 1024))) {
        throw new AppException(ErrorCode.UnsupportedFileType, 'The file is not a PDF (no PDF header)');
      }
      await this.scanner.scan(file.path);
      // One extraction per session at a time: its other upload in flight waits here, not in the shared
      // queue. The file is read when its turn comes, not while it waits.
      const extraction = await this.uploads.oneAtATime(sessionId,
        () => this.extractor.extract(() => this.readTemp(file.path, file.size), fileType, { client: client.address, signal: client.signal }));
      // The client left meanwhile: nothing is stored or charged for an answer nobody reads.
      if (client.signal?.aborted) throw new AppException(ErrorCode.ValidationError, 'Upload aborted');

      const row = this.repo.create({
        id: randomUUID(), sessionId, conversationId: body.conversation_id ?? null, messageId: null,
        filename, fileType, fileSize: file.size, storageKey, sha256: file.sha256,
        extractedText: extraction.text, tokenCount: extraction.tokenCount, pages: extraction.pages, createdAt: new Date(),
      });
      // The quota again, now atomically with the insert: concurrent uploads of one session (on any
      // instance) each passed the early check above against the same usage.
      await this.locks.run(`quota:${sessionId}`, async () => {
        await this.assertFitsQuota(sessionId, storageKey, file.size, textBytes(row.extractedText));
        // Again with the file's own size: storing may copy it (temp folder on another volume).
        await this.assertDiskRoom(file.size);
        await this.locks.run(storageKey, async () => {
          // The row first: bytes without a row could be swept, a row never points at nothing for long.
          await this.insertRow(row).catch(async (err: unknown) => {
            // Its conversation deleted while the file was read: 404 as for a send in the same race (the filter's 409 else).
            if (body.conversation_id && isForeignKeyViolation(err)) await this.conversations.findOwned(sessionId, body.conversation_id);
            throw err;
          });
          try {
            await this.storage.put(storageKey, file.path);
          } catch (err) {
            await this.repo.delete({ id: row.id });
            throw err;
          }
        });
      });
      return row;
    } finally {
      await rm(file.path, { force: true });
    }
  }

  async findOwned(sessionId: string, id: string): Promise<FileUpload> {
    const row = await this.repo.findOneBy({ id, sessionId });
    if (!row) throw notFound();
    return row;
  }

  /** A page of the caller's files, newest first, and how many there are; only one conversation's when asked (which must be theirs). */
  async list(sessionId: string, query: ListFilesQueryDto): Promise<{ items: FileUpload[]; total: number }> {
    if (query.session_id !== undefined && query.session_id !== sessionId) {
      throw new AppException(ErrorCode.SessionNotFound, 'Session not found');
    }
    if (query.conversation_id) await this.conversations.findOwned(sessionId, query.conversation_id);
    const [items, total] = await this.repo.findAndCount({
      // The extracted text can be megabytes per file: listing never loads it.
      select: {
        id: true, sessionId: true, conversationId: true, messageId: true, filename: true, fileType: true,
        fileSize: true, tokenCount: true, pages: true, createdAt: true,
      },
      where: query.conversation_id ? { sessionId, conversationId: query.conversation_id } : { sessionId },
      order: { createdAt: 'DESC', id: 'DESC' },
      take: query.limit,
      skip: query.offset,
    });
    return { items, total };
  }

  /** The stored bytes of one of the caller's files. */
  async openContent(sessionId: string, id: string): Promise<{ file: FileUpload; stream: Readable; size: number }> {
    const file = await this.findOwned(sessionId, id);
    try {
      return { file, ...(await this.storage.open(file.storageKey)) };
    } catch (err) {
      if (!(err instanceof StoredObjectMissing)) throw err;
      this.logger.error({ fileId: id }, 'file row without stored bytes');
      throw notFound();
    }
  }

  /** Deletes the row, and the bytes once no other row refers to them. */
  async remove(sessionId: string, id: string): Promise<void> {
    await this.deleteRow(await this.findOwned(sessionId, id));
    // Its extracted text may still lie in the SQLite WAL's older frames.
    await this.checkpoints?.scrub();
  }

  /** Deletes every file of a session (its data erased): the rows, and the bytes no other session's row refers to (the caller scrubs the WAL). */
  async removeAllOf(sessionId: string): Promise<number> {
    const rows = await this.repo.find({ where: { sessionId }, select: { id: true, storageKey: true } });
    for (const row of rows) await this.deleteRow(row);
    return rows.length;
  }

  /** Deletes a file's row, then its bytes unless another row still refers to them (under the bytes' lock). */
  private async deleteRow(row: Pick<FileUpload, 'id' | 'storageKey'>): Promise<void> {
    await this.locks.run(row.storageKey, async () => {
      await this.repo.delete({ id: row.id });
      await this.deleteIfUnreferenced(row.storageKey);
    });
  }

  /**
   * Chat seam: every id must be one of the session's files (another session's is reported
   * exactly like a missing one), and the copies `attach` will make of the files already attached
   * to a message must fit the quota: refused here, before the chat stores anything. Writes nothing.
   * Returns the files' names and text, in the order given.
   */
  async validate(sessionId: string, fileIds: string[]): Promise<FileText[]> {
    const rows = await this.ownedRows(sessionId, fileIds);
    const copied = rows.filter((r) => r.messageId !== null).reduce((sum, r) => sum + textBytes(r.extractedText), 0);
    if (copied > 0) {
      const used = await this.usage(sessionId);
      if (used + copied > this.config.limits.sessionQuotaBytes) throw this.quotaExceeded(used, 'Sending these files again');
    }
    return rows.map((r) => ({ filename: r.filename, extractedText: r.extractedText, tokenCount: r.tokenCount }));
  }

  /**
   * Chat seam: links the files to a user message (and its conversation) and returns their text,
   * in the order given. A file already attached to another message is attached again as a new
   * row sharing the same stored bytes, so the earlier message keeps showing it.
   */
  async attach(sessionId: string, fileIds: string[], conversationId: string, messageId: string): Promise<AttachedFile[]> {
    const rows = await this.ownedRows(sessionId, fileIds);
    const attached: AttachedFile[] = [];
    // All or nothing: a file deleted, or a copy over the quota, partway through gives back what was taken.
    const claimed: string[] = [];
    const copies: FileUpload[] = [];
    try {
      for (const [attachPosition, row] of rows.entries()) {
        let linked: FileUpload;
        // Only claim a row that is still free: a concurrent attach may have taken it meanwhile.
        const isClaimed = (row.messageId === null || row.messageId === messageId)
          && Boolean((await this.repo.update({ id: row.id, messageId: row.messageId ?? IsNull() }, { conversationId, messageId, attachPosition })).affected);
        if (isClaimed) {
          linked = { ...row, conversationId, messageId, attachPosition };
          if (row.messageId === null) claimed.push(row.id);
        } else {
          linked = await this.cloneFor(row, conversationId, messageId, attachPosition);
          copies.push(linked);
        }
        attached.push({
          id: linked.id, filename: linked.filename, fileType: linked.fileType,
          extractedText: linked.extractedText, tokenCount: linked.tokenCount,
        });
      }
    } catch (err) {
      if (claimed.length > 0) {
        await this.repo.update({ id: In(claimed), messageId }, { conversationId: null, messageId: null, attachPosition: null });
      }
      for (const copy of copies) await this.deleteRow(copy);
      throw err;
    }
    return attached;
  }

  async holdsFiles(sessionId: string, fileIds: string[], messageId: string): Promise<boolean> {
    const requested = await this.ownedRows(sessionId, fileIds);
    const held = await this.repo.find({ select: { storageKey: true }, where: { messageId, sessionId }, order: { attachPosition: 'ASC', createdAt: 'ASC' } });
    return held.length === requested.length && held.every((f, i) => f.storageKey === requested[i].storageKey);
  }

  /**
   * Deletes stored objects no row refers to, older than the grace period (a session purge
   * cascades to rows but cannot reach the bytes). Returns how many were deleted.
   */
  async sweepOrphans(graceMs: number): Promise<number> {
    const cutoff = Date.now() - graceMs;
    let deleted = 0;
    let batch: string[] = [];
    const flush = async (): Promise<void> => {
      const keys = batch;
      batch = [];
      const referenced = new Set((await this.repo.find({ select: { storageKey: true }, where: { storageKey: In(keys) } }))
        .map((r) => r.storageKey));
      for (const key of keys) {
        if (referenced.has(key)) continue;
        if (await this.locks.run(key, () => this.deleteIfUnreferenced(key))) deleted++;
      }
    };
    for await (const object of this.storage.list()) {
      if (object.modifiedAt.getTime() >= cutoff) continue;
      batch.push(object.key);
      if (batch.length >= 200) await flush();
    }
    if (batch.length > 0) await flush();
    return deleted;
  }

  /**
   * Deletes up to `take` files never sent with a message, uploaded before `cutoff`, with their bytes unless
   * another row refers to them. One sent meanwhile is kept: the delete takes only a row still unsent, as
   * `attach` claims only a row still free. Returns how many were deleted.
   */
  async deleteUnsent(cutoff: Date, take = 500): Promise<number> {
    const rows = await this.repo.find({
      where: { messageId: IsNull(), createdAt: LessThan(cutoff) }, select: { id: true, storageKey: true }, order: { createdAt: 'ASC' }, take,
    });
    let deleted = 0;
    for (const row of rows) {
      await this.locks.run(row.storageKey, async () => {
        const result = await this.repo.delete({ id: row.id, messageId: IsNull() });
        if (!result.affected) return;
        deleted++;
        await this.deleteIfUnreferenced(row.storageKey);
      });
    }
    return deleted;
  }

  /**
   * Bytes the session stores: each stored object once (however many rows share it), plus the
   * extracted text of every row (each row has its own copy), in UTF-8 bytes. OCTET_LENGTH counts
   * bytes alike on PostgreSQL and SQLite (≥ 3.43), and reads neither TOASTed nor overflow text.
   * Two queries, not one grouped by object with the text's sum beside: SQLite sorted each row's whole
   * text into the GROUP BY and took its length after, reading every byte the session had uploaded, on
   * the event loop, three times per upload (15 ms for 1.4 MB of text read cold, where the length
   * alone takes 0.02 ms).
   */
  async usage(sessionId: string): Promise<number> {
    const [objects, text] = await Promise.all([
      this.repo.createQueryBuilder('f')
        .select('MAX(f.file_size)', 'size')
        .where('f.session_id = :sessionId', { sessionId })
        .groupBy('f.file_path')
        .getRawMany<{ size: number | string }>(),
      this.repo.createQueryBuilder('f')
        .select('COALESCE(SUM(OCTET_LENGTH(f.extracted_text)), 0)', 'text')
        .where('f.session_id = :sessionId', { sessionId })
        .getRawOne<{ text: number | string }>(),
    ]);
    return objects.reduce((sum, r) => sum + Number(r.size), Number(text?.text ?? 0));
  }

  /** An upload adds its text, and its bytes unless the session already stores the same content. */
  private async assertFitsQuota(sessionId: string, storageKey: string, size: number, text: number): Promise<void> {
    const needed = text + ((await this.repo.existsBy({ sessionId, storageKey })) ? 0 : size);
    if (needed === 0) return;
    const used = await this.usage(sessionId);
    if (used + needed > this.config.limits.sessionQuotaBytes) throw this.quotaExceeded(used);
  }

  private quotaExceeded(used: number, action = 'This upload'): AppException {
    const quota = this.config.limits.sessionQuotaBytes;
    return new AppException(ErrorCode.QuotaExceeded,
      `${action} would exceed the ${formatSize(quota)} storage quota of your session (${formatSize(used)} used); delete some files first`,
      { quota_bytes: quota, used_bytes: used });
  }

  private async readTemp(path: string, size: number): Promise<Buffer> {
    // Never more than multer let through, whatever happened to the file meanwhile.
    const handle = await open(path, 'r');
    try {
      const buffer = Buffer.alloc(Math.min(size, this.config.limits.maxUploadBytes));
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
      return buffer.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  }

  private async ownedRows(sessionId: string, fileIds: string[]): Promise<FileUpload[]> {
    const ids = [...new Set(fileIds)];
    if (ids.length === 0) return [];
    const rows = await this.repo.findBy({ id: In(ids), sessionId });
    if (rows.length !== ids.length) throw notFound();
    const byId = new Map(rows.map((r) => [r.id, r]));
    return ids.map((id) => byId.get(id)!);
  }

  /**
   * A copy of the row, text included (the message's context is read from its own rows). `validate`
   * refused it already if it did not fit; checked again under the quota's lock, the order `upload`
   * takes them in, for sends that passed `validate` at the same time.
   */
  private cloneFor(row: FileUpload, conversationId: string, messageId: string, attachPosition: number): Promise<FileUpload> {
    return this.locks.run(`quota:${row.sessionId}`, () => this.locks.run(row.storageKey, async () => {
      // Deleted meanwhile: its bytes may be gone too, so nothing may point at them again.
      if (!(await this.repo.existsBy({ id: row.id }))) throw notFound();
      const used = await this.usage(row.sessionId);
      if (used + textBytes(row.extractedText) > this.config.limits.sessionQuotaBytes) throw this.quotaExceeded(used, 'Sending these files again');
      const clone = this.repo.create({ ...row, id: randomUUID(), conversationId, messageId, attachPosition, createdAt: new Date() });
      await this.insertRow(clone);
      return clone;
    }));
  }

  /**
   * Inserts a whole row, every column given. Not `repo.insert`: TypeORM then reads back each column that has a
   * default, the extracted text among them (SQLite: a SELECT after the INSERT; PostgreSQL: RETURNING): 6.5–9.5 ms
   * of the event loop per insert of a 100-page PDF's text, 3.3–4.2 ms without.
   */
  private async insertRow(row: FileUpload): Promise<void> {
    await this.repo.createQueryBuilder().insert().into(FileUpload).values(row).updateEntity(false).execute();
  }

  private async deleteIfUnreferenced(storageKey: string): Promise<boolean> {
    if (await this.repo.existsBy({ storageKey })) return false;
    await this.storage.delete(storageKey);
    return true;
  }
}
