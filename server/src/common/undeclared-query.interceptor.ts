import { type CallHandler, type ExecutionContext, Injectable, type NestInterceptor } from '@nestjs/common';
import { ROUTE_ARGS_METADATA } from '@nestjs/common/constants.js';
import { RouteParamtypes } from '@nestjs/common/internal.js';
import type { Request } from 'express';
import type { Observable } from 'rxjs';
import { AppException } from './app.exception.js';
import { ErrorCode } from './error-code.js';

/** The parameters named in an error, each cut to this length: enough to recognise a typo. */
const SHOWN_PARAMETERS = 5;
const SHOWN_NAME_CHARS = 64;

export const TAKES_NO_QUERY = 'This operation takes no query parameters';

/** Whether a handler reads the query string (`@Query()` or `@Query('name')`): its DTO's whitelist then decides. */
function readsQuery(context: ExecutionContext): boolean {
  const args = (Reflect.getMetadata(ROUTE_ARGS_METADATA, context.getClass(), context.getHandler().name) ?? {}) as Record<string, unknown>;
  return Object.keys(args).some((key) => key.split(':')[0] === String(RouteParamtypes.QUERY));
}

/**
 * An operation that takes no query parameters refuses any (400 VALIDATION_ERROR, naming them), as the operations
 * that take some refuse those their DTO does not declare (forbidNonWhitelisted): a parameter a client meant
 * (`DELETE /conversations/:id?confirm=1`, a `?limit=` on a route that pages nothing) is never silently ignored.
 * After the guards: who is calling and whether they may is answered first, as for any other validation.
 */
@Injectable()
export class UndeclaredQueryInterceptor implements NestInterceptor {
  private readonly verdicts = new WeakMap<(...args: never[]) => unknown, boolean>();

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType() !== 'http') return next.handle();
    const names = Object.keys(context.switchToHttp().getRequest<Request>().query ?? {});
    if (names.length === 0) return next.handle();
    const handler = context.getHandler() as (...args: never[]) => unknown;
    let takesQuery = this.verdicts.get(handler);
    if (takesQuery === undefined) {
      takesQuery = readsQuery(context);
      this.verdicts.set(handler, takesQuery);
    }
    if (takesQuery) return next.handle();
    const shown = names.slice(0, SHOWN_PARAMETERS).map((name) => name.slice(0, SHOWN_NAME_CHARS));
    throw new AppException(ErrorCode.ValidationError, `${TAKES_NO_QUERY}: send none (got ${shown.join(', ')}${names.length > shown.length ? ', …' : ''})`, {
      fields: shown.map((field) => ({ field, errors: [`property ${field} should not exist`] })),
    });
  }
}
