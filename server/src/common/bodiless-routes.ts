import express, { type NextFunction, type Request, type Response } from 'express';
import { match } from 'path-to-regexp';
import { ErrorCode } from './error-code.js';
import type { AppRequest } from './request-context.js';
import { errorEnvelope, writeError } from './write-error.js';

/**
 * The operations that take no body, as Express routes them. bodiless-routes.spec.ts checks the list
 * against the OpenAPI document: every POST, PUT, PATCH and DELETE documented without a request body.
 */
export const BODILESS_ROUTES: readonly string[] = [
  'POST /api/v1/chat/streams/:message_id/stop',
  'POST /api/v1/sessions/current/token',
  'DELETE /api/v1/sessions/current',
  'DELETE /api/v1/sessions/:id',
  'DELETE /api/v1/conversations/:id',
  'DELETE /api/v1/files/:id',
];

export const TAKES_NO_BODY = 'This operation takes no body: send none, or the empty JSON object {}';

/** `{}` padded with a little whitespace fits; anything longer is a body, refused without reading it. */
const MAX_EMPTY_BODY_BYTES = 64;

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const routes = BODILESS_ROUTES.map((route) => {
  const [method, path] = route.split(' ');
  // As routing matches (app.factory.ts: case-sensitive, strict): a path in another case, or with a trailing slash, is
  // none of these routes, and routing answers it 404.
  return { method, matches: match(path, { decode: false, sensitive: true, trailing: false }) };
});

/** Whether the request is for an operation that takes no body. */
export function isBodiless(req: Request): boolean {
  if (!BODY_METHODS.has(req.method)) return false;
  const path = req.baseUrl + req.path;
  return routes.some((route) => route.method === req.method && route.matches(path) !== false);
}

/** What a client may send to an operation that takes none: nothing, or the empty JSON object (the SPA's `post(url, {})`). */
function isEmptyBody(req: Request, bytes: Buffer): boolean {
  if (bytes.length === 0) return true;
  if (!req.is('application/json')) return false;
  try {
    const value: unknown = JSON.parse(bytes.toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length === 0;
  } catch {
    return false;
  }
}

// Any type, as bytes: the verdict is ours (400), not the JSON routes' 415, 413 or charset errors.
const readSmallBody = express.raw({ type: () => true, limit: MAX_EMPTY_BODY_BYTES, inflate: false });

/**
 * An operation that takes no body refuses one (400 VALIDATION_ERROR), before anything runs, so that
 * nothing a client meant to say is silently dropped; no body, an empty one or `{}` is accepted. The
 * body is read here (at most a few bytes), so the JSON routes' checks that follow never see it.
 */
export function bodilessRouteGuard(req: Request, res: Response, next: NextFunction): void {
  if (!isBodiless(req)) {
    next();
    return;
  }
  const refuse = (): void => writeError(res, 400, errorEnvelope(ErrorCode.ValidationError, TAKES_NO_BODY, (req as AppRequest).id));
  readSmallBody(req, res, (err?: unknown) => {
    const bytes: unknown = req.body;
    if (err !== undefined || (Buffer.isBuffer(bytes) && !isEmptyBody(req, bytes))) {
      refuse();
      return;
    }
    // What the route's handler sees: no body.
    req.body = undefined;
    next();
  });
}
