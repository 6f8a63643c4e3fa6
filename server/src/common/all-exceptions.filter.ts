import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { Application, Response } from 'express';
import { AllowedMethods, methodNotAllowed } from './allowed-methods.js';
import { AppException } from './app.exception.js';
import { isDependencyOutage } from './dependency-outage.js';
import { ErrorCode } from './error-code.js';
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

  constructor(adapterHost: HttpAdapterHost) {
    this.allowedMethods = new AllowedMethods(() => adapterHost.httpAdapter?.getInstance<Application>());
  }

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const req = http.getRequest<AppRequest>();
    const res = http.getResponse<Response>();
    const requestId = req.id;

    if (exception instanceof AppException) {
      const status: number = HTTP_STATUS[exception.code];
      if (status >= 500) this.logger.error({ requestId, code: exception.code, err: exception }, exception.message);
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
      const code = codeForStatus(status);
      const body = exception.getResponse();
      // Nest's own messages are safe to show for 4xx (e.g. "Cannot GET /api/v1/nope"); 5xx stay generic.
      const raw = typeof body === 'object' && body !== null && 'message' in body ? (body).message : body;
      const message = status < 500 && typeof raw === 'string' ? raw : (GENERIC_MESSAGES[code] ?? exception.message);
      if (status >= 500) this.logger.error({ requestId, err: exception }, 'HTTP exception');
      writeError(res, status, errorEnvelope(code, message, requestId));
      return;
    }
    if (isDependencyOutage(exception)) {
      // The database or Redis is unreachable: the client may retry; the service recovers by itself.
      this.logger.warn({ requestId, err: exception }, 'dependency unavailable');
      writeError(res, 503, errorEnvelope(ErrorCode.ServiceUnavailable, 'The service is temporarily unavailable; please retry shortly.', requestId), { 'Retry-After': '5' });
      return;
    }
    this.logger.error({ requestId, err: exception }, 'Unhandled exception');
    writeError(res, 500, errorEnvelope(ErrorCode.InternalError, GENERIC_MESSAGES[ErrorCode.InternalError]!, requestId));
  }
}
