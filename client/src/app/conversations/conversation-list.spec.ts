import { type ComponentFixture, TestBed } from '@angular/core/testing';
import { provideRouter } from '@angular/router';
import type { Conversation } from '../core/api-models';
import { ToastService } from '../shell/toast.service';
import { ConversationList } from './conversation-list';

function conversation(id: string, title: string, updatedAt: string): Conversation {
  return { id, session_id: 's', title, created_at: updatedAt, updated_at: updatedAt, is_active: true, message_count: 2 };
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

describe('ConversationList', () => {
  let fixture: ComponentFixture<ConversationList>;
  let el: HTMLElement;
  let fetchMock: ReturnType<typeof vi.fn>;
  const now = new Date().toISOString();
  const old = new Date(Date.now() - 40 * 86_400_000).toISOString();

  beforeEach(async () => {
    // jsdom has no modal dialogs.
    HTMLDialogElement.prototype.showModal ??= function (this: HTMLDialogElement) { this.open = true; };
    HTMLDialogElement.prototype.close ??= function (this: HTMLDialogElement) { this.open = false; };
    fetchMock = vi.fn((url: string, init?: RequestInit) => {
      if (url.startsWith('/api/v1/conversations?')) {
        return Promise.resolve(json({ conversations: [conversation('a', 'Newest', now), conversation('b', 'Oldest', old)], total: 2, limit: 20, offset: 0 }));
      }
      if (init?.method === 'PATCH') {
        const { title } = JSON.parse(init.body as string) as { title: string };
        return Promise.resolve(json({ conversation: conversation('a', title, now) }));
      }
      if (init?.method === 'DELETE') return Promise.resolve(new Response(null, { status: 204 }));
      return Promise.resolve(json({ error: { code: 'NOT_FOUND', message: 'no' } }, 404));
    });
    vi.stubGlobal('fetch', fetchMock);
    TestBed.configureTestingModule({ providers: [provideRouter([])] });
    fixture = TestBed.createComponent(ConversationList);
    el = fixture.nativeElement as HTMLElement;
    fixture.componentRef.setInput('activeId', 'a');
    await vi.waitFor(() => expect(fetchMock).toHaveBeenCalled());
    await fixture.whenStable();
  });

  afterEach(() => vi.unstubAllGlobals());

  /** Opens the inline rename of "Newest", types `value` and presses Enter. */
  async function renameNewest(value: string): Promise<void> {
    (el.querySelector('button[aria-label="Rename Newest"]') as HTMLButtonElement).click();
    await fixture.whenStable();
    const input = el.querySelector('input[aria-label="Conversation title"]') as HTMLInputElement;
    input.value = value;
    input.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter' }));
  }

  it('is a navigation landmark listing conversations newest first, grouped by day', () => {
    const nav = el.querySelector('nav[aria-label="Conversations"]');
    expect(nav).not.toBeNull();
    expect(Array.from(nav?.querySelectorAll('a.conv-link') ?? []).map((a) => a.textContent?.trim())).toEqual(['Newest', 'Oldest']);
    expect(Array.from(el.querySelectorAll('.conv-group')).map((h) => h.textContent)).toEqual(['Today', 'Older']);
    expect(el.querySelector('a[aria-current="page"]')?.textContent?.trim()).toBe('Newest');
    expect(Array.from(el.querySelectorAll('button')).some((b) => b.textContent?.trim() === 'New chat')).toBe(true);
  });

  it('renames inline: Enter saves', async () => {
    await renameNewest('Trip to Lisbon');
    await vi.waitFor(() => expect(fetchMock.mock.calls.some(([, init]) => (init as RequestInit | undefined)?.method === 'PATCH')).toBe(true));
    await fixture.whenStable();
    expect(el.querySelector('a.conv-link')?.textContent?.trim()).toBe('Trip to Lisbon');
  });

  it('keeps the name and says why when a rename is blank', async () => {
    await renameNewest('   ');
    await fixture.whenStable();
    expect(fetchMock.mock.calls.some(([, init]) => (init as RequestInit | undefined)?.method === 'PATCH')).toBe(false);
    expect(el.querySelector('a.conv-link')?.textContent?.trim()).toBe('Newest');
    expect(TestBed.inject(ToastService).toasts().map((t) => t.text)).toEqual(['A title cannot be empty; the conversation keeps its name.']);
  });

  it('asks before deleting', async () => {
    (el.querySelector('button[aria-label="Delete Oldest"]') as HTMLButtonElement).click();
    await fixture.whenStable();
    const dialog = el.querySelector('dialog') as HTMLDialogElement;
    expect(dialog.open).toBe(true);
    expect(dialog.textContent).toContain('“Oldest” and all its messages will be deleted');
    expect(fetchMock.mock.calls.some(([, init]) => (init as RequestInit | undefined)?.method === 'DELETE')).toBe(false);
    (Array.from(dialog.querySelectorAll('button')).find((b) => b.textContent?.trim() === 'Delete') as HTMLButtonElement).click();
    await vi.waitFor(() => expect(el.querySelectorAll('a.conv-link')).toHaveLength(1));
  });
});
