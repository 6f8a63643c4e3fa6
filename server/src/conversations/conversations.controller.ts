import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiCookieAuth, ApiNoContentResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiErrors } from '../common/api-errors.js';
import { ErrorCode } from '../common/error-code.js';
import { CurrentSession } from '../common/decorators.js';
import type { AuthContext } from '../common/request-context.js';
import {
  ConversationDetailDto, ConversationEnvelopeDto, ConversationIdParamDto, ConversationListDto,
  ListConversationsQueryDto, MessagePageDto, MessagePageQueryDto, UpdateConversationDto,
} from './conversation.dto.js';
import { ConversationViews } from './conversation-views.service.js';
import { ConversationsService } from './conversations.service.js';

@ApiTags('conversations')
@ApiCookieAuth() @ApiBearerAuth()
@Controller('api/v1/conversations')
export class ConversationsController {
  constructor(private readonly conversations: ConversationsService, private readonly views: ConversationViews) {}

  @Get()
  @ApiOperation({ summary: 'The caller\'s conversations, newest first' })
  @ApiOkResponse({ type: ConversationListDto })
  @ApiErrors(ErrorCode.SessionNotFound)
  list(@Query() query: ListConversationsQueryDto, @CurrentSession() caller: AuthContext): Promise<ConversationListDto> {
    return this.views.list(caller.sessionId, query);
  }

  @Get(':id')
  @ApiOperation({ summary: 'A conversation with its latest messages (oldest first), or those ?around one of them; other pages via /messages' })
  @ApiOkResponse({ type: ConversationDetailDto })
  @ApiErrors(ErrorCode.ConversationNotFound, ErrorCode.MessageNotFound)
  findOne(@Param() { id }: ConversationIdParamDto, @Query() query: MessagePageQueryDto, @CurrentSession() caller: AuthContext): Promise<ConversationDetailDto> {
    return this.views.detail(caller.sessionId, id, query);
  }

  @Get(':id/messages')
  @ApiOperation({ summary: 'A page of messages, oldest first: older than ?before, newer than ?after, or ?around a message' })
  @ApiOkResponse({ type: MessagePageDto })
  @ApiErrors(ErrorCode.ConversationNotFound, ErrorCode.MessageNotFound)
  messages(@Param() { id }: ConversationIdParamDto, @Query() query: MessagePageQueryDto, @CurrentSession() caller: AuthContext): Promise<MessagePageDto> {
    return this.views.messages(caller.sessionId, id, query);
  }

  @Patch(':id')
  @ApiOperation({ summary: 'Rename a conversation' })
  @ApiOkResponse({ type: ConversationEnvelopeDto })
  @ApiErrors(ErrorCode.ConversationNotFound)
  async update(@Param() { id }: ConversationIdParamDto, @Body() body: UpdateConversationDto, @CurrentSession() caller: AuthContext): Promise<ConversationEnvelopeDto> {
    return this.views.envelope(await this.conversations.rename(caller.sessionId, id, body.title));
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete a conversation and its messages' })
  @ApiNoContentResponse()
  @ApiErrors(ErrorCode.ConversationNotFound)
  remove(@Param() { id }: ConversationIdParamDto, @CurrentSession() caller: AuthContext): Promise<void> {
    return this.conversations.remove(caller.sessionId, id);
  }
}
