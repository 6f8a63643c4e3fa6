import { Controller, Get, Inject, Req } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProperty, ApiTags } from '@nestjs/swagger';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { OutsideAccessGate } from './access-gate.js';
import { Public } from './decorators.js';
import type { AppRequest } from './request-context.js';

export class AccessDto {
  @ApiProperty({ description: 'Whether POST /api/v1/sessions needs the deployment\'s access token (X-Access-Token header)' })
  required!: boolean;

  @ApiProperty({
    description: 'Whether this request carries a live session (its cookie or Bearer token): a browser that lost what its page '
      + 'kept of the session (cleared site storage, Safari\'s seven-day limit on it) goes on with its session instead of creating an empty one',
  })
  has_session!: boolean;
}

@ApiTags('sessions')
@Controller('api/v1/access')
export class AccessGateController {
  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  @Get()
  @Public()
  @OutsideAccessGate()
  @ApiOperation({ summary: 'Whether an access token is needed to create a session, and whether the caller has one (the SPA asks once)' })
  @ApiOkResponse({ type: AccessDto })
  get(@Req() req: AppRequest): AccessDto {
    // The auth guard runs for public routes too and sets `auth` for a live session only.
    return { required: Boolean(this.config.accessToken), has_session: req.auth !== undefined };
  }
}
