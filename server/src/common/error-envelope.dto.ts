import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ErrorCode } from './error-code.js';

export class ErrorBodyDto {
  @ApiProperty({ enum: ErrorCode, example: ErrorCode.ValidationError }) code!: ErrorCode;
  @ApiProperty({ example: 'message must be shorter than or equal to 32000 characters' }) message!: string;
  @ApiPropertyOptional({ description: 'Structured details, e.g. the fields that failed validation', type: 'object', additionalProperties: true })
  details?: unknown;
  @ApiProperty({ format: 'date-time', example: '2026-11-28T12:00:00.000Z' }) timestamp!: string;
  @ApiProperty({ example: '3f1c9e1e-8a3b-4c51-9d3c-5d2e2b8e7a10' }) request_id!: string;
}

/** Every error response of the API has this shape. */
export class ErrorEnvelopeDto {
  @ApiProperty({ type: ErrorBodyDto }) error!: ErrorBodyDto;
}
