import { type ComponentFixture, TestBed } from '@angular/core/testing';
import { MarkdownView } from './markdown-view';

describe('MarkdownView', () => {
  let fixture: ComponentFixture<MarkdownView>;
  let el: HTMLElement;

  beforeEach(() => {
    fixture = TestBed.createComponent(MarkdownView);
    el = fixture.nativeElement as HTMLElement;
  });

  async function show(content: string, isStreaming: boolean): Promise<void> {
    fixture.componentRef.setInput('content', content);
    fixture.componentRef.setInput('isStreaming', isStreaming);
    await fixture.whenStable();
  }

  it('while streaming, rewrites only the growing last block', async () => {
    await show('First paragraph.\n\nSecond', true);
    const first = el.querySelector('.md-block > p');
    await show('First paragraph.\n\nSecond grows', true);
    expect(el.querySelector('.md-block > p')).toBe(first);
    expect(el.querySelectorAll('.md-block')[1]?.textContent?.trim()).toBe('Second grows');
    // And when it ends, the same DOM stays (same blocks as the full render).
    await show('First paragraph.\n\nSecond grows', false);
    expect(el.querySelector('.md-block > p')).toBe(first);
  });

  it('keeps the code copy button working without inline handlers', async () => {
    const writeText = vi.fn(() => Promise.resolve());
    Object.defineProperty(navigator, 'clipboard', { value: { writeText }, configurable: true });
    Object.defineProperty(window, 'isSecureContext', { value: true, configurable: true });
    await show('```\nnpm test\n```', false);
    const button = el.querySelector('button.copy-code') as HTMLButtonElement;
    expect(button.getAttribute('onclick')).toBeNull();
    button.click();
    await vi.waitFor(() => expect(button.textContent).toBe('Copied'));
    expect(writeText).toHaveBeenCalledWith('npm test');
  });
});
