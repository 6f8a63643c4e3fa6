import { ErrorCode } from './error-code.js';

type Header = { description: string; required?: boolean; schema: Record<string, unknown> };
type Reference = { $ref: string };
type Response = { headers?: Record<string, Header | Reference> };
type Operation = { responses?: Record<string, Response>; security?: unknown[] };

/**
 * The response headers the API sends, said once in the document (`components.headers`) and referred to
 * from each response that carries them (swagger.ts). Retry-After is with the 429 and 503 errors (api-errors.ts).
 */
type HeaderName = 'RequestId' | 'SessionCookie' | 'SessionCookieCleared' | 'SessionCookieRenewed' | 'Allow';

export const HEADER_COMPONENTS: Record<HeaderName, Header> = {
  RequestId: {
    description: 'The request\'s id: the caller\'s own `X-Request-Id` when it is 8–128 characters of `A-Z a-z 0-9 . _ : -`, else a new UUID. '
      + 'An error envelope\'s `request_id` is the same; quote it when reporting a problem',
    required: true,
    schema: { type: 'string' },
  },
  SessionCookie: {
    description: 'The session cookie holding the token also returned in the body: `session_token` (over https `__Host-session_token`, Secure), '
      + 'HttpOnly, SameSite=Lax, Path=/, expiring with the token',
    required: true,
    schema: { type: 'string' },
  },
  SessionCookieCleared: {
    description: 'The session cookie expired (`session_token`, over https `__Host-session_token`)',
    required: true,
    schema: { type: 'string' },
  },
  SessionCookieRenewed: {
    description: 'Sent to a cookie-authenticated request whose token is past half its lifetime: the session cookie with a new token. '
      + 'On a 401 for two session cookies (`details.reason` `conflicting_session_cookies`), the planted one expired',
    schema: { type: 'string' },
  },
  Allow: {
    description: 'The methods the path answers (a 405)',
    required: true,
    schema: { type: 'string', example: 'GET, HEAD, PATCH, DELETE' },
  },
};

const ref = (name: HeaderName): Reference => ({ $ref: `#/components/headers/${name}` });

/** For the success of an operation that hands out a session token. */
export const SETS_SESSION_COOKIE = { 'Set-Cookie': ref('SessionCookie') };
/** For the success of an operation that ends the session in this browser. */
export const CLEARS_SESSION_COOKIE = { 'Set-Cookie': ref('SessionCookieCleared') };

/**
 * A path's other methods: not an operation of the document, so said once, as a shared response
 * (`components.responses`), and in the document's description.
 */
export const METHOD_NOT_ALLOWED_RESPONSE = {
  description: `Error envelope; \`error.code\` \`${ErrorCode.MethodNotAllowed}\`: the path has operations, under other methods (listed in \`Allow\`)`,
  headers: { Allow: ref('Allow'), 'X-Request-Id': ref('RequestId') },
  content: { 'application/json': { schema: { $ref: '#/components/schemas/ErrorEnvelopeDto' } } },
};

/**
 * The headers every response of an operation carries: X-Request-Id on each, and on an operation that
 * needs a session the cookie renewed on use (SessionRenewalGuard), unless the response says its own.
 */
export function addSharedHeaders(op: Operation): void {
  const isSecured = (op.security?.length ?? 0) > 0;
  for (const response of Object.values(op.responses ?? {})) {
    const headers = (response.headers ??= {});
    headers['X-Request-Id'] ??= ref('RequestId');
    if (isSecured) headers['Set-Cookie'] ??= ref('SessionCookieRenewed');
  }
}
