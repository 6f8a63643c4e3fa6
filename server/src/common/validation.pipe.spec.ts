import { Transform } from 'class-transformer';
import { IsInt, IsNotEmpty, IsOptional, IsString, IsUUID, Max, MaxLength, Min } from 'class-validator';
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

class PageQueryDto {
  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(100)
  limit = 20;

  @IsOptional() @IsString() @MaxLength(10)
  q?: string;
}

describe('the validation pipe', () => {
  const pipe = createValidationPipe();
  const validate = (body: unknown): Promise<unknown> => pipe.transform(body, { type: 'body', metatype: NoteDto });

  it('heads the error with the first failed check in declaration order: a missing field "must be a string"', async () => {
    const err = await validate({}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppException);
    expect(err).toMatchObject({
      code: ErrorCode.ValidationError,
      message: 'text must be a string',
      details: { fields: [{ field: 'text', errors: ['text must be a string', 'text should not be empty', 'text must be shorter than or equal to 5 characters'] }] },
    });
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
