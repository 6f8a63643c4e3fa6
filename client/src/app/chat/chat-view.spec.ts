import { type ComponentFixture, TestBed } from '@angular/core/testing';
import { provideRouter } from '@angular/router';
import { Subject } from 'rxjs';
import { ConversationsStore } from '../conversations/conversations.store';
import { ApiClient } from '../core/api-client';
import { ApiError } from '../core/api-error';
import type { ConversationDetail, Message } from '../core/api-models';
import { ChatApi } from './chat-api.service';
import type { StreamedEvent } from './chat-events';
import { ChatView } from './chat-view';

const ID = '0b5e1f1c-6a53-4f3c-9a43-3c0d1b2e4f5a';

function message(id: string, position: number, role: Message['role'], extra: Partial<Message> = {}): Message {
  return {
    id, conversation_id: ID, position, role, content: `${role} ${position}`, status: 'complete', created_at: '', updated_at: '',
    token_count: null, model_name: null, finish_reason: null, error_code: null, feedback: null, feedback_comment: null, files: [],
    ...extra,
  };
}

describe('ChatView', () => {
  let fixture: ComponentFixture<ChatView>;
  let el: HTMLElement;
  /** The answer's stream, for an answer asked for (a send, a regeneration) since the conversation opened. */
  let stream: Subject<StreamedEvent>;

  async function open(messages: Message[], id: string | null = ID): Promise<void> {
    const detail: ConversationDetail = {
      conversation: { id: ID, session_id: 's', title: 'T', created_at: '', updated_at: '', is_active: true, message_count: messages.length },
      messages, has_more: false, has_newer: false,
    };
    stream = new Subject<StreamedEvent>();
    TestBed.configureTestingModule({
      providers: [
        provideRouter([]),
        { provide: ChatApi, useValue: { regenerate: () => stream.asObservable(), send: () => stream.asObservable() } },
        { provide: ApiClient, useValue: { get: () => Promise.resolve(detail) } },
        { provide: ConversationsStore, useValue: { refresh: () => Promise.resolve(), forget: () => undefined } },
      ],
    });
    fixture = TestBed.createComponent(ChatView);
    el = fixture.nativeElement as HTMLElement;
    document.body.append(el);
    fixture.componentRef.setInput('id', id ?? undefined);
    await vi.waitFor(async () => {
      await fixture.whenStable();
      expect(el.querySelectorAll('app-message-item')).toHaveLength(messages.length);
    });
  }

  afterEach(() => {
    el.remove();
    sessionStorage.clear();
  });

  /** Types into the composer as a person does. */
  async function type(text: string): Promise<void> {
    const box = composer() as HTMLTextAreaElement;
    box.value = text;
    box.dispatchEvent(new Event('input', { bubbles: true }));
    await fixture.whenStable();
  }

  /** The tab reloaded (at a conversation, or at a new chat: null): the page goes, and the app starts again with nothing in memory. */
  async function reload(messages: Message[], id: string | null = ID): Promise<void> {
    window.dispatchEvent(new Event('pagehide'));
    el.remove();
    TestBed.resetTestingModule();
    await open(messages, id);
  }

  const composer = (): Element | null => el.querySelector('textarea#message-input');

  it('leaves the keyboard in the composer after Regenerate (the button goes with the answer it replaces)', async () => {
    await open([message('u1', 0, 'user'), message('a1', 1, 'assistant')]);
    const button = el.querySelector('button[aria-label="Regenerate"]') as HTMLButtonElement;
    button.focus();
    button.click();
    await fixture.whenStable();
    expect(el.querySelector('button[aria-label="Regenerate"]')).toBeNull();
    expect(document.activeElement).toBe(composer());
  });

  it('leaves the keyboard in the composer after Retry', async () => {
    await open([message('u1', 0, 'user'), message('a1', 1, 'assistant', { content: '', status: 'failed' })]);
    const retry = Array.from(el.querySelectorAll('button')).find((b) => b.textContent?.trim() === 'Retry') as HTMLButtonElement;
    retry.focus();
    retry.click();
    await fixture.whenStable();
    expect(document.activeElement).toBe(composer());
  });

  it('says under an answer cut at the output limit that it was, from history and as soon as its stream ends', async () => {
    const notes = (): string[] => Array.from(el.querySelectorAll('p.notice-muted')).map((p) => p.textContent?.trim() ?? '');
    // The stored row's finish reason.
    await open([message('u1', 0, 'user'), message('a1', 1, 'assistant', { content: '', finish_reason: 'length' })]);
    expect(notes()).toEqual(['The model returned no text before the answer reached its length limit.']);
    // The done event's, live: nothing while it streams.
    (el.querySelector('button[aria-label="Regenerate"]') as HTMLButtonElement).click();
    stream.next({ type: 'start', conversation_id: ID, user_message_id: 'u1', message_id: 'a2', provider: 'openai', model: 'gpt-test', replaces_message_id: 'a1', finished: false });
    stream.next({ type: 'token', token: 'Half an', finished: false });
    await fixture.whenStable();
    expect(notes()).toEqual([]);
    stream.next({ type: 'done', finished: true, message_id: 'a2', status: 'complete', finish_reason: 'length' });
    await fixture.whenStable();
    expect(notes()).toEqual(['The answer was cut off at its length limit.']);
    expect(el.querySelector('app-message-item:last-of-type .markdown')?.textContent?.trim()).toBe('Half an');
  });

  it('keeps the draft of a conversation and of a new chat across a reload, each its own, until it is sent', async () => {
    const messages = [message('u1', 0, 'user'), message('a1', 1, 'assistant')];
    await open(messages);
    await type('half-written thought');
    await reload([], null);
    expect((composer() as HTMLTextAreaElement).value).toBe('');
    await type('a new chat\'s draft');
    await reload(messages);
    expect((composer() as HTMLTextAreaElement).value).toBe('half-written thought');
    (composer() as HTMLTextAreaElement).dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true }));
    await fixture.whenStable();
    expect(el.querySelectorAll('app-message-item')).toHaveLength(4);
    await reload(messages);
    expect((composer() as HTMLTextAreaElement).value).toBe('');
    await reload([], null);
    expect((composer() as HTMLTextAreaElement).value).toBe('a new chat\'s draft');
  });

  it('shows a conversation deleted elsewhere as not found when a send finds it so, and keeps the words for a new chat', async () => {
    const messages = [message('u1', 0, 'user'), message('a1', 1, 'assistant')];
    await open(messages);
    await type('a question for a deleted chat');
    (composer() as HTMLTextAreaElement).dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true }));
    stream.error(new ApiError(404, 'CONVERSATION_NOT_FOUND', 'Conversation not found'));
    await vi.waitFor(async () => {
      await fixture.whenStable();
      expect(el.querySelector('.empty-state h2')?.textContent).toBe('Conversation not found');
    });
    expect(composer()).toBeNull();
    await reload([], null);
    expect((composer() as HTMLTextAreaElement).value).toBe('a question for a deleted chat');
  });

  it('empties the composer when text is put in and sent within one task (paste and send, dictation)', async () => {
    await open([message('u1', 0, 'user'), message('a1', 1, 'assistant')]);
    const box = composer() as HTMLTextAreaElement;
    const text = 'Same-frame send';
    box.value = text;
    box.dispatchEvent(new Event('input', { bubbles: true }));
    box.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true }));
    await fixture.whenStable();
    expect(el.querySelectorAll('app-message-item')).toHaveLength(4);
    expect(el.textContent).toContain(text);
    expect(box.value).toBe('');
  });
});
