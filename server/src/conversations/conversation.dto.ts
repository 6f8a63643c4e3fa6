import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsInt, IsNotEmpty, IsOptional, IsString, Matches, Max, MaxLength, Min, ValidateBy } from 'class-validator';
import { MESSAGE_STATUSES, type Message } from './message.entity.js';
import type { Conversation } from './conversation.entity.js';
import type { Attachment } from './conversations.service.js';
import { ErrorCode } from '../common/error-code.js';
import { Excludes } from '../common/excludes.js';
import { IsId } from '../common/is-uuid.js';
import { toInt } from '../common/to-int.js';
import { foldForSearch, TITLE_MAX, titleLine } from './title.js';

/**
 * Something is left to look for once the text is folded as search compares it: a `q` of accent marks
 * alone (U+0301) folded to nothing and matched every conversation.
 */
function IsSearchable(): PropertyDecorator {
  return ValidateBy({
    name: 'isSearchable',
    validator: {
      validate: (value: unknown) => typeof value !== 'string' || foldForSearch(value).trim().length > 0,
      defaultMessage: () => '$property must hold a letter, digit or other character to search for, not accent marks alone',
    },
  });
}

export class ConversationIdParamDto {
  @ApiProperty({ format: 'uuid' }) @IsId() id!: string;
}

export class ListConversationsQueryDto {
  @ApiPropertyOptional({ type: 'integer', minimum: 1, maximum: 100, default: 20 })
  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(100) limit = 20;

  @ApiPropertyOptional({ type: 'integer', minimum: 0, maximum: 1_000_000, default: 0 })
  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @Max(1_000_000) offset = 0;

  @ApiPropertyOptional({ format: 'uuid', description: 'Accepted for compatibility; must be the caller\'s own session' })
  @IsOptional() @IsId() session_id?: string;

  @ApiPropertyOptional({
    minLength: 1, maxLength: 200,
    description: 'Only conversations whose title or one of whose messages contains each word of this text, in any order (any case, accents ignored, ß as "ss"; surrounding spaces ignored; an answer still streaming is searchable once it ends, without the reasoning a model put before it in <think>…</think>). A conversation found by a message carries `match`.',
  })
  @IsOptional() @Transform(({ value }: { value: unknown }) => (typeof value === 'string' ? value.trim() : value))
  @IsString() @IsNotEmpty() @MaxLength(200) @IsSearchable() q?: string;
}

/** A page of messages: the latest (no cursor), or older than `before`, newer than `after`, or around one message. At most one cursor. */
export class MessagePageQueryDto {
  @ApiPropertyOptional({ type: 'integer', minimum: 1, maximum: 200, default: 50, description: 'How many messages' })
  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(200) limit = 50;

  @ApiPropertyOptional({ type: 'integer', minimum: 0, maximum: 2_147_483_647, description: 'Only the newest messages with a position below this (loading older ones)' })
  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @Max(2_147_483_647) @Excludes(['after', 'around']) before?: number;

  @ApiPropertyOptional({ type: 'integer', minimum: 0, maximum: 2_147_483_647, description: 'Only the oldest messages with a position above this (loading newer ones after opening around a message)' })
  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @Max(2_147_483_647) @Excludes(['before', 'around']) after?: number;

  @ApiPropertyOptional({
    format: 'uuid',
    description: 'The page holding this message of the conversation (a search match\'s `message_id`): up to a quarter of `limit` after it, the rest before it. '
      + 'A message that is not in this conversation is 404 MESSAGE_NOT_FOUND.',
  })
  @IsOptional() @IsId() @Excludes(['before', 'after']) around?: string;
}

export class UpdateConversationDto {
  @ApiProperty({
    minLength: 1, maxLength: TITLE_MAX, example: 'Trip to Lisbon',
    description: 'Stored cleaned: on one line, runs of whitespace made one space, surrounding spaces and invisible characters dropped. '
      + 'The limits are those of the cleaned title: 1 to 200 characters (code points)',
  })
  // Checked as it will be stored: spaces around it or between words do not count against the limit.
  @Transform(({ value }: { value: unknown }) => (typeof value === 'string' ? titleLine(value) : value))
  @IsString() @IsNotEmpty() @MaxLength(TITLE_MAX) @Matches(/\S/, { message: 'title must not be blank' })
  title!: string;
}

export class SearchSnippetDto {
  @ApiProperty({ description: 'A line of the message around the match (whitespace collapsed, Markdown marks left out unless the match is in them, "…" where it is cut)' }) text!: string;
  @ApiProperty({ type: 'integer', description: 'Where the match starts in `text`, in UTF-16 code units' }) start!: number;
  @ApiProperty({ type: 'integer', description: 'The match\'s length in `text`, in UTF-16 code units (0 when it cannot be located)' }) length!: number;
}

export class SearchMatchDto {
  @ApiProperty({ format: 'uuid', description: 'The newest message of the conversation that contains the search' }) message_id!: string;
  @ApiProperty({ enum: ['user', 'assistant', 'system'] }) role!: string;
  @ApiProperty({ type: SearchSnippetDto }) snippet!: SearchSnippetDto;
}

export class ConversationDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ format: 'uuid' }) session_id!: string;
  @ApiProperty({ type: String, nullable: true }) title!: string | null;
  @ApiProperty({ format: 'date-time' }) created_at!: string;
  @ApiProperty({ format: 'date-time' }) updated_at!: string;
  @ApiProperty() is_active!: boolean;
  @ApiProperty({ type: 'integer' }) message_count!: number;
  @ApiPropertyOptional({ type: SearchMatchDto, description: 'In search results only: the conversation was found by one of its messages (not its title)' })
  match?: SearchMatchDto;

  static from(c: Conversation): ConversationDto {
    return {
      id: c.id, session_id: c.sessionId, title: c.title, created_at: c.createdAt.toISOString(),
      updated_at: c.updatedAt.toISOString(), is_active: c.isActive, message_count: c.messageCount,
    };
  }
}

export class AttachmentDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty() filename!: string;
  @ApiProperty({ example: '.pdf' }) file_type!: string;
  @ApiProperty({ type: 'integer' }) file_size!: number;
}

/** What the model did not see: the question's files not whole, the conversation's first messages (chat-events.ts ContextNotice). */
export class ContextNoticeDto {
  @ApiPropertyOptional({ type: [String], description: 'Cut short to fit: the model saw their beginning, then a marker saying the rest did not fit' })
  truncated_files?: string[];
  @ApiPropertyOptional({ type: [String], description: 'Left out: not even their beginning fit' }) omitted_files?: string[];
  @ApiPropertyOptional({
    type: 'integer', minimum: 1,
    description: 'How many of the conversation\'s first messages the model did not see: they no longer fit in its context (the newest go in first)',
  }) earlier_messages_omitted?: number;
}

export class MessageDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ format: 'uuid' }) conversation_id!: string;
  @ApiProperty({ type: 'integer', description: 'Order within the conversation' }) position!: number;
  @ApiProperty({ enum: ['user', 'assistant', 'system'] }) role!: string;
  @ApiProperty() content!: string;
  @ApiProperty({ enum: MESSAGE_STATUSES }) status!: string;
  @ApiProperty({ format: 'date-time' }) created_at!: string;
  @ApiProperty({ format: 'date-time' }) updated_at!: string;
  @ApiProperty({ type: 'integer', nullable: true }) token_count!: number | null;
  @ApiProperty({ type: String, nullable: true }) model_name!: string | null;
  @ApiProperty({ type: String, nullable: true }) finish_reason!: string | null;
  // Null where the message has no error; the null is listed because nullable alone does not widen an enum.
  @ApiProperty({ type: String, enum: [...Object.values(ErrorCode), null], nullable: true }) error_code!: string | null;
  // null listed in the enum too: in OpenAPI 3.0 `nullable` does not widen an enum, and validators refused null.
  @ApiProperty({ type: String, nullable: true, enum: ['positive', 'negative', null] }) feedback!: string | null;
  @ApiProperty({ type: String, nullable: true }) feedback_comment!: string | null;
  @ApiProperty({ type: [AttachmentDto] }) files!: AttachmentDto[];
  @ApiProperty({
    type: ContextNoticeDto, nullable: true,
    description: 'An answer only: what the model did not see: its question\'s files not whole, the conversation\'s first messages (the start event\'s `context`); null when it saw them all',
  }) context!: ContextNoticeDto | null;

  static from(m: Message, files: Attachment[] = []): MessageDto {
    return {
      id: m.id, conversation_id: m.conversationId, position: m.position, role: m.role, content: m.content,
      status: m.status, created_at: m.createdAt.toISOString(), updated_at: m.updatedAt.toISOString(),
      token_count: m.tokenCount, model_name: m.modelName, finish_reason: m.finishReason, error_code: m.errorCode,
      feedback: m.feedback, feedback_comment: m.feedbackComment,
      files: files.filter((f) => f.messageId === m.id)
        .map((f) => ({ id: f.id, filename: f.filename, file_type: f.fileType, file_size: f.fileSize })),
      context: m.contextNotice ? JSON.parse(m.contextNotice) as ContextNoticeDto : null,
    };
  }
}

export class ConversationListDto {
  @ApiProperty({ type: [ConversationDto] }) conversations!: ConversationDto[];
  @ApiProperty({ type: 'integer' }) total!: number;
  @ApiProperty({ type: 'integer' }) limit!: number;
  @ApiProperty({ type: 'integer' }) offset!: number;
}

export class MessagePageDto {
  @ApiProperty({ type: [MessageDto], description: 'Oldest first' }) messages!: MessageDto[];
  @ApiProperty({ description: 'Older messages exist; fetch them with ?before=<first position>' }) has_more!: boolean;
  @ApiProperty({ description: 'Newer messages exist (a page opened `around` a message, or an older one); fetch them with ?after=<last position>. False on the latest page' }) has_newer!: boolean;
}

export class ConversationDetailDto extends MessagePageDto {
  @ApiProperty({ type: ConversationDto }) conversation!: ConversationDto;
}

export class ConversationEnvelopeDto {
  @ApiProperty({ type: ConversationDto }) conversation!: ConversationDto;
}
