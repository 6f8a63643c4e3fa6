import { type ComponentFixture, TestBed } from '@angular/core/testing';
import { provideRouter } from '@angular/router';
import { ApiClient } from '../core/api-client';
import { AccessGateForm } from './access-gate-form';
import { AppShell } from './app-shell';

function jsonResponse(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

const RIGHT_TOKEN = 'right-token-0123456789';
const REFUSED = { error: { code: 'UNAUTHORIZED', message: 'Wrong access token', details: { reason: 'access_token_required' } } };

/** A gated server: /access says required, a session needs the right X-Access-Token, everything else needs the session. */
function gatedServer(): ReturnType<typeof vi.fn> {
  let hasSession = false;
  return vi.fn((url: string, init?: RequestInit) => {
    const headers = (init?.headers ?? {}) as Record<string, string>;
    if (url === '/api/v1/access') return Promise.resolve(jsonResponse(200, { required: true }));
    if (url === '/api/v1/sessions') {
      if (headers['X-Access-Token'] !== RIGHT_TOKEN) return Promise.resolve(jsonResponse(401, REFUSED));
      hasSession = true;
      return Promise.resolve(jsonResponse(201, { session_id: 's1' }));
    }
    if (!hasSession) return Promise.resolve(jsonResponse(401, { error: { code: 'UNAUTHORIZED', message: 'No session' } }));
    if (url.startsWith('/api/v1/conversations')) return Promise.resolve(jsonResponse(200, { conversations: [], total: 0, limit: 20, offset: 0 }));
    if (url === '/api/v1/chat/config') {
      return Promise.resolve(jsonResponse(200, {
        provider: 'openai', model: 'gpt-test', is_demo: false, max_message_chars: 1000, max_upload_bytes: 1000, allowed_extensions: [],
      }));
    }
    return Promise.resolve(jsonResponse(404, {}));
  });
}

describe('Access gate', () => {
  let fetchMock: ReturnType<typeof vi.fn>;

  beforeEach(() => {
    localStorage.clear();
    fetchMock = gatedServer();
    vi.stubGlobal('fetch', fetchMock);
    TestBed.configureTestingModule({ providers: [provideRouter([])] });
  });

  afterEach(() => {
    vi.unstubAllGlobals();
    localStorage.clear();
  });

  function sessionPosts(): RequestInit[] {
    return (fetchMock.mock.calls as [string, RequestInit | undefined][])
      .filter(([url]) => url === '/api/v1/sessions')
      .map(([, init]) => init ?? {});
  }

  describe('AccessGateForm', () => {
    let fixture: ComponentFixture<AccessGateForm>;
    let el: HTMLElement;
    let unlocked: number;

    beforeEach(async () => {
      await TestBed.inject(ApiClient).bootstrap();
      fixture = TestBed.createComponent(AccessGateForm);
      el = fixture.nativeElement as HTMLElement;
      unlocked = 0;
      fixture.componentInstance.unlocked.subscribe(() => unlocked++);
      await fixture.whenStable();
    });

    function input(): HTMLInputElement {
      return el.querySelector('input') as HTMLInputElement;
    }

    async function submit(token: string): Promise<void> {
      input().value = token;
      input().dispatchEvent(new Event('input'));
      (el.querySelector('button[type="submit"]') as HTMLButtonElement).click();
      await vi.waitFor(() => expect(el.querySelector('button[type="submit"]')?.hasAttribute('disabled')).toBe(false));
      await fixture.whenStable();
    }

    it('has a labelled password input and a Continue button', () => {
      const label = el.querySelector('label[for="access-token"]');
      expect(label?.textContent?.trim()).toBe('Access token');
      expect(input().id).toBe('access-token');
      expect(input().type).toBe('password');
      expect(el.querySelector('button[type="submit"]')?.textContent?.trim()).toBe('Continue');
      expect(el.querySelector('[role="alert"]')).toBeNull();
    });

    it('creates the session with the token in the X-Access-Token header', async () => {
      await submit(RIGHT_TOKEN);
      expect(unlocked).toBe(1);
      const [post] = sessionPosts();
      expect((post?.headers as Record<string, string>)['X-Access-Token']).toBe(RIGHT_TOKEN);
      expect(TestBed.inject(ApiClient).needsAccessToken()).toBe(false);
      expect(input().value).toBe('');
    });

    it('shows a clear error on a wrong token and clears it when typing again', async () => {
      await submit('not-the-token-00000000');
      expect(unlocked).toBe(0);
      const alert = el.querySelector('[role="alert"]');
      expect(alert?.textContent).toContain('That access token is not valid');
      expect(input().getAttribute('aria-invalid')).toBe('true');
      expect(input().getAttribute('aria-describedby')).toBe(alert?.id);
      input().dispatchEvent(new Event('input'));
      await fixture.whenStable();
      expect(el.querySelector('[role="alert"]')).toBeNull();
    });

    it('asks for a token without calling the server when the field is empty', async () => {
      await submit('   ');
      expect(el.querySelector('[role="alert"]')?.textContent).toContain('Enter the access token');
      expect(sessionPosts()).toHaveLength(0);
    });
  });

  describe('AppShell', () => {
    it('shows the form instead of the chat when the gate refuses, and the chat once the token is right', async () => {
      await TestBed.inject(ApiClient).bootstrap();
      const fixture = TestBed.createComponent(AppShell);
      const el = fixture.nativeElement as HTMLElement;
      await fixture.whenStable();
      expect(el.querySelector('app-access-gate-form')).not.toBeNull();
      expect(el.querySelector('app-conversation-list')).toBeNull();
      expect(sessionPosts()).toHaveLength(0);

      const input = el.querySelector('input[type="password"]') as HTMLInputElement;
      input.value = RIGHT_TOKEN;
      (el.querySelector('button[type="submit"]') as HTMLButtonElement).click();
      await vi.waitFor(() => expect(el.querySelector('app-access-gate-form')).toBeNull());
      await fixture.whenStable();
      expect(el.querySelector('app-conversation-list')).not.toBeNull();
      await vi.waitFor(() => expect(el.querySelector('.model-badge')?.textContent).toContain('gpt-test'));
      expect(sessionPosts()).toHaveLength(1);
    });
  });
});
