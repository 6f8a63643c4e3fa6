import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { FileUpload } from '../files/file-upload.entity.js';
import { ConversationViews } from './conversation-views.service.js';
import { Conversation } from './conversation.entity.js';
import { ConversationsController } from './conversations.controller.js';
import { ConversationsService } from './conversations.service.js';
import { Message } from './message.entity.js';

@Module({
  // FileUpload is read here only, to list a message's attachments; the files module writes it.
  imports: [TypeOrmModule.forFeature([Conversation, Message, FileUpload])],
  controllers: [ConversationsController],
  providers: [ConversationsService, ConversationViews],
  exports: [ConversationsService, ConversationViews],
})
export class ConversationsModule {}
