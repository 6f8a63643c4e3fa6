import { HttpStatus } from '@nestjs/common';
import { ErrorCode } from './error-code.js';

// Record<> forces a status for every new code.
export const HTTP_STATUS: Record<ErrorCode, HttpStatus> = {
  [ErrorCode.ValidationError]: HttpStatus.BAD_REQUEST,
  [ErrorCode.SessionNotFound]: HttpStatus.NOT_FOUND,
  [ErrorCode.ConversationNotFound]: HttpStatus.NOT_FOUND,
  [ErrorCode.MessageNotFound]: HttpStatus.NOT_FOUND,
  [ErrorCode.FileNotFound]: HttpStatus.NOT_FOUND,
  [ErrorCode.FileTooLarge]: HttpStatus.PAYLOAD_TOO_LARGE,
  [ErrorCode.QuotaExceeded]: HttpStatus.PAYLOAD_TOO_LARGE,
  [ErrorCode.UnsupportedFileType]: HttpStatus.UNSUPPORTED_MEDIA_TYPE,
  [ErrorCode.FileProcessingError]: HttpStatus.UNPROCESSABLE_ENTITY,
  [ErrorCode.RateLimitExceeded]: HttpStatus.TOO_MANY_REQUESTS,
  [ErrorCode.OpenAiError]: HttpStatus.BAD_GATEWAY,
  [ErrorCode.InternalError]: HttpStatus.INTERNAL_SERVER_ERROR,
  [ErrorCode.Unauthorized]: HttpStatus.UNAUTHORIZED,
  [ErrorCode.Forbidden]: HttpStatus.FORBIDDEN,
  [ErrorCode.NotFound]: HttpStatus.NOT_FOUND,
  [ErrorCode.MethodNotAllowed]: HttpStatus.METHOD_NOT_ALLOWED,
  [ErrorCode.PayloadTooLarge]: HttpStatus.PAYLOAD_TOO_LARGE,
  [ErrorCode.Conflict]: HttpStatus.CONFLICT,
  [ErrorCode.GenerationInProgress]: HttpStatus.CONFLICT,
  [ErrorCode.ServiceUnavailable]: HttpStatus.SERVICE_UNAVAILABLE,
};

/** For errors raised by Nest or Express themselves (no code of ours). */
export function codeForStatus(status: number): ErrorCode {
  switch (status) {
    case 400: return ErrorCode.ValidationError;
    case 401: return ErrorCode.Unauthorized;
    case 403: return ErrorCode.Forbidden;
    case 404: return ErrorCode.NotFound;
    case 405: return ErrorCode.MethodNotAllowed;
    case 409: return ErrorCode.Conflict;
    case 413: return ErrorCode.PayloadTooLarge;
    case 415: return ErrorCode.UnsupportedFileType;
    case 429: return ErrorCode.RateLimitExceeded;
    case 503: return ErrorCode.ServiceUnavailable;
    default: return status >= 400 && status < 500 ? ErrorCode.ValidationError : ErrorCode.InternalError;
  }
}
