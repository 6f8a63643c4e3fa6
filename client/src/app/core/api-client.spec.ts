import { TestBed } from '@angular/core/testing';
import { ApiClient } from './api-client';
import { ApiError, isAccessTokenRefusal, isCookieConflict } from './api-error';

function jsonResponse(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

const REFUSED = { error: { code: 'UNAUTHORIZED', message: 'Wrong access token', details: { reason: 'access_token_required' } } };
const NO_IDENTITY = { error: { code: 'UNAUTHORIZED', message: 'Sign in through your organisation first', details: { reason: 'identity_required' } } };

function headersOf(init: RequestInit | undefined): Record<string, string> {
  return (init?.headers ?? {}) as Record<string, string>;
}

describe('ApiClient session bootstrap with the access gate', () => {
  let fetchMock: ReturnType<typeof vi.fn>;
  let api: ApiClient;

  beforeEach(() => {
    localStorage.clear();
    fetchMock = vi.fn();
    vi.stubGlobal('fetch', fetchMock);
    TestBed.configureTestingModule({});
    api = TestBed.inject(ApiClient);
  });

  afterEach(() => {
    vi.unstubAllGlobals();
    localStorage.clear();
  });

  function calls(): [string, RequestInit | undefined][] {
    return fetchMock.mock.calls as [string, RequestInit | undefined][];
  }

  it('creates the session straight away when the deployment is not gated', async () => {
    fetchMock.mockImplementation((url: string) =>
      Promise.resolve(url === '/api/v1/access' ? jsonResponse(200, { required: false }) : jsonResponse(201, { session_id: 's' })));
    await api.bootstrap();
    expect(calls().map(([url, init]) => `${init?.method ?? 'GET'} ${url}`)).toEqual(['GET /api/v1/access', 'POST /api/v1/sessions']);
    expect(headersOf(calls()[1]?.[1])['X-Access-Token']).toBeUndefined();
    expect(api.needsAccessToken()).toBe(false);
    expect(localStorage.getItem('parley.session')).toMatch(/^[0-9a-f]{32}$/);
  });

  it('goes on with the session its cookie names when the page lost its storage, instead of creating an empty one', async () => {
    // Site storage cleared, or emptied by Safari after seven days away: the HttpOnly cookie still names a live session.
    fetchMock.mockImplementation((url: string) =>
      Promise.resolve(url === '/api/v1/access' ? jsonResponse(200, { required: false, has_session: true }) : jsonResponse(201, { session_id: 's' })));
    await api.bootstrap();
    expect(calls().map(([url, init]) => `${init?.method ?? 'GET'} ${url}`)).toEqual(['GET /api/v1/access']);
    expect(localStorage.getItem('parley.session')).toMatch(/^[0-9a-f]{32}$/);
    // A gated deployment too: the session was made with the token once.
    localStorage.clear();
    fetchMock.mockClear();
    fetchMock.mockResolvedValue(jsonResponse(200, { required: true, has_session: true }));
    await api.bootstrap();
    expect(api.needsAccessToken()).toBe(false);
    expect(calls()).toHaveLength(1);
  });

  it('erases its own session by id (read from /sessions/current) and forgets it, so the next visit starts a new one', async () => {
    localStorage.setItem('parley.session', '1');
    fetchMock.mockImplementation((url: string, init?: RequestInit) => Promise.resolve(
      url === '/api/v1/sessions/current' && (init?.method ?? 'GET') === 'GET' ? jsonResponse(200, { session: { id: 'abc-1' } }) : new Response(null, { status: 204 })));
    await api.eraseSession();
    expect(calls().map(([url, init]) => `${init?.method ?? 'GET'} ${url}`)).toEqual(['GET /api/v1/sessions/current', 'DELETE /api/v1/sessions/abc-1']);
    expect(localStorage.getItem('parley.session')).toBeNull();
  });

  it('asks for the token instead of posting a session when /access says it is required', async () => {
    fetchMock.mockResolvedValue(jsonResponse(200, { required: true }));
    await api.bootstrap();
    expect(api.needsAccessToken()).toBe(true);
    expect(calls().map(([url]) => url)).toEqual(['/api/v1/access']);
  });

  it('says "sign in" when the sign-in gateway\'s identity is missing, instead of failing the start', async () => {
    fetchMock.mockResolvedValue(jsonResponse(401, NO_IDENTITY));
    await api.bootstrap();
    expect(api.needsSignIn()).toBe(true);
    expect(api.needsAccessToken()).toBe(false);
    expect(localStorage.getItem('parley.session')).toBeNull();
  });

  it('notices a missing identity on any later request too (the sign-in expired mid-visit)', async () => {
    localStorage.setItem('parley.session', '1');
    fetchMock.mockResolvedValue(jsonResponse(401, NO_IDENTITY));
    await expect(api.get('/api/v1/conversations')).rejects.toBeInstanceOf(ApiError);
    expect(api.needsSignIn()).toBe(true);
  });

  it('asks for the token when creating the session is refused for that reason', async () => {
    // An older server without /access, or a session gone mid-visit: the refusal itself shuts the gate.
    fetchMock.mockImplementation((url: string) =>
      Promise.resolve(url === '/api/v1/access' ? jsonResponse(404, {}) : jsonResponse(401, REFUSED)));
    await api.bootstrap();
    expect(api.needsAccessToken()).toBe(true);
    expect(localStorage.getItem('parley.session')).toBeNull();
  });

  it('shuts the gate when an expired session cannot be replaced without the token', async () => {
    localStorage.setItem('parley.session', '1');
    fetchMock.mockImplementation((url: string) =>
      Promise.resolve(url === '/api/v1/sessions' ? jsonResponse(401, REFUSED) : jsonResponse(401, { error: { code: 'UNAUTHORIZED', message: 'No session' } })));
    await api.bootstrap();
    expect(api.needsAccessToken()).toBe(false);
    await expect(api.get('/api/v1/conversations')).rejects.toBeInstanceOf(ApiError);
    expect(api.needsAccessToken()).toBe(true);
  });

  it('creates the session with the X-Access-Token header on unlock and keeps the token nowhere', async () => {
    fetchMock.mockResolvedValueOnce(jsonResponse(200, { required: true }));
    await api.bootstrap();
    fetchMock.mockResolvedValueOnce(jsonResponse(201, { session_id: 's' }));
    await api.unlock('the-right-token-123');
    const [url, init] = calls()[1] ?? [];
    expect(url).toBe('/api/v1/sessions');
    expect(init?.method).toBe('POST');
    expect(headersOf(init)['X-Access-Token']).toBe('the-right-token-123');
    expect(init?.body).not.toContain('the-right-token-123');
    expect(api.needsAccessToken()).toBe(false);
    expect(localStorage.getItem('parley.session')).toMatch(/^[0-9a-f]{32}$/);
    expect(JSON.stringify({ ...localStorage })).not.toContain('the-right-token-123');
    expect(location.href).not.toContain('the-right-token-123');
  });

  it('rejects a wrong token and stays shut', async () => {
    fetchMock.mockResolvedValueOnce(jsonResponse(200, { required: true }));
    await api.bootstrap();
    fetchMock.mockResolvedValueOnce(jsonResponse(401, REFUSED));
    await expect(api.unlock('wrong-token-0000000')).rejects.toSatisfy(isAccessTokenRefusal);
    expect(api.needsAccessToken()).toBe(true);
    expect(localStorage.getItem('parley.session')).toBeNull();
  });
});

describe('ApiClient when the session ends under the page', () => {
  let fetchMock: ReturnType<typeof vi.fn>;
  let api: ApiClient;
  const NO_SESSION = { error: { code: 'UNAUTHORIZED', message: 'Invalid or expired session' } };

  beforeEach(async () => {
    localStorage.clear();
    localStorage.setItem('parley.session', '1');
    fetchMock = vi.fn();
    vi.stubGlobal('fetch', fetchMock);
    TestBed.configureTestingModule({});
    api = TestBed.inject(ApiClient);
    await api.bootstrap();
  });

  afterEach(() => {
    vi.unstubAllGlobals();
    localStorage.clear();
  });

  function served(current: number): void {
    fetchMock.mockImplementation((url: string, init?: RequestInit) => {
      const route = `${init?.method ?? 'GET'} ${url}`;
      if (route === 'POST /api/v1/sessions') return Promise.resolve(jsonResponse(201, { session_id: 'new' }));
      if (route === 'GET /api/v1/sessions/current') return Promise.resolve(current === 200 ? jsonResponse(200, { session: { id: 'new' } }) : jsonResponse(401, NO_SESSION));
      return Promise.resolve(jsonResponse(401, NO_SESSION));
    });
  }

  const routes = (): string[] => (fetchMock.mock.calls as [string, RequestInit | undefined][]).map(([url, init]) => `${init?.method ?? 'GET'} ${url}`);

  it('starts a new session, does not send the request again in it, and says the session ended', async () => {
    served(200);
    expect(api.sessionEnded()).toBe(false);
    const refused = api.post('/api/v1/chat', { message: 'hello', conversation_id: 'old-1' });
    await expect(refused).rejects.toMatchObject({ code: 'SESSION_ENDED', status: 401 });
    expect(routes()).toEqual(['POST /api/v1/chat', 'POST /api/v1/sessions', 'GET /api/v1/sessions/current']);
    expect(api.sessionEnded()).toBe(true);
  });

  it('replaces the session once for requests refused together', async () => {
    served(200);
    const results = await Promise.allSettled([api.get('/api/v1/conversations?limit=20'), api.get('/api/v1/chat/config'), api.get('/api/v1/conversations/old-1')]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(routes().filter((r) => r === 'POST /api/v1/sessions')).toHaveLength(1);
    expect(routes().filter((r) => r === 'GET /api/v1/sessions/current')).toHaveLength(1);
    expect(api.sessionEnded()).toBe(true);
  });

  it('does not start the app again when the browser refuses the new cookie (it would loop)', async () => {
    served(401);
    await expect(api.get('/api/v1/conversations?limit=20')).rejects.toMatchObject({ code: 'UNAUTHORIZED', status: 401 });
    expect(api.sessionEnded()).toBe(false);
  });

  it('says the session ended when another tab changes or removes the hint (it erased or replaced the session)', () => {
    const fromOtherTab = (newValue: string | null, key: string | null = 'parley.session'): void => {
      if (newValue === null) localStorage.removeItem('parley.session');
      else localStorage.setItem('parley.session', newValue);
      window.dispatchEvent(new StorageEvent('storage', { key, newValue, storageArea: localStorage }));
    };
    fromOtherTab('1', 'parley.theme'); // another key, the hint unchanged
    expect(api.sessionEnded()).toBe(false);
    fromOtherTab('b'.repeat(32));
    expect(api.sessionEnded()).toBe(true);
  });

  it('says the session ended when another tab clears the storage with the hint in it', () => {
    localStorage.clear();
    window.dispatchEvent(new StorageEvent('storage', { key: null, storageArea: localStorage }));
    expect(api.sessionEnded()).toBe(true);
  });

  it('sends a request refused for two session cookies once more (that answer cleared the planted one), never replacing the session', async () => {
    const CONFLICT = { error: { code: 'UNAUTHORIZED', message: 'two session cookies', details: { reason: 'conflicting_session_cookies' } } };
    let tries = 0;
    fetchMock.mockImplementation(() => Promise.resolve(++tries === 1 ? jsonResponse(401, CONFLICT) : jsonResponse(200, { ok: true })));
    await expect(api.get('/api/v1/conversations?limit=20')).resolves.toEqual({ ok: true });
    expect(routes()).toEqual(['GET /api/v1/conversations?limit=20', 'GET /api/v1/conversations?limit=20']);
    // A cookie the answer cannot clear (a parent domain's): reported, with no new session.
    fetchMock.mockClear();
    fetchMock.mockImplementation(() => Promise.resolve(jsonResponse(401, CONFLICT)));
    await expect(api.get('/api/v1/conversations?limit=20')).rejects.toSatisfy(isCookieConflict);
    expect(routes()).toEqual(['GET /api/v1/conversations?limit=20', 'GET /api/v1/conversations?limit=20']);
    expect(api.sessionEnded()).toBe(false);
  });

  it('on a first visit, creates the session and sends the request again, as before', async () => {
    localStorage.clear();
    TestBed.resetTestingModule();
    TestBed.configureTestingModule({});
    const fresh = TestBed.inject(ApiClient);
    let sessions = 0;
    fetchMock.mockImplementation((url: string, init?: RequestInit) => {
      if (`${init?.method ?? 'GET'} ${url}` === 'POST /api/v1/sessions') {
        sessions++;
        return Promise.resolve(jsonResponse(201, { session_id: 'new' }));
      }
      return Promise.resolve(sessions > 0 ? jsonResponse(200, { ok: true }) : jsonResponse(401, NO_SESSION));
    });
    await expect(fresh.get('/api/v1/chat/config')).resolves.toEqual({ ok: true });
    expect(fresh.sessionEnded()).toBe(false);
  });

  it('a gate shut by the ended session opens on a new one: the page starts again', async () => {
    fetchMock.mockImplementation((url: string) =>
      Promise.resolve(url === '/api/v1/sessions' ? jsonResponse(401, REFUSED) : jsonResponse(401, NO_SESSION)));
    await expect(api.get('/api/v1/conversations?limit=20')).rejects.toSatisfy(isAccessTokenRefusal);
    expect(api.needsAccessToken()).toBe(true);
    expect(api.sessionEnded()).toBe(false);
    fetchMock.mockResolvedValueOnce(jsonResponse(201, { session_id: 'new' }));
    await api.unlock('the-right-token-123');
    expect(api.sessionEnded()).toBe(true);
  });
});
