import { type ComponentFixture, TestBed } from '@angular/core/testing';
import { Announcer } from '../shell/announcer';
import { ToastService } from '../shell/toast.service';
import type { ChatMessage } from './chat-message';
import { type EditRequest, type FeedbackChoice, MessageItem } from './message-item';

const base: ChatMessage = {
  id: 'm1', conversation_id: 'c1', position: 1, role: 'assistant', content: 'Hello **world**', status: 'complete',
  created_at: '', updated_at: '', token_count: null, model_name: 'gpt-test', finish_reason: 'stop', error_code: null,
  feedback: null, feedback_comment: null, files: [],
};

describe('MessageItem', () => {
  let fixture: ComponentFixture<MessageItem>;
  let el: HTMLElement;
  /** What was scrolled into view, and how: jsdom lays nothing out and has no scrollIntoView. */
  let scrolled: { element: Element; options: unknown }[];

  beforeEach(() => {
    scrolled = [];
    Element.prototype.scrollIntoView = function (this: Element, options?: boolean | ScrollIntoViewOptions) { scrolled.push({ element: this, options }); };
  });

  afterEach(() => {
    Reflect.deleteProperty(Element.prototype, 'scrollIntoView');
  });

  async function render(message: Partial<ChatMessage>, inputs: Record<string, unknown> = {}): Promise<void> {
    fixture = TestBed.createComponent(MessageItem);
    el = fixture.nativeElement as HTMLElement;
    fixture.componentRef.setInput('message', { ...base, ...message });
    for (const [name, value] of Object.entries(inputs)) fixture.componentRef.setInput(name, value);
    await fixture.whenStable();
  }

  it('shows an answer that ended before its end with the marks it had opened closed; a complete one as written', async () => {
    for (const status of ['stopped', 'interrupted', 'failed'] as const) {
      await render({ status, content: 'Intro.\n\n**Offline demo mode: no language' });
      expect(el.querySelector('.markdown strong')?.textContent, status).toBe('Offline demo mode: no language');
      expect(el.querySelector('.markdown')?.textContent, status).not.toContain('*');
    }
    await render({ status: 'complete', content: 'Intro.\n\n**Offline demo mode: no language' });
    expect(el.querySelector('.markdown strong')).toBeNull();
    expect(el.querySelector('.markdown')?.textContent).toContain('**Offline');
  });

  it('renders an answer as Markdown with its model and actions', async () => {
    await render({}, { canRegenerate: true });
    expect(el.querySelector('.markdown strong')?.textContent).toBe('world');
    expect(el.querySelector('.msg-model')?.textContent).toBe('gpt-test');
    for (const name of ['Copy message', 'Good answer', 'Bad answer', 'Regenerate']) {
      expect(el.querySelector(`button[aria-label="${name}"]`), name).not.toBeNull();
    }
  });

  it('renders a user message as plain text, never as HTML', async () => {
    await render({ role: 'user', content: '<b>not bold</b>' });
    expect(el.querySelector('b')).toBeNull();
    expect(el.querySelector('.msg-text')?.textContent).toBe('<b>not bold</b>');
  });

  it('folds a long message of the user\'s behind "Show more", whole in the page and in Copy', async () => {
    const long = Array.from({ length: 40 }, (_, i) => `line ${i}`).join('\n');
    await render({ role: 'user', content: long });
    const text = el.querySelector('.msg-text') as HTMLElement;
    const more = Array.from(el.querySelectorAll('button')).find((b) => b.textContent?.trim() === 'Show more') as HTMLButtonElement;
    expect(text.classList).toContain('is-collapsed');
    expect(text.textContent).toBe(long);
    expect(more.getAttribute('aria-expanded')).toBe('false');
    expect(more.getAttribute('aria-controls')).toBe(text.id);
    more.click();
    await fixture.whenStable();
    expect(text.classList).not.toContain('is-collapsed');
    expect(more.textContent?.trim()).toBe('Show less');
    expect(more.getAttribute('aria-expanded')).toBe('true');
    // One long line counts too; a short message has no fold.
    await render({ role: 'user', content: 'x'.repeat(1300) });
    expect(el.querySelector('.msg-text')?.classList).toContain('is-collapsed');
    await render({ role: 'user', content: 'short\nmessage' });
    expect(el.querySelector('.msg-text')?.classList).not.toContain('is-collapsed');
    expect(el.querySelector('.msg-more')).toBeNull();
  });

  it('announces a copied message (the button\'s new name is not read out), and says so when the copy was refused', async () => {
    const writeText = vi.fn(() => Promise.resolve());
    Object.defineProperty(navigator, 'clipboard', { value: { writeText }, configurable: true });
    Object.defineProperty(window, 'isSecureContext', { value: true, configurable: true });
    await render({});
    const button = el.querySelector('button[aria-label="Copy message"]') as HTMLButtonElement;
    button.click();
    await vi.waitFor(() => expect(TestBed.inject(Announcer).message()).toBe('Copied'));
    expect(writeText).toHaveBeenCalledWith('Hello **world**');
    await fixture.whenStable();
    expect(el.querySelector('button[aria-label="Copied"]')).not.toBeNull();
    // Refused, and the older way too (jsdom has no execCommand copy).
    writeText.mockImplementation(() => Promise.reject(new Error('denied')));
    Object.defineProperty(document, 'execCommand', { value: () => false, configurable: true });
    try {
      await render({ id: 'm2' });
      (el.querySelector('button[aria-label="Copy message"]') as HTMLButtonElement).click();
      await vi.waitFor(() => expect(TestBed.inject(ToastService).toasts().map((t) => t.text)).toEqual([
        'The message could not be copied: the browser refused access to the clipboard.']));
    } finally {
      Reflect.deleteProperty(document, 'execCommand');
    }
  });

  it('shows a failure with Retry', async () => {
    await render({ status: 'failed', errorText: 'The model could not answer right now.', hasFailedLive: true }, { canRegenerate: true });
    let retries = 0;
    fixture.componentInstance.retry.subscribe(() => retries++);
    expect(el.querySelector('[role="alert"]')?.textContent).toContain('The model could not answer right now.');
    (Array.from(el.querySelectorAll('button')).find((b) => b.textContent?.trim() === 'Retry') as HTMLButtonElement).click();
    expect(retries).toBe(1);
  });

  it('offers one way to answer again after an interruption: Retry, in the notice, not Regenerate as well', async () => {
    await render({ status: 'interrupted', content: 'Half an', hasFailedLive: true }, { canRegenerate: true });
    let retries = 0;
    fixture.componentInstance.retry.subscribe(() => retries++);
    const retry = Array.from(el.querySelectorAll('button')).filter((b) => b.textContent?.trim() === 'Retry');
    expect(retry).toHaveLength(1);
    expect(el.querySelector('button[aria-label="Regenerate"]')).toBeNull();
    // What can be done with the half answer stays (a button, in the tab order, named for a screen reader).
    for (const name of ['Copy message', 'Good answer', 'Bad answer']) expect(el.querySelector(`button[aria-label="${name}"]`), name).not.toBeNull();
    expect(retry[0].closest('[role="alert"]')).not.toBeNull();
    expect(retry[0].tabIndex).toBe(0);
    retry[0].click();
    expect(retries).toBe(1);
    // A complete or stopped answer has Regenerate.
    await render({ status: 'complete' }, { canRegenerate: true });
    expect(el.querySelector('button[aria-label="Regenerate"]')).not.toBeNull();
    expect(Array.from(el.querySelectorAll('button')).some((b) => b.textContent?.trim() === 'Retry')).toBe(false);
  });

  it('announces only a failure that happened live: one read from history is plain text (every old one was read out again)', async () => {
    await render({ status: 'failed', error_code: 'OPENAI_ERROR' }, { canRegenerate: true });
    const notice = el.querySelector('.notice-error');
    expect(notice?.textContent).toContain('Retry');
    expect(notice?.getAttribute('role')).toBeNull();
    expect(el.querySelector('[role="alert"], [aria-live]')).toBeNull();
    await render({ status: 'failed', error_code: 'OPENAI_ERROR', errorText: 'Live words.', hasFailedLive: true }, { canRegenerate: true });
    expect(el.querySelector('.notice-error')?.getAttribute('role')).toBe('alert');
  });

  it('offers no Retry for a question the model refused for its length or its words (the same question fails the same); for any other failure it does', async () => {
    const hasRetry = (): boolean => Array.from(el.querySelectorAll('.notice-error button')).some((b) => b.textContent?.trim() === 'Retry');
    for (const reason of ['context_length_exceeded', 'content_filter']) {
      await render({ status: 'failed', error_code: 'OPENAI_ERROR', finish_reason: reason }, { canRegenerate: true });
      expect(hasRetry()).toBe(false);
    }
    await render({ status: 'failed', error_code: 'OPENAI_ERROR', finish_reason: 'upstream_refused' }, { canRegenerate: true });
    expect(hasRetry()).toBe(true);
    await render({ status: 'interrupted', error_code: 'OPENAI_ERROR', finish_reason: 'context_length_exceeded' }, { canRegenerate: true });
    expect(hasRetry()).toBe(true);
  });

  it('words a failure read from history as the server worded it live, by its stored code', async () => {
    const notice = async (message: Partial<ChatMessage>): Promise<string | undefined> => {
      await render(message);
      return el.querySelector('.notice-error span')?.textContent?.trim();
    };
    // Live, the server's error event said this; after a reload it read "The model could not answer."
    expect(await notice({ status: 'failed', error_code: 'OPENAI_ERROR' })).toBe('I\'m temporarily unable to process your request. Please try again in a moment.');
    // The model's server refused the request (its stored finish reason): not "try again in a moment".
    expect(await notice({ status: 'failed', error_code: 'OPENAI_ERROR', finish_reason: 'context_length_exceeded' }))
      .toBe('This is more than the model can read at once. Send a shorter message or smaller files; in a long conversation, starting a new one also helps.');
    expect(await notice({ status: 'failed', error_code: 'OPENAI_ERROR', finish_reason: 'upstream_refused' }))
      .toBe('The model service refused this request; this is not a passing outage. If it keeps happening, please tell whoever runs this Parley.');
    expect(await notice({ status: 'failed', error_code: 'OPENAI_ERROR', finish_reason: 'content_filter' }))
      .toBe('The model service\'s content filter blocked this request. Please rephrase your message.');
    expect(await notice({ status: 'failed', error_code: 'RATE_LIMIT_EXCEEDED' })).toBe('You\'ve sent too many messages. Please wait a bit before sending more.');
    expect(await notice({ status: 'failed', error_code: 'FILE_NOT_FOUND' })).toBe('I couldn\'t process the uploaded file. Please try a different format.');
    expect(await notice({ status: 'failed', error_code: 'INTERNAL_ERROR' })).toBe('Something went wrong. Please try again or start a new conversation.');
    expect(await notice({ status: 'failed', error_code: null })).toBe('Something went wrong. Please try again or start a new conversation.');
    // Interrupted, whatever the code.
    expect(await notice({ status: 'interrupted', error_code: 'SERVICE_UNAVAILABLE' })).toBe('This answer was interrupted before it finished.');
  });

  it('says over an answer which of its question\'s files the model saw cut short or not at all, while it is written too', async () => {
    await render({ status: 'streaming', content: 'So far', context: { truncated_files: ['report.pdf'] } }, { isStreaming: true });
    expect(el.querySelector('.msg-context-note')?.textContent?.trim())
      .toBe('Only the beginning of report.pdf fit in the model\'s context: it did not see the rest.');
    await render({ context: { truncated_files: ['a.txt', 'b.txt'], omitted_files: ['c.txt', 'd.txt', 'e.txt'] } });
    expect(el.querySelector('.msg-context-note')?.textContent?.trim()).toBe(
      'Only the beginning of a.txt and b.txt fit in the model\'s context: it did not see the rest of them. '
      + 'c.txt, d.txt, and e.txt did not fit in the model\'s context: it did not see them.',
    );
    // Before the answer, where the reader starts.
    const note = el.querySelector('.msg-context-note')!;
    expect(note.compareDocumentPosition(el.querySelector('.markdown')!) & Node.DOCUMENT_POSITION_FOLLOWING).toBeTruthy();
    await render({ context: { omitted_files: ['big.log'] } });
    expect(el.querySelector('.msg-context-note')?.textContent?.trim()).toBe('big.log did not fit in the model\'s context: it did not see it.');
    // The conversation's start no longer fits: said, after the files.
    await render({ context: { earlier_messages_omitted: 12 } });
    expect(el.querySelector('.msg-context-note')?.textContent?.trim())
      .toBe('The model did not see the first 12 messages of this conversation: they no longer fit in its context.');
    await render({ context: { omitted_files: ['big.log'], earlier_messages_omitted: 1 } });
    expect(el.querySelector('.msg-context-note')?.textContent?.trim()).toBe('big.log did not fit in the model\'s context: it did not see it. '
      + 'The model did not see the first message of this conversation: it no longer fits in its context.');
    // Every file fit (no notice), and a question never carries one.
    await render({ context: {} });
    expect(el.querySelector('.msg-context-note')).toBeNull();
    await render({ role: 'user', content: 'q', context: { omitted_files: ['x.txt'] } });
    expect(el.querySelector('.msg-context-note')).toBeNull();
  });

  it('says under an answer restated shorter than it was shown that its last words were not saved, once it has ended', async () => {
    await render({ status: 'streaming', content: 'Half an answer', hasLostText: true }, { isStreaming: true });
    expect(el.textContent).not.toContain('could not be saved');
    await render({ status: 'interrupted', content: 'Half an answer', hasLostText: true });
    const note = Array.from(el.querySelectorAll('p.notice')).find((p) => p.textContent?.includes('could not be saved'));
    expect(note?.textContent?.trim()).toBe('The last words shown before the connection was lost could not be saved.');
    // Said politely where it is, not announced.
    expect(note?.closest('[role="alert"], [role="status"], [aria-live]')).toBeNull();
    await render({ status: 'complete', content: 'A whole answer' });
    expect(el.textContent).not.toContain('could not be saved');
  });

  /** The muted notes under the answer, as read. */
  const mutedNotices = (): string[] => Array.from(el.querySelectorAll('p.notice-muted')).map((p) => p.textContent?.trim() ?? '');

  describe('the note on how a completed answer ended', () => {
    const NO_TEXT = 'The model returned no text.';
    const NO_TEXT_LENGTH = 'The model returned no text before the answer reached its length limit.';
    const NO_TEXT_FILTER = 'The model\'s provider withheld this answer (content filter).';
    const CUT = 'The answer was cut off at its length limit.';
    const FILTERED = 'The rest of this answer was withheld by the model\'s provider (content filter).';
    const cases: Array<[string, Partial<ChatMessage>, string[]]> = [
      ['an empty answer', { content: '', finish_reason: 'stop' }, [NO_TEXT]],
      ['an answer of only spaces and new lines', { content: '  \n\t ', finish_reason: 'stop' }, [NO_TEXT]],
      ['an empty answer without a reason', { content: '', finish_reason: null }, [NO_TEXT]],
      ['an empty answer of tool calls', { content: '', finish_reason: 'tool_calls' }, [NO_TEXT]],
      ['an empty answer that reached the output limit', { content: '', finish_reason: 'length' }, [NO_TEXT_LENGTH]],
      ['a blank answer that reached the output limit', { content: ' \n', finish_reason: 'length' }, [NO_TEXT_LENGTH]],
      ['an empty answer the provider filtered', { content: '', finish_reason: 'content_filter' }, [NO_TEXT_FILTER]],
      ['an answer cut at the output limit', { content: 'Half an', finish_reason: 'length' }, [CUT]],
      ['an answer the provider filtered part of', { content: 'Half an', finish_reason: 'content_filter' }, [FILTERED]],
      ['an answer that ended (stop)', { content: 'Whole', finish_reason: 'stop' }, []],
      ['an answer that ended (end_turn)', { content: 'Whole', finish_reason: 'end_turn' }, []],
      ['an answer that ended with tool calls', { content: 'Whole', finish_reason: 'tool_calls' }, []],
      ['an answer without a reason', { content: 'Whole', finish_reason: null }, []],
      ['an answer stopped before its first word', { status: 'stopped', content: '', finish_reason: 'stop_requested' }, ['Stopped']],
      ['an answer stopped at the output limit', { status: 'stopped', content: 'Half an', finish_reason: 'length' }, ['Stopped']],
      ['a failed answer', { status: 'failed', content: '', finish_reason: null, error_code: 'OPENAI_ERROR' }, []],
      ['an interrupted answer', { status: 'interrupted', content: 'Half an', finish_reason: 'length' }, []],
    ];
    for (const [name, message, expected] of cases) {
      it(`from history: ${name} says ${expected.length > 0 ? `"${expected.join('", "')}"` : 'nothing'}`, async () => {
        await render({ status: 'complete', ...message });
        expect(mutedNotices()).toEqual(expected);
      });
    }

    it('offers neither copy nor rating for an answer of only spaces and new lines, only Regenerate', async () => {
      await render({ status: 'complete', content: '  \n\t ', finish_reason: 'stop' }, { canRegenerate: true });
      expect(el.querySelector('app-markdown-view')).toBeNull();
      const labels = Array.from(el.querySelectorAll('.msg-actions button')).map((b) => b.getAttribute('aria-label'));
      expect(labels).toEqual(['Regenerate']);
    });

    it('says nothing while the answer streams, and its note once the done event ended it', async () => {
      await render({ status: 'streaming', content: 'Half an', finish_reason: null }, { isStreaming: true });
      expect(mutedNotices()).toEqual([]);
      // The done event sets the status before the list stops calling it streaming: nothing until it does.
      fixture.componentRef.setInput('message', { ...base, status: 'complete', content: 'Half an', finish_reason: 'length' });
      await fixture.whenStable();
      expect(mutedNotices()).toEqual([]);
      fixture.componentRef.setInput('isStreaming', false);
      await fixture.whenStable();
      expect(mutedNotices()).toEqual([CUT]);
    });

    it('puts the note in place of the typing dots of an answer that ended without a word', async () => {
      await render({ status: 'streaming', content: '', finish_reason: null }, { isStreaming: true });
      expect(el.querySelector('.typing')).not.toBeNull();
      expect(mutedNotices()).toEqual([]);
      fixture.componentRef.setInput('message', { ...base, status: 'complete', content: '', finish_reason: 'content_filter' });
      fixture.componentRef.setInput('isStreaming', false);
      await fixture.whenStable();
      expect(el.querySelector('.typing')).toBeNull();
      expect(mutedNotices()).toEqual([NO_TEXT_FILTER]);
      // Said where it is, as text: no alert, no live region.
      expect(el.querySelector('p.notice-muted')?.closest('[role="alert"], [role="status"], [aria-live]')).toBeNull();
    });

    it('keeps the note out of the answer\'s Markdown and out of what Copy copies', async () => {
      const writeText = vi.fn(() => Promise.resolve());
      Object.defineProperty(navigator, 'clipboard', { value: { writeText }, configurable: true });
      Object.defineProperty(window, 'isSecureContext', { value: true, configurable: true });
      await render({ status: 'complete', content: 'Half **an**', finish_reason: 'length' });
      expect(mutedNotices()).toEqual([CUT]);
      expect(el.querySelector('app-markdown-view')?.textContent).not.toContain('cut off');
      expect(el.querySelector('p.notice-muted')?.closest('app-markdown-view, .markdown')).toBeNull();
      (el.querySelector('button[aria-label="Copy message"]') as HTMLButtonElement).click();
      await vi.waitFor(() => expect(writeText).toHaveBeenCalledWith('Half **an**'));
    });
  });

  describe('a reasoning model\'s thinking (<think>…</think> at the start of the answer)', () => {
    const details = (): HTMLDetailsElement | null => el.querySelector('details');
    const summary = (): string | undefined => el.querySelector('details > summary')?.textContent?.trim();

    it('folds the thinking above the answer, "Thinking…" while it streams and "Thought process" once done', async () => {
      await render({ status: 'streaming', content: '<think>Let me', finish_reason: null }, { isStreaming: true });
      expect(details()?.open).toBe(false);
      expect(summary()).toBe('Thinking…');
      expect(el.querySelector('.msg-thinking-text')?.textContent).toBe('Let me');
      // The summary is the progress shown: no typing dots, no answer yet.
      expect(el.querySelector('.typing')).toBeNull();
      expect(el.querySelector('app-markdown-view')).toBeNull();
      fixture.componentRef.setInput('message', { ...base, status: 'streaming', content: '<think>Let me see.</think>\n\nThe **answer**', finish_reason: null });
      await fixture.whenStable();
      expect(summary()).toBe('Thought process');
      expect(details()?.open).toBe(false);
      fixture.componentRef.setInput('message', { ...base, content: '<think>Let me see.</think>\n\nThe **answer**' });
      fixture.componentRef.setInput('isStreaming', false);
      await fixture.whenStable();
      expect(summary()).toBe('Thought process');
      expect(details()?.open).toBe(false);
      // The answer, and only the answer, goes to the Markdown view; the thinking comes before it.
      const view = el.querySelector('app-markdown-view');
      expect(view?.querySelector('strong')?.textContent).toBe('answer');
      expect(view?.textContent).not.toContain('Let me see');
      expect(view?.textContent).not.toContain('think');
      expect(details()?.compareDocumentPosition(view as Node) ?? 0).toBe(Node.DOCUMENT_POSITION_FOLLOWING);
      expect(mutedNotices()).toEqual([]);
    });

    it('shows the thinking as plain text, never as HTML or Markdown', async () => {
      await render({ content: '<think><img src=x onerror=alert(1)> **not bold**\n  kept</think>Answer' });
      expect(el.querySelector('img')).toBeNull();
      expect(el.querySelector('details strong')).toBeNull();
      expect(el.querySelector('.msg-thinking-text')?.textContent).toBe('<img src=x onerror=alert(1)> **not bold**\n  kept');
      expect(el.querySelector('app-markdown-view')?.textContent?.trim()).toBe('Answer');
    });

    it('shows the thinking without the line breaks around it (as models write <think>\\n…\\n</think>)', async () => {
      await render({ content: '<think>\nFirst line.\n\nSecond line.\n</think>\n\nAnswer' });
      expect(el.querySelector('.msg-thinking-text')?.textContent).toBe('First line.\n\nSecond line.');
    });

    it('keeps the thinking open, as the reader left it, while more tokens arrive', async () => {
      await render({ status: 'streaming', content: '<think>One', finish_reason: null }, { isStreaming: true });
      const opened = details() as HTMLDetailsElement;
      (el.querySelector('details > summary') as HTMLElement).click();
      opened.open = true; // jsdom does not toggle on a summary's click
      for (const content of ['<think>One two', '<think>One two</think>', '<think>One two</think>Ans', '<think>One two</think>Answer']) {
        fixture.componentRef.setInput('message', { ...base, status: 'streaming', content, finish_reason: null });
        await fixture.whenStable();
      }
      fixture.componentRef.setInput('message', { ...base, content: '<think>One two</think>Answer' });
      fixture.componentRef.setInput('isStreaming', false);
      await fixture.whenStable();
      expect(details()).toBe(opened);
      expect(opened.open).toBe(true);
      expect(el.querySelector('.msg-thinking-text')?.textContent).toBe('One two');
    });

    it('copies only the answer', async () => {
      const writeText = vi.fn(() => Promise.resolve());
      Object.defineProperty(navigator, 'clipboard', { value: { writeText }, configurable: true });
      Object.defineProperty(window, 'isSecureContext', { value: true, configurable: true });
      await render({ content: '<think>secret reasoning</think>\n\nThe **answer**' });
      (el.querySelector('button[aria-label="Copy message"]') as HTMLButtonElement).click();
      await vi.waitFor(() => expect(writeText).toHaveBeenCalledWith('The **answer**'));
    });

    it('says "no text" under the folded thinking of a completed answer that is only thinking, and offers no copy', async () => {
      await render({ content: '<think>I thought and thought</think>\n', finish_reason: 'stop' });
      expect(details()?.open).toBe(false);
      expect(summary()).toBe('Thought process');
      expect(el.querySelector('app-markdown-view')).toBeNull();
      expect(mutedNotices()).toEqual(['The model returned no text.']);
      expect(el.querySelector('button[aria-label="Copy message"]')).toBeNull();
      expect(el.querySelector('button[aria-label="Bad answer"]')).not.toBeNull();
      // Thinking cut off by the output limit: the length variant.
      await render({ content: '<think>I thought and thou', finish_reason: 'length' });
      expect(summary()).toBe('Thinking…');
      expect(mutedNotices()).toEqual(['The model returned no text before the answer reached its length limit.']);
    });

    it('shows the typing dots until thinking arrives; an empty block is not shown once done', async () => {
      await render({ status: 'streaming', content: '', finish_reason: null }, { isStreaming: true });
      expect(el.querySelector('.typing')).not.toBeNull();
      fixture.componentRef.setInput('message', { ...base, content: '<think>\n\n</think>\n\nHello' });
      fixture.componentRef.setInput('isStreaming', false);
      await fixture.whenStable();
      expect(details()).toBeNull();
      expect(el.querySelector('app-markdown-view')?.textContent?.trim()).toBe('Hello');
    });

    it('leaves a <think> that is not at the start as the answer\'s text', async () => {
      await render({ content: 'Write <think>x</think> tags' });
      expect(details()).toBeNull();
      expect(el.querySelector('app-markdown-view')?.textContent).toContain('<think>x</think>');
    });
  });

  it('lets the text of a message, and what is typed about it, go the way of its own script (Arabic, Hebrew)', async () => {
    await render({ id: 'u1', role: 'user', content: 'مرحبا', model_name: null }, { canEdit: true });
    expect(el.querySelector('.msg-text')?.getAttribute('dir')).toBe('auto');
    el.querySelector<HTMLButtonElement>('button[aria-label="Edit message"]')!.click();
    await fixture.whenStable();
    expect(el.querySelector('textarea.msg-edit-input')?.getAttribute('dir')).toBe('auto');
    await render({ content: 'שלום', feedback: 'negative', feedback_comment: 'לא נכון' });
    expect(el.querySelector('.markdown p')?.getAttribute('dir')).toBe('auto');
    expect(el.querySelector('.feedback-saved bdi')?.textContent).toBe('לא נכון');
    (el.querySelector('button[aria-label="Bad answer"]') as HTMLButtonElement).click();
    await fixture.whenStable();
    expect(el.querySelector('.feedback-form textarea')?.getAttribute('dir')).toBe('auto');
  });

  it('shows the failure of an older answer without Retry (it would replace the last answer instead)', async () => {
    await render({ status: 'interrupted', content: 'Half an' }, { canRegenerate: false });
    expect(el.querySelector('.notice-error')?.textContent).toContain('This answer was interrupted before it finished.');
    expect(Array.from(el.querySelectorAll('button')).some((b) => b.textContent?.trim() === 'Retry')).toBe(false);
  });

  it('offers only Regenerate on an answer stopped before its first word (nothing to copy or rate)', async () => {
    await render({ content: '', status: 'stopped' }, { canRegenerate: true });
    expect(el.querySelector('button[aria-label="Regenerate"]')).not.toBeNull();
    for (const name of ['Copy message', 'Good answer', 'Bad answer']) expect(el.querySelector(`button[aria-label="${name}"]`), name).toBeNull();
    expect(el.textContent).toContain('Stopped');
  });

  it('hides actions while streaming', async () => {
    await render({ status: 'streaming', content: '' }, { isStreaming: true });
    expect(el.querySelector('button[aria-label="Good answer"]')).toBeNull();
    expect(el.querySelector('[aria-busy="true"]')).not.toBeNull();
  });

  it('shows the feedback comment saved with the answer (after a reload too), as text', async () => {
    await render({ feedback: 'negative', feedback_comment: 'Wrong <b>year</b>' });
    expect(el.querySelector('.feedback-saved')?.textContent).toBe('Your feedback: Wrong <b>year</b>');
    expect(el.querySelector('.feedback-saved b')).toBeNull();
    expect(el.querySelector('button[aria-label="Bad answer"]')?.getAttribute('aria-pressed')).toBe('true');
    await render({ feedback: 'positive', feedback_comment: null });
    expect(el.querySelector('.feedback-saved')).toBeNull();
  });

  it('emits feedback, then offers an optional comment', async () => {
    await render({});
    const choices: unknown[] = [];
    fixture.componentInstance.feedback.subscribe((c) => choices.push(c));
    (el.querySelector('button[aria-label="Bad answer"]') as HTMLButtonElement).click();
    await fixture.whenStable();
    expect(choices).toEqual([{ messageId: 'm1', feedback: 'negative' }]);
    expect(el.querySelector('.feedback-form textarea')).not.toBeNull();
  });

  it('keeps the saved comment when the same thumb is clicked again, and opens the form with it', async () => {
    await render({ feedback: 'negative', feedback_comment: 'Wrong year' });
    const choices: unknown[] = [];
    fixture.componentInstance.feedback.subscribe((c) => choices.push(c));
    (el.querySelector('button[aria-label="Bad answer"]') as HTMLButtonElement).click();
    await fixture.whenStable();
    expect(choices).toEqual([{ messageId: 'm1', feedback: 'negative', comment: 'Wrong year' }]);
    expect((el.querySelector('.feedback-form textarea') as HTMLTextAreaElement).value).toBe('Wrong year');
  });

  it('drops the saved comment when the rating turns around (a complaint is not kept as praise), and asks afresh', async () => {
    await render({ feedback: 'negative', feedback_comment: 'Wrong year' });
    const choices: FeedbackChoice[] = [];
    fixture.componentInstance.feedback.subscribe((c) => {
      choices.push(c);
      // What the store does at once: the new rating, with the comment sent (none: '' is sent as no comment).
      fixture.componentRef.setInput('message', { ...base, feedback: c.feedback, feedback_comment: c.comment || null });
    });
    (el.querySelector('button[aria-label="Good answer"]') as HTMLButtonElement).click();
    await fixture.whenStable();
    expect(choices).toEqual([{ messageId: 'm1', feedback: 'positive', comment: '' }]);
    expect((el.querySelector('.feedback-form textarea') as HTMLTextAreaElement).value).toBe('');
    expect(el.querySelector('.feedback-form label')?.textContent).toContain('What was good?');
    // And back: the praise is not kept as a complaint either.
    (el.querySelector('.feedback-form textarea') as HTMLTextAreaElement).value = 'Clear';
    (el.querySelector('.feedback-form') as HTMLFormElement).dispatchEvent(new Event('submit', { cancelable: true }));
    expect(choices.at(-1)).toEqual({ messageId: 'm1', feedback: 'positive', comment: 'Clear' });
    fixture.componentRef.setInput('message', { ...base, feedback: 'positive', feedback_comment: 'Clear' });
    await fixture.whenStable();
    (el.querySelector('button[aria-label="Bad answer"]') as HTMLButtonElement).click();
    await fixture.whenStable();
    expect(choices.at(-1)).toEqual({ messageId: 'm1', feedback: 'negative', comment: '' });
    expect((el.querySelector('.feedback-form textarea') as HTMLTextAreaElement).value).toBe('');
    expect(el.querySelector('.feedback-form label')?.textContent).toContain('What went wrong?');
  });

  it('removes the saved comment when it is emptied and sent', async () => {
    await render({ feedback: 'negative', feedback_comment: 'Wrong year' });
    const choices: unknown[] = [];
    fixture.componentInstance.feedback.subscribe((c) => choices.push(c));
    (el.querySelector('button[aria-label="Bad answer"]') as HTMLButtonElement).click();
    await fixture.whenStable();
    (el.querySelector('.feedback-form textarea') as HTMLTextAreaElement).value = '  ';
    (el.querySelector('.feedback-form') as HTMLFormElement).dispatchEvent(new Event('submit', { cancelable: true }));
    expect(choices.at(-1)).toEqual({ messageId: 'm1', feedback: 'negative', comment: '' });
  });

  it('gives the keyboard back to the chosen thumb when the comment form closes', async () => {
    await render({ feedback: 'negative' });
    document.body.append(el);
    try {
      (el.querySelector('button[aria-label="Bad answer"]') as HTMLButtonElement).click();
      await fixture.whenStable();
      (el.querySelector('.feedback-form textarea') as HTMLTextAreaElement).focus();
      (el.querySelector('.feedback-form .btn-ghost') as HTMLButtonElement).click();
      await fixture.whenStable();
      await new Promise((resolve) => setTimeout(resolve));
      expect(el.querySelector('.feedback-form')).toBeNull();
      expect(document.activeElement?.getAttribute('aria-label')).toBe('Bad answer');
    } finally {
      el.remove();
    }
  });

  describe('editing the last question', () => {
    const question = { id: 'u1', role: 'user' as const, content: 'Helo\nsecond line', model_name: null };

    /** Renders the question with `inputs`, opens its edit box, and collects what Send emits. */
    async function openEditBox(inputs: Record<string, unknown>): Promise<{ box: HTMLTextAreaElement; sent: string[] }> {
      await render(question, inputs);
      const sent: string[] = [];
      fixture.componentInstance.edit.subscribe((request: EditRequest) => sent.push(request.text));
      el.querySelector<HTMLButtonElement>('button[aria-label="Edit message"]')!.click();
      await fixture.whenStable();
      return { box: el.querySelector<HTMLTextAreaElement>('textarea.msg-edit-input')!, sent };
    }

    it('shows a question of files alone as its chips, and lets a question with files be edited to none', async () => {
      const files = [{ id: 'f1', filename: 'report.pdf', file_type: '.pdf', file_size: 2048 }];
      await render({ ...question, content: '', files }, { canEdit: true });
      expect(el.querySelector('.msg-files')?.textContent).toContain('report.pdf');
      expect(el.querySelector('.msg-text')).toBeNull();
      expect(el.querySelector('button[aria-label="Copy message"]')).toBeNull();
      fixture.componentRef.setInput('message', { ...fixture.componentInstance.message(), content: 'What does it say?' });
      await fixture.whenStable();
      const sent: string[] = [];
      fixture.componentInstance.edit.subscribe((request: EditRequest) => sent.push(request.text));
      el.querySelector<HTMLButtonElement>('button[aria-label="Edit message"]')!.click();
      await fixture.whenStable();
      const box = el.querySelector<HTMLTextAreaElement>('textarea.msg-edit-input')!;
      expect(box.placeholder).toBe('Ask something about the files, or send them as they are');
      box.value = '  ';
      box.dispatchEvent(new Event('input'));
      await fixture.whenStable();
      const submit = el.querySelector<HTMLButtonElement>('.msg-edit button[type="submit"]')!;
      expect(submit.disabled).toBe(false);
      submit.click();
      await fixture.whenStable();
      expect(sent).toEqual(['']);
    });

    it('offers Edit only on the question an edit changes', async () => {
      await render(question, { canEdit: false });
      expect(el.querySelector('button[aria-label="Edit message"]')).toBeNull();
      fixture.componentRef.setInput('canEdit', true);
      await fixture.whenStable();
      expect(el.querySelector('button[aria-label="Edit message"]')).not.toBeNull();
    });

    it('opens a box with the text; Send emits the edited text, a blank one is not sent, Cancel and Esc close it', async () => {
      await render(question, { canEdit: true });
      const sent: string[] = [];
      const requests: EditRequest[] = [];
      fixture.componentInstance.edit.subscribe((request: EditRequest) => { sent.push(request.text); requests.push(request); });
      const open = async (): Promise<HTMLTextAreaElement> => {
        el.querySelector<HTMLButtonElement>('button[aria-label="Edit message"]')!.click();
        await fixture.whenStable();
        return el.querySelector<HTMLTextAreaElement>('textarea.msg-edit-input')!;
      };
      let box = await open();
      expect(box.value).toBe('Helo\nsecond line');
      box.value = '   ';
      el.querySelector<HTMLButtonElement>('.msg-edit button[type="submit"]')!.click();
      await fixture.whenStable();
      expect(sent).toEqual([]);
      box.value = 'Hello\nsecond line';
      el.querySelector<HTMLButtonElement>('.msg-edit button[type="submit"]')!.click();
      await fixture.whenStable();
      expect(sent).toEqual(['Hello\nsecond line']);
      expect(requests[0].messageId).toBe('u1');
      expect(el.querySelector('.msg-edit')).toBeNull();
      // Refused by the server (too long, asked meanwhile elsewhere): the box opens again with what was typed.
      requests[0].onRefused();
      await fixture.whenStable();
      expect(el.querySelector<HTMLTextAreaElement>('textarea.msg-edit-input')?.value).toBe('Hello\nsecond line');
      el.querySelector<HTMLButtonElement>('.msg-edit button.btn-ghost')!.click();
      await fixture.whenStable();

      box = await open();
      expect(box.value).toBe('Helo\nsecond line');
      box.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true }));
      await fixture.whenStable();
      expect(el.querySelector('.msg-edit')).toBeNull();
      // Esc on the box's buttons cancels too, and is not left for the page (where it stops a running answer).
      await open();
      const escape = new KeyboardEvent('keydown', { key: 'Escape', bubbles: true, cancelable: true });
      el.querySelector<HTMLButtonElement>('.msg-edit button[type="submit"]')!.dispatchEvent(escape);
      await fixture.whenStable();
      expect(escape.defaultPrevented).toBe(true);
      expect(el.querySelector('.msg-edit')).toBeNull();
      await open();
      el.querySelector<HTMLButtonElement>('.msg-edit button.btn-ghost')!.click();
      await fixture.whenStable();
      expect(el.querySelector('.msg-edit')).toBeNull();
      expect(sent).toHaveLength(1);
    });

    it('turns Send off while the box holds nothing but spaces, as the composer does', async () => {
      const { box, sent } = await openEditBox({ canEdit: true });
      const send = el.querySelector<HTMLButtonElement>('button[aria-label="Send edited message"]')!;
      const type = async (text: string): Promise<void> => {
        box.value = text;
        box.dispatchEvent(new Event('input', { bubbles: true }));
        await fixture.whenStable();
      };
      expect(send.disabled).toBe(false);
      await type('');
      expect(send.disabled).toBe(true);
      await type(' \n ');
      expect(send.disabled).toBe(true);
      await type('Hello');
      expect(send.disabled).toBe(false);
      send.click();
      expect(sent).toEqual(['Hello']);
    });

    it('counts the characters near the limit and keeps a longer paste whole, Send off (maxlength cut it and sent the rest)', async () => {
      const { box, sent } = await openEditBox({ canEdit: true, maxChars: 50 });
      const send = el.querySelector<HTMLButtonElement>('button[aria-label="Send edited message"]')!;
      const limit = (): HTMLElement | null => el.querySelector('.msg-edit .composer-limit');
      expect(box.hasAttribute('maxlength')).toBe(false);
      expect(limit()).toBeNull();
      box.value = 'x'.repeat(46);
      box.dispatchEvent(new Event('input', { bubbles: true }));
      await fixture.whenStable();
      expect(limit()?.textContent?.trim()).toBe('46 / 50 characters');
      expect(box.getAttribute('aria-describedby')).toBe(limit()?.id);
      expect(send.disabled).toBe(false);
      box.value = 'x'.repeat(57) + 'END';
      box.dispatchEvent(new Event('input', { bubbles: true }));
      await fixture.whenStable();
      expect(limit()?.textContent?.trim()).toBe('60 / 50 characters · 10 too many to send');
      expect(limit()?.classList).toContain('is-over');
      expect(send.disabled).toBe(true);
      box.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true }));
      await fixture.whenStable();
      expect(sent).toEqual([]);
      expect(box.value.endsWith('END')).toBe(true);
      expect(el.querySelector('.msg-edit')).not.toBeNull();
      box.value = '\n  indented line\nnext  \n';
      box.dispatchEvent(new Event('input', { bubbles: true }));
      await fixture.whenStable();
      send.click();
      expect(sent).toEqual(['  indented line\nnext']);
    });

    it('leaves Esc and Enter to an input method while it composes: the box stays open, nothing is sent', async () => {
      const { box, sent } = await openEditBox({ canEdit: true });
      for (const init of [{ isComposing: true }, { keyCode: 229 }]) {
        for (const key of ['Escape', 'Enter']) box.dispatchEvent(new KeyboardEvent('keydown', { key, bubbles: true, cancelable: true, ...init }));
      }
      await fixture.whenStable();
      expect(el.querySelector('.msg-edit')).not.toBeNull();
      expect(sent).toEqual([]);
      box.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true, cancelable: true }));
      await fixture.whenStable();
      expect(el.querySelector('.msg-edit')).toBeNull();
    });

    it('brings the box\'s top into view when it opens (a long question\'s start is above the screen)', async () => {
      try {
        await render({ ...question, content: 'word '.repeat(6000) }, { canEdit: true });
        document.body.append(el);
        el.querySelector<HTMLButtonElement>('button[aria-label="Edit message"]')!.click();
        await fixture.whenStable();
        await new Promise((resolve) => setTimeout(resolve));
        const form = el.querySelector('form.msg-edit');
        expect(document.activeElement).toBe(el.querySelector('textarea.msg-edit-input'));
        expect(scrolled.at(-1)).toEqual({ element: form, options: { block: 'nearest' } });
      } finally {
        el.remove();
      }
    });

    it('closes the box for good when the question can no longer be edited (an answer started elsewhere)', async () => {
      await render(question, { canEdit: true, maxChars: 50 });
      el.querySelector<HTMLButtonElement>('button[aria-label="Edit message"]')!.click();
      await fixture.whenStable();
      expect(el.querySelector('.msg-edit')).not.toBeNull();
      fixture.componentRef.setInput('canEdit', false);
      await fixture.whenStable();
      expect(el.querySelector('.msg-edit')).toBeNull();
      expect(el.querySelector('.msg-text')?.textContent).toBe('Helo\nsecond line');
      // The answer ended: the box does not come back by itself (it did, its draft lost).
      fixture.componentRef.setInput('canEdit', true);
      await fixture.whenStable();
      expect(el.querySelector('.msg-edit')).toBeNull();
    });
  });

  it('on a touch screen, keeps the reader on the question just edited (focus fell to the page\'s body)', async () => {
    vi.stubGlobal('matchMedia', (query: string) => ({ matches: query === '(pointer: coarse)', media: query }));
    try {
      await render({ id: 'u1', role: 'user', content: 'Helo', model_name: null }, { canEdit: true });
      document.body.append(el);
      el.querySelector<HTMLButtonElement>('button[aria-label="Edit message"]')!.click();
      await fixture.whenStable();
      el.querySelector<HTMLTextAreaElement>('textarea.msg-edit-input')!.value = 'Hello';
      el.querySelector<HTMLButtonElement>('.msg-edit button[type="submit"]')!.click();
      await fixture.whenStable();
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(document.activeElement).toBe(el.querySelector('article'));
    } finally {
      vi.unstubAllGlobals();
      el.remove();
    }
  });
});
