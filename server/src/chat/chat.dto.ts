import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import {
  ArrayMaxSize, IsArray, IsIn, IsOptional, IsString, MaxLength, ValidateIf,
} from 'class-validator';
import { MESSAGE_STATUSES } from '../conversations/message.entity.js';
import { IsId } from '../common/is-uuid.js';

export class SendMessageDto {
  @ApiProperty({
    example: 'Summarise this PDF',
    description: 'At most MAX_MESSAGE_CHARS characters (see GET /chat/config). Not blank, unless file_ids attaches a file: '
      + 'then it may be empty (or blank, stored empty) and the files are the message',
  })
  // Its length and blankness are checked by the service (the body limit bounds it before that), which knows
  // whether files come with it; a schema ceiling here was listed, with its own number, among the errors of a
  // missing message.
  @IsString()
  message!: string;

  // Validated when present, null included (as regenerate's fields are): @IsOptional let null through as "absent", so a
  // retry of the same body under its Idempotency-Key was refused (409), and session_id null was 404.
  @ApiPropertyOptional({ format: 'uuid', description: 'Omit to start a new conversation' })
  @ValidateIf((o: SendMessageDto) => o.conversation_id !== undefined) @IsId()
  conversation_id?: string;

  @ApiPropertyOptional({ type: [String], format: 'uuid', maxItems: 10, description: 'Uploaded files to attach to this message, in this order (an id listed twice is attached once)' })
  @ValidateIf((o: SendMessageDto) => o.file_ids !== undefined) @IsArray() @ArrayMaxSize(10) @IsId({ each: true })
  file_ids?: string[];

  @ApiPropertyOptional({ format: 'uuid', description: 'Accepted for compatibility; must be the caller\'s own session' })
  @ValidateIf((o: SendMessageDto) => o.session_id !== undefined) @IsId()
  session_id?: string;
}

export class RegenerateDto {
  @ApiProperty({ format: 'uuid' }) @IsId() conversation_id!: string;

  @ApiPropertyOptional({
    description: 'Edits the last user message to this text before answering it (at most MAX_MESSAGE_CHARS characters); its files stay attached. '
      + 'Not blank, unless the message has files: then it may be empty. Needs message_id',
  })
  // Checked against MAX_MESSAGE_CHARS and for blankness by the service, as a sent message is. Validated when
  // present, null included (@IsOptional let null through, to a 500).
  @ValidateIf((o: RegenerateDto) => o.message !== undefined) @IsString()
  message?: string;

  @ApiPropertyOptional({
    format: 'uuid',
    description: 'With message: the id of the user message being edited. 409 CONFLICT when it is no longer the conversation\'s last question (another tab or client asked since); 404 MESSAGE_NOT_FOUND when it is not a question of this conversation',
  })
  @ValidateIf((o: RegenerateDto) => o.message !== undefined || o.message_id !== undefined) @IsId()
  message_id?: string;
}

export class FeedbackDto {
  @ApiProperty({ format: 'uuid' }) @IsId() message_id!: string;
  @ApiProperty({ enum: ['positive', 'negative'] }) @IsIn(['positive', 'negative']) feedback!: 'positive' | 'negative';
  @ApiPropertyOptional({ maxLength: 2000 }) @IsOptional() @IsString() @MaxLength(2000) comment?: string;
}

export class MessageIdParamDto {
  @ApiProperty({ format: 'uuid' }) @IsId() message_id!: string;
}

export class FeedbackResultDto {
  @ApiProperty({ format: 'uuid' }) message_id!: string;
  @ApiProperty({ enum: ['positive', 'negative'] }) feedback!: 'positive' | 'negative';
  @ApiProperty({ type: String, nullable: true }) comment!: string | null;
}

export class StopResultDto {
  @ApiProperty({ format: 'uuid' }) message_id!: string;
  @ApiProperty({ enum: MESSAGE_STATUSES, description: '`stopped` when it was stopped; the final status when it had already ended' })
  status!: string;
}

export class ChatConfigDto {
  @ApiProperty({ enum: ['openai', 'offline'] }) provider!: 'openai' | 'offline';
  @ApiProperty({ example: 'gpt-4o-mini' }) model!: string;
  @ApiProperty({ description: 'The offline demo model: replies are scripted' }) is_demo!: boolean;
  @ApiProperty({ type: 'integer' }) max_message_chars!: number;
  @ApiProperty({ type: 'integer' }) max_upload_bytes!: number;
  @ApiProperty({ type: [String], example: ['.txt', '.md', '.pdf'] }) allowed_extensions!: string[];
}

/** The SSE stream, for Swagger (each event is `id: <seq>\ndata: <json>\n\n`). */
export const SSE_DESCRIPTION = [
  '`text/event-stream`. Events: `{"type":"start",conversation_id,user_message_id,message_id,provider,model,replaces_message_id?,context?,from_start?,"finished":false}`,',
  'then `{"type":"token",token,"finished":false,timestamp}`, then `{"type":"done","finished":true,message_id,status,finish_reason,usage}`',
  'or `{"type":"error","finished":true,message_id,status,code,error,finish_reason?}`. Heartbeat: the comment `: ping`. Ids count from 0 per assistant message.',
].join(' ');
