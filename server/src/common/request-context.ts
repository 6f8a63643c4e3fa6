import type { Request } from 'express';

/** Who is calling, set by the auth guard. */
export interface AuthContext {
  sessionId: string;
  /** Where the token came from: cookie-authenticated writes are subject to the CSRF check. */
  via: 'cookie' | 'bearer';
  /** The token it carried (never logged): renewed on use when it came as the cookie. */
  token: string;
}

export interface AppRequest extends Request {
  id: string;
  auth?: AuthContext;
}
