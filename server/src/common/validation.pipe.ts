import { type ArgumentMetadata, ValidationPipe, type ValidationError } from '@nestjs/common';
import { AppException } from './app.exception.js';
import { ErrorCode } from './error-code.js';
import { jsonShapeRefusal } from './json-shape.js';

/** The checks of a value's type: when one fails, the field's other checks (its limits, its format) are not listed. */
const TYPE_CHECKS = new Set(['isString', 'isArray', 'isInt', 'isNumber', 'isBoolean', 'isObject']);

/**
 * A field's failed checks, in declaration order. class-validator lists a property's failed constraints last decorator
 * first; reversed, they read in declaration order (the type check before the limits), so the headline of a missing
 * field is "must be a string", not "must be shorter than …". A value of the wrong type fails its limits too, and they
 * said nothing of it: `file_ids: "x"` was also told "must contain no more than 10 elements" and "each value must be
 * a UUID"; only the type check is listed then.
 */
function failedChecks(constraints: Record<string, string>): string[] {
  const failed = Object.entries(constraints).reverse();
  const types = failed.filter(([name]) => TYPE_CHECKS.has(name));
  return (types.length > 0 ? types : failed).map(([, message]) => message);
}

function flatten(errors: ValidationError[], parent = ''): { field: string; errors: string[] }[] {
  return errors.flatMap((e) => {
    const field = parent ? `${parent}.${e.property}` : e.property;
    const own = e.constraints ? [{ field, errors: failedChecks(e.constraints) }] : [];
    return [...own, ...flatten(e.children ?? [], field)];
  });
}

/**
 * The JSON body's shape is checked as it is parsed (http-pipeline.ts); a multipart body's fields
 * (uploads) come from multer and meet the same check here, before class-transformer walks them: a
 * field named `__proto__[title]` or `constructor[prototype][title]` passed as a known one. So do a
 * query string's parameters: `?constructor=1` or `?toString=1` passed where `?foo=1` was refused.
 */
class AppValidationPipe extends ValidationPipe {
  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    // A single parameter (`@Query('q')`) is checked under its name, as the whole query would be.
    const checked = metadata.type === 'query' && typeof metadata.data === 'string' ? { [metadata.data]: value } : value;
    if ((metadata.type === 'body' || metadata.type === 'query') && typeof checked === 'object' && checked !== null) {
      const problem = jsonShapeRefusal(checked, metadata.type);
      if (problem) {
        throw new AppException(ErrorCode.ValidationError, problem.message,
          problem.field === undefined ? undefined : { fields: [{ field: problem.field, errors: [problem.message] }] });
      }
    }
    try {
      return await (super.transform(value, metadata) as Promise<unknown>);
    } catch (err) {
      throw metadata.type === 'query' ? withRepeatsNamed(err, checked) : err;
    }
  }
}

/**
 * A query parameter given more than once (`?limit=1&limit=2`) reaches the DTO as an array, and its checks
 * failed with what they say of an array: "limit must be an integer number", "must not be less than 1",
 * "must not be greater than 100" for two valid limits. A declared parameter given again is refused
 * saying so; an undeclared one keeps "should not exist". A multipart form's field given twice is the same
 * (UploadInterceptor): two valid conversation ids were told "must be a UUID".
 */
export function withRepeatsNamed(err: unknown, given: unknown): unknown {
  if (!(err instanceof AppException) || typeof given !== 'object' || given === null) return err;
  const values = given as Record<string, unknown>;
  const details = err.details as { fields?: { field: string; errors: string[] }[] } | undefined;
  const fields = details?.fields;
  if (!fields?.some((f) => Array.isArray(values[f.field]) && !isUndeclared(f))) return err;
  const named = fields.map((f) => {
    const given = values[f.field];
    return Array.isArray(given) && !isUndeclared(f) ? { field: f.field, errors: [`${f.field} must be given once (it was given ${given.length} times)`] } : f;
  });
  return new AppException(ErrorCode.ValidationError, named[0].errors[0], { ...details, fields: named });
}

function isUndeclared(field: { field: string; errors: string[] }): boolean {
  return field.errors.includes(`property ${field.field} should not exist`);
}

/** Whitelisting, forbidding unknown fields, transforming; failures become VALIDATION_ERROR with field details. */
export function createValidationPipe(): ValidationPipe {
  return new AppValidationPipe({
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
