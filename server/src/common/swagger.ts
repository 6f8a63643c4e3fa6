import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { addSharedErrors } from './api-errors.js';
import { ErrorEnvelopeDto } from './error-envelope.dto.js';

/** Swagger UI at /api/docs and JSON at /api/docs-json, generated from the DTOs. */
export function setupSwagger(app: INestApplication, version: string): void {
  const doc = new DocumentBuilder()
    .setTitle('Parley API')
    .setDescription([
      'Anonymous sessions, conversations, streamed chat (Server-Sent Events) and file context.',
      'Authenticate with the session cookie (browsers: `session_token`, or `__Host-session_token` over https) or `Authorization: Bearer <token>` (integrators);',
      'both come from `POST /api/v1/sessions`. Every error is `{"error":{"code","message","details?","timestamp","request_id"}}`.',
    ].join(' '))
    .setVersion(version)
    .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' })
    .addCookieAuth('session_token')
    .build();
  const document = SwaggerModule.createDocument(app, doc, { extraModels: [ErrorEnvelopeDto] });
  // The errors every operation of a kind shares are said once for all of them (api-errors.ts).
  for (const [path, item] of Object.entries(document.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (op && typeof op === 'object' && 'responses' in op) addSharedErrors(path, method, op as Parameters<typeof addSharedErrors>[2]);
    }
  }
  SwaggerModule.setup('api/docs', app, document, { jsonDocumentUrl: 'api/docs-json' });
}
