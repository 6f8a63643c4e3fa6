import { Injectable } from '@nestjs/common';
import { AppException } from '../common/app.exception.js';
import { ErrorCode } from '../common/error-code.js';
import type { Conversation } from './conversation.entity.js';
import {
  ConversationDto, type ConversationDetailDto, type ConversationEnvelopeDto, type ConversationListDto,
  type ListConversationsQueryDto, MessageDto, type MessagePageDto, type MessagePageQueryDto,
} from './conversation.dto.js';
import { ConversationsService } from './conversations.service.js';

/** Shapes conversations and message pages into response DTOs, so entity columns never leak. */
@Injectable()
export class ConversationViews {
  constructor(private readonly conversations: ConversationsService) {}

  async list(sessionId: string, query: ListConversationsQueryDto): Promise<ConversationListDto> {
    if (query.session_id !== undefined && query.session_id !== sessionId) {
      throw new AppException(ErrorCode.SessionNotFound, 'Session not found');
    }
    const { items, total, matches } = await this.conversations.list(sessionId, query.limit, query.offset, query.q);
    const conversations = items.map((c): ConversationDto => {
      const match = matches.get(c.id);
      return match
        ? { ...ConversationDto.from(c), match: { message_id: match.messageId, role: match.role, snippet: { ...match.snippet } } }
        : ConversationDto.from(c);
    });
    return { conversations, total, limit: query.limit, offset: query.offset };
  }

  async detail(sessionId: string, id: string, query: MessagePageQueryDto): Promise<ConversationDetailDto> {
    const conversation = await this.conversations.findOwned(sessionId, id);
    return { conversation: ConversationDto.from(conversation), ...(await this.pageOf(conversation, query)) };
  }

  async messages(sessionId: string, id: string, query: MessagePageQueryDto): Promise<MessagePageDto> {
    return this.pageOf(await this.conversations.findOwned(sessionId, id), query);
  }

  envelope(conversation: Conversation): ConversationEnvelopeDto {
    return { conversation: ConversationDto.from(conversation) };
  }

  private async pageOf(conversation: Conversation, query: MessagePageQueryDto): Promise<MessagePageDto> {
    const page = query.around !== undefined
      ? await this.conversations.pageAround(conversation.id, query.limit, query.around)
      : query.after !== undefined
        ? await this.conversations.pageAfter(conversation.id, query.limit, query.after)
        : await this.conversations.page(conversation.id, query.limit, query.before);
    // Another conversation's message (or another session's) is missing here, exactly like one that never was.
    if (!page) throw new AppException(ErrorCode.MessageNotFound, 'Message not found');
    const files = await this.conversations.attachments(page.messages.filter((m) => m.role === 'user').map((m) => m.id));
    return { messages: page.messages.map((m) => MessageDto.from(m, files)), has_more: page.hasMore, has_newer: page.hasNewer };
  }
}
