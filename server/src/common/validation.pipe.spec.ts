import { IsNotEmpty, IsOptional, IsString, IsUUID, MaxLength } from 'class-validator';
import { AppException } from './app.exception.js';
import { ErrorCode } from './error-code.js';
import { createValidationPipe } from './validation.pipe.js';

class NoteDto {
  @IsString() @IsNotEmpty() @MaxLength(5)
  text!: string;

  @IsOptional() @IsUUID()
  id?: string;
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
});
