import { type ComponentFixture, TestBed } from '@angular/core/testing';
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
    expect(el.querySelector('button[aria-label="Send"]')).not.toBeNull();
    expect(el.querySelector('button[aria-label="Attach file"]')).not.toBeNull();
  });

  it('sends with Enter, trimmed', async () => {
    await type('  Hello there \n');
    const event = press('Enter');
    expect(event.defaultPrevented).toBe(true);
    expect(sent).toEqual(['Hello there']);
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

  it('keeps Shift+Enter as a new line', async () => {
    await type('Line one');
    const event = press('Enter', { shiftKey: true });
    expect(event.defaultPrevented).toBe(false);
    expect(sent).toEqual([]);
  });

  it('does not send an empty message', async () => {
    await type('   ');
    press('Enter');
    expect(sent).toEqual([]);
    expect((el.querySelector('button[aria-label="Send"]') as HTMLButtonElement).disabled).toBe(true);
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
