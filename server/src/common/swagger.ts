import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, type OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import { addSharedErrors } from './api-errors.js';
import { addSharedHeaders, HEADER_COMPONENTS, METHOD_NOT_ALLOWED_RESPONSE } from './api-headers.js';
import { ErrorEnvelopeDto } from './error-envelope.dto.js';

/** Swagger UI at /api/docs and JSON at /api/docs-json, generated from the DTOs. */
export function setupSwagger(app: INestApplication, version: string): void {
  const doc = new DocumentBuilder()
    .setTitle('Parley API')
    .setDescription([
      'Anonymous sessions, conversations, streamed chat (Server-Sent Events) and file context.',
      'Authenticate with the session cookie (browsers: `session_token`, or `__Host-session_token` over https) or `Authorization: Bearer <token>` (integrators);',
      'both come from `POST /api/v1/sessions`. Every error is `{"error":{"code","message","details?","timestamp","request_id"}}`.',
      'Every response carries `X-Request-Id`. A path asked with a method it has no operation for is 405 `METHOD_NOT_ALLOWED`',
      'with an `Allow` header (`#/components/responses/MethodNotAllowed`). Every GET operation answers HEAD too, with',
      'the status and headers its GET would have and no body (not listed as operations of their own).',
    ].join(' '))
    .setVersion(version)
    .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' })
    .addCookieAuth('session_token')
    .build();
  const document = SwaggerModule.createDocument(app, doc, { extraModels: [ErrorEnvelopeDto] });
  // The errors every operation of a kind shares are said once for all of them (api-errors.ts).
  for (const [path, item] of Object.entries(document.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (!op || typeof op !== 'object' || !('responses' in op)) continue;
      addSharedErrors(path, method, op as Parameters<typeof addSharedErrors>[2]);
      addSharedHeaders(op as Parameters<typeof addSharedHeaders>[0]);
      // An operation that names no scheme is public (sessions, access, health): said as `security: []`, since a
      // document without root-level security otherwise leaves it unsaid (redocly's security-defined).
      const operation = op as { security?: unknown[] };
      operation.security ??= [];
    }
  }
  closeRequestBodies(document);
  inlineNullableRefs(document);
  // The API is served where the document is: said as the relative root, not an empty list (redocly's no-empty-servers).
  if (!document.servers?.length) document.servers = [{ url: '/', description: 'This Parley instance' }];
  document.components = {
    ...document.components,
    headers: { ...document.components?.headers, ...HEADER_COMPONENTS },
    responses: { ...document.components?.responses, MethodNotAllowed: METHOD_NOT_ALLOWED_RESPONSE },
  };
  SwaggerModule.setup('api/docs', app, document, { jsonDocumentUrl: 'api/docs-json' });
}

type Schema = Record<string, unknown> & { properties?: Record<string, Schema>; allOf?: Schema[]; $ref?: string };

/**
 * A property that is an object or null: in OpenAPI 3.0 `nullable` does not reach into an `allOf` $ref, so a strict
 * validator refused every null `context` (nearly every message). The object's schema is written in place instead.
 */
function inlineNullableRefs(document: OpenAPIObject): void {
  const schemas = (document.components?.schemas ?? {}) as Record<string, Schema>;
  for (const schema of Object.values(schemas)) {
    for (const [name, property] of Object.entries(schema.properties ?? {})) {
      const ref = property.nullable === true && property.allOf?.length === 1 ? property.allOf[0].$ref : undefined;
      const target = ref === undefined ? undefined : schemas[ref.replace('#/components/schemas/', '')];
      if (!target) continue;
      const { allOf: _allOf, ...rest } = property;
      schema.properties![name] = { ...structuredClone(target), ...rest, type: 'object', nullable: true };
    }
  }
}

/**
 * Request bodies refuse a field they do not declare (the validation pipe's forbidNonWhitelisted: 400 "property x
 * should not exist"): said in their schemas, so that a generated client or a validator knows it too.
 */
function closeRequestBodies(document: OpenAPIObject): void {
  const schemas = (document.components?.schemas ?? {}) as Record<string, Schema>;
  for (const item of Object.values(document.paths)) {
    for (const op of Object.values(item)) {
      // JSON bodies only: the upload's multipart form is read by its own rules.
      const schema = (op as { requestBody?: { content?: Record<string, { schema?: Schema }> } } | undefined)?.requestBody?.content?.['application/json']?.schema;
      const target = schema?.$ref ? schemas[schema.$ref.replace('#/components/schemas/', '')] : schema;
      if (target && target.type === 'object' && target.properties) target.additionalProperties = false;
    }
  }
}
