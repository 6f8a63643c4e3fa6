import { TestBed } from '@angular/core/testing';
import { AttachmentTray } from './attachment-tray';
import type { PendingAttachment } from './attachments.store';

describe('AttachmentTray', () => {
  async function render(items: PendingAttachment[]): Promise<HTMLElement> {
    const fixture = TestBed.createComponent(AttachmentTray);
    fixture.componentRef.setInput('attachments', items);
    await fixture.whenStable();
    return fixture.nativeElement as HTMLElement;
  }

  it('shows the upload\'s progress while bytes go, then that the server reads the text (not "uploading 100%")', async () => {
    const item: PendingAttachment = { localId: 'a', name: 'notes.pdf', size: 2048, progress: 0.4, state: 'uploading' };
    const sending = await render([item]);
    expect(sending.querySelector('.chip-size')?.textContent).toBe('2 KB · uploading 40%');
    expect(sending.querySelector('progress')?.getAttribute('aria-label')).toBe('Uploading notes.pdf');
    expect((sending.querySelector('progress') as HTMLProgressElement).value).toBe(40);

    const reading = await render([{ ...item, progress: 1 }]);
    expect(reading.querySelector('.chip-size')?.textContent).toBe('2 KB · reading its text…');
    const bar = reading.querySelector('progress') as HTMLProgressElement;
    expect(bar.getAttribute('aria-label')).toBe('Reading the text of notes.pdf');
    // Indeterminate: no value attribute.
    expect(bar.hasAttribute('value')).toBe(false);
  });

  it('shows a refused file as a chip like the others: the whole reason in it (no tooltip to hover), announced, and read with Remove', async () => {
    const error = 'This file type is not supported. Allowed: .pdf, .txt, .md, .csv, .json, .docx.';
    const el = await render([{ localId: 'x', name: 'setup.exe', size: 2048, progress: 0, state: 'failed', error }]);
    const chip = el.querySelector('.chip') as HTMLElement;
    expect(chip.classList).toContain('chip-failed');
    const reason = chip.querySelector('.chip-text [role="alert"]') as HTMLElement;
    expect(reason.textContent).toBe(`setup.exe: ${error}`);
    expect(reason.title).toBe('');
    const remove = chip.querySelector('button[aria-label="Remove setup.exe"]') as HTMLButtonElement;
    expect(remove.getAttribute('aria-describedby')).toBe(reason.id);
    // Nothing of the chip outside its two lines (a full-width line below made it a card).
    expect(Array.from(chip.children).map((c) => c.tagName.toLowerCase())).toEqual(['app-icon', 'span', 'button']);
  });
});
