import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import type { AppRequest } from './request-context.js';

/**
 * One JSON line per request once its response has ended: request id, method, path (never the
 * query string, headers or body), status and time. A response the client abandoned before it
 * ended is marked `aborted` (a stream the reader left, an upload cut short).
 *
 * Written here rather than with pino-http: pino-http builds a child logger per request (its
 * bindings serialized and run through the redaction paths) and hangs it on req/res, used by
 * nothing here; that was ~0.1 ms of CPU per request on the path to the first token (bench
 * scenario 1, docs/performance.md). The line's shape is the one pino-http wrote.
 */
export function requestLogMiddleware(logger: Logger, isQuiet: (path: string) => boolean): (req: Request, res: Response, next: NextFunction) => void {
  return (req, res, next) => {
    const url = req.originalUrl ?? req.url;
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    if (isQuiet(path)) {
      next();
      return;
    }
    const started = Date.now();
    let isLogged = false;
    const done = (): void => {
      if (isLogged) return;
      isLogged = true;
      const status = res.statusCode;
      const line = {
        req: { id: (req as AppRequest).id, method: req.method, path },
        res: { status },
        responseTime: Date.now() - started,
        ...(res.writableFinished ? {} : { aborted: true }),
      };
      if (status >= 500) logger.error(line, 'request failed');
      else logger.info(line, 'request completed');
    };
    res.once('finish', done);
    res.once('close', done);
    next();
  };
}
