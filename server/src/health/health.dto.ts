import { ApiProperty } from '@nestjs/swagger';

export class HealthDto {
  @ApiProperty({ enum: ['ok', 'degraded', 'down'] }) status!: 'ok' | 'degraded' | 'down';
  @ApiProperty({ example: '0.1.0' }) version!: string;
  @ApiProperty({ type: 'integer', description: 'Seconds since start' }) uptime!: number;
  @ApiProperty({ type: 'object', additionalProperties: { type: 'string', enum: ['ok', 'down'] }, example: { database: 'ok' } })
  checks!: Record<string, 'ok' | 'down'>;
  @ApiProperty({ enum: ['openai', 'offline'], description: 'The active chat provider' }) provider!: 'openai' | 'offline';
  @ApiProperty({ example: 'gpt-4o-mini', description: 'The active chat model' }) model!: string;
}

export class LivenessDto {
  @ApiProperty({ enum: ['ok'] }) status!: 'ok';
}

export class ReadinessDto {
  @ApiProperty({ enum: ['ok', 'down'] }) status!: 'ok' | 'down';
  @ApiProperty({ type: 'object', additionalProperties: { type: 'string', enum: ['ok', 'down'] }, example: { database: 'ok', redis: 'ok', storage: 'ok', accepting: 'ok' } })
  checks!: Record<string, 'ok' | 'down'>;
}
