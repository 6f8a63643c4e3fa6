import { applyDecorators } from '@nestjs/common';
import { ApiExtraModels, ApiOkResponse, ApiProduces, ApiProperty, ApiPropertyOptional, getSchemaPath } from '@nestjs/swagger';
import { ErrorCode } from '../common/error-code.js';
import { ContextNoticeDto } from '../conversations/conversation.dto.js';
import { UPSTREAM_REFUSALS } from './providers/chat-provider.js';
import { SSE_DESCRIPTION } from './chat.dto.js';

/** The `data:` payloads of the chat stream, for the OpenAPI document (the wire format is in sse-writer.ts). */
export class SseStartEventDto {
  @ApiProperty({ enum: ['start'] }) type!: 'start';
  @ApiProperty({ format: 'uuid' }) conversation_id!: string;
  @ApiProperty({ format: 'uuid' }) user_message_id!: string;
  @ApiProperty({ format: 'uuid', description: 'The assistant message being generated' }) message_id!: string;
  @ApiProperty({ enum: ['openai', 'offline'] }) provider!: string;
  @ApiProperty({ example: 'gpt-4o-mini' }) model!: string;
  @ApiPropertyOptional({ format: 'uuid', description: 'Regenerate only: the answer this one replaces once complete' }) replaces_message_id?: string;
  @ApiPropertyOptional({
    enum: [true],
    description: 'Resume only: the events after the Last-Event-ID are no longer held (the instance restarted, or the replay window passed); '
      + 'the events that follow restate the whole answer from its start, so replace what you have instead of appending',
  }) from_start?: true;
  @ApiPropertyOptional({
    type: ContextNoticeDto,
    description: 'Present when the question\'s files do not all fit in the model\'s context, or the conversation\'s first messages no longer do: '
      + 'tell the user which files the model saw cut or not at all, and that it did not see the start of the conversation',
  }) context?: ContextNoticeDto;
  @ApiProperty({ enum: [false] }) finished!: false;
}

export class SseTokenEventDto {
  @ApiProperty({ enum: ['token'] }) type!: 'token';
  @ApiProperty({ example: 'Hel' }) token!: string;
  @ApiProperty({ enum: [false] }) finished!: false;
  @ApiProperty({ format: 'date-time' }) timestamp!: string;
}

export class SseUsageDto {
  @ApiProperty({ type: 'integer' }) prompt_tokens!: number;
  @ApiProperty({ type: 'integer' }) completion_tokens!: number;
  @ApiProperty({ type: 'integer' }) total_tokens!: number;
}

export class SseDoneEventDto {
  @ApiProperty({ enum: ['done'] }) type!: 'done';
  @ApiProperty({ enum: [true] }) finished!: true;
  @ApiProperty({ format: 'uuid' }) message_id!: string;
  @ApiProperty({ enum: ['complete', 'stopped'] }) status!: string;
  @ApiProperty({ type: String, nullable: true, example: 'stop', description: '"stop_requested" when stopped by the user' }) finish_reason!: string | null;
  // Never null: a stream that ends without the upstream's counts carries the service's own.
  @ApiProperty({ type: SseUsageDto }) usage!: SseUsageDto;
}

export class SseErrorEventDto {
  @ApiProperty({ enum: ['error'] }) type!: 'error';
  @ApiProperty({ enum: [true] }) finished!: true;
  @ApiProperty({ format: 'uuid' }) message_id!: string;
  @ApiProperty({ enum: ['failed', 'interrupted'] }) status!: string;
  @ApiProperty({ enum: ErrorCode, example: ErrorCode.OpenAiError }) code!: string;
  @ApiProperty({ example: "I'm temporarily unable to process your request. Please try again in a moment." }) error!: string;
  @ApiPropertyOptional({
    enum: UPSTREAM_REFUSALS,
    description: 'With OPENAI_ERROR, when the model\'s server refused the request outright (a 3xx/4xx but 408/429, or an error in the '
      + 'stream after a 200 saying one of the first two), so that trying it again cannot help: '
      + 'the prompt is over the model\'s context, its content filter blocked it, or any other refusal (e.g. a wrong key or model name). '
      + 'Stored as the message\'s finish_reason',
  }) finish_reason?: string;
}

const EVENTS = [SseStartEventDto, SseTokenEventDto, SseDoneEventDto, SseErrorEventDto];

/** Documents a route that answers with the chat's Server-Sent Events. */
export function ApiSseResponse(): MethodDecorator {
  return applyDecorators(
    ApiExtraModels(...EVENTS),
    ApiProduces('text/event-stream'),
    ApiOkResponse({
      description: SSE_DESCRIPTION,
      content: {
        'text/event-stream': {
          schema: {
            description: 'Each event is `id: <seq>` then `data: <one of these JSON objects>`; `: ping` comments keep the stream alive.',
            oneOf: EVENTS.map((e) => ({ $ref: getSchemaPath(e) })),
          },
        },
      },
    }),
  );
}
