import type { Application, NextFunction, Request, Response } from 'express';
import { match } from 'path-to-regexp';
import { ErrorCode } from './error-code.js';
import type { AppRequest } from './request-context.js';
import { errorEnvelope, writeError } from './write-error.js';

/** How Express 5 keeps a route in its router (`app.router.stack`, public since Express 5). */
interface RouteLayer {
  route?: { path?: unknown; methods?: Record<string, boolean> };
}

interface KnownRoute {
  matches: (path: string) => boolean;
  methods: string[];
  /** A path without parameters (`/api/v1/files/upload`), lower-cased and without a trailing slash. */
  literal?: string;
}

const METHOD_ORDER = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

/**
 * The methods the API's routes answer on a path, for a 405 with its Allow header (RFC 9110
 * 15.5.6) when a route exists under another method: `DELETE /api/v1/chat` is a wrong method, not
 * a missing resource. Only routes under `/api/` count: a catch-all (the SPA's index.html on any
 * GET) would make every path "exist", and `/metrics` answers 404 to whoever may not scrape it.
 *
 * Read from the router once, at the first wrong method, when every route is registered.
 */
export class AllowedMethods {
  private routes?: KnownRoute[];
  private literals?: Map<string, string[]>;

  constructor(private readonly app: () => Application | undefined) {}

  /** The methods allowed on `path` (HEAD with GET), in a fixed order; empty when no API route matches it. */
  on(path: string): string[] {
    if (!path.startsWith('/api/')) return [];
    // A literal route's path is that route's, whatever a parameter route would also match (onLiteral).
    const literal = this.onLiteral(path);
    if (literal.length > 0) return literal;
    const allowed = new Set<string>();
    for (const route of this.known()) {
      if (route.matches(path)) for (const m of route.methods) allowed.add(m);
    }
    if (allowed.has('GET')) allowed.add('HEAD');
    return METHOD_ORDER.filter((m) => allowed.has(m));
  }

  /**
   * The methods of the routes whose path is exactly `path`, with no parameter; empty when none is.
   * A literal path is preferred over a parameter, as the routers that type parameters do:
   * `GET /api/v1/files/upload` is a wrong method on the upload route (405), not a file whose id
   * "upload" is malformed (the `GET /files/:id` route would say 400).
   */
  onLiteral(path: string): string[] {
    if (!/^\/api\//i.test(path)) return [];
    // On every API request (literalRouteMethodGuard): one map lookup, the lists made once.
    if (!this.literals) {
      const byPath = new Map<string, Set<string>>();
      for (const route of this.known()) {
        if (route.literal === undefined) continue;
        const methods = byPath.get(route.literal) ?? new Set<string>();
        for (const m of route.methods) methods.add(m);
        if (methods.has('GET')) methods.add('HEAD');
        byPath.set(route.literal, methods);
      }
      this.literals = new Map([...byPath].map(([key, methods]) => [key, METHOD_ORDER.filter((m) => methods.has(m))]));
    }
    return this.literals.get(path) ?? [];
  }

  private known(): KnownRoute[] {
    if (this.routes) return this.routes;
    const stack = (this.app()?.router as { stack?: RouteLayer[] } | undefined)?.stack ?? [];
    const routes: KnownRoute[] = [];
    for (const layer of stack) {
      const path = layer.route?.path;
      if (typeof path !== 'string' || !path.startsWith('/api/') || path.includes('*')) continue;
      const methods = Object.keys(layer.route?.methods ?? {}).filter((m) => m !== '_all').map((m) => m.toUpperCase());
      // As routing matches (app.factory.ts: case-sensitive, strict): another case or a trailing slash is another path.
      const matcher = match(path, { decode: false, sensitive: true, trailing: false });
      const literal = path.includes(':') ? undefined : path;
      routes.push({ matches: (p) => matcher(p) !== false, methods, literal });
    }
    this.routes = routes;
    return routes;
  }
}

/**
 * A wrong method on a literal route's path is answered 405 before routing, so that a route with a
 * parameter under that method does not take the literal segment for its parameter.
 */
export function literalRouteMethodGuard(methods: AllowedMethods): (req: Request, res: Response, next: NextFunction) => void {
  return (req, res, next) => {
    if (req.method === 'OPTIONS') {
      next();
      return;
    }
    const allowed = methods.onLiteral(req.baseUrl + req.path);
    if (allowed.length === 0 || allowed.includes(req.method)) {
      next();
      return;
    }
    writeError(res, 405, methodNotAllowed(req.method, allowed, (req as AppRequest).id), { Allow: allowed.join(', ') });
  };
}

/** The envelope of a 405: the method refused and the ones the path takes. */
export function methodNotAllowed(method: string, allowed: string[], requestId: string): ReturnType<typeof errorEnvelope> {
  return errorEnvelope(ErrorCode.MethodNotAllowed, `${method} is not allowed here; allowed: ${allowed.join(', ')}`, requestId);
}
