import { Injectable } from '@angular/core';
import { ApiError, apiErrorFromResponse } from './api-error';

export const API_BASE = '/api/v1';
/** Set once this browser has created a session: the cookie itself is HttpOnly, so the SPA cannot see it. */
const SESSION_HINT_KEY = 'parley.session';

type JsonBody = Record<string, unknown>;

/**
 * fetch with the session handled: the session cookie is HttpOnly, so the SPA learns it has none from a 401,
 * creates one (once, shared by concurrent callers) and retries the request.
 */
@Injectable({ providedIn: 'root' })
export class ApiClient {
  private sessionPromise: Promise<void> | null = null;

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

  /** Resolves with an ok Response (body unread) or rejects with an ApiError. */
  async request(path: string, init: RequestInit): Promise<Response> {
    let res = await this.send(path, init);
    if (res.status === 401) {
      await this.ensureSession();
      res = await this.send(path, init);
    }
    if (!res.ok) throw await apiErrorFromResponse(res);
    return res;
  }

  /**
   * Called once at start: a first visit creates its session up front instead of provoking a 401
   * (which browsers log as a console error). A stale cookie is still handled by the 401 path.
   */
  async bootstrap(): Promise<void> {
    if (this.readHint()) return;
    await this.ensureSession();
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

  private async createSession(): Promise<void> {
    const res = await this.send(`${API_BASE}/sessions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ user_agent: navigator.userAgent.slice(0, 500) }),
    });
    if (!res.ok) throw await apiErrorFromResponse(res);
    try {
      localStorage.setItem(SESSION_HINT_KEY, '1');
    } catch {
      // Without storage the next visit goes through one 401 first; nothing breaks.
    }
  }

  private readHint(): boolean {
    try {
      return localStorage.getItem(SESSION_HINT_KEY) === '1';
    } catch {
      return false;
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
