import { TestBed } from '@angular/core/testing';
import { ChatConfigStore } from './chat-config.store';
import { type DraftFile, DraftStore, MAX_KEPT_DRAFTS } from './draft-store';

describe('DraftStore', () => {
  /** The page loaded again: a new store, reading what the last one stored. */
  function reload(maxChars = 32_000): DraftStore {
    TestBed.resetTestingModule();
    TestBed.configureTestingModule({ providers: [{ provide: ChatConfigStore, useValue: { maxMessageChars: () => maxChars } }] });
    return TestBed.inject(DraftStore);
  }

  const stored = (): unknown => JSON.parse(sessionStorage.getItem('parley.drafts') ?? 'null');

  // Other spec files share this window, and a session they create leaves its hint in localStorage: the check below
  // that drafts never go there started from whatever they left (it failed in about half of the full runs).
  beforeEach(() => localStorage.clear());
  afterEach(() => sessionStorage.clear());

  it('keeps each conversation\'s draft across a reload, in this tab\'s storage; a blank one is forgotten', () => {
    const drafts = reload();
    drafts.set('new', 'a new chat');
    drafts.set('c1', 'first\nsecond line');
    drafts.set('c2', 'to be cleared');
    drafts.set('c2', '  ');
    drafts.flush();
    expect(localStorage.length).toBe(0);
    const after = reload();
    expect(after.get('new')).toBe('a new chat');
    expect(after.get('c1')).toBe('first\nsecond line');
    expect(after.get('c2')).toBe('');
  });

  it('stores the draft shortly after typing, and at once when the page goes', async () => {
    vi.useFakeTimers();
    try {
      const drafts = reload();
      drafts.set('c1', 'typed');
      expect(stored()).toBeNull();
      await vi.advanceTimersByTimeAsync(1_000);
      expect(stored()).toEqual([['c1', 'typed']]);
      drafts.set('c1', 'typed more');
      window.dispatchEvent(new Event('pagehide'));
      expect(stored()).toEqual([['c1', 'typed more']]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('keeps the most recently written drafts only, each at most the longest message the server takes', () => {
    const drafts = reload(100);
    for (let i = 0; i < MAX_KEPT_DRAFTS + 5; i++) drafts.set(`c${i}`, `draft ${i}`);
    drafts.set('c3', 'written again');
    drafts.set('long', `${'x'.repeat(99)}😀 and more`);
    drafts.flush();
    const keys = (stored() as [string, string][]).map(([key]) => key);
    expect(keys).toHaveLength(MAX_KEPT_DRAFTS);
    expect(keys.slice(-2)).toEqual(['c3', 'long']);
    expect(keys).not.toContain('c5');
    // Cut before the emoji rather than through it.
    expect(reload().get('long')).toBe('x'.repeat(99));
    expect(reload().get('c3')).toBe('written again');
  });

  it('forgets a deleted conversation\'s draft for good, and all of them when the session is erased', () => {
    const drafts = reload();
    drafts.set('c1', 'one');
    drafts.set('c2', 'two');
    drafts.forget('c1');
    drafts.set('c1', 'the composer leaving the deleted conversation');
    drafts.flush();
    expect(reload().get('c1')).toBe('');
    const erased = reload();
    erased.forgetAll();
    erased.set('c3', 'typed after');
    window.dispatchEvent(new Event('pagehide'));
    expect(stored()).toBeNull();
    expect(reload().get('c2')).toBe('');
  });

  it('keeps a draft\'s uploaded files with its text, a draft of files alone too; a new session keeps the text only', () => {
    const uploaded = (id: string): DraftFile => ({
      uploaded: { file_id: id, filename: `${id}.txt`, file_type: '.txt', file_size: 3, extracted_text: 'abc', extracted_chars: 3, token_count: 1 },
      sameFileKey: `${id}.txt\u00003\u00001`,
    });
    const drafts = reload();
    drafts.set('c1', 'about these');
    drafts.setFiles('c1', [uploaded('f1'), uploaded('f2')]);
    drafts.setFiles('c2', [uploaded('f3')]);
    drafts.set('c3', 'text only');
    drafts.flush();
    expect(stored()).toEqual([['c1', 'about these', [uploaded('f1'), uploaded('f2')]], ['c2', '', [uploaded('f3')]], ['c3', 'text only']]);
    const after = reload();
    expect(after.files('c1')).toEqual([uploaded('f1'), uploaded('f2')]);
    expect(after.get('c1')).toBe('about these');
    expect(after.files('c2')).toEqual([uploaded('f3')]);
    // The text cleared, the files stay; the files removed too, the draft goes.
    after.set('c2', '');
    after.set('c1', '');
    after.setFiles('c1', []);
    after.flush();
    expect(reload().files('c2')).toEqual([uploaded('f3')]);
    expect(reload().files('c1')).toEqual([]);
    // The files belonged to the session that ended: the text being written goes on without them.
    const ended = reload();
    ended.set('c2', 'half written');
    ended.keepOnly('c2', 'new');
    expect(reload().get('new')).toBe('half written');
    expect(reload().files('new')).toEqual([]);
    // A file entry of another shape: the stored drafts are not read.
    sessionStorage.setItem('parley.drafts', JSON.stringify([['c1', 'text', [{ uploaded: { file_id: 1 } }]]]));
    expect(reload().get('c1')).toBe('');
  });

  it('starts without drafts when the storage holds something else', () => {
    sessionStorage.setItem('parley.drafts', '{"not": "a list"}');
    expect(reload().get('new')).toBe('');
    sessionStorage.setItem('parley.drafts', 'not json');
    expect(reload().get('new')).toBe('');
  });
});
