import { applyDecorators } from '@nestjs/common';
import { ApiResponse, getSchemaPath } from '@nestjs/swagger';
import { type ErrorCode } from './error-code.js';
import { ErrorEnvelopeDto } from './error-envelope.dto.js';
import { HTTP_STATUS } from './error-status.js';

const RETRY_AFTER = { 'Retry-After': { description: 'Seconds to wait before retrying', schema: { type: 'integer' } } };
/** A rate limit always says when to come back. */
const RETRY_AFTER_ALWAYS = { 'Retry-After': { ...RETRY_AFTER['Retry-After'], required: true } };

/**
 * Documents in OpenAPI the errors a route answers with, by code, one response per status (its
 * codes named): an integrator's generated client then knows a 409 or a 422 is expected there.
 * The errors every route shares (400, 401, 403, 429, the default envelope) are added to all of
 * them in swagger.ts.
 */
export function ApiErrors(...codes: ErrorCode[]): MethodDecorator {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) byStatus.set(HTTP_STATUS[code], [...(byStatus.get(HTTP_STATUS[code]) ?? []), code]);
  // The content type is given, not inherited from the route's success (a stream's errors are JSON
  // sent before it opens, a download's are JSON too): with `type` alone they were documented as
  // text/event-stream or application/octet-stream.
  return applyDecorators(...[...byStatus].map(([status, list]) => ApiResponse({
    status,
    description: `Error envelope; \`error.code\` ${list.map((c) => `\`${c}\``).join(' or ')}`,
    content: { 'application/json': { schema: { $ref: getSchemaPath(ErrorEnvelopeDto) } } },
    ...(status === 429 ? { headers: RETRY_AFTER_ALWAYS } : status === 503 ? { headers: RETRY_AFTER } : {}),
  })));
}

const BODY_METHODS = new Set(['post', 'put', 'patch', 'delete']);

type Operation = { responses?: Record<string, unknown>; security?: unknown[]; requestBody?: unknown; parameters?: unknown[] };

function envelope(description: string, headers?: Record<string, unknown>): Record<string, unknown> {
  return {
    description,
    content: { 'application/json': { schema: { $ref: '#/components/schemas/ErrorEnvelopeDto' } } },
    ...(headers ? { headers } : {}),
  };
}

/**
 * The errors every operation of a kind can answer with, added where the operation does not
 * document that status itself: validation (400) where it takes input, authentication (401) where
 * it needs a session or refuses a body it does not take, the CSRF check (403) on cookie-authenticated
 * writes, the body limits (413, 415) where it takes a body, rate limits (429) and outages (503) on
 * the API, and the envelope as the default.
 */
export function addSharedErrors(path: string, method: string, op: Operation): void {
  const responses = (op.responses ??= {});
  const add = (status: string, response: Record<string, unknown>): void => { responses[status] ??= response; };
  // A write without a body refuses one (bodiless-routes.ts).
  const isBodiless = BODY_METHODS.has(method) && op.requestBody === undefined;
  const takesQuery = (op.parameters ?? []).some((p) => (p as { in?: string }).in === 'query');
  // A query parameter the operation does not declare is refused (undeclared-query.interceptor.ts).
  const unknownQuery = takesQuery ? 'a query parameter it does not declare' : 'any query parameter (the operation takes none)';
  if (isBodiless) {
    add('400', envelope(`Error envelope; \`error.code\` \`VALIDATION_ERROR\`: a request body (the operation takes none: send no body, or \`{}\`), ${unknownQuery}, or a malformed parameter (\`details.fields\` names it)`));
  }
  add('400', envelope(`Error envelope; \`error.code\` \`VALIDATION_ERROR\`: ${unknownQuery}, or a field or parameter that fails validation (\`details.fields\` names each and its errors)`));
  if ((op.security?.length ?? 0) > 0) add('401', envelope('Error envelope; `error.code` `UNAUTHORIZED` (no session, or an expired or revoked one)'));
  // The host check (ALLOWED_HOSTS) answers every request under a name this instance does not serve, but the probes'.
  const isProbe = path === '/api/v1/health/live' || path === '/api/v1/health/ready';
  if (path.startsWith('/api/') && !isProbe) {
    const isWrite = method !== 'get' && method !== 'head';
    const why = [
      'a host name this instance does not serve (`ALLOWED_HOSTS`)',
      ...(path === '/api/v1/sessions' && method === 'post' ? ['a request from another origin, with or without a cookie (a page elsewhere must not sign a browser in)']
        : isWrite ? ['a cookie-authenticated request from another origin'] : []),
    ];
    add('403', envelope(`Error envelope; \`error.code\` \`FORBIDDEN\`: ${why.join(', or ')}`));
  }
  if (op.requestBody !== undefined) {
    add('413', envelope('Error envelope; `error.code` `PAYLOAD_TOO_LARGE` (the JSON body over its limit, `JSON_BODY_LIMIT_BYTES`, 256 KB by default)'));
    add('415', envelope('Error envelope; `error.code` `VALIDATION_ERROR` (a body that is not the Content-Type this route takes)'));
  }
  if (path.startsWith('/api/') && !path.startsWith('/api/v1/health')) {
    add('429', envelope('Error envelope; `error.code` `RATE_LIMIT_EXCEEDED`', RETRY_AFTER_ALWAYS));
    add('503', envelope('Error envelope; `error.code` `SERVICE_UNAVAILABLE` (the database or Redis unreachable, the instance shutting down)', RETRY_AFTER));
  }
  add('default', envelope('Error envelope (4xx/5xx)'));
}
