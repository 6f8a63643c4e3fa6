import type { ErrorCode } from './error-code.js';

/** The one exception services throw. The global filter maps `code` to an HTTP status. */
export class AppException extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown> | unknown[],
    /** Extra response headers the client needs, such as Retry-After. */
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = 'AppException';
  }
}
