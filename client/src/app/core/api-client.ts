import { Injectable, signal } from '@angular/core';
import { ApiError, apiErrorFromResponse, isAccessTokenRefusal, isCookieConflict, isIdentityRefusal } from './api-error';
import { randomId } from './random-id';

export const API_BASE = '/api/v1';
/**
 * Set once this browser has created a session, to a value new with each session: the cookie itself is HttpOnly,
 * so the SPA cannot see it. The tabs of a browser share the cookie; a tab that sees this value change (another
 * tab erased the session, or replaced an ended one) knows the session it shows is gone.
 */
const SESSION_HINT_KEY = 'parley.session';
/** The header the server's access gate reads (server/src/common/access-gate.ts). */
const ACCESS_TOKEN_HEADER = 'X-Access-Token';

type JsonBody = Record<string, unknown>;

/**
 * fetch with the session handled: the session cookie is HttpOnly, so the SPA learns it has none from a 401,
 * creates one (once, shared by concurrent callers) and retries the request.
 */
@Injectable({ providedIn: 'root' })
export class ApiClient {
  private sessionPromise: Promise<void> | null = null;
  private readonly tokenRequired = signal(false);
  /** The deployment's gate wants its access token before this browser may have a session: the shell shows the gate form. */
  readonly needsAccessToken = this.tokenRequired.asReadonly();
  private readonly identityMissing = signal(false);
  /**
   * The deployment sits behind its organisation's sign-in and a request arrived without it (the
   * sign-in expired, or the page was opened around the gateway): the shell says so instead of
   * showing errors the person cannot fix from here.
   */
  readonly needsSignIn = this.identityMissing.asReadonly();
  /**
   * The hint's value for the session this page shows (read at start, or written when it created one), null
   * before there is one: a 401 after that, or another value in the hint, means the session ended.
   */
  private marker: string | null = null;
  /** A replacement for an ended session under way, shared by the requests its 401s reached. */
  private replacing: Promise<ApiError> | null = null;
  private readonly ended = signal(false);
  /**
   * The session this page was showing ended (it expired, was erased or replaced in another tab, or the
   * sign-in in front of the deployment changed): what is on screen belongs to the old one, and every
   * action on it would answer "not found". The shell starts the app again.
   */
  readonly sessionEnded = this.ended.asReadonly();

  constructor() {
    // Fired by the other tabs' writes only. A cleared storage (key null) counts when the hint went with it.
    window.addEventListener('storage', (e) => {
      if ((e.key === SESSION_HINT_KEY || e.key === null) && this.marker !== null && this.readHint() !== this.marker) this.ended.set(true);
    });
  }

  get<T>(path: string): Promise<T> {
    return this.json<T>('GET', path);
  }

  post<T>(path: string, body: JsonBody): Promise<T> {
    return this.json<T>('POST', path, body);
  }

  patch<T>(path: string, body: JsonBody): Promise<T> {
    return this.json<T>('PATCH', path, body);
  }

  async delete(path: string): Promise<void> {
    await this.request(path, { method: 'DELETE' });
  }

  /**
   * Erases this browser's session on the server with everything in it (conversations, messages,
   * files), and forgets it here: the next request starts a new, empty session.
   */
  async eraseSession(): Promise<void> {
    const { session } = await this.get<{ session: { id: string } }>(`${API_BASE}/sessions/current`);
    await this.delete(`${API_BASE}/sessions/${encodeURIComponent(session.id)}`);
    try {
      localStorage.removeItem(SESSION_HINT_KEY);
    } catch {
      // Without storage there was no hint to forget.
    }
  }

  /**
   * Resolves with an ok Response (body unread) or rejects with an ApiError. A 401 creates a session: on
   * a first one the request is sent again; when it replaced an ended one the request is not (it named the
   * old session's things, or would start a conversation the person did not see) and rejects with
   * SESSION_ENDED, `sessionEnded` set.
   */
  async request(path: string, init: RequestInit): Promise<Response> {
    let res = await this.send(path, init);
    // Refused before anything was done, and the planted cookie cleared by that answer: once more with this browser's own.
    if (res.status === 401 && isCookieConflict(await apiErrorFromResponse(res.clone()))) res = await this.send(path, init);
    if (res.status === 401) {
      const refusal = await apiErrorFromResponse(res.clone());
      // One the answer could not clear (set for a parent domain): a new session would not help.
      if (isCookieConflict(refusal)) throw refusal;
      if (this.marker !== null && !isIdentityRefusal(refusal)) throw await this.replaceEndedSession();
      await this.ensureSession();
      res = await this.send(path, init);
    }
    if (!res.ok) throw this.noted(await apiErrorFromResponse(res));
    return res;
  }

  /**
   * Called once at start: a first visit creates its session up front instead of provoking a 401
   * (which browsers log as a console error). A stale cookie is still handled by the 401 path.
   */
  async bootstrap(): Promise<void> {
    const hint = this.readHint();
    if (hint !== null) {
      this.marker = hint;
      return;
    }
    // Asking first spares a gated deployment a refused POST (and the console error it logs) on every first visit,
    // and a browser whose storage was cleared (or that Safari emptied after seven days away) but whose cookie lives
    // an empty new session in place of its own: it goes on with the session its cookie names.
    const access = await this.access();
    if (access.hasSession) {
      this.keepHint();
      return;
    }
    if (access.required) {
      this.tokenRequired.set(true);
      return;
    }
    try {
      await this.ensureSession();
    } catch (e: unknown) {
      // Refused by the gate (e.g. a server without /access) or by the sign-in gateway's check:
      // needsAccessToken or needsSignIn is set and the shell shows the form or the notice.
      if (!isAccessTokenRefusal(e) && !isIdentityRefusal(e)) throw e;
    }
  }

  /**
   * Creates the session with the deployment's access token. The token goes into this one request and is
   * never kept: the session cookie carries on from here. Rejects with the ApiError on a wrong token.
   */
  async unlock(accessToken: string): Promise<void> {
    // The gate shut because this browser's session ended: the new one starts with nothing of the old.
    const replaces = this.marker !== null;
    await this.createSession(accessToken);
    this.tokenRequired.set(false);
    if (replaces) this.ended.set(true);
  }

  /** Creates a session (sets the cookie); concurrent callers share one creation. */
  ensureSession(): Promise<void> {
    if (!this.sessionPromise) {
      const pending = this.createSession().finally(() => {
        if (this.sessionPromise === pending) this.sessionPromise = null;
      });
      this.sessionPromise = pending;
    }
    return this.sessionPromise;
  }

  /**
   * Creates a session in place of the ended one and checks the browser keeps its cookie (a browser
   * refusing cookies would otherwise start the app again and again). Resolves with the error the
   * request rejects with: SESSION_ENDED, or the check's own refusal.
   */
  private replaceEndedSession(): Promise<ApiError> {
    if (!this.replacing) {
      const pending = (async (): Promise<ApiError> => {
        await this.ensureSession();
        const check = await this.send(`${API_BASE}/sessions/current`, { method: 'GET', headers: { Accept: 'application/json' } });
        if (!check.ok) return this.noted(await apiErrorFromResponse(check));
        this.ended.set(true);
        return new ApiError(401, 'SESSION_ENDED', 'Your session ended; a new one was started.');
      })().catch((e: unknown) => {
        if (e instanceof ApiError) return e;
        throw e;
      }).finally(() => {
        if (this.replacing === pending) this.replacing = null;
      });
      this.replacing = pending;
    }
    return this.replacing;
  }

  private async createSession(accessToken?: string): Promise<void> {
    const headers: Record<string, string> = { 'Content-Type': 'application/json' };
    if (accessToken !== undefined) headers[ACCESS_TOKEN_HEADER] = accessToken;
    const res = await this.send(`${API_BASE}/sessions`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ user_agent: navigator.userAgent.slice(0, 500) }),
    });
    if (!res.ok) {
      const error = await apiErrorFromResponse(res);
      // Also reached when a gated deployment's session expired mid-visit: the shell swaps the chat for the form.
      if (isAccessTokenRefusal(error)) this.tokenRequired.set(true);
      throw this.noted(error);
    }
    this.keepHint();
  }

  /** A new hint for the session this page now shows (created, or found by its cookie). */
  private keepHint(): void {
    this.marker = randomId();
    try {
      localStorage.setItem(SESSION_HINT_KEY, this.marker);
    } catch {
      // Without storage the next visit asks /access again; nothing breaks.
    }
  }

  /** Remembers a sign-in refusal (needsSignIn) and hands the error back. */
  private noted(error: ApiError): ApiError {
    if (isIdentityRefusal(error)) this.identityMissing.set(true);
    return error;
  }

  /** Whether this deployment asks for its access token to start a session (false when that cannot be told: offline). */
  async isAccessTokenRequired(): Promise<boolean> {
    return (await this.access()).required;
  }

  /** What /access says: whether a session needs the deployment's token, and whether this browser's cookie names a live one. */
  private async access(): Promise<{ required: boolean; hasSession: boolean }> {
    let res: Response;
    try {
      res = await this.send(`${API_BASE}/access`, { method: 'GET', headers: { Accept: 'application/json' } });
    } catch {
      // Offline: creating the session fails the same way next and reports it.
      return { required: false, hasSession: false };
    }
    if (!res.ok) return { required: false, hasSession: false };
    const body: unknown = await res.json().catch(() => undefined);
    const said = typeof body === 'object' && body !== null ? body as Record<string, unknown> : {};
    return { required: said['required'] === true, hasSession: said['has_session'] === true };
  }

  private readHint(): string | null {
    try {
      return localStorage.getItem(SESSION_HINT_KEY);
    } catch {
      return null;
    }
  }

  private async json<T>(method: string, path: string, body?: JsonBody): Promise<T> {
    const init: RequestInit = { method, headers: { Accept: 'application/json' } };
    if (body !== undefined) {
      init.headers = { Accept: 'application/json', 'Content-Type': 'application/json' };
      init.body = JSON.stringify(body);
    }
    const res = await this.request(path, init);
    return (await res.json()) as T;
  }

  private async send(path: string, init: RequestInit): Promise<Response> {
    try {
      return await fetch(path, { credentials: 'same-origin', ...init });
    } catch (e: unknown) {
      // An aborted request is the caller's decision, not a network failure.
      if (e instanceof DOMException && e.name === 'AbortError') throw e;
      throw ApiError.network();
    }
  }
}
