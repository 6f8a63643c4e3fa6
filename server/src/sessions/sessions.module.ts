import { Module } from '@nestjs/common';
import { JwtModule } from '@nestjs/jwt';
import { TypeOrmModule } from '@nestjs/typeorm';
import { ConversationsModule } from '../conversations/conversations.module.js';
import { FilesModule } from '../files/files.module.js';
import { SessionErasure } from './session-erasure.service.js';
import { SessionPurgeJob } from './session-purge.job.js';
import { Session } from './session.entity.js';
import { SessionTokenService } from './session-token.service.js';
import { SessionsController } from './sessions.controller.js';
import { SessionsService } from './sessions.service.js';

@Module({
  imports: [TypeOrmModule.forFeature([Session]), JwtModule.register({}), ConversationsModule, FilesModule],
  controllers: [SessionsController],
  providers: [SessionsService, SessionTokenService, SessionPurgeJob, SessionErasure],
  exports: [SessionsService],
})
export class SessionsModule {}
