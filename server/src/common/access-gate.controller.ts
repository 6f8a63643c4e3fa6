import { Controller, Get, Inject } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProperty, ApiTags } from '@nestjs/swagger';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { OutsideAccessGate } from './access-gate.js';
import { Public } from './decorators.js';

export class AccessDto {
  @ApiProperty({ description: 'Whether POST /api/v1/sessions needs the deployment\'s access token (X-Access-Token header)' })
  required!: boolean;
}

@ApiTags('sessions')
@Controller('api/v1/access')
export class AccessGateController {
  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  @Get()
  @Public()
  @OutsideAccessGate()
  @ApiOperation({ summary: 'Whether an access token is needed to create a session (the SPA asks once)' })
  @ApiOkResponse({ type: AccessDto })
  get(): AccessDto {
    return { required: Boolean(this.config.accessToken) };
  }
}
