import { type ComponentFixture, TestBed } from '@angular/core/testing';
import type { PendingAttachment } from '../files/attachments.store';
import { Composer } from './composer';

describe('Composer', () => {
  let fixture: ComponentFixture<Composer>;
  let el: HTMLElement;
  let sent: string[];

  beforeEach(async () => {
    fixture = TestBed.createComponent(Composer);
    el = fixture.nativeElement as HTMLElement;
    sent = [];
    fixture.componentInstance.send.subscribe((text) => sent.push(text));
    await fixture.whenStable();
  });

  function textarea(): HTMLTextAreaElement {
    return el.querySelector('textarea[aria-label="Message"]') as HTMLTextAreaElement;
  }

  async function type(text: string): Promise<void> {
    textarea().value = text;
    textarea().dispatchEvent(new Event('input'));
    await fixture.whenStable();
  }

  function press(key: string, init: KeyboardEventInit = {}): KeyboardEvent {
    const event = new KeyboardEvent('keydown', { key, cancelable: true, ...init });
    textarea().dispatchEvent(event);
    return event;
  }

  it('has a labelled textbox and Send and Attach buttons', () => {
    expect(textarea()).not.toBeNull();
    // Arabic or Hebrew is written right to left, each line its own way (browsers give dir="auto" textareas that).
    expect(textarea().getAttribute('dir')).toBe('auto');
    expect(el.querySelector('button[aria-label="Send"]')).not.toBeNull();
    expect(el.querySelector('button[aria-label="Attach file"]')).not.toBeNull();
  });

  it('counts the characters near the limit, and past it says how many are too many (Send is off)', async () => {
    fixture.componentRef.setInput('maxChars', 100);
    await type('x'.repeat(95));
    const hint = (): HTMLElement => el.querySelector('#composer-limit') as HTMLElement;
    expect(hint().textContent?.trim()).toBe('95 / 100 characters');
    expect(hint().classList).not.toContain('is-over');
    expect(textarea().getAttribute('aria-describedby')).toBe('composer-limit');
    await type('x'.repeat(112));
    expect(hint().textContent?.trim()).toBe('112 / 100 characters · 12 too many to send');
    expect(hint().classList).toContain('is-over');
    expect((el.querySelector('button[aria-label="Send"]') as HTMLButtonElement).disabled).toBe(true);
    press('Enter');
    expect(sent).toEqual([]);
  });

  it('sends with Enter, without the blank lines before it and the spaces after it', async () => {
    await type('\n \nHello there \n');
    const event = press('Enter');
    expect(event.defaultPrevented).toBe(true);
    expect(sent).toEqual(['Hello there']);
  });

  it('keeps the first line\'s indentation (pasted code lost it, its other lines kept theirs)', async () => {
    await type('    def f():\n        return 1\n\n');
    press('Enter');
    expect(sent).toEqual(['    def f():\n        return 1']);
  });

  it('leaves the Enter that ends an input method\'s composition to it (isComposing, or keyCode 229)', async () => {
    await type('かんじ');
    expect(press('Enter', { isComposing: true }).defaultPrevented).toBe(false);
    expect(press('Enter', { keyCode: 229 }).defaultPrevented).toBe(false);
    expect(sent).toEqual([]);
    press('Enter');
    expect(sent).toEqual(['かんじ']);
  });

  it('empties the box when the draft is cleared after a send, even within the frame the text was put in', async () => {
    textarea().value = 'Pasted and sent at once';
    textarea().dispatchEvent(new Event('input'));
    press('Enter');
    expect(sent).toEqual(['Pasted and sent at once']);
    fixture.componentInstance.draft.set(''); // what the chat view does once the message is sent
    await fixture.whenStable();
    expect(textarea().value).toBe('');
    await type('Next one');
    fixture.componentInstance.draft.set('');
    await fixture.whenStable();
    expect(textarea().value).toBe('');
  });

  it('shows a draft set from outside', async () => {
    fixture.componentInstance.draft.set('Restored draft');
    await fixture.whenStable();
    expect(textarea().value).toBe('Restored draft');
  });

  it('says why Enter does not send while files are uploading', async () => {
    fixture.componentRef.setInput('isUploading', true);
    await type('With a file');
    press('Enter');
    expect(sent).toEqual([]);
    expect(el.querySelector('[role="status"]')?.textContent).toContain('Uploading');
    fixture.componentRef.setInput('isUploading', false);
    await fixture.whenStable();
    expect(el.querySelector('[role="status"]')).toBeNull();
  });

  it('adds a line with Enter on a touch screen, where sending is the Send button\'s', async () => {
    vi.stubGlobal('matchMedia', (query: string) => ({ matches: query === '(pointer: coarse)', media: query }));
    try {
      await type('Line one');
      const event = press('Enter');
      expect(event.defaultPrevented).toBe(false);
      expect(sent).toEqual([]);
      (el.querySelector('button[aria-label="Send"]') as HTMLButtonElement).click();
      expect(sent).toEqual(['Line one']);
    } finally {
      vi.unstubAllGlobals();
    }
  });

  it('keeps Shift+Enter as a new line', async () => {
    await type('Line one');
    const event = press('Enter', { shiftKey: true });
    expect(event.defaultPrevented).toBe(false);
    expect(sent).toEqual([]);
  });

  it('does not send an empty message, nor one of invisible characters (the server refuses it as blank)', async () => {
    // Format characters alone too (tag characters, interlinear annotation, shorthand controls), as the server counts them.
    for (const blank of ['   ', '\u200b\u2060', '\u00ad\ufeff \u200d\n', '\u0301', '\u{E0041}\u{E0042}', '\ufff9', '\u{1BCA0}']) {
      await type(blank);
      press('Enter');
      expect(sent).toEqual([]);
      expect((el.querySelector('button[aria-label="Send"]') as HTMLButtonElement).disabled, JSON.stringify(blank)).toBe(true);
    }
    await type('\u200bé');
    expect((el.querySelector('button[aria-label="Send"]') as HTMLButtonElement).disabled).toBe(false);
    // A format character that draws a sign (the Arabic end of ayah) is text.
    await type('\u06dd');
    expect((el.querySelector('button[aria-label="Send"]') as HTMLButtonElement).disabled).toBe(false);
  });

  it('sends files without a question once they are in (the files are the message), and says a question may go with them', async () => {
    const file: PendingAttachment = { localId: 'f1', name: 'report.pdf', size: 10, progress: 0.5, state: 'uploading' };
    fixture.componentRef.setInput('attachments', [file]);
    fixture.componentRef.setInput('isUploading', true);
    await type('  ');
    const sendButton = (): HTMLButtonElement => el.querySelector('button[aria-label="Send"]') as HTMLButtonElement;
    // Still uploading: nothing to send yet, and the hint says why.
    expect(sendButton().disabled).toBe(true);
    press('Enter');
    expect(sent).toEqual([]);
    expect(el.querySelector('#composer-hint')?.textContent).toContain('Uploading…');
    // A failed file alone is nothing to send.
    fixture.componentRef.setInput('attachments', [{ ...file, state: 'failed' }]);
    fixture.componentRef.setInput('isUploading', false);
    await fixture.whenStable();
    expect(sendButton().disabled).toBe(true);
    fixture.componentRef.setInput('attachments', [{ ...file, progress: 1, state: 'ready' }]);
    await fixture.whenStable();
    expect(textarea().placeholder).toBe('Ask something about the files, or send them as they are');
    expect(el.querySelector('#composer-hint')?.textContent).toContain('Enter sends the files as they are');
    expect(sendButton().disabled).toBe(false);
    press('Enter');
    expect(sent).toEqual(['']);
    await type('What does it conclude?');
    expect(textarea().placeholder).toBe('Message Parley…');
    press('Enter');
    expect(sent).toEqual(['', 'What does it conclude?']);
  });

  it('shows Stop instead of Send while an answer streams', async () => {
    let stops = 0;
    fixture.componentInstance.stop.subscribe(() => stops++);
    fixture.componentRef.setInput('isStreaming', true);
    await fixture.whenStable();
    expect(el.querySelector('button[aria-label="Send"]')).toBeNull();
    (el.querySelector('button[aria-label="Stop"]') as HTMLButtonElement).click();
    expect(stops).toBe(1);
  });

  it('leaves the keyboard in the textbox after Stop (Stop turns into Send)', async () => {
    document.body.append(el);
    try {
      fixture.componentRef.setInput('isStreaming', true);
      await fixture.whenStable();
      const stop = el.querySelector('button[aria-label="Stop"]') as HTMLButtonElement;
      stop.focus();
      stop.click();
      expect(document.activeElement).toBe(textarea());
    } finally {
      el.remove();
    }
  });

  it('moves the keyboard to the next chip\'s Remove when a chip is removed, and to the textbox after the last', async () => {
    const chip = (name: string): PendingAttachment => ({ localId: name, name, size: 10, progress: 1, state: 'ready' });
    fixture.componentInstance.removeAttachment.subscribe((id) => {
      // What the store does: the chip goes at once.
      fixture.componentRef.setInput('attachments', fixture.componentInstance.attachments().filter((a) => a.localId !== id));
    });
    fixture.componentRef.setInput('attachments', [chip('a.txt'), chip('b.txt'), chip('c.txt')]);
    await fixture.whenStable();
    document.body.append(el);
    try {
      const remove = (name: string): HTMLButtonElement => el.querySelector(`button[aria-label="Remove ${name}"]`) as HTMLButtonElement;
      remove('b.txt').focus();
      remove('b.txt').click();
      await fixture.whenStable();
      expect(document.activeElement).toBe(remove('c.txt'));
      remove('c.txt').click();
      await fixture.whenStable();
      expect(document.activeElement).toBe(textarea());
    } finally {
      el.remove();
    }
  });

  it('hands pasted files to the attach output', () => {
    const files: File[][] = [];
    fixture.componentInstance.attach.subscribe((f) => files.push(f));
    const file = new File(['hi'], 'notes.txt', { type: 'text/plain' });
    const paste = new Event('paste', { cancelable: true }) as ClipboardEvent;
    Object.defineProperty(paste, 'clipboardData', { value: { files: [file] } });
    textarea().dispatchEvent(paste);
    expect(files).toEqual([[file]]);
  });
});
