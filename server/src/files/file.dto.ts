import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsInt, IsOptional, Max, Min } from 'class-validator';
import type { FileUpload } from './file-upload.entity.js';
import { IsId } from '../common/is-uuid.js';
import { toInt } from '../common/to-int.js';

/** How much extracted text the upload response carries; GET /files/{id} has all of it. */
export const PREVIEW_CHARS = 2000;

function preview(text: string): string {
  if (text.length <= PREVIEW_CHARS) return text;
  const code = text.charCodeAt(PREVIEW_CHARS - 1);
  return text.slice(0, code >= 0xd800 && code <= 0xdbff ? PREVIEW_CHARS - 1 : PREVIEW_CHARS);
}

/** The multipart text fields of an upload (the file itself is the `file` part). */
export class UploadFileDto {
  @ApiPropertyOptional({ format: 'uuid', description: 'Associate the file with one of the caller\'s conversations' })
  @IsOptional() @IsId() conversation_id?: string;

  @ApiPropertyOptional({ format: 'uuid', description: 'Accepted for compatibility (document 6.1); must be the caller\'s own session' })
  @IsOptional() @IsId() session_id?: string;
}

/** The most files one page lists (and the default: a client that pages by nothing gets every file of most sessions). */
export const FILES_PAGE_MAX = 1000;

export class ListFilesQueryDto {
  @ApiPropertyOptional({ type: 'integer', minimum: 1, maximum: FILES_PAGE_MAX, default: FILES_PAGE_MAX })
  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(FILES_PAGE_MAX) limit = FILES_PAGE_MAX;

  @ApiPropertyOptional({ type: 'integer', minimum: 0, maximum: 1_000_000, default: 0 })
  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @Max(1_000_000) offset = 0;

  @ApiPropertyOptional({ format: 'uuid', description: 'Only the files of this conversation' })
  @IsOptional() @IsId() conversation_id?: string;

  @ApiPropertyOptional({ format: 'uuid', description: 'Accepted for compatibility; must be the caller\'s own session' })
  @IsOptional() @IsId() session_id?: string;
}

export class FileIdParamDto {
  @ApiProperty({ format: 'uuid' }) @IsId() id!: string;
}

export class UploadedFileDto {
  @ApiProperty({ format: 'uuid' }) file_id!: string;
  @ApiProperty({ description: 'The original name, sanitized (display only)', example: 'report.pdf' }) filename!: string;
  @ApiProperty({ example: '.pdf' }) file_type!: string;
  @ApiProperty({ type: 'integer', description: 'Bytes' }) file_size!: number;
  @ApiProperty({ description: `The first ${PREVIEW_CHARS} characters of the extracted text` }) extracted_text!: string;
  @ApiProperty({ type: 'integer', description: 'Length of the whole extracted text' }) extracted_chars!: number;
  @ApiProperty({ type: 'integer' }) token_count!: number;
  @ApiPropertyOptional({ type: 'integer', description: 'PDFs only' }) pages?: number;
  @ApiProperty({ type: String, format: 'uuid', nullable: true }) conversation_id!: string | null;
  @ApiProperty({ format: 'date-time' }) created_at!: string;

  static from(f: FileUpload): UploadedFileDto {
    return {
      file_id: f.id, filename: f.filename, file_type: f.fileType, file_size: f.fileSize,
      extracted_text: preview(f.extractedText), extracted_chars: f.extractedText.length, token_count: f.tokenCount,
      ...(f.pages === null ? {} : { pages: f.pages }),
      conversation_id: f.conversationId, created_at: f.createdAt.toISOString(),
    };
  }
}

/** A file's metadata, as listed. */
export class FileDto {
  @ApiProperty({ format: 'uuid' }) file_id!: string;
  @ApiProperty({ example: 'report.pdf' }) filename!: string;
  @ApiProperty({ example: '.pdf' }) file_type!: string;
  @ApiProperty({ type: 'integer' }) file_size!: number;
  @ApiProperty({ type: 'integer' }) token_count!: number;
  @ApiProperty({ type: 'integer', nullable: true, description: 'PDFs only' }) pages!: number | null;
  @ApiProperty({ type: String, format: 'uuid', nullable: true }) conversation_id!: string | null;
  @ApiProperty({ type: String, format: 'uuid', nullable: true, description: 'The user message it is attached to' }) message_id!: string | null;
  @ApiProperty({ format: 'date-time' }) created_at!: string;

  static from(f: FileUpload): FileDto {
    return {
      file_id: f.id, filename: f.filename, file_type: f.fileType, file_size: f.fileSize, token_count: f.tokenCount,
      pages: f.pages, conversation_id: f.conversationId, message_id: f.messageId, created_at: f.createdAt.toISOString(),
    };
  }
}

export class FileDetailDto extends FileDto {
  @ApiProperty({ description: 'The whole extracted text (as given to the model)' }) extracted_text!: string;
  @ApiProperty({ type: 'integer' }) extracted_chars!: number;

  static override from(f: FileUpload): FileDetailDto {
    return { ...FileDto.from(f), extracted_text: f.extractedText, extracted_chars: f.extractedText.length };
  }
}

export class FileListDto {
  @ApiProperty({ type: [FileDto], description: 'Newest first' }) files!: FileDto[];
  @ApiProperty({ type: 'integer', description: 'How many files there are in all (more than `files` holds: page on with `offset`)' }) total!: number;
  @ApiProperty({ type: 'integer' }) limit!: number;
  @ApiProperty({ type: 'integer' }) offset!: number;
}
