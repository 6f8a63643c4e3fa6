import { Injectable, computed, inject, signal } from '@angular/core';
import type { Subscription } from 'rxjs';
import { ChatConfigStore } from '../chat/chat-config.store';
import { type DraftFile, DraftStore } from '../chat/draft-store';
import { ApiError } from '../core/api-error';
import type { Attachment, UploadedFile } from '../core/api-models';
import { randomId } from '../core/random-id';
import { FilesApi } from './files-api.service';
import { formatBytes } from './format-bytes';

export type AttachmentState = 'uploading' | 'ready' | 'failed';

export interface PendingAttachment {
  localId: string;
  name: string;
  size: number;
  progress: number;
  state: AttachmentState;
  error?: string;
  uploaded?: UploadedFile;
  /** The picked file's name, size and modification time: the same file picked again is not attached twice. */
  sameFileKey?: string;
}

const MAX_FILES = 10;

function sameFileKey(file: File): string {
  return `${file.name}\u0000${file.size}\u0000${file.lastModified}`;
}

function extensionOf(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot <= 0 ? '' : name.slice(dot).toLowerCase();
}

/** Said on the chip of a file the server no longer has. */
export const GONE_FROM_SERVER = 'This file is no longer on the server (a file not sent is deleted after a while). Attach it again.';

/** The draft of a chat not yet started. */
export const NEW_CHAT_DRAFT = 'new';

/**
 * Uploads sent at once, for the whole session: the server takes two of a session's files at a time (one
 * being read, one waiting) and refuses a third with 429; the others wait here, shown as uploading.
 */
export const UPLOADS_AT_ONCE = 2;

interface QueuedUpload {
  localId: string;
  file: File;
  conversationId: string | undefined;
}

/**
 * Files attached to the message being written: uploads start at once (two at a time), the message carries their ids.
 * Each conversation has its own (`show` switches), so files attached in one are never sent in another. The uploaded
 * ones are kept with the conversation's draft (DraftStore): after a reload they are attached again, once the server
 * has said each still exists.
 */
@Injectable({ providedIn: 'root' })
export class AttachmentsStore {
  private readonly files = inject(FilesApi);
  private readonly config = inject(ChatConfigStore);
  private readonly draftStore = inject(DraftStore);
  /** The drafts whose stored files were looked for on this page (once each). */
  private readonly restored = new Set<string>();
  /** The attachments of every conversation that has some, by conversation id (or NEW_CHAT_DRAFT). */
  private readonly drafts = signal<ReadonlyMap<string, PendingAttachment[]>>(new Map());
  private readonly current = signal(NEW_CHAT_DRAFT);
  private readonly items = computed(() => this.drafts().get(this.current()) ?? []);
  /** Uploads running, by local id; at most UPLOADS_AT_ONCE, the rest wait in `waiting`, oldest first. */
  private readonly uploads = new Map<string, Subscription>();
  private waiting: QueuedUpload[] = [];

  readonly attachments = this.items;
  readonly isUploading = computed(() => this.items().some((a) => a.state === 'uploading'));
  readonly readyFiles = computed(() => this.items().filter((a) => a.state === 'ready' && a.uploaded).map((a) => a.uploaded as UploadedFile));

  /** Shows the attachments of another conversation's draft; uploads running for the one left go on. */
  show(draft: string): void {
    this.current.set(draft);
    if (this.restored.has(draft)) return;
    this.restored.add(draft);
    const stored = this.draftStore.files(draft);
    if (stored.length === 0 || this.drafts().has(draft)) return;
    const items = stored.map(({ uploaded, sameFileKey }): PendingAttachment => ({
      localId: randomId(), name: uploaded.filename, size: uploaded.file_size, progress: 1, state: 'ready', uploaded, sameFileKey,
    }));
    this.setItemsOf(draft, items);
    for (const item of items) void this.confirmStored(item);
  }

  /**
   * Asks the server whether an uploaded file is still there (one kept with a draft from before a reload, or given back
   * by a refused send): one never sent is deleted after a while (UNSENT_FILE_TTL_HOURS), or from another tab. A gone
   * one stays as a failed chip saying so, no longer sent; one still there gets its current details.
   */
  private async confirmStored(item: PendingAttachment): Promise<void> {
    const fileId = item.uploaded?.file_id;
    if (!fileId) return;
    try {
      this.patch(item.localId, { uploaded: await this.files.details(fileId) });
    } catch (error: unknown) {
      // Only a file the server says is not there; a network error leaves it (the send will tell).
      if (!(error instanceof ApiError) || error.code !== 'FILE_NOT_FOUND') return;
      this.patch(item.localId, { state: 'failed', uploaded: undefined, error: GONE_FROM_SERVER });
    }
  }

  add(files: readonly File[], conversationId?: string): void {
    for (const file of files) {
      const key = sameFileKey(file);
      // Picked or dropped again: its chip is there already, and the model would read its text twice.
      if (this.items().some((a) => a.state !== 'failed' && a.sameFileKey === key)) continue;
      const localId = randomId();
      const refusal = this.refusalOf(file);
      this.setItems([...this.items(), {
        localId, name: file.name, size: file.size, progress: 0,
        state: refusal ? 'failed' : 'uploading', error: refusal ?? undefined, sameFileKey: key,
      }]);
      if (refusal) continue;
      this.waiting.push({ localId, file, conversationId });
    }
    this.pump();
  }

  /** Starts waiting uploads while fewer than UPLOADS_AT_ONCE run. */
  private pump(): void {
    while (this.uploads.size < UPLOADS_AT_ONCE && this.waiting.length > 0) this.start(this.waiting.shift()!);
  }

  private start({ localId, file, conversationId }: QueuedUpload): void {
    let isOver = false;
    const over = (): void => {
      isOver = true;
      this.uploads.delete(localId);
      this.pump();
    };
    const subscription = this.files.upload(file, conversationId).subscribe({
      next: (event) => {
        if (event.type === 'progress') this.patch(localId, { progress: event.total > 0 ? event.loaded / event.total : 0 });
        // Named as the server stored it (separators, quotes, controls replaced): what the chip then shows is what is sent.
        else this.patch(localId, { progress: 1, state: 'ready', uploaded: event.file, name: event.file.filename });
      },
      error: (error: unknown) => {
        this.patch(localId, { state: 'failed', error: this.uploadErrorText(file, error) });
        over();
      },
      complete: over,
    });
    if (!isOver) this.uploads.set(localId, subscription);
  }

  /** Stops an upload, running or waiting, and lets the next one start. */
  private cancel(localId: string): void {
    this.uploads.get(localId)?.unsubscribe();
    this.uploads.delete(localId);
    this.waiting = this.waiting.filter((w) => w.localId !== localId);
  }

  remove(localId: string): void {
    const item = this.items().find((a) => a.localId === localId);
    this.cancel(localId);
    this.pump();
    this.setItems(this.items().filter((a) => a.localId !== localId));
    // Files never sent are garbage on the server; removing them is a courtesy, so a failure is ignored.
    if (item?.uploaded) this.files.remove(item.uploaded.file_id).catch(() => undefined);
  }

  /** The message was sent with these files: forget them without deleting. */
  clear(): void {
    for (const item of this.items()) this.cancel(item.localId);
    this.setItems([]);
    this.pump();
  }

  /**
   * Puts back files of a message the server refused, so nothing has to be uploaded twice; each is asked for again, so
   * that one the server no longer has (the refusal's reason, maybe) is not sent again and again.
   */
  restore(items: readonly PendingAttachment[]): void {
    const ready = items.filter((a) => a.state === 'ready');
    this.setItems(ready);
    for (const item of ready) void this.confirmStored(item);
  }

  /** Chips as the sent user message shows them. */
  sentAttachments(): Attachment[] {
    return this.readyFiles().map((f) => ({ id: f.file_id, filename: f.filename, file_type: f.file_type, file_size: f.file_size }));
  }

  private refusalOf(file: File): string | null {
    const config = this.config.config();
    if (this.items().filter((a) => a.state !== 'failed').length >= MAX_FILES) return `At most ${MAX_FILES} files per message.`;
    if (!config) return null;
    const extension = extensionOf(file.name);
    if (!config.allowed_extensions.includes(extension)) {
      return `This file type is not supported. Allowed: ${config.allowed_extensions.join(', ')}.`;
    }
    if (file.size > config.max_upload_bytes) {
      return `This file is too large (${formatBytes(file.size)}). The limit is ${formatBytes(config.max_upload_bytes)}.`;
    }
    if (file.size === 0) return 'This file is empty.';
    return null;
  }

  private uploadErrorText(file: File, error: unknown): string {
    if (!(error instanceof ApiError)) return 'The upload failed. Please try again.';
    switch (error.code) {
      case 'UNSUPPORTED_FILE_TYPE': {
        const allowed = this.config.config()?.allowed_extensions;
        // An allowed extension refused for its content (a .pdf that is not a PDF): the server says why.
        if (allowed?.includes(extensionOf(file.name))) return error.message;
        return `This file type is not supported${allowed ? `. Allowed: ${allowed.join(', ')}` : ''}.`;
      }
      case 'FILE_TOO_LARGE':
        return `This file is too large (${formatBytes(file.size)}).`;
      case 'QUOTA_EXCEEDED':
        return 'Your storage quota is full. Delete some conversations or files first.';
      case 'FILE_PROCESSING_ERROR':
        return `The text of this file could not be read: ${error.message}`;
      case 'NETWORK_ERROR':
        return 'The upload failed: you appear to be offline.';
      default:
        return error.message;
    }
  }

  /** The current draft's attachments become `items`. */
  private setItems(items: PendingAttachment[]): void {
    this.setItemsOf(this.current(), items);
  }

  private setItemsOf(draft: string, items: PendingAttachment[]): void {
    const drafts = new Map(this.drafts());
    if (items.length > 0) drafts.set(draft, items);
    else drafts.delete(draft);
    this.drafts.set(drafts);
    this.keep(draft);
  }

  /** Updates an attachment in whichever draft holds it (an upload may finish after its conversation was left). */
  private patch(localId: string, change: Partial<PendingAttachment>): void {
    const drafts = new Map<string, PendingAttachment[]>();
    for (const [draft, list] of this.drafts()) drafts.set(draft, list.map((a) => (a.localId === localId ? { ...a, ...change } : a)));
    this.drafts.set(drafts);
    for (const [draft, list] of drafts) if (list.some((a) => a.localId === localId)) this.keep(draft);
  }

  /**
   * The draft's uploaded files, kept with its text (uploads running or failed are not: a reload cannot finish them).
   * Without the beginning of their text: what is kept is what names them, the text comes back from the server.
   */
  private keep(draft: string): void {
    const files = (this.drafts().get(draft) ?? []).flatMap((a): DraftFile[] => (a.state === 'ready' && a.uploaded
      ? [{ uploaded: { ...a.uploaded, extracted_text: '' }, sameFileKey: a.sameFileKey }]
      : []));
    this.draftStore.setFiles(draft, files);
  }
}
