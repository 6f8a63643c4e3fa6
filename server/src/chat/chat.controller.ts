import { Body, Controller, Get, Headers, HttpCode, Inject, Param, Post, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiCookieAuth, ApiHeader, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiErrors } from '../common/api-errors.js';
import { ErrorCode } from '../common/error-code.js';
import type { Response } from 'express';
import type { Observable } from 'rxjs';
import { CurrentSession } from '../common/decorators.js';
import { chatChannels } from '../common/diagnostics.js';
import type { AuthContext } from '../common/request-context.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import type { SequencedEvent } from './chat-events.js';
import { ChatMetrics } from './chat-metrics.js';
import {
  ChatConfigDto, FeedbackDto, FeedbackResultDto, MessageIdParamDto, RegenerateDto, SendMessageDto, StopResultDto,
} from './chat.dto.js';
import { ChatService, IDEMPOTENCY_KEY } from './chat.service.js';
import { ApiSseResponse } from './sse-events.dto.js';
import { setSseHead, writeSse } from './sse-writer.js';
import { OpenStreams } from './open-streams.js';
import { StreamLimit } from './stream-limit.js';

@ApiTags('chat')
@ApiCookieAuth() @ApiBearerAuth()
@Controller('api/v1/chat')
export class ChatController {
  constructor(
    private readonly chat: ChatService,
    private readonly metrics: ChatMetrics,
    private readonly streamLimit: StreamLimit,
    private readonly openStreams: OpenStreams,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Get('config')
  @ApiOperation({ summary: 'The active model and the limits the SPA needs' })
  @ApiOkResponse({ type: ChatConfigDto })
  getConfig(): ChatConfigDto {
    return this.chat.chatConfig();
  }

  // @Res(): the SSE body is written to the response (sse-writer.ts) once every check has passed.
  @Post()
  @HttpCode(200)
  @ApiOperation({ summary: 'Send a message and stream the answer (Server-Sent Events)' })
  @ApiHeader({
    name: 'Idempotency-Key', required: false,
    description: 'A retried send with the same key re-attaches to the same answer; the key reused for a different request is 409 CONFLICT. '
      + 'A key is kept with its conversation: once the conversation is deleted, the key is free again',
    schema: { type: 'string', pattern: IDEMPOTENCY_KEY.source, minLength: 1, maxLength: 128 },
  })
  @ApiSseResponse()
  @ApiErrors(ErrorCode.SessionNotFound, ErrorCode.ConversationNotFound, ErrorCode.FileNotFound, ErrorCode.Conflict, ErrorCode.GenerationInProgress, ErrorCode.QuotaExceeded)
  async send(
    @Body() body: SendMessageDto,
    @CurrentSession() caller: AuthContext,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    // eslint-disable-next-line no-restricted-syntax -- the SSE body is written to the response (writeSse)
    @Res() res: Response,
  ): Promise<void> {
    await this.streamOnceStarted(res, caller, () => this.chat.send(caller, body, this.chat.checkIdempotencyKey(idempotencyKey)));
  }

  @Post('regenerate')
  @HttpCode(200)
  @ApiOperation({ summary: 'A new answer to the last user message (first edited to `message` when given); the previous answer is replaced once the new one completes' })
  @ApiSseResponse()
  @ApiErrors(ErrorCode.ConversationNotFound, ErrorCode.MessageNotFound, ErrorCode.Conflict, ErrorCode.GenerationInProgress)
  async regenerate(
    @Body() body: RegenerateDto,
    @CurrentSession() caller: AuthContext,
    // eslint-disable-next-line no-restricted-syntax -- the SSE body is written to the response (writeSse)
    @Res() res: Response,
  ): Promise<void> {
    await this.streamOnceStarted(res, caller, () => this.chat.regenerate(caller, body));
  }

  @Get('streams/:message_id')
  @ApiOperation({ summary: 'Re-attach to an answer: replays the events after Last-Event-ID, then continues live' })
  @ApiHeader({
    name: 'Last-Event-ID', required: false, schema: { type: 'string', pattern: '^[0-9]{0,16}$' },
    description: 'The id of the last event received: at most 16 decimal digits, an integer from 0 to 2^53 − 1 (9007199254740991); anything else, a larger number included, is 400 VALIDATION_ERROR. Empty or omitted: every event from the start',
  })
  @ApiSseResponse()
  @ApiErrors(ErrorCode.MessageNotFound)
  async follow(
    @Param() { message_id }: MessageIdParamDto,
    @CurrentSession() caller: AuthContext,
    @Headers('last-event-id') lastEventId: string | undefined,
    // eslint-disable-next-line no-restricted-syntax -- the SSE body is written to the response (writeSse)
    @Res() res: Response,
  ): Promise<void> {
    if (res.req.method === 'HEAD') {
      // GET's status and headers at once, after the same checks: the events would be its body, never sent (Express
      // runs GET's handler for HEAD: it waited for the whole answer, holding one of the session's stream slots).
      await this.chat.followable(caller, message_id, lastEventId);
      setSseHead(res);
      res.end();
      return;
    }
    await this.streamWhenReady(res, caller, () => this.chat.follow(caller, message_id, lastEventId));
  }

  @Post('streams/:message_id/stop')
  @HttpCode(200)
  @ApiOperation({ summary: 'Stop an answer; the partial text is kept with status stopped' })
  @ApiOkResponse({ type: StopResultDto })
  @ApiErrors(ErrorCode.MessageNotFound)
  stop(@Param() { message_id }: MessageIdParamDto, @CurrentSession() caller: AuthContext): Promise<StopResultDto> {
    return this.chat.stop(caller, message_id);
  }

  @Post('feedback')
  @HttpCode(200)
  @ApiOperation({ summary: 'Rate one\'s own assistant message (upsert)' })
  @ApiOkResponse({ type: FeedbackResultDto })
  @ApiErrors(ErrorCode.MessageNotFound)
  feedback(@Body() body: FeedbackDto, @CurrentSession() caller: AuthContext): Promise<FeedbackResultDto> {
    return this.chat.feedback(caller, body);
  }

  /** Starts a generation and streams it; marks both steps on the diagnostics channels (common/diagnostics.ts). */
  private async streamOnceStarted(res: Response, caller: AuthContext, start: () => Promise<Observable<SequencedEvent>>): Promise<void> {
    await this.streamWhenReady(res, caller, async () => {
      if (chatChannels.accepted.hasSubscribers) chatChannels.accepted.publish({ request: res.req });
      const events = await start();
      if (chatChannels.started.hasSubscribers) chatChannels.started.publish({ request: res.req });
      return events;
    });
  }

  /**
   * Streams the events `prepare` gives, holding one of the session's stream slots (StreamLimit)
   * from the start, before anything is checked or stored: one more than STREAM_MAX_PER_SESSION is
   * 429 and changes nothing. The slot goes back when `prepare` fails or the stream closes.
   */
  private async streamWhenReady(res: Response, caller: AuthContext, prepare: () => Promise<Observable<SequencedEvent>>): Promise<void> {
    const release = this.streamLimit.take(caller.sessionId);
    let events: Observable<SequencedEvent>;
    try {
      events = await prepare();
    } catch (err) {
      release();
      throw err;
    }
    // Tracked while open, so that a shutdown ends it (OpenStreams); it may have closed already (the client gone).
    let forget = (): void => {};
    const stream = writeSse(res, events, {
      heartbeatMs: this.config.stream.heartbeatMs,
      onOpen: () => this.metrics.streamOpened(),
      onClose: () => {
        forget();
        release();
        this.metrics.streamClosed();
      },
    });
    if (!stream.isClosed) forget = this.openStreams.add(stream);
  }
}
