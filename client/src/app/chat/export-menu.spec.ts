import { TestBed } from '@angular/core/testing';
import { ConversationExporter } from './conversation-export';
import { ExportMenu } from './export-menu';

describe('ExportMenu', () => {
  it('opens its two choices, and Esc closes them without reaching the page (where it stops a running answer)', async () => {
    TestBed.configureTestingModule({ providers: [{ provide: ConversationExporter, useValue: { export: vi.fn() } }] });
    const fixture = TestBed.createComponent(ExportMenu);
    fixture.componentRef.setInput('conversationId', 'c1');
    document.body.append(fixture.nativeElement as HTMLElement);
    const el = fixture.nativeElement as HTMLElement;
    const toggle = el.querySelector<HTMLButtonElement>('button[aria-label="Export conversation"]')!;
    toggle.click();
    await fixture.whenStable();
    expect(toggle.getAttribute('aria-expanded')).toBe('true');
    expect([...el.querySelectorAll('.export-choice')].map((b) => b.textContent)).toEqual(['Markdown (.md)', 'JSON (.json)']);
    let reachedPage = false;
    const onPage = (): void => { reachedPage = true; };
    document.addEventListener('keydown', onPage);
    try {
      const escape = new KeyboardEvent('keydown', { key: 'Escape', bubbles: true, cancelable: true });
      el.querySelector<HTMLButtonElement>('.export-choice')!.dispatchEvent(escape);
      await fixture.whenStable();
      expect(escape.defaultPrevented).toBe(true);
      expect(reachedPage).toBe(false);
      expect(el.querySelector('.export-choice')).toBeNull();
      expect(document.activeElement).toBe(toggle);
    } finally {
      document.removeEventListener('keydown', onPage);
      fixture.destroy();
    }
  });
});
