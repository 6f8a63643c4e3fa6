import { applyDecorators } from '@nestjs/common';
import { Transform } from 'class-transformer';
import { IsUUID } from 'class-validator';

const lowerCase = (value: unknown): unknown => {
  if (typeof value === 'string') return value.toLowerCase();
  if (Array.isArray(value)) return value.map((item: unknown) => (typeof item === 'string' ? item.toLowerCase() : item));
  return value;
};

/**
 * An id: a UUID in either case (RFC 9562 reads them case-insensitively), taken in lower case, as ids are
 * made and stored. An upper-case id of one's own conversation was 404, as if it did not exist.
 */
export function IsId(options: { each?: boolean } = {}): PropertyDecorator {
  return applyDecorators(Transform(({ value }: { value: unknown }) => lowerCase(value)), IsUUID('all', options));
}
