import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { SessionsService } from '../sessions/sessions.service.js';
import type { Application, Response } from 'express';
import { AllowedMethods, methodNotAllowed } from './allowed-methods.js';
import { AppException } from './app.exception.js';
import { isDependencyOutage, isStorageFull, STORAGE_FULL_DETAILS } from './dependency-outage.js';
import { ErrorCode } from './error-code.js';
import { isForeignKeyViolation } from './foreign-key.js';
import { codeForStatus, HTTP_STATUS } from './error-status.js';
import type { AppRequest } from './request-context.js';
import { errorEnvelope, writeError } from './write-error.js';

const GENERIC_MESSAGES: Partial<Record<ErrorCode, string>> = {
  [ErrorCode.NotFound]: 'Not found',
  [ErrorCode.Unauthorized]: 'Sign in first',
  [ErrorCode.Forbidden]: 'Forbidden',
  [ErrorCode.PayloadTooLarge]: 'Request body too large',
  [ErrorCode.InternalError]: 'An unexpected error occurred',
};

/** The one exception filter: every error leaves as the envelope, never with a stack or SQL. */
@Catch()
export class AllExceptionsFilter implements ExceptionFilter {
  private readonly logger = new Logger('Errors');
  private readonly allowedMethods: AllowedMethods;

  constructor(adapterHost: HttpAdapterHost, private readonly sessions: SessionsService) {
    this.allowedMethods = new AllowedMethods(() => adapterHost.httpAdapter?.getInstance<Application>());
  }

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const req = http.getRequest<AppRequest>();
    const res = http.getResponse<Response>();
    const requestId = req.id;

    if (exception instanceof AppException) {
      const status: number = HTTP_STATUS[exception.code];
      // An outage the service answers as such (503 with Retry-After) is expected, not a fault of ours: a
      // warning without a stack (one per refused request, during an outage already being handled).
      if (exception.code === ErrorCode.ServiceUnavailable) this.logger.warn({ requestId, code: exception.code }, exception.message);
      else if (status >= 500) this.logger.error({ requestId, code: exception.code, err: exception }, exception.message);
      writeError(res, status, errorEnvelope(exception.code, exception.message, requestId, exception.details), exception.headers);
      return;
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      if (status === 404) {
        // No route for this method: if the path has routes under other methods, the method is wrong.
        const allowed = this.allowedMethods.on(req.path);
        if (allowed.length > 0 && !allowed.includes(req.method)) {
          writeError(res, 405, methodNotAllowed(req.method, allowed, requestId), { Allow: allowed.join(', ') });
          return;
        }
      }
      if (exception.cause instanceof URIError) {
        // Express could not decode a path parameter (`/api/v1/conversations/%FF`): named as the query's are (http-pipeline.ts).
        const message = 'path must be valid percent-encoded UTF-8';
        writeError(res, 400, errorEnvelope(ErrorCode.ValidationError, message, requestId, { fields: [{ field: 'path', errors: [message] }] }));
        return;
      }
      const code = codeForStatus(status);
      const body = exception.getResponse();
      // Nest's own messages are safe to show for 4xx (e.g. "Cannot GET /api/v1/nope"); 5xx stay generic.
      const raw = typeof body === 'object' && body !== null && 'message' in body ? (body).message : body;
      const message = status < 500 && typeof raw === 'string' ? raw : (GENERIC_MESSAGES[code] ?? exception.message);
      if (status >= 500) this.logger.error({ requestId, err: exception }, 'HTTP exception');
      writeError(res, status, errorEnvelope(code, message, requestId));
      return;
    }
    if (isStorageFull(exception)) {
      // Nothing a retry in a few seconds fixes, and nothing the client did: the operator must free
      // disk space (or grow the disk), so this is an error in the log, not a warning.
      this.logger.error({ requestId, err: exception }, 'storage full: the database or the data directory has no space left; free disk space');
      writeError(res, 503, errorEnvelope(ErrorCode.ServiceUnavailable, "The server's storage is full; try again later.", requestId, STORAGE_FULL_DETAILS), { 'Retry-After': '60' });
      return;
    }
    if (isDependencyOutage(exception)) {
      // The database or Redis is unreachable: the client may retry; the service recovers by itself.
      this.logger.warn({ requestId, err: exception }, 'dependency unavailable');
      writeError(res, 503, errorEnvelope(ErrorCode.ServiceUnavailable, 'The service is temporarily unavailable; please retry shortly.', requestId), { 'Retry-After': '5' });
      return;
    }
    if (isForeignKeyViolation(exception)) {
      void this.answerVanishedReference(res, req, exception);
      return;
    }
    this.logger.error({ requestId, err: exception }, 'Unhandled exception');
    writeError(res, 500, errorEnvelope(ErrorCode.InternalError, GENERIC_MESSAGES[ErrorCode.InternalError]!, requestId));
  }

  /**
   * A row written for something deleted since the request checked it: the caller's session erased
   * (through another instance, between its guard and its insert: chat and upload answered 500), or a
   * conversation deleted meanwhile. Nothing was written. The caller whose session is gone gets the
   * guard's 401; anyone else 409, to read the state again.
   */
  private async answerVanishedReference(res: Response, req: AppRequest, exception: unknown): Promise<void> {
    let isSignedOut = false;
    try {
      isSignedOut = req.auth !== undefined && !await this.sessions.isLive(req.auth.sessionId);
    } catch (err) {
      this.logger.warn({ requestId: req.id, err }, 'could not read the session again');
    }
    this.logger.warn({ requestId: req.id, err: exception, isSignedOut }, 'a reference vanished during the request');
    if (res.headersSent) return;
    if (isSignedOut) writeError(res, 401, errorEnvelope(ErrorCode.Unauthorized, 'Invalid or expired session', req.id));
    else writeError(res, 409, errorEnvelope(ErrorCode.Conflict, 'Something this request refers to was deleted meanwhile; reload and try again', req.id));
  }
}

