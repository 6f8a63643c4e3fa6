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

/**
 * Headers that describe a representation a handler was about to send, set before it failed: the
 * static files' server sets a file's type, validators and disposition before it checks the Range,
 * and a 416 went out as the JSON envelope labelled text/html (or text/javascript), with the file's
 * ETag. res.json() keeps a Content-Type already set, so the envelope's own is set here.
 */
const REPRESENTATION_HEADERS = ['Content-Disposition', 'Content-Encoding', 'Content-Language', 'ETag', 'Last-Modified'];

/** Writes the error envelope; the one place an error body is produced. */
export function writeError(
  res: Response, status: number, envelope: ErrorEnvelope, headers: Record<string, string> = {},
): void {
  if (res.headersSent) {
    // A stream already started: nothing valid can be written any more.
    res.end();
    return;
  }
  for (const name of REPRESENTATION_HEADERS) res.removeHeader(name);
  // A 416 says with it which ranges exist (`bytes */<size>`, RFC 9110 15.5.17); any other error has no range.
  if (status !== 416) res.removeHeader('Content-Range');
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.status(status).json(envelope);
}
