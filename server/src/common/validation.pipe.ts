import { ValidationPipe, type ValidationError } from '@nestjs/common';
import { AppException } from './app.exception.js';
import { ErrorCode } from './error-code.js';

function flatten(errors: ValidationError[], parent = ''): { field: string; errors: string[] }[] {
  return errors.flatMap((e) => {
    const field = parent ? `${parent}.${e.property}` : e.property;
    // class-validator lists a property's failed constraints last decorator first; reversed, they
    // read in declaration order (the type check before the limits), so the headline of a missing
    // field is "must be a string", not "must be shorter than …".
    const own = e.constraints ? [{ field, errors: Object.values(e.constraints).reverse() }] : [];
    return [...own, ...flatten(e.children ?? [], field)];
  });
}

/** Whitelisting, forbidding unknown fields, transforming; failures become VALIDATION_ERROR with field details. */
export function createValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    transform: true,
    stopAtFirstError: false,
    exceptionFactory: (errors) => {
      const fields = flatten(errors);
      const first = fields[0]?.errors[0] ?? 'Invalid request';
      return new AppException(ErrorCode.ValidationError, first, { fields });
    },
  });
}
