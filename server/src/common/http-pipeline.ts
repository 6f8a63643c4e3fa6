import { isUtf8 } from 'node:buffer';
import { existsSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { INestApplication } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import cookieParser from 'cookie-parser';
import express, { type Application, type NextFunction, type Request, type Response } from 'express';
import helmet from 'helmet';
import type { Logger } from 'pino';
import type { AppConfig } from '../config/app-config.js';
import { AllowedMethods, literalRouteMethodGuard } from './allowed-methods.js';
import { bodilessRouteGuard, isBodiless } from './bodiless-routes.js';
import { ErrorCode } from './error-code.js';
import { HostAllowlist, hostAllowlistMiddleware, hostHeaderGuard } from './host-allowlist.js';
import { precompressedAssets } from './precompressed-assets.js';
import { jsonShapeRefusal } from './json-shape.js';
import { createValidationPipe } from './validation.pipe.js';
import type { AppRequest } from './request-context.js';
import { requestIdMiddleware } from './request-id.js';
import { requestLogMiddleware } from './request-log.js';
import { errorEnvelope, writeError } from './write-error.js';

const QUIET_PATHS = new Set(['/api/v1/health', '/api/v1/health/live', '/api/v1/health/ready', '/metrics']);
/** What infrastructure probes under internal names (a container's, a pod's), answered under any Host: status only. */
const PROBE_PATHS = new Set(['/api/v1/health/live', '/api/v1/health/ready']);

/**
 * The paths answered whatever the Host: the probes, and the metrics scrape when it needs METRICS_TOKEN.
 * Without a token the scrape is answered to this host's own loopback requests, which a page whose name
 * was rebound to 127.0.0.1 also sends from the user's browser: then it is under the allowlist like the
 * rest (a local scraper asks for 127.0.0.1 or localhost, always served). The health report (version,
 * provider, model) is for people and dashboards on served names.
 */
function isOutsideHostAllowlist(config: AppConfig): (path: string) => boolean {
  const hasMetricsToken = config.metricsToken !== undefined && config.metricsToken !== '';
  return (path) => PROBE_PATHS.has(path) || (hasMetricsToken && path === '/metrics');
}

/** The security headers of every response. No inline script is allowed; no upgrade-insecure-requests (LAN over http). */
export function helmetSecurityHeaders(): ReturnType<typeof helmet> {
  return helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        // Angular injects component styles at runtime as <style> elements.
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:', 'blob:'],
        fontSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
      },
    },
    strictTransportSecurity: false, // set by the TLS gateway, which knows whether TLS is on
    referrerPolicy: { policy: 'strict-origin-when-cross-origin' },
    crossOriginEmbedderPolicy: false,
    xFrameOptions: { action: 'deny' },
  });
}

/**
 * The headers helmet sets, worked out once at boot and then set in one middleware. Helmet runs
 * one middleware per header (eleven here) and rebuilds the CSP string on every request; ours are
 * all constant (no per-request nonce), so the result is the same on every response.
 */
export function staticSecurityHeaders(middleware: ReturnType<typeof helmet> = helmetSecurityHeaders()): Array<[string, string]> {
  const headers = new Map<string, string>();
  const recorder = {
    setHeader(name: string, value: string) { headers.set(name, String(value)); return recorder; },
    removeHeader(name: string) { headers.delete(name); },
  };
  let isDone = false;
  middleware({} as Request, recorder as unknown as Response, (err?: unknown) => {
    if (err) throw err instanceof Error ? err : new Error('helmet failed to set its headers');
    isDone = true;
  });
  // Helmet's middleware is synchronous; if a future version is not, this must not pass silently.
  if (!isDone) throw new Error('helmet did not finish synchronously');
  return [...headers];
}

/** Host names a browser counts as a trustworthy origin over plain http (loopback). */
const LOOPBACK_HOST = /^(?:localhost|[^.]+(?:\.[^.]+)*\.localhost|127(?:\.\d{1,3}){3}|\[::1\])$/i;
/** Honoured from a trustworthy origin only: elsewhere the browser ignores it and logs an error on every page. */
const TRUSTWORTHY_ONLY = 'cross-origin-opener-policy';

function securityHeadersMiddleware(headers: Array<[string, string]>, config: AppConfig): (req: Request, res: Response, next: NextFunction) => void {
  const always = headers.filter(([name]) => name.toLowerCase() !== TRUSTWORTHY_ONLY);
  const trustworthyOnly = headers.filter(([name]) => name.toLowerCase() === TRUSTWORTHY_ONLY);
  const isHttpsSite = config.publicUrl?.startsWith('https:') === true;
  return (req, res, next) => {
    for (const [name, value] of always) res.setHeader(name, value);
    // https (as the gateway says, or the site's address), or loopback: a plain-http LAN name is neither.
    if (req.secure || isHttpsSite || LOOPBACK_HOST.test(req.hostname ?? '')) {
      for (const [name, value] of trustworthyOnly) res.setHeader(name, value);
    }
    next();
  };
}

/** body-parser's error type for a body refused by rejectInvalidUtf8. */
const INVALID_UTF8 = 'entity.utf8.invalid';

/**
 * A JSON body must be UTF-8 (RFC 8259), and the parser's decoder replaces what is not with U+FFFD:
 * `{"message":"a\xff\xfeb"}` (or CESU-8's encoded surrogates) was taken and stored as "a��b",
 * while the escaped "\ud800" is refused. body-parser calls this with the raw bytes before it
 * decodes them; the error it then passes on (status 400, our type) reaches bodyErrorHandler before
 * any route. isUtf8 is simdutf's validator: a 256 KB body in well under a millisecond.
 */
function rejectInvalidUtf8(_req: unknown, _res: unknown, body: Buffer, encoding: string): void {
  // Only UTF-8 reaches the API's routes (contentTypeGuard); another charset is decoded as declared.
  if (encoding === 'utf-8' && !isUtf8(body)) throw Object.assign(new Error('Request body is not valid UTF-8'), { status: 400, type: INVALID_UTF8 });
}

/** Body-parser failures happen before Nest's filter; answer them with the same envelope. */
function bodyErrorHandler(err: unknown, req: Request, res: Response, next: NextFunction): void {
  const e = err as { type?: string; status?: number };
  const requestId = (req as AppRequest).id;
  if (e.type === 'entity.parse.failed') {
    writeError(res, 400, errorEnvelope(ErrorCode.ValidationError, 'Malformed JSON body', requestId));
  } else if (e.type === INVALID_UTF8) {
    writeError(res, 400, errorEnvelope(ErrorCode.ValidationError, 'Request body is not valid UTF-8', requestId));
  } else if (e.type === 'entity.too.large') {
    writeError(res, 413, errorEnvelope(ErrorCode.PayloadTooLarge, 'Request body too large', requestId));
  } else if (typeof e.status === 'number' && e.status >= 400 && e.status < 500) {
    // 415: a charset or content encoding the parser does not read (UNSUPPORTED_FILE_TYPE is for uploads).
    writeError(res, e.status === 415 ? 415 : 400, errorEnvelope(ErrorCode.ValidationError, e.status === 415 ? 'Unsupported body encoding: send UTF-8 JSON' : 'Unreadable request body', requestId));
  } else {
    next(err);
  }
}

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);
const CHARSET = /;\s*charset\s*=\s*"?([^";\s]+)/i;
/** The routes that take multipart/form-data (uploads); every other route takes JSON. */
const MULTIPART_PATHS = new Set(['/api/v1/files/upload']);

/**
 * A body the API cannot read is refused as such: the routes take JSON (uploads take
 * multipart/form-data), and a body of another type was left unparsed, so the request failed
 * validation with a misleading message ("title must be a string") or, with no required field,
 * went through without its body. A path no route answers under this method is left to routing
 * (404, or 405 with its Allow header), whatever its body: `POST /api/v1/files/upload/` with a
 * multipart body was told "Content-Type must be application/json", though no route is there.
 */
function contentTypeGuard(routes: AllowedMethods): (req: Request, res: Response, next: NextFunction) => void {
  return (req, res, next) => checkContentType(routes, req, res, next);
}

function checkContentType(routes: AllowedMethods, req: Request, res: Response, next: NextFunction): void {
  const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
  // Matched as routing matches (app.factory.ts: case-sensitive, strict).
  const isUpload = MULTIPART_PATHS.has(req.baseUrl + req.path);
  // An operation that takes no body has had what was sent checked already (bodilessRouteGuard).
  if (!BODY_METHODS.has(req.method) || !hasBody || isBodiless(req)) {
    next();
    return;
  }
  if (!isUpload && req.is('application/json')) {
    // JSON is UTF-8 (RFC 8259); the parser would also decode UTF-16 and read the request as another text.
    const charset = CHARSET.exec(req.headers['content-type'] ?? '')?.[1]?.toLowerCase();
    if (charset === undefined || charset === 'utf-8') next();
    else writeError(res, 415, errorEnvelope(ErrorCode.ValidationError, 'Unsupported body encoding: send UTF-8 JSON', (req as AppRequest).id));
    return;
  }
  if (isUpload && req.is('multipart/form-data')) {
    next();
    return;
  }
  // Only on a refusal (never on the chat's path): whether a route is there at all.
  if (!routes.on(req.baseUrl + req.path).includes(req.method)) {
    next();
    return;
  }
  const expected = isUpload ? 'multipart/form-data' : 'application/json';
  writeError(res, 415, errorEnvelope(ErrorCode.ValidationError, `Content-Type must be ${expected}`, (req as AppRequest).id));
}

/** A parsed JSON body too deep, too large in values, holding NUL or a built-in key is refused before anything walks it (json-shape.ts). */
function jsonShapeGuard(req: Request, res: Response, next: NextFunction): void {
  const problem = typeof req.body === 'object' ? jsonShapeRefusal(req.body) : undefined;
  if (problem === undefined) {
    next();
    return;
  }
  const details = problem.field === undefined ? undefined : { fields: [{ field: problem.field, errors: [problem.message] }] };
  writeError(res, 400, errorEnvelope(ErrorCode.ValidationError, problem.message, (req as AppRequest).id, details));
}

/**
 * A query string's escapes must spell UTF-8, as a body must: Express's parser decodes `?q=%FF` (or an
 * encoded surrogate, or an overlong form) to U+FFFD, and the request went on as a search for "�".
 * Refused naming the parameter, as the validation names any other bad value.
 */
function queryUtf8Guard(req: Request, res: Response, next: NextFunction): void {
  const at = req.originalUrl.indexOf('?');
  const query = at < 0 ? '' : req.originalUrl.slice(at + 1);
  if (!query.includes('%')) {
    next();
    return;
  }
  for (const pair of query.split('&')) {
    const eq = pair.indexOf('=');
    const [rawName, rawValue] = eq < 0 ? [pair, ''] : [pair.slice(0, eq), pair.slice(eq + 1)];
    const name = strictDecode(rawName);
    const value = strictDecode(rawValue);
    // A NUL is refused in every query, as the routes with query parameters of their own refuse it (json-shape.ts):
    // elsewhere `?x=%00` was let through.
    const hasNul = name?.includes('\u0000') === true || value?.includes('\u0000') === true;
    if (name !== undefined && value !== undefined && !hasNul) continue;
    const field = name === undefined ? 'query' : name.replaceAll('\u0000', '\uFFFD');
    const message = hasNul && name !== undefined && value !== undefined
      ? `Query parameter ${field} contains a NUL character (U+0000)`
      : `${field} must be valid percent-encoded UTF-8`;
    writeError(res, 400, errorEnvelope(ErrorCode.ValidationError, message, (req as AppRequest).id, { fields: [{ field, errors: [message] }] }));
    return;
  }
  next();
}

/** A query component decoded, or undefined when its escapes are not UTF-8 (decodeURIComponent refuses those). */
function strictDecode(component: string): string | undefined {
  try {
    return decodeURIComponent(component.replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

/** A path that is under /api once its leading slashes are collapsed, but starts with more than one. */
const API_BEHIND_SLASHES = /^\/{2,}api(?:\/|$)/i;

/**
 * `//api/v1/conversations` (an integrator's base URL ending in /) matches no route, nor the SPA's
 * exclusion of `/api/{*path}`, so the SPA's fallback took it for one of its own routes and answered
 * index.html with 200. It is the API's namespace, and the API answers what it does not serve with
 * the 404 envelope (`/api//v1/x` already got it). Not served as `/api/…` either: one path per
 * route, and the caller learns that its base URL is wrong.
 */
function apiPathGuard(req: Request, res: Response, next: NextFunction): void {
  if (API_BEHIND_SLASHES.test(req.path)) {
    writeError(res, 404, errorEnvelope(ErrorCode.NotFound, `Cannot ${req.method} ${req.path}: API paths start with a single slash (/api/…)`, (req as AppRequest).id));
    return;
  }
  next();
}

/** The Origin header of the part of a request Node's parser read before refusing it, if that part holds one. */
function originOf(rawPacket: unknown): string | undefined {
  if (!Buffer.isBuffer(rawPacket)) return undefined;
  // One way to match a line (its blanks trimmed after): `[ \t]*` before `[^\r\n]*` was retried from every blank
  // of an unfinished line (65,000 spaces: 1.8 s of the event loop, before any authentication).
  return /\r\norigin:([^\r\n]*)\r\n/i.exec(rawPacket.toString('latin1'))?.[1]?.trim();
}

/**
 * What Node's HTTP parser refuses before any middleware sees it (a malformed request line,
 * headers over the limit, a request that never finished arriving) gets the error envelope too,
 * instead of Node's bare status line, with the security headers of every response and, for a
 * listed origin found in what was read, its CORS headers (a page on that origin can then read
 * the 431 its oversized cookie caused). The connection is closed after it, as Node does.
 */
export function clientErrorHandler(
  securityHeaders: Array<[string, string]>, corsOrigins: readonly string[] = [],
): (err: Error & { code?: string; rawPacket?: unknown }, socket: Duplex) => void {
  const security = securityHeaders.map(([name, value]) => `${name}: ${value}\r\n`).join('');
  return (err, socket) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const [status, reason, message] = err.code === 'HPE_HEADER_OVERFLOW' ? [431, 'Request Header Fields Too Large', 'Request headers too large']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'Request Timeout', 'The request did not arrive in time']
        : [400, 'Bad Request', 'Malformed HTTP request'];
    const requestId = randomUUID();
    const body = JSON.stringify(errorEnvelope(ErrorCode.ValidationError, message, requestId));
    const origin = originOf(err.rawPacket);
    const cors = origin !== undefined && corsOrigins.includes(origin)
      ? `Access-Control-Allow-Origin: ${origin}\r\nAccess-Control-Allow-Credentials: true\r\nAccess-Control-Expose-Headers: X-Request-Id,Retry-After\r\nVary: Origin\r\n`
      : '';
    socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`
      + `X-Request-Id: ${requestId}\r\nCache-Control: no-store\r\n${security}${cors}Connection: close\r\n\r\n${body}`);
  };
}

/**
 * A CORS preflight (OPTIONS with Access-Control-Request-Method) is answered 204 here, with the headers cors set; any
 * other OPTIONS goes on to the routes' own answers (404 for a path nothing answers, 405 with Allow elsewhere).
 */
function answerPreflight(req: Request, res: Response, next: NextFunction): void {
  if (req.method !== 'OPTIONS' || req.headers['access-control-request-method'] === undefined) {
    next();
    return;
  }
  res.setHeader('Content-Length', '0');
  res.status(204).end();
}

/** Everything about HTTP that is not a route: ids, logs, headers, bodies, validation. Used by main and by tests. */
export function configureHttp(app: INestApplication, config: AppConfig, logger: Logger): void {
  const express_ = app as NestExpressApplication;
  express_.set('trust proxy', config.trustProxy);
  express_.disable('x-powered-by');
  // No ETag (nor 304) on the API's JSON: the document promises neither, its answers are no-store, and a client
  // generated from it took a 304 for an error. The SPA's files keep theirs (express.static sets its own).
  express_.set('etag', false);
  // Worked out once, for the responses of the routes and for those of Node's parser alike.
  const securityHeaders = staticSecurityHeaders();
  const server = app.getHttpServer() as Server;
  server.on('clientError', clientErrorHandler(securityHeaders, config.corsOrigins));
  // A request without Host, or with two, reaches hostHeaderGuard, which refuses it with the envelope (Node's own refusal of a missing one is a bare 400).
  // (The property behind http.createServer's `requireHostHeader` option, read per request; @types/node declares the option only.)
  (server as Server & { requireHostHeader: boolean }).requireHostHeader = false;
  app.use(requestIdMiddleware);
  // Probes and scrapes arrive every few seconds; logging them would drown the real traffic.
  app.use(requestLogMiddleware(logger, (path) => QUIET_PATHS.has(path)));
  app.use(securityHeadersMiddleware(securityHeaders, config));
  if (config.corsOrigins.length > 0) {
    // Only listed origins, never '*', since credentials (the cookie) are allowed. Before every refusal (the Host
    // checks', the body's), so that it reaches an allowed origin's script with its message rather than as an opaque
    // CORS failure. Headers only: a preflight is answered below, once the Host checks have passed (cors answered
    // every OPTIONS with 204 itself, an unknown path's and a plain OPTIONS too, where 404 and 405 are due).
    app.enableCors({
      origin: config.corsOrigins, credentials: true, preflightContinue: true,
      methods: ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE'],
      exposedHeaders: ['X-Request-Id', 'Retry-After', 'Content-Disposition'],
    });
  }
  app.use(hostHeaderGuard);
  // Before anything reads the request: a page on a host name not served here (DNS rebinding) gets
  // nothing but this refusal. Probes, which infrastructure sends under internal names, pass.
  app.use(hostAllowlistMiddleware(new HostAllowlist(config.allowedHosts), isOutsideHostAllowlist(config)));
  if (config.corsOrigins.length > 0) app.use(answerPreflight);
  app.use(apiPathGuard);
  // The SPA's files compressed as the build left them (no nginx in front); ServeStatic (app.module.ts) serves the rest.
  if (existsSync(config.clientDir)) app.use(precompressedAssets(config.clientDir));
  app.use('/api', (_req: Request, res: Response, next: NextFunction) => {
    res.setHeader('Cache-Control', 'no-store');
    next();
  });
  const routes = new AllowedMethods(() => express_.getHttpAdapter().getInstance() as Application);
  app.use('/api', literalRouteMethodGuard(routes));
  app.use(cookieParser());
  app.use('/api', queryUtf8Guard);
  app.use('/api', bodilessRouteGuard);
  app.use('/api', contentTypeGuard(routes));
  app.use(express.json({ limit: config.limits.jsonBodyBytes, verify: rejectInvalidUtf8 }));
  app.use(bodyErrorHandler);
  app.use(jsonShapeGuard);
  app.useGlobalPipes(createValidationPipe());
}
