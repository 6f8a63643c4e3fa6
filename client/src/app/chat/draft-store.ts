import { DestroyRef, Injectable, inject } from '@angular/core';
import type { UploadedFile } from '../core/api-models';
import { ChatConfigStore } from './chat-config.store';

const STORAGE_KEY = 'parley.drafts';
/** Drafts kept, the most recently written ones: an older one goes when another conversation gets one. */
export const MAX_KEPT_DRAFTS = 10;
/** Typing writes the draft this long after the last key (a reload or a closed page writes it at once). */
const SAVE_DELAY_MS = 300;

/** A file uploaded for a draft, not sent yet: kept with its text, so that it is still attached after a reload. */
export interface DraftFile {
  uploaded: UploadedFile;
  /** The picked file's name, size and modification time (AttachmentsStore: the same file is not attached twice). */
  sameFileKey?: string;
}

interface Draft {
  text: string;
  files: DraftFile[];
}

type StoredDraft = [key: string, text: string] | [key: string, text: string, files: DraftFile[]];

function isDraftFile(value: unknown): value is DraftFile {
  if (typeof value !== 'object' || value === null) return false;
  const { uploaded, sameFileKey } = value as Partial<DraftFile>;
  return typeof uploaded === 'object' && uploaded !== null && typeof uploaded.file_id === 'string' && typeof uploaded.filename === 'string'
    && typeof uploaded.file_type === 'string' && typeof uploaded.file_size === 'number' && (sameFileKey === undefined || typeof sameFileKey === 'string');
}

function isStoredDraft(entry: unknown): entry is StoredDraft {
  return Array.isArray(entry) && typeof entry[0] === 'string' && typeof entry[1] === 'string'
    && (entry.length === 2 || (entry.length === 3 && Array.isArray(entry[2]) && (entry[2] as unknown[]).every(isDraftFile)));
}

function readStored(): Map<string, Draft> {
  try {
    const parsed: unknown = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? '[]');
    const entries = Array.isArray(parsed) && parsed.every(isStoredDraft) ? parsed.slice(-MAX_KEPT_DRAFTS) : [];
    return new Map(entries.map(([key, text, files]) => [key, { text, files: files ?? [] }]));
  } catch {
    // Storage refused (a privacy mode) or written by something else: no drafts from before this page.
    return new Map();
  }
}

function sameDraft(a: Draft | undefined, b: Draft): boolean {
  return a !== undefined && a.text === b.text && a.files.length === b.files.length
    && a.files.every((f, i) => f.uploaded.file_id === b.files[i].uploaded.file_id);
}

/** At most `max` characters, never half of a surrogate pair. */
function capped(text: string, max: number): string {
  if (text.length <= max) return text;
  const head = text.slice(0, max);
  return /[\uD800-\uDBFF]$/.test(head) ? head.slice(0, -1) : head;
}

/**
 * The unsent text of each conversation and of the new chat, by conversation id (or NEW_CHAT_DRAFT): what is typed
 * in one stays with it, survives a reload ("Your draft is kept", says the offline banner), and goes once sent. So do
 * the files uploaded for it (AttachmentsStore writes them here): after a reload they are attached still, rather than
 * left on the server where nothing showed them, counting against the session's quota.
 *
 * Kept in sessionStorage, not localStorage: a draft is often what someone would not send after all, and on a shared
 * or borrowed computer it must not be there for the next person who opens the browser. sessionStorage lives as long
 * as the tab (a reload, a crash restored with the tab), is never shared with other tabs, and is gone when the tab
 * is closed. Bounded: the MAX_KEPT_DRAFTS most recent drafts, each at most the longest message the server takes.
 */
@Injectable({ providedIn: 'root' })
export class DraftStore {
  private readonly config = inject(ChatConfigStore);
  /** The drafts, least recently written first; as typed (the cap applies to what is stored). */
  private readonly drafts = readStored();
  private saveTimer: ReturnType<typeof setTimeout> | undefined;
  /** Erased with the session: nothing is written again from this page. */
  private isForgotten = false;
  /** Deleted conversations: the composer leaving one would keep its draft again. */
  private readonly deleted = new Set<string>();

  constructor() {
    const onPageHide = (): void => this.flush();
    window.addEventListener('pagehide', onPageHide);
    inject(DestroyRef).onDestroy(() => {
      window.removeEventListener('pagehide', onPageHide);
      clearTimeout(this.saveTimer);
    });
  }

  /** The draft of `key`, or ''. */
  get(key: string): string {
    return this.drafts.get(key)?.text ?? '';
  }

  /** The files of the draft of `key`. */
  files(key: string): DraftFile[] {
    return this.drafts.get(key)?.files ?? [];
  }

  /** Keeps `text` as the draft of `key` (a blank one without files is forgotten); it is stored shortly after. */
  set(key: string, text: string): void {
    this.write(key, { text, files: this.files(key) });
  }

  /** Keeps `files` as the files of the draft of `key`; they are stored shortly after. */
  setFiles(key: string, files: DraftFile[]): void {
    this.write(key, { text: this.get(key), files });
  }

  private write(key: string, draft: Draft): void {
    if (this.isForgotten || this.deleted.has(key)) return;
    const isEmpty = draft.text.trim() === '' && draft.files.length === 0;
    const current = this.drafts.get(key);
    if (isEmpty ? current === undefined : sameDraft(current, draft) && [...this.drafts.keys()].at(-1) === key) return;
    this.drafts.delete(key);
    if (!isEmpty) this.drafts.set(key, draft);
    for (const oldest of this.drafts.keys()) {
      if (this.drafts.size <= MAX_KEPT_DRAFTS) break;
      this.drafts.delete(oldest);
    }
    clearTimeout(this.saveTimer);
    this.saveTimer = setTimeout(() => this.flush(), SAVE_DELAY_MS);
  }

  /** Stores the drafts now. */
  flush(): void {
    clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    if (this.isForgotten) return;
    const max = this.config.maxMessageChars();
    const stored: StoredDraft[] = [...this.drafts].map(([key, { text, files }]) => (files.length > 0 ? [key, capped(text, max), files] : [key, capped(text, max)]));
    try {
      if (stored.length === 0) sessionStorage.removeItem(STORAGE_KEY);
      else sessionStorage.setItem(STORAGE_KEY, JSON.stringify(stored));
    } catch {
      // Storage refused or full: the drafts are kept in this page only.
    }
  }

  /** Forgets the draft of a deleted conversation, for good. */
  forget(key: string): void {
    this.write(key, { text: '', files: [] });
    this.deleted.add(key);
  }

  /**
   * Keeps only the text of the draft of `from`, as the draft of `to` (the session ended: the other drafts belonged
   * to its conversations, and every file to it; the text being written goes on in the new chat).
   */
  keepOnly(from: string, to: string): void {
    const text = this.get(from);
    this.drafts.clear();
    this.set(to, text);
    this.flush();
  }

  /** Forgets every draft, stored or not (the session's data was erased). */
  forgetAll(): void {
    this.isForgotten = true;
    clearTimeout(this.saveTimer);
    this.drafts.clear();
    try {
      sessionStorage.removeItem(STORAGE_KEY);
    } catch {
      // Storage refused: nothing was stored.
    }
  }
}
