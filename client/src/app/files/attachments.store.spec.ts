import { signal } from '@angular/core';
import { TestBed } from '@angular/core/testing';
import { Subject } from 'rxjs';
import { ChatConfigStore } from '../chat/chat-config.store';
import { formatBytes } from './format-bytes';
import { ApiError } from '../core/api-error';
import { DraftStore } from '../chat/draft-store';
import type { ChatConfig, UploadedFile } from '../core/api-models';
import { AttachmentsStore, GONE_FROM_SERVER } from './attachments.store';
import { FilesApi, type UploadEvent } from './files-api.service';

const config: ChatConfig = {
  provider: 'openai', model: 'm', is_demo: false, max_message_chars: 1000, max_upload_bytes: 1024, allowed_extensions: ['.txt', '.pdf'],
};

describe('AttachmentsStore', () => {
  let uploads: Subject<UploadEvent>[];
  let store: AttachmentsStore;
  let removed: string[];
  /** What the server says of a file (GET /files/:id): its details, or an error. */
  let onServer: Map<string, UploadedFile>;

  afterEach(() => sessionStorage.clear());

  function configure(): void {
    TestBed.configureTestingModule({
      providers: [
        { provide: ChatConfigStore, useValue: { config: signal(config), maxMessageChars: () => 1000 } },
        {
          provide: FilesApi,
          useValue: {
            upload: () => {
              const subject = new Subject<UploadEvent>();
              uploads.push(subject);
              return subject.asObservable();
            },
            remove: (id: string) => {
              removed.push(id);
              return Promise.resolve();
            },
            details: (id: string) => {
              const file = onServer.get(id);
              return file ? Promise.resolve(file) : Promise.reject(new ApiError(404, 'FILE_NOT_FOUND', 'File not found'));
            },
          },
        },
      ],
    });
  }

  /** The page loaded again: new stores, reading what the last ones kept in this tab's storage. */
  function reload(): AttachmentsStore {
    TestBed.inject(DraftStore).flush();
    TestBed.resetTestingModule();
    uploads = [];
    configure();
    return TestBed.inject(AttachmentsStore);
  }

  const file = (id: string, filename = `${id}.txt`): UploadedFile => ({
    file_id: id, filename, file_type: '.txt', file_size: 5, extracted_text: 'hello', extracted_chars: 5, token_count: 1,
  });

  beforeEach(() => {
    uploads = [];
    removed = [];
    onServer = new Map();
    configure();
    store = TestBed.inject(AttachmentsStore);
  });

  it('keeps the uploaded files of each draft across a reload, attached again once the server has them still', async () => {
    store.show('c1');
    store.add([new File(['hello'], 'a.txt', { lastModified: 1 }), new File(['hello'], 'b.txt'), new File(['hello'], 'c.txt')]);
    const done = (i: number, uploaded: UploadedFile): void => {
      uploads[i]?.next({ type: 'done', file: uploaded });
      uploads[i]?.complete();
    };
    done(0, file('fa', 'a.txt'));
    done(1, file('fb', 'b.txt'));
    // Still uploading at the reload: not kept (nothing could finish it).
    expect(store.attachments().map((a) => a.state)).toEqual(['ready', 'ready', 'uploading']);
    store.show('c2');
    store.add([new File(['x'], 'other.txt')]);
    done(3, file('fo', 'other.txt'));
    onServer.set('fa', { ...file('fa', 'a.txt'), extracted_text: 'hello, as the server has it now' });
    onServer.set('fo', file('fo', 'other.txt'));

    TestBed.inject(DraftStore).flush();
    // The files are named in this tab's storage, their text is not.
    expect(sessionStorage.getItem('parley.drafts')).toContain('"fa"');
    expect(sessionStorage.getItem('parley.drafts')).not.toContain('hello');
    const after = reload();
    after.show('c1');
    expect(after.attachments().map((a) => [a.name, a.state])).toEqual([['a.txt', 'ready'], ['b.txt', 'ready']]);
    // fb was deleted meanwhile (never sent in time, another tab): its chip says so, and it is not sent; fa's details are the server's.
    await vi.waitFor(() => expect(after.readyFiles().map((f) => [f.file_id, f.extracted_text])).toEqual([['fa', 'hello, as the server has it now']]));
    expect(after.attachments().map((a) => [a.name, a.state, a.error])).toEqual([['a.txt', 'ready', undefined], ['b.txt', 'failed', GONE_FROM_SERVER]]);
    after.remove(after.attachments()[1].localId);
    expect(removed).toEqual([]);
    // The same file picked again is still recognised.
    after.add([new File(['hello'], 'a.txt', { lastModified: 1 })]);
    expect(uploads).toHaveLength(0);
    after.show('c2');
    expect(after.readyFiles().map((f) => f.file_id)).toEqual(['fo']);
    // Sent: gone from the draft for good.
    after.clear();
    const third = reload();
    third.show('c2');
    expect(third.attachments()).toEqual([]);
    third.show('c1');
    expect(third.readyFiles().map((f) => f.file_id)).toEqual(['fa']);
  });

  it('asks again for the files a refused send gives back: one the server no longer has is not sent again', async () => {
    store.add([new File(['a'], 'a.txt'), new File(['b'], 'b.txt')]);
    uploads[0]?.next({ type: 'done', file: file('fa', 'a.txt') });
    uploads[1]?.next({ type: 'done', file: file('fb', 'b.txt') });
    onServer.set('fa', file('fa', 'a.txt'));
    const pending = store.attachments();
    store.clear();
    // Refused (FILE_NOT_FOUND: fb was deleted meanwhile): given back.
    store.restore(pending);
    await vi.waitFor(() => expect(store.readyFiles().map((f) => f.file_id)).toEqual(['fa']));
    expect(store.attachments().map((a) => [a.name, a.state])).toEqual([['a.txt', 'ready'], ['b.txt', 'failed']]);
  });

  it('leaves a kept file in the draft when the server could not be asked (offline), and drops a removed one', async () => {
    store.show('c1');
    store.add([new File(['a'], 'a.txt'), new File(['b'], 'b.txt')]);
    uploads[0]?.next({ type: 'done', file: file('fa') });
    uploads[1]?.next({ type: 'done', file: file('fb') });
    store.remove(store.attachments()[1].localId);
    const after = reload();
    const details = vi.spyOn(TestBed.inject(FilesApi), 'details').mockRejectedValue(new ApiError(0, 'NETWORK_ERROR', 'offline'));
    after.show('c1');
    await vi.waitFor(() => expect(details).toHaveBeenCalledTimes(1));
    await Promise.resolve();
    expect(after.readyFiles().map((f) => f.file_id)).toEqual(['fa']);
  });

  it('refuses a file type or size before uploading, saying why', () => {
    store.add([new File(['MZ'], 'tool.exe'), new File(['x'.repeat(2048)], 'big.txt')]);
    expect(uploads).toHaveLength(0);
    expect(store.attachments().map((a) => [a.name, a.state, a.error])).toEqual([
      ['tool.exe', 'failed', 'This file type is not supported. Allowed: .txt, .pdf.'],
      ['big.txt', 'failed', 'This file is too large (2 KB). The limit is 1 KB.'],
    ]);
  });

  it('uploads two files at a time (the server reads two of a session\'s at a time); the others wait their turn', () => {
    const done = (i: number, id: string): void => {
      uploads[i]?.next({ type: 'done', file: { file_id: id, filename: `${id.slice(1)}.txt`, file_type: '.txt', file_size: 1, extracted_text: 'x', extracted_chars: 1, token_count: 1 } });
      uploads[i]?.complete();
    };
    store.add([new File(['a'], 'a.txt'), new File(['b'], 'b.txt'), new File(['c'], 'c.txt'), new File(['d'], 'd.txt')]);
    expect(uploads).toHaveLength(2);
    expect(store.attachments().map((a) => a.state)).toEqual(['uploading', 'uploading', 'uploading', 'uploading']);
    done(0, 'fa');
    expect(uploads).toHaveLength(3);
    // A failure frees its place too; so does removing a file, waiting or running.
    uploads[1]?.error(new ApiError(500, 'INTERNAL_ERROR', 'boom'));
    expect(uploads).toHaveLength(4);
    store.remove(store.attachments()[3].localId);
    expect(uploads).toHaveLength(4);
    done(2, 'fc');
    expect(store.attachments().map((a) => [a.name, a.state])).toEqual([['a.txt', 'ready'], ['b.txt', 'failed'], ['c.txt', 'ready']]);
    expect(store.isUploading()).toBe(false);
    // A waiting file removed before its turn is never sent.
    store.add([new File(['e'], 'e.txt'), new File(['f'], 'f.txt'), new File(['g'], 'g.txt')]);
    expect(uploads).toHaveLength(6);
    store.remove(store.attachments().find((a) => a.name === 'g.txt')!.localId);
    done(4, 'fe');
    done(5, 'ff');
    expect(uploads).toHaveLength(6);
  });

  it('attaches a file picked or dropped again only once (the model read its text twice); another file of the same name is attached', () => {
    const report = new File(['v1'], 'report.txt', { lastModified: 1 });
    store.add([report]);
    store.add([report, new File(['v2'], 'report.txt', { lastModified: 2 })]);
    expect(store.attachments().map((a) => a.name)).toEqual(['report.txt', 'report.txt']);
    expect(uploads).toHaveLength(2);
    // One that failed may be tried again.
    uploads[0]?.error(new ApiError(500, 'INTERNAL_ERROR', 'boom'));
    store.add([report]);
    expect(store.attachments().map((a) => a.state)).toEqual(['failed', 'uploading', 'uploading']);
  });

  it('tracks progress, then offers the uploaded file for sending', () => {
    store.add([new File(['hello'], 'notes.txt')]);
    expect(store.isUploading()).toBe(true);
    uploads[0]?.next({ type: 'progress', loaded: 2, total: 4 });
    expect(store.attachments()[0]?.progress).toBe(0.5);
    uploads[0]?.next({ type: 'done', file: { file_id: 'f1', filename: 'notes.txt', file_type: '.txt', file_size: 5, extracted_text: 'hello', extracted_chars: 5, token_count: 1 } });
    uploads[0]?.complete();
    expect(store.isUploading()).toBe(false);
    expect(store.readyFiles().map((f) => f.file_id)).toEqual(['f1']);
    expect(store.sentAttachments()).toEqual([{ id: 'f1', filename: 'notes.txt', file_type: '.txt', file_size: 5 }]);
  });

  it('names an uploaded file as the server stored it, so the chip shows the name that is sent', () => {
    store.add([new File(['hello'], 'a "quoted" <b> name.txt')]);
    expect(store.attachments()[0]?.name).toBe('a "quoted" <b> name.txt');
    uploads[0]?.next({ type: 'done', file: file('f1', 'a _quoted_ _b_ name.txt') });
    uploads[0]?.complete();
    expect(store.attachments()[0]?.name).toBe('a _quoted_ _b_ name.txt');
    expect(store.sentAttachments()).toEqual([{ id: 'f1', filename: 'a _quoted_ _b_ name.txt', file_type: '.txt', file_size: 5 }]);
  });

  it('keeps each conversation\'s attachments apart: files attached in one are not offered in another, an upload finishing after leaving lands in its own', () => {
    const done = (id: string) => ({ type: 'done' as const, file: { file_id: id, filename: `${id}.txt`, file_type: '.txt', file_size: 5, extracted_text: 'x', extracted_chars: 1, token_count: 1 } });
    store.show('conversation-b');
    store.add([new File(['hello'], 'b.txt')]);
    store.show('conversation-a');
    expect(store.attachments()).toEqual([]);
    expect(store.isUploading()).toBe(false);
    uploads[0]?.next(done('fb'));
    expect(store.readyFiles()).toEqual([]);
    store.add([new File(['hello'], 'a.txt')]);
    uploads[1]?.next(done('fa'));
    // Sent in A: only A's file goes, and B's stays.
    expect(store.readyFiles().map((f) => f.file_id)).toEqual(['fa']);
    store.clear();
    store.show('conversation-b');
    expect(store.readyFiles().map((f) => f.file_id)).toEqual(['fb']);
    expect(removed).toEqual([]);
  });

  it('gives the server\'s reason when a file of an allowed type is refused for its content', () => {
    store.add([new File(['just text'], 'fake.pdf')]);
    uploads[0]?.error(new ApiError(415, 'UNSUPPORTED_FILE_TYPE', 'The file is not a PDF.'));
    expect(store.attachments()[0]).toMatchObject({ state: 'failed', error: 'The file is not a PDF.' });
  });

  it('tells a file just over the limit from the limit', () => {
    expect(formatBytes(11_000_000)).toBe('10.5 MB');
    expect(formatBytes(10 * 1024 * 1024)).toBe('10 MB');
    expect(formatBytes(1536)).toBe('1.5 KB');
    expect(formatBytes(250 * 1024 * 1024)).toBe('250 MB');
  });

  it('explains a server refusal on the chip', () => {
    store.add([new File(['%PDF'], 'locked.pdf')]);
    uploads[0]?.error(new ApiError(422, 'FILE_PROCESSING_ERROR', 'The PDF is encrypted.'));
    expect(store.attachments()[0]).toMatchObject({ state: 'failed', error: 'The text of this file could not be read: The PDF is encrypted.' });
  });

  it('removing an uploaded file deletes it on the server; clearing after send does not', () => {
    store.add([new File(['a'], 'a.txt'), new File(['b'], 'b.txt')]);
    uploads.forEach((u, i) => u.next({ type: 'done', file: { file_id: `f${i}`, filename: `${i}.txt`, file_type: '.txt', file_size: 1, extracted_text: '', extracted_chars: 0, token_count: 0 } }));
    store.remove(store.attachments()[0]?.localId ?? '');
    expect(removed).toEqual(['f0']);
    store.clear();
    expect(store.attachments()).toEqual([]);
    expect(removed).toEqual(['f0']);
  });
});
