import { Module } from '@nestjs/common';
import { JwtModule } from '@nestjs/jwt';
import { TypeOrmModule } from '@nestjs/typeorm';
import { SessionPurgeJob } from './session-purge.job.js';
import { Session } from './session.entity.js';
import { SessionTokenService } from './session-token.service.js';
import { SessionsController } from './sessions.controller.js';
import { SessionsService } from './sessions.service.js';

@Module({
  imports: [TypeOrmModule.forFeature([Session]), JwtModule.register({})],
  controllers: [SessionsController],
  providers: [SessionsService, SessionTokenService, SessionPurgeJob],
  exports: [SessionsService],
})
export class SessionsModule {}
