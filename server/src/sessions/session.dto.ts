import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString, MaxLength } from 'class-validator';
import type { Session } from './session.entity.js';
import { IsId } from '../common/is-uuid.js';

export class CreateSessionDto {
  @ApiPropertyOptional({ maxLength: 512, description: 'Defaults to the User-Agent header' })
  @IsOptional() @IsString() @MaxLength(512)
  user_agent?: string;

  // Read (and removed) by the access gate before validation when ACCESS_TOKEN is set; listed here for the docs.
  @ApiPropertyOptional({ maxLength: 512, description: 'Only where the deployment sets ACCESS_TOKEN (the access gate): that token, unless sent as X-Access-Token' })
  @IsOptional() @IsString() @MaxLength(512)
  access_token?: string;
}

export class SessionIdParamDto {
  @ApiProperty({ format: 'uuid' }) @IsId() id!: string;
}

export class SessionDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ format: 'date-time' }) created_at!: string;
  @ApiProperty({ format: 'date-time' }) last_accessed!: string;

  static from(s: Session): SessionDto {
    return { id: s.id, created_at: s.createdAt.toISOString(), last_accessed: s.lastAccessed.toISOString() };
  }
}

export class SessionEnvelopeDto {
  @ApiProperty({ type: SessionDto }) session!: SessionDto;
}

export class CreatedSessionDto extends SessionEnvelopeDto {
  @ApiProperty({ description: 'Bearer token for API clients; browsers use the HttpOnly cookie instead' }) token!: string;
  @ApiProperty({ format: 'date-time' }) expires_at!: string;
}
