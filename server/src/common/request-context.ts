import type { Request } from 'express';

/** Who is calling, set by the auth guard. */
export interface AuthContext {
  sessionId: string;
  /** Where the token came from: cookie-authenticated writes are subject to the CSRF check. */
  via: 'cookie' | 'bearer';
}

export interface AppRequest extends Request {
  id: string;
  auth?: AuthContext;
}
