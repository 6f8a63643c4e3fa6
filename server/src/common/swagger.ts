import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { ErrorEnvelopeDto } from './error-envelope.dto.js';

/** Swagger UI at /api/docs and JSON at /api/docs-json, generated from the DTOs. */
export function setupSwagger(app: INestApplication, version: string): void {
  const doc = new DocumentBuilder()
    .setTitle('Parley API')
    .setDescription([
      'Anonymous sessions, conversations, streamed chat (Server-Sent Events) and file context.',
      'Authenticate with the `session_token` cookie (browsers) or `Authorization: Bearer <token>` (integrators);',
      'both come from `POST /api/v1/sessions`. Every error is `{"error":{"code","message","details?","timestamp","request_id"}}`.',
    ].join(' '))
    .setVersion(version)
    .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' })
    .addCookieAuth('session_token')
    .build();
  const document = SwaggerModule.createDocument(app, doc, { extraModels: [ErrorEnvelopeDto] });
  // Every operation can fail with the envelope; say so once for all of them.
  for (const path of Object.values(document.paths)) {
    for (const op of Object.values(path) as { responses?: Record<string, unknown> }[]) {
      if (!op || typeof op !== 'object' || !('responses' in op)) continue;
      op.responses ??= {};
      op.responses.default ??= {
        description: 'Error envelope (4xx/5xx)',
        content: { 'application/json': { schema: { $ref: '#/components/schemas/ErrorEnvelopeDto' } } },
      };
    }
  }
  SwaggerModule.setup('api/docs', app, document, { jsonDocumentUrl: 'api/docs-json' });
}
