import type { Response } from 'express';
import type { ErrorCode } from './error-code.js';

export interface ErrorEnvelope {
  error: { code: ErrorCode; message: string; details?: unknown; timestamp: string; request_id: string };
}

export function errorEnvelope(code: ErrorCode, message: string, requestId: string, details?: unknown): ErrorEnvelope {
  return {
    error: {
      code,
      message,
      ...(details === undefined ? {} : { details }),
      timestamp: new Date().toISOString(),
      request_id: requestId,
    },
  };
}

/** Writes the error envelope; the one place an error body is produced. */
export function writeError(
  res: Response, status: number, envelope: ErrorEnvelope, headers: Record<string, string> = {},
): void {
  if (res.headersSent) {
    // A stream already started: nothing valid can be written any more.
    res.end();
    return;
  }
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  res.setHeader('Cache-Control', 'no-store');
  res.status(status).json(envelope);
}
