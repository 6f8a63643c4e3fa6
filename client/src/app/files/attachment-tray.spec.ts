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
});
