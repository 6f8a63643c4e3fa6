import { Transform } from 'class-transformer';
import { ArrayMaxSize, IsArray, IsInt, IsNotEmpty, IsOptional, IsString, IsUUID, Max, MaxLength, Min, MinLength } from 'class-validator';
import { AppException } from './app.exception.js';
import { ErrorCode } from './error-code.js';
import { toInt } from './to-int.js';
import { createValidationPipe } from './validation.pipe.js';

class NoteDto {
  @IsString() @IsNotEmpty() @MaxLength(5)
  text!: string;

  @IsOptional() @IsUUID()
  id?: string;
}

class LimitsDto {
  @IsString() @IsNotEmpty() @MinLength(2)
  text!: string;

  @IsOptional() @IsArray() @ArrayMaxSize(2) @IsUUID('all', { each: true })
  ids?: string[];
}

class PageQueryDto {
  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(100)
  limit = 20;

  @IsOptional() @IsString() @MaxLength(10)
  q?: string;
}

describe('the validation pipe', () => {
  const pipe = createValidationPipe();
  const validate = (body: unknown): Promise<unknown> => pipe.transform(body, { type: 'body', metatype: NoteDto });

  it('says of a missing field or one of the wrong type only that: "must be a string", not its limits as well', async () => {
    for (const body of [{}, { text: 7 }, { text: ['a', 'b'] }]) {
      const err = await validate(body).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AppException);
      expect(err).toMatchObject({
        code: ErrorCode.ValidationError,
        message: 'text must be a string',
        details: { fields: [{ field: 'text', errors: ['text must be a string'] }] },
      });
    }
    // Of the right type, every limit it fails, in declaration order.
    const empty = await pipe.transform({ text: '' }, { type: 'body', metatype: LimitsDto }).catch((e: unknown) => e);
    expect((empty as AppException).details).toEqual({ fields: [{ field: 'text', errors: ['text should not be empty', 'text must be longer than or equal to 2 characters'] }] });
    // A list given as one value: only that it must be a list (not also how long it may be, nor what each item must be).
    const ids = await pipe.transform({ text: 'ok', ids: 'x' }, { type: 'body', metatype: LimitsDto }).catch((e: unknown) => e);
    expect((ids as AppException).details).toEqual({ fields: [{ field: 'ids', errors: ['ids must be an array'] }] });
  });

  it('names the one check that failed, and every field that failed; an unknown field first', async () => {
    const err = await validate({ text: 'too long', id: 'nope' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ message: 'text must be shorter than or equal to 5 characters' });
    expect((err as AppException).details).toEqual({
      fields: [
        { field: 'text', errors: ['text must be shorter than or equal to 5 characters'] },
        { field: 'id', errors: ['id must be a UUID'] },
      ],
    });
    const unknown = await validate({ text: 'ok', extra: 1 }).catch((e: unknown) => e);
    expect(unknown).toMatchObject({ message: 'property extra should not exist', details: { fields: [{ field: 'extra', errors: ['property extra should not exist'] }] } });
  });

  it('passes a valid body through as the DTO', async () => {
    await expect(validate({ text: 'ok' })).resolves.toBeInstanceOf(NoteDto);
  });

  describe('on a query string', () => {
    const query = (q: Record<string, unknown>): Promise<unknown> => pipe.transform(q, { type: 'query', metatype: PageQueryDto });

    it('says a declared parameter given more than once must be given once, not that each of its values is wrong', async () => {
      const err = await query({ limit: ['1', '2'] }).catch((e: unknown) => e);
      expect(err).toMatchObject({
        code: ErrorCode.ValidationError,
        message: 'limit must be given once (it was given 2 times)',
        details: { fields: [{ field: 'limit', errors: ['limit must be given once (it was given 2 times)'] }] },
      });
    });

    it('keeps the other fields\' own errors, and an undeclared parameter given twice is still one that should not exist', async () => {
      const err = await query({ limit: '0', q: ['a', 'b', 'c'], page: ['1', '2'] }).catch((e: unknown) => e);
      expect((err as AppException).details).toEqual({
        fields: [
          { field: 'page', errors: ['property page should not exist'] },
          { field: 'limit', errors: ['limit must not be less than 1'] },
          { field: 'q', errors: ['q must be given once (it was given 3 times)'] },
        ],
      });
      expect(err).toMatchObject({ message: 'property page should not exist' });
    });

    it('passes a query whose parameters are each given once', async () => {
      await expect(query({ limit: '5', q: 'x' })).resolves.toMatchObject({ limit: 5, q: 'x' });
    });
  });
});
