import { ValidateBy, type ValidationOptions } from 'class-validator';

/**
 * The property may not be given together with any of `others` (alternative cursors of one query,
 * for instance): refused as a VALIDATION_ERROR on this property, naming the one it clashes with.
 */
export function Excludes(others: readonly string[], options?: ValidationOptions): PropertyDecorator {
  const clash = (object: object): string | undefined => others.find((name) => (object as Record<string, unknown>)[name] !== undefined);
  return ValidateBy({
    name: 'excludes',
    constraints: [others],
    validator: {
      validate: (value: unknown, args) => value === undefined || clash(args?.object ?? {}) === undefined,
      defaultMessage: (args) => `${args?.property ?? 'this'} cannot be combined with ${clash(args?.object ?? {}) ?? others.join(' or ')}`,
    },
  }, options);
}
