import { Controller, Get, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { SkipThrottle } from '@nestjs/throttler';
import type { Response } from 'express';
import { OutsideAccessGate } from '../common/access-gate.js';
import { Public } from '../common/decorators.js';
import { HealthDto, LivenessDto, ReadinessDto } from './health.dto.js';
import { HealthService } from './health.service.js';

@ApiTags('health')
@OutsideAccessGate()
// Probes must not depend on Redis (rate-limit storage) nor use up anyone's limit.
@SkipThrottle()
@Controller('api/v1/health')
export class HealthController {
  constructor(private readonly health: HealthService) {}

  @Get()
  @Public({ ignoresSession: true })
  @ApiOperation({ summary: 'Service health: really checks the database' })
  @ApiOkResponse({ type: HealthDto })
  @ApiServiceUnavailableResponse({ type: HealthDto, description: 'status is down' })
  async get(@Res({ passthrough: true }) res: Response): Promise<HealthDto> {
    const report = await this.health.report();
    if (report.status === 'down') res.status(503);
    return report;
  }

  @Get('live')
  @Public({ ignoresSession: true })
  @ApiOperation({ summary: 'Liveness: the process answers (restart it when this fails)' })
  @ApiOkResponse({ type: LivenessDto })
  live(): LivenessDto {
    return { status: 'ok' };
  }

  @Get('ready')
  @Public({ ignoresSession: true })
  @ApiOperation({ summary: 'Readiness: database and Redis reachable, on SQLite room on the data disk (READY_MIN_FREE_BYTES), not shutting down (send traffic only when ok)' })
  @ApiOkResponse({ type: ReadinessDto })
  @ApiServiceUnavailableResponse({ type: ReadinessDto, description: 'a dependency is down, the data disk is full, or the instance is draining' })
  async ready(@Res({ passthrough: true }) res: Response): Promise<ReadinessDto> {
    const report = await this.health.readiness();
    if (report.status === 'down') res.status(503);
    return report;
  }
}
